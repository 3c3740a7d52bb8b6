/**
 * Governance, staking and protocol parameters as a node and the CLI read them (issue #8, items
 * 4 and 5). Voting power is gOPEN (staked OPEN) plus cVOTE (contribution votes earned from
 * attribution rewards); proposals go through the OpenZeppelin Governor and wait in the Timelock,
 * which holds every protocol parameter.
 *
 * The functions take a viem public client and the deployment's addresses, so the node (API) and
 * the CLI (its own RPC connection) read the same things the same way.
 */
import {
  decodeFunctionData,
  encodeFunctionData,
  getAddress,
  keccak256,
  stringToHex,
  type Address,
  type Hex,
} from 'viem';
import type { ChainPublicClient } from '../chain/clients.ts';
import {
  AgentStakingAbi,
  ContributionBondsAbi,
  ContributionVotesAbi,
  InferenceEscrowAbi,
  ModelStakingAbi,
  OpenLedgerGovernorAbi,
  OpenLedgerTimelockAbi,
  ProtocolParametersAbi,
  StakedOpenAbi,
} from '../chain/generated/contracts.ts';
import { OpenLedgerError } from '../errors.ts';

export interface GovernanceContracts {
  OpenToken: Address;
  StakedOpen: Address;
  ContributionVotes: Address;
  OpenLedgerGovernor: Address;
  OpenLedgerTimelock: Address;
  ProtocolParameters: Address;
  ModelStaking: Address;
  AgentStaking: Address;
  ContributionBonds?: Address | undefined;
  InferenceEscrow?: Address | undefined;
}

/** The governance suite's addresses from a deployment record, or undefined when it has none. */
export function governanceContracts(
  contracts: Partial<Record<string, Address>>,
): GovernanceContracts | undefined {
  const names = [
    'OpenToken',
    'StakedOpen',
    'ContributionVotes',
    'OpenLedgerGovernor',
    'OpenLedgerTimelock',
    'ProtocolParameters',
    'ModelStaking',
    'AgentStaking',
  ] as const;
  if (names.some((n) => !contracts[n])) return undefined;
  return {
    ...(Object.fromEntries(names.map((n) => [n, contracts[n]!])) as Omit<
      GovernanceContracts,
      'ContributionBonds' | 'InferenceEscrow'
    >),
    ContributionBonds: contracts.ContributionBonds,
    InferenceEscrow: contracts.InferenceEscrow,
  };
}

export function requireGovernance(
  contracts: Partial<Record<string, Address>>,
): GovernanceContracts {
  const found = governanceContracts(contracts);
  if (!found)
    throw new OpenLedgerError(
      'GOVERNANCE_UNAVAILABLE',
      'The node names no governance contracts (its deployment predates them).',
      { hint: 'Restart the node with its deployer key: `up` adds the missing contracts.' },
    );
  return found;
}

// ----- protocol parameters ---------------------------------------------------------------------

export interface Split {
  owner: number;
  stakers: number;
  contributors: number;
}

export interface ProtocolParameterValues {
  defaultSplit: Split;
  agents: {
    minStake: string;
    unbondingSeconds: number;
    challengeBond: string;
    challengeSlashBps: number;
    reporterShareBps: number;
  };
  modelStaking: { minStake: string; unbondingSeconds: number; maxStakers: number };
  /** The escrow's fee epochs (what attribution settles by); a pending change from its epoch on. */
  epochs: {
    lengthSeconds: number;
    next: { fromEpoch: number; start: number; lengthSeconds: number } | null;
  } | null;
  contributionPenalties: {
    penaltyPerSlash: string;
    penaltyThreshold: string;
    reporterShareBps: number;
    unbondDelaySeconds: number;
  } | null;
}

interface EpochSchedule {
  start: bigint;
  length: bigint;
  firstEpoch: bigint;
}

