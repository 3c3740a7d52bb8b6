import {
  getAddress,
  keccak256,
  parseUnits,
  stringToHex,
  zeroAddress,
  zeroHash,
  type Address,
  type Hash,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import type { ChainConnection } from './clients.ts';
import {
  AgentStakingAbi,
  AgentStakingBytecode,
  ContributionBondsAbi,
  ContributionVotesAbi,
  ContributionVotesBytecode,
  InferenceEscrowAbi,
  ModelProposalsAbi,
  ModelProposalsBytecode,
  ModelStakingAbi,
  ModelStakingBytecode,
  OpenLedgerGovernorAbi,
  OpenLedgerGovernorBytecode,
  OpenLedgerTimelockAbi,
  OpenLedgerTimelockBytecode,
  ProtocolParametersAbi,
  ProtocolParametersBytecode,
  StakedOpenAbi,
  StakedOpenBytecode,
} from './generated/contracts.ts';
import { LOCAL_CHAIN_ID } from './local.ts';

/** The market and governance contracts (issue #8), as a deployment record names them. */
export const GOVERNANCE_CONTRACTS = [
  'StakedOpen',
  'ContributionVotes',
  'OpenLedgerTimelock',
  'OpenLedgerGovernor',
  'ProtocolParameters',
  'ModelStaking',
  'AgentStaking',
  'ModelProposals',
] as const;
export type GovernanceContract = (typeof GOVERNANCE_CONTRACTS)[number];

/** The revenue split a model gets when its publisher names none, until governance changes it. */
export const INITIAL_DEFAULT_SPLIT = { owner: 6000, stakers: 1000, contributors: 3000 } as const;

/**
 * Governance and staking parameters. A real chain gets the reference design's values (a day's
 * voting delay, two weeks' vote, a day's timelock, 100 votes to propose, a 25 % quorum); the local
 * chain gets minutes and small stakes, as its escrow and settlement do, so that trying the whole
 * governance cycle by hand takes minutes, not weeks.
 */
export function governanceParameters(chainId: number) {
  const OPEN = (n: string) => parseUnits(n, 18);
  const local = chainId === LOCAL_CHAIN_ID;
  return {
    governor: local
      ? {
          votingDelaySeconds: 1,
          votingPeriodSeconds: 300,
          proposalThreshold: OPEN('1'),
          quorumPercent: 4n,
        }
      : {
          votingDelaySeconds: 86_400,
          votingPeriodSeconds: 14 * 86_400,
          proposalThreshold: OPEN('100'),
          quorumPercent: 25n,
        },
    timelockDelaySeconds: local ? 120n : 86_400n,
    modelStaking: local
      ? { maxStakers: 128n, minStake: OPEN('1'), unbondingSeconds: 600n }
      : { maxStakers: 128n, minStake: OPEN('100'), unbondingSeconds: 7n * 86_400n },
    agentStaking: local
      ? {
          minStake: OPEN('100'),
          unbondingSeconds: 600n,
          challengeBond: OPEN('10'),
          challengeSlashBps: 5000,
          reporterShareBps: 5000,
        }
      : {
          minStake: OPEN('10000'),
          // Longer than a whole governance cycle (1 + 14 + 1 days): an owner who sees a slash
          // proposal cannot unbond and withdraw before it executes.
          unbondingSeconds: 21n * 86_400n,
          challengeBond: OPEN('1000'),
          challengeSlashBps: 5000,
          reporterShareBps: 5000,
        },
    proposals: local
      ? { challengeWindowSeconds: 600n, challengeBond: OPEN('10') }
      : { challengeWindowSeconds: 3n * 86_400n, challengeBond: OPEN('1000') },
  };
}

type Step = (name: string, send: () => Promise<Hash>) => Promise<TransactionReceipt>;

/**
 * Deploys the market and governance suite next to the core contracts and hands the protocol's
 * parameters to the Timelock:
 *
 * - gOPEN (OPEN staked for votes) and cVOTE (contribution votes backed by the settlement's claims);
 * - the Timelock (the Governor its only proposer and canceller, anyone executes, no admin left)
 *   and the Governor over both vote tokens;
 * - ProtocolParameters, ModelStaking and AgentStaking governed by the Timelock (parameters, and
 *   slashing agents); the ContributionBonds' roles and the escrow's PARAMS_ROLE (the epoch
 *   length) are granted to the Timelock too;
 * - ModelProposals administered by the Timelock, with `signer` (the node) as evaluator and, until
 *   governance appoints another, arbiter; AgentStaking's arbiter is the node as well.
 *
 * `signer` must administer the ContributionBonds (it deployed them).
 */
export async function deployGovernance(
  conn: ChainConnection,
  signer: LocalAccount,
  core: {
    OpenToken: Address;
    ModelRegistry: Address;
    InferenceEscrow: Address;
    AttributionSettlement: Address;
    ContributionBonds: Address;
  },
  treasury: Address,
  step: Step,
): Promise<{ contracts: Record<GovernanceContract, Address>; blockNumber: bigint }> {
  const wallet = conn.walletFor(signer);
  const p = governanceParameters(conn.chain.id);
  const deploy = async (name: GovernanceContract, send: () => Promise<Hash>) =>
    getAddress((await step(`deploy ${name}`, send)).contractAddress!);

  const stakedOpen = await deploy('StakedOpen', () =>
    wallet.deployContract({
      abi: StakedOpenAbi,
      bytecode: StakedOpenBytecode,
      args: [core.OpenToken],
    }),
  );
  const votes = await deploy('ContributionVotes', () =>
    wallet.deployContract({
      abi: ContributionVotesAbi,
      bytecode: ContributionVotesBytecode,
      args: [core.AttributionSettlement, treasury],
    }),
  );
  // The deployer administers the Timelock only until the Governor is wired in, below.
  const timelock = await deploy('OpenLedgerTimelock', () =>
    wallet.deployContract({
      abi: OpenLedgerTimelockAbi,
      bytecode: OpenLedgerTimelockBytecode,
      args: [p.timelockDelaySeconds, [], [zeroAddress], signer.address],
    }),
  );
  const governor = await deploy('OpenLedgerGovernor', () =>
    wallet.deployContract({
      abi: OpenLedgerGovernorAbi,
      bytecode: OpenLedgerGovernorBytecode,
      args: [
        stakedOpen,
        votes,
        timelock,
        p.governor.votingDelaySeconds,
        p.governor.votingPeriodSeconds,
        p.governor.proposalThreshold,
        p.governor.quorumPercent,
      ],
    }),
  );
  const parameters = await deploy('ProtocolParameters', () =>
    wallet.deployContract({
      abi: ProtocolParametersAbi,
      bytecode: ProtocolParametersBytecode,
      args: [timelock, INITIAL_DEFAULT_SPLIT],
    }),
  );
  const modelStaking = await deploy('ModelStaking', () =>
    wallet.deployContract({
      abi: ModelStakingAbi,
      bytecode: ModelStakingBytecode,
      args: [
        core.OpenToken,
        core.ModelRegistry,
        timelock,
        p.modelStaking.maxStakers,
        p.modelStaking.minStake,
        p.modelStaking.unbondingSeconds,
      ],
    }),
  );
  const a = p.agentStaking;
  const agentStaking = await deploy('AgentStaking', () =>
    wallet.deployContract({
      abi: AgentStakingAbi,
      bytecode: AgentStakingBytecode,
      args: [
        core.OpenToken,
        treasury,
        timelock,
        signer.address,
        a.minStake,
        a.unbondingSeconds,
        a.challengeBond,
        a.challengeSlashBps,
        a.reporterShareBps,
      ],
    }),
  );
  const proposals = await deploy('ModelProposals', () =>
    wallet.deployContract({
      abi: ModelProposalsAbi,
      bytecode: ModelProposalsBytecode,
      args: [
        core.OpenToken,
        core.ModelRegistry,
        timelock,
        signer.address,
        signer.address,
        p.proposals.challengeWindowSeconds,
        p.proposals.challengeBond,
      ],
    }),
  );

  const role = (name: string) =>
    name === 'DEFAULT_ADMIN_ROLE' ? zeroHash : keccak256(stringToHex(name));
  // The contribution penalties become the Timelock's alone: it gets both roles, the deployer
  // gives both up.
  for (const name of ['PARAMS_ROLE', 'DEFAULT_ADMIN_ROLE'] as const) {
    await step(`give the Timelock the contribution bonds' ${name}`, () =>
      wallet.writeContract({
        address: core.ContributionBonds,
        abi: ContributionBondsAbi,
        functionName: 'grantRole',
        args: [role(name), timelock],
      }),
    );
  }
  for (const name of ['PARAMS_ROLE', 'DEFAULT_ADMIN_ROLE'] as const) {
    await step(`renounce the contribution bonds' ${name}`, () =>
      wallet.writeContract({
        address: core.ContributionBonds,
        abi: ContributionBondsAbi,
        functionName: 'renounceRole',
        args: [role(name), signer.address],
      }),
    );
  }
  await step("let the Timelock set the escrow's epoch length", () =>
    wallet.writeContract({
      address: core.InferenceEscrow,
      abi: InferenceEscrowAbi,
      functionName: 'grantRole',
      args: [role('PARAMS_ROLE'), timelock],
    }),
  );
  for (const name of ['PROPOSER_ROLE', 'CANCELLER_ROLE'] as const) {
    await step(`make the Governor the Timelock's ${name.split('_')[0]!.toLowerCase()}`, () =>
      wallet.writeContract({
        address: timelock,
        abi: OpenLedgerTimelockAbi,
        functionName: 'grantRole',
        args: [role(name), governor],
      }),
    );
  }
  const renounced = await step('renounce the Timelock admin role', () =>
    wallet.writeContract({
      address: timelock,
      abi: OpenLedgerTimelockAbi,
      functionName: 'renounceRole',
      args: [role('DEFAULT_ADMIN_ROLE'), signer.address],
    }),
  );
  return {
    contracts: {
      StakedOpen: stakedOpen,
      ContributionVotes: votes,
      OpenLedgerTimelock: timelock,
      OpenLedgerGovernor: governor,
      ProtocolParameters: parameters,
      ModelStaking: modelStaking,
      AgentStaking: agentStaking,
      ModelProposals: proposals,
    },
    blockNumber: renounced.blockNumber,
  };
}