export async function readParameters(
  client: ChainPublicClient,
  c: GovernanceContracts,
): Promise<ProtocolParameterValues> {
  const read = <T>(address: Address, abi: unknown, functionName: string) =>
    client.readContract({ address, abi, functionName } as never) as Promise<T>;
  const [split, minStake, unbonding, bond, slashBps, reporterBps, msMin, msUnbond, msMax] =
    await Promise.all([
      read<Split>(c.ProtocolParameters, ProtocolParametersAbi, 'defaultSplit'),
      read<bigint>(c.AgentStaking, AgentStakingAbi, 'minStake'),
      read<bigint>(c.AgentStaking, AgentStakingAbi, 'unbondingPeriod'),
      read<bigint>(c.AgentStaking, AgentStakingAbi, 'challengeBond'),
      read<number>(c.AgentStaking, AgentStakingAbi, 'challengeSlashBps'),
      read<number>(c.AgentStaking, AgentStakingAbi, 'reporterShareBps'),
      read<bigint>(c.ModelStaking, ModelStakingAbi, 'minStake'),
      read<bigint>(c.ModelStaking, ModelStakingAbi, 'unbondingPeriod'),
      read<bigint>(c.ModelStaking, ModelStakingAbi, 'maxStakers'),
    ]);
  let penalties: ProtocolParameterValues['contributionPenalties'] = null;
  if (c.ContributionBonds) {
    const b = c.ContributionBonds;
    const [perSlash, threshold, share, delay] = await Promise.all([
      read<bigint>(b, ContributionBondsAbi, 'penaltyPerSlash'),
      read<bigint>(b, ContributionBondsAbi, 'penaltyThreshold'),
      read<number>(b, ContributionBondsAbi, 'reporterShareBps'),
      read<bigint>(b, ContributionBondsAbi, 'unbondDelay'),
    ]);
    penalties = {
      penaltyPerSlash: perSlash.toString(),
      penaltyThreshold: threshold.toString(),
      reporterShareBps: Number(share),
      unbondDelaySeconds: Number(delay),
    };
  }
  let epochs: ProtocolParameterValues['epochs'] = null;
  if (c.InferenceEscrow) {
    const escrow = c.InferenceEscrow;
    const schedule = await (
      client.readContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'epochSchedule',
      }) as Promise<readonly [EpochSchedule, EpochSchedule]>
    ).catch(() => undefined); // an escrow from before governed epochs
    const length = schedule
      ? schedule[0].length
      : await read<bigint>(escrow, InferenceEscrowAbi, 'epochLength');
    const next = schedule?.[1];
    epochs = {
      lengthSeconds: Number(length),
      next:
        next && next.length !== 0n
          ? {
              fromEpoch: Number(next.firstEpoch),
              start: Number(next.start),
              lengthSeconds: Number(next.length),
            }
          : null,
    };
  }
  return {
    defaultSplit: { owner: split.owner, stakers: split.stakers, contributors: split.contributors },
    epochs,
    agents: {
      minStake: minStake.toString(),
      unbondingSeconds: Number(unbonding),
      challengeBond: bond.toString(),
      challengeSlashBps: Number(slashBps),
      reporterShareBps: Number(reporterBps),
    },
    modelStaking: {
      minStake: msMin.toString(),
      unbondingSeconds: Number(msUnbond),
      maxStakers: Number(msMax),
    },
    contributionPenalties: penalties,
  };
}

// ----- proposal actions ------------------------------------------------------------------------

/** A change a governance proposal can make, by name (what `gov propose --set` takes). */
export type GovernanceAction =
  | { kind: 'default-split'; split: Split }
  | { kind: 'min-agent-stake'; wei: bigint }
  | { kind: 'penalty-threshold'; threshold: bigint }
  | { kind: 'epoch-length'; seconds: bigint }
  | { kind: 'slash-agent'; agentId: bigint; wei: bigint; reason: string };

export interface EncodedCall {
  target: Address;
  value: bigint;
  calldata: Hex;
}

/** The Timelock call that carries out `action` (its current values read where it needs them). */
export async function encodeAction(
  client: ChainPublicClient,
  c: GovernanceContracts,
  action: GovernanceAction,
): Promise<EncodedCall> {
  switch (action.kind) {
    case 'default-split': {
      const { owner, stakers, contributors } = action.split;
      if (owner + stakers + contributors !== 10_000)
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `A split must add up to 10000 basis points; ${owner} + ${stakers} + ${contributors} = ${owner + stakers + contributors}.`,
        );
      return {
        target: c.ProtocolParameters,
        value: 0n,
        calldata: encodeFunctionData({
          abi: ProtocolParametersAbi,
          functionName: 'setDefaultSplit',
          args: [action.split],
        }),
      };
    }
    case 'min-agent-stake':
      if (action.wei <= 0n)
        throw new OpenLedgerError('VALIDATION_FAILED', 'The minimum agent stake must be above 0.');
      return {
        target: c.AgentStaking,
        value: 0n,
        calldata: encodeFunctionData({
          abi: AgentStakingAbi,
          functionName: 'setMinStake',
          args: [action.wei],
        }),
      };
    case 'penalty-threshold': {
      const bonds = c.ContributionBonds;
      if (!bonds)
        throw new OpenLedgerError('GOVERNANCE_UNAVAILABLE', 'The node names no ContributionBonds.');
      const read = <T>(functionName: string) =>
        client.readContract({
          address: bonds,
          abi: ContributionBondsAbi,
          functionName,
        } as never) as Promise<T>;
      const [perSlash, share, delay, treasury] = await Promise.all([
        read<bigint>('penaltyPerSlash'),
        read<number>('reporterShareBps'),
        read<bigint>('unbondDelay'),
        read<Address>('treasury'),
      ]);
      return {
        target: bonds,
        value: 0n,
        calldata: encodeFunctionData({
          abi: ContributionBondsAbi,
          functionName: 'setParameters',
          args: [perSlash, action.threshold, share, delay, treasury],
        } as never),
      };
    }
    case 'epoch-length': {
      const escrow = c.InferenceEscrow;
      if (!escrow)
        throw new OpenLedgerError('GOVERNANCE_UNAVAILABLE', 'The node names no InferenceEscrow.');
      if (action.seconds < 60n || action.seconds > 365n * 86_400n)
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `An epoch lasts from 60 seconds to a year; got ${action.seconds} s.`,
        );
      return {
        target: escrow,
        value: 0n,
        calldata: encodeFunctionData({
          abi: InferenceEscrowAbi,
          functionName: 'setEpochLength',
          args: [action.seconds],
        }),
      };
    }
    case 'slash-agent':
      return {
        target: c.AgentStaking,
        value: 0n,
        calldata: encodeFunctionData({
          abi: AgentStakingAbi,
          functionName: 'slash',
          args: [action.agentId, action.wei, keccak256(stringToHex(action.reason))],
        }),
      };
  }
}

/** A proposal's calls in words, for listing (decoded against the contracts it may target). */
export function describeCall(c: GovernanceContracts, call: EncodedCall): string {
  const target = getAddress(call.target);
  const abis: [Address | undefined, unknown, string][] = [
    [c.ProtocolParameters, ProtocolParametersAbi, 'ProtocolParameters'],
    [c.AgentStaking, AgentStakingAbi, 'AgentStaking'],
    [c.ModelStaking, ModelStakingAbi, 'ModelStaking'],
    [c.ContributionBonds, ContributionBondsAbi, 'ContributionBonds'],
    [c.InferenceEscrow, InferenceEscrowAbi, 'InferenceEscrow'],
    [c.OpenLedgerTimelock, OpenLedgerTimelockAbi, 'Timelock'],
    [c.OpenLedgerGovernor, OpenLedgerGovernorAbi, 'Governor'],
  ];
  for (const [address, abi, name] of abis) {
    if (!address || getAddress(address) !== target) continue;
    try {
      const decoded = decodeFunctionData({ abi: abi as never, data: call.calldata });
      const args = (decoded.args ?? []) as unknown[];
      return `${name}.${decoded.functionName}(${args.map(show).join(', ')})`;
    } catch {
      return `${name}: ${call.calldata.slice(0, 10)}…`;
    }
  }
  return `${target}: ${call.calldata.slice(0, 10)}…`;
}

function show(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (value && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}: ${show(v)}`)
      .join(', ')}}`;
  return String(value);
}

// ----- proposals -------------------------------------------------------------------------------

/** IGovernor.ProposalState, by index. */
export const PROPOSAL_STATES = [
  'pending',
  'active',
  'canceled',
  'defeated',
  'succeeded',
  'queued',
  'expired',
  'executed',
] as const;
export type ProposalState = (typeof PROPOSAL_STATES)[number];

export interface ProposalView {
  id: string;
  proposer: Address;
  description: string;
  descriptionHash: Hex;
  calls: (EncodedCall & { summary: string })[];
  state: ProposalState;
  /** The snapshot (votes count as they were then) and the end of the vote, Unix seconds. */
  voteStart: number;
  voteEnd: number;
  /** When the Timelock lets it execute (queued), Unix seconds; null otherwise. */
  eta: number | null;
  votes: { against: string; for: string; abstain: string };
  quorum: string;
  createdTx: Hex;
  createdBlock: string;
}

/** The Governor's ProposalCreated logs (its proposal ids are not indexed: the logs are the index). */
function proposalLogs(client: ChainPublicClient, c: GovernanceContracts, fromBlock: bigint) {
  return client.getContractEvents({
    address: c.OpenLedgerGovernor,
    abi: OpenLedgerGovernorAbi,
    eventName: 'ProposalCreated',
    fromBlock,
    toBlock: 'latest',
  });
}

type ProposalLog = Awaited<ReturnType<typeof proposalLogs>>[number];

function proposalIdOf(log: ProposalLog): bigint {
  return (log.args as { proposalId: bigint }).proposalId;
}

/** A proposal as its creation log names it, with its state, votes and quorum read now. */
async function proposalView(
  client: ChainPublicClient,
  c: GovernanceContracts,
  log: ProposalLog,
): Promise<ProposalView> {
  const a = log.args as {
    proposalId: bigint;
    proposer: Address;
    targets: readonly Address[];
    values: readonly bigint[];
    calldatas: readonly Hex[];
    voteStart: bigint;
    voteEnd: bigint;
    description: string;
  };
  const read = <T>(functionName: string, args: readonly unknown[]) =>
    client.readContract({
      address: c.OpenLedgerGovernor,
      abi: OpenLedgerGovernorAbi,
      functionName,
      args,
    } as never) as Promise<T>;
  const [state, votes, eta, quorum] = await Promise.all([
    read<number>('state', [a.proposalId]),
    read<readonly [bigint, bigint, bigint]>('proposalVotes', [a.proposalId]),
    read<bigint>('proposalEta', [a.proposalId]),
    read<bigint>('quorum', [a.voteStart]).catch(() => 0n),
  ]);
  const calls = a.targets.map((target, i) => {
    const call = { target, value: a.values[i] ?? 0n, calldata: a.calldatas[i] ?? '0x' };
    return { ...call, summary: describeCall(c, call) };
  });
  return {
    id: a.proposalId.toString(),
    proposer: getAddress(a.proposer),
    description: a.description,
    descriptionHash: keccak256(stringToHex(a.description)),
    calls,
    state: PROPOSAL_STATES[state] ?? 'pending',
    voteStart: Number(a.voteStart),
    voteEnd: Number(a.voteEnd),
    eta: eta === 0n ? null : Number(eta),
    votes: {
      against: votes[0].toString(),
      for: votes[1].toString(),
      abstain: votes[2].toString(),
    },
    quorum: quorum.toString(),
    createdTx: log.transactionHash!,
    createdBlock: log.blockNumber!.toString(),
  };
}

/** Every proposal the Governor has (from its ProposalCreated logs), newest first. */
export async function listProposals(
  client: ChainPublicClient,
  c: GovernanceContracts,
  fromBlock = 0n,
): Promise<ProposalView[]> {
  const logs = await proposalLogs(client, c, fromBlock);
  const views = await Promise.all(logs.map((log) => proposalView(client, c, log)));
  return views.reverse();
}

/** One proposal: only its own state is read. */
export async function getProposal(
  client: ChainPublicClient,
  c: GovernanceContracts,
  id: string,
  fromBlock = 0n,
): Promise<ProposalView> {
  const log = (await proposalLogs(client, c, fromBlock)).find(
    (l) => proposalIdOf(l).toString() === id,
  );
  if (!log)
    throw new OpenLedgerError('NOT_FOUND', `There is no governance proposal ${id}.`, {
      hint: '`openledger gov list` shows the proposals.',
    });
  return proposalView(client, c, log);
}

// ----- accounts --------------------------------------------------------------------------------

export interface VotingPowerView {
  address: Address;
  /** gOPEN held, and the votes delegated to this account from gOPEN. */
  staked: { balance: string; votes: string; delegate: Address };
  /** cVOTE held (earned), delegated votes, and what `sync` would mint now. */
  contribution: { balance: string; votes: string; delegate: Address; pending: string };
  /** Votes now: staked votes + contribution votes. */
  votes: string;
  /** OPEN in the wallet (what `deposit` can stake). */
  open: string;
}

export async function votingPower(
  client: ChainPublicClient,
  c: GovernanceContracts,
  address: Address,
): Promise<VotingPowerView> {
  const read = <T>(target: Address, abi: unknown, functionName: string) =>
    client.readContract({
      address: target,
      abi,
      functionName,
      args: [address],
    } as never) as Promise<T>;
  const [gBalance, gVotes, gDelegate, cBalance, cVotes, cDelegate, pending, open] =
    await Promise.all([
      read<bigint>(c.StakedOpen, StakedOpenAbi, 'balanceOf'),
      read<bigint>(c.StakedOpen, StakedOpenAbi, 'getVotes'),
      read<Address>(c.StakedOpen, StakedOpenAbi, 'delegates'),
      read<bigint>(c.ContributionVotes, ContributionVotesAbi, 'balanceOf'),
      read<bigint>(c.ContributionVotes, ContributionVotesAbi, 'getVotes'),
      read<Address>(c.ContributionVotes, ContributionVotesAbi, 'delegates'),
      read<bigint>(c.ContributionVotes, ContributionVotesAbi, 'pending'),
      read<bigint>(c.OpenToken, StakedOpenAbi, 'balanceOf'),
    ]);
  return {
    address: getAddress(address),
    staked: { balance: gBalance.toString(), votes: gVotes.toString(), delegate: gDelegate },
    contribution: {
      balance: cBalance.toString(),
      votes: cVotes.toString(),
      delegate: cDelegate,
      pending: pending.toString(),
    },
    votes: (gVotes + cVotes).toString(),
    open: open.toString(),
  };
}

export interface GovernorSettingsView {
  votingDelaySeconds: number;
  votingPeriodSeconds: number;
  proposalThreshold: string;
  quorumPercent: number;
  timelockDelaySeconds: number;
  /** Total votes now: gOPEN and cVOTE supplies. */
  supply: { staked: string; contribution: string };
}

export async function governorSettings(
  client: ChainPublicClient,
  c: GovernanceContracts,
): Promise<GovernorSettingsView> {
  const read = <T>(address: Address, abi: unknown, functionName: string) =>
    client.readContract({ address, abi, functionName } as never) as Promise<T>;
  const [delay, period, threshold, quorum, timelock, staked, contribution] = await Promise.all([
    read<bigint>(c.OpenLedgerGovernor, OpenLedgerGovernorAbi, 'votingDelay'),
    read<bigint>(c.OpenLedgerGovernor, OpenLedgerGovernorAbi, 'votingPeriod'),
    read<bigint>(c.OpenLedgerGovernor, OpenLedgerGovernorAbi, 'proposalThreshold'),
    read<bigint>(c.OpenLedgerGovernor, OpenLedgerGovernorAbi, 'quorumNumerator'),
    read<bigint>(c.OpenLedgerTimelock, OpenLedgerTimelockAbi, 'getMinDelay'),
    read<bigint>(c.StakedOpen, StakedOpenAbi, 'totalSupply'),
    read<bigint>(c.ContributionVotes, ContributionVotesAbi, 'totalSupply'),
  ]);
  return {
    votingDelaySeconds: Number(delay),
    votingPeriodSeconds: Number(period),
    proposalThreshold: threshold.toString(),
    quorumPercent: Number(quorum),
    timelockDelaySeconds: Number(timelock),
    supply: { staked: staked.toString(), contribution: contribution.toString() },
  };
}

// ----- model stakes ----------------------------------------------------------------------------

export async function modelStakes(
  client: ChainPublicClient,
  c: GovernanceContracts,
  modelId: number,
): Promise<{ modelId: number; total: string; stakers: { address: Address; stake: string }[] }> {
  const [accounts, amounts] = (await client.readContract({
    address: c.ModelStaking,
    abi: ModelStakingAbi,
    functionName: 'stakesOf',
    args: [BigInt(modelId)],
  })) as readonly [readonly Address[], readonly bigint[]];
  const stakers = accounts
    .map((a, i) => ({ address: getAddress(a), stake: amounts[i]! }))
    .sort((x, y) => (x.stake === y.stake ? 0 : x.stake > y.stake ? -1 : 1));
  return {
    modelId,
    total: stakers.reduce((sum, s) => sum + s.stake, 0n).toString(),
    stakers: stakers.map((s) => ({ address: s.address, stake: s.stake.toString() })),
  };
}

/** Parses `owner/stakers/contributors` in percent (60/10/30) or basis points (6000/1000/3000). */
export function parseSplit(text: string): Split {
  const parts = text.split('/').map((p) => p.trim());
  if (parts.length !== 3 || parts.some((p) => !/^\d+(\.\d{1,2})?$/.test(p)))
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `"${text}" is not a split: expected owner/stakers/contributors, e.g. 60/10/30 (percent) or 6000/1000/3000 (basis points).`,
    );
  const numbers = parts.map(Number);
  const sum = numbers.reduce((a, b) => a + b, 0);
  const scale = Math.abs(sum - 100) < 1e-9 ? 100 : sum === 10_000 ? 1 : 0;
  if (scale === 0)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `The split ${text} adds up to ${sum}: it must add up to 100 (percent) or 10000 (basis points).`,
    );
  const [owner, stakers, contributors] = numbers.map((n) => Math.round(n * scale)) as [
    number,
    number,
    number,
  ];
  return { owner, stakers, contributors };
}

/** The node's view of governance: the functions above over its own chain and deployment. */
export class GovernanceService {
  constructor(
    readonly client: ChainPublicClient,
    readonly contracts: GovernanceContracts,
    /** The deployment's block: proposals are searched from there. */
    private readonly fromBlock: bigint,
  ) {}

  parameters() {
    return readParameters(this.client, this.contracts);
  }
  settings() {
    return governorSettings(this.client, this.contracts);
  }
  proposals() {
    return listProposals(this.client, this.contracts, this.fromBlock);
  }
  proposal(id: string) {
    return getProposal(this.client, this.contracts, id, this.fromBlock);
  }
  votingPower(address: Address) {
    return votingPower(this.client, this.contracts, address);
  }
  modelStakes(modelId: number) {
    return modelStakes(this.client, this.contracts, modelId);
  }
  encode(action: GovernanceAction) {
    return encodeAction(this.client, this.contracts, action);
  }
  /** The split a model gets when its publisher names none (ProtocolParameters). */
  async defaultSplit(): Promise<Split> {
    return (await this.parameters()).defaultSplit;
  }
}
