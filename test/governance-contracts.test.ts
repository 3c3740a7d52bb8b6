import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  decodeErrorResult,
  encodeFunctionData,
  getAddress,
  keccak256,
  parseEventLogs,
  parseUnits,
  sha256,
  stringToHex,
  zeroAddress,
  zeroHash,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import { compileContracts } from '../src/chain/compile.ts';
import {
  AgentStakingBytecode,
  DatanetRegistryBytecode,
  ModelProposalsBytecode,
  ModelRegistryBytecode,
  ModelStakingBytecode,
} from '../src/chain/generated/contracts.ts';
import {
  AgentStakingAbi,
  AttributionSettlementAbi,
  ContributionBondsAbi,
  ContributionVotesAbi,
  DatanetRegistryAbi,
  INITIAL_DEFAULT_SPLIT,
  InferenceEscrowAbi,
  LOCAL_CHAIN_ID,
  ModelProposalsAbi,
  ModelRegistryAbi,
  ModelStakingAbi,
  OpenLedgerGovernorAbi,
  OpenLedgerTimelockAbi,
  OpenTokenAbi,
  ProtocolParametersAbi,
  StakedOpenAbi,
  deployContracts,
  devAccount,
  escrowParameters,
  governanceParameters,
  settlementParameters,
  type ChainConnection,
  type Deployment,
} from '../src/chain/index.ts';
import { contractCalls, expectRevert, startTestChain } from './helpers/chain.ts';

// The market and governance contracts (issue #8): gOPEN, cVOTE, the Governor and its Timelock,
// ProtocolParameters, AgentStaking, ModelStaking and ModelProposals, attacked as well as used.

const ROOT = path.resolve(import.meta.dirname, '..');
const admin = devAccount(0); // deploys; the node: poster, AgentStaking arbiter, proposals evaluator + arbiter
const alice = devAccount(1); // pays for inference; a proposal's creator and funder
const bob = devAccount(2); // capital: a gOPEN holder
const carol = devAccount(3); // a contributor (earns cVOTE); an agent owner; a model builder
const dave = devAccount(4); // a contributor; an agent owner; a model builder
const mallory = devAccount(5); // a stranger and attacker
const erin = devAccount(6); // mallory's second account; a challenger
const frank = devAccount(7); // receives gOPEN someone else deposits
const treasury = devAccount(8); // holds OPEN's supply; receives slashes and the platform share

const OPEN = (n: string) => parseUnits(n, 18);
const hash = (text: string) => sha256(stringToHex(text));
const role = (name: string) =>
  name === 'DEFAULT_ADMIN_ROLE' ? zeroHash : keccak256(stringToHex(name));
const GOV = governanceParameters(LOCAL_CHAIN_ID);
const VOTING_DELAY = BigInt(GOV.governor.votingDelaySeconds);
const VOTING_PERIOD = BigInt(GOV.governor.votingPeriodSeconds);
const TIMELOCK_DELAY = GOV.timelockDelaySeconds;
const ProposalState = {
  Pending: 0,
  Active: 1,
  Canceled: 2,
  Defeated: 3,
  Succeeded: 4,
  Queued: 5,
  Expired: 6,
  Executed: 7,
} as const;
const Vote = { Against: 0, For: 1, Abstain: 2 } as const;
const Status = { None: 0, Open: 1, Submitted: 2, Challenged: 3, Paid: 4, Cancelled: 5 } as const;

const ABIS = [
  AgentStakingAbi,
  AttributionSettlementAbi,
  ContributionBondsAbi,
  ContributionVotesAbi,
  DatanetRegistryAbi,
  InferenceEscrowAbi,
  ModelProposalsAbi,
  ModelRegistryAbi,
  ModelStakingAbi,
  OpenLedgerGovernorAbi,
  OpenLedgerTimelockAbi,
  OpenTokenAbi,
  ProtocolParametersAbi,
  StakedOpenAbi,
] as unknown as Abi[];
/** Every contract's errors, so that a revert bubbling up from a callee (the Timelock under the
 * Governor, the token under a staking contract) is decoded by name whatever was called. */
const ALL_ERRORS: Abi = ABIS.flatMap((abi) => abi.filter((item) => item.type === 'error'));
const encode = (abi: unknown, functionName: string, args: readonly unknown[]) =>
  encodeFunctionData({ abi, functionName, args } as never);

type Split = { owner: number; stakers: number; contributors: number };
type AgentRecord = {
  owner: Address;
  stake: bigint;
  unbonding: bigint;
  releaseAt: bigint;
  openChallenges: number;
  retired: boolean;
  name: string;
};
type ProposalRecord = {
  creator: Address;
  datanetId: bigint;
  bar: bigint;
  higherIsBetter: boolean;
  deadline: bigint;
  minFunding: bigint;
  funded: bigint;
  status: number;
  modelId: bigint;
  score: bigint;
  challengeEndsAt: bigint;
  challenger: Address;
  challengerBond: bigint;
};

/**
 * A local chain, optionally with the whole suite deployed (`deployContracts`: the wiring, roles and
 * parameters are part of what is tested), and call helpers that decode any contract's errors.
 */
async function startSuite(options: { deploy: boolean }) {
  const env = await startTestChain();
  const conn: ChainConnection = env.conn;
  const abis = new Map<Address, Abi>();
  const register = (address: Address, abi: unknown) => {
    abis.set(getAddress(address), [...(abi as Abi), ...ALL_ERRORS]);
    return getAddress(address);
  };
  let deployment: Deployment | undefined;
  if (options.deploy) {
    deployment = await deployContracts(conn, { signer: admin, treasury: treasury.address });
    const byName: Record<string, unknown> = {
      OpenToken: OpenTokenAbi,
      DatanetRegistry: DatanetRegistryAbi,
      ModelRegistry: ModelRegistryAbi,
      InferenceEscrow: InferenceEscrowAbi,
      AttributionSettlement: AttributionSettlementAbi,
      ContributionBonds: ContributionBondsAbi,
      StakedOpen: StakedOpenAbi,
      ContributionVotes: ContributionVotesAbi,
      OpenLedgerTimelock: OpenLedgerTimelockAbi,
      OpenLedgerGovernor: OpenLedgerGovernorAbi,
      ProtocolParameters: ProtocolParametersAbi,
      ModelStaking: ModelStakingAbi,
      AgentStaking: AgentStakingAbi,
      ModelProposals: ModelProposalsAbi,
    };
    for (const [name, address] of Object.entries(deployment.contracts)) {
      if (address && byName[name]) register(address, byName[name]);
    }
  }
  const c = (deployment?.contracts ?? {}) as Required<Deployment['contracts']>;
  const { simulate, read } = contractCalls(
    () => conn,
    (address) => abis.get(getAddress(address)) ?? ALL_ERRORS,
    () => c.OpenToken,
  );
  /**
   * Sends the call from `account` and asserts that it succeeded. Unlike the shared helper it adds
   * headroom to the gas estimate: anvil mines several blocks in one second and estimates against
   * the latest block's timestamp, so a vote checkpoint that the estimate saw updated in place
   * (same timestamp) may need a new storage slot (a later one) when mined, and run out of gas.
   */
  const send = async (
    account: LocalAccount,
    functionName: string,
    args: readonly unknown[],
    address: Address,
  ): Promise<TransactionReceipt> => {
    const { request } = await simulate(account, functionName, args, address);
    const estimate = await conn.publicClient.estimateContractGas(request as never);
    const gas = estimate + estimate / 2n + 50_000n;
    const txHash = await conn
      .walletFor(account)
      .writeContract({ ...(request as object), gas } as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
    assert.equal(
      receipt.status,
      'success',
      `${functionName} reverted on chain (gas used ${receipt.gasUsed} of ${gas})`,
    );
    return receipt;
  };
  const deploy = async (abi: unknown, bytecode: Hex, args: readonly unknown[]) => {
    const txHash = await conn.walletFor(admin).deployContract({ abi, bytecode, args } as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
    assert.equal(receipt.status, 'success');
    return register(receipt.contractAddress!, abi);
  };
  const warp = async (seconds: bigint | number) => {
    await conn.publicClient.request({
      method: 'evm_increaseTime' as never,
      params: [Number(seconds)] as never,
    });
    await conn.publicClient.request({ method: 'evm_mine' as never, params: [] as never });
  };
  const now = async () => (await conn.publicClient.getBlock()).timestamp;
  const events = (receipt: TransactionReceipt, abi: unknown, eventName: string) =>
    parseEventLogs({ abi, logs: receipt.logs, eventName } as never).map(
      (log) => (log as unknown as { args: Record<string, unknown> }).args,
    );
  const balanceOf = (who: Address, token: Address = c.OpenToken) =>
    read<bigint>('balanceOf', [who], token);
  /** OPEN from the treasury (which holds the supply). */
  const give = async (who: LocalAccount, amount: bigint) => {
    await send(treasury, 'transfer', [who.address, amount], c.OpenToken);
  };
  const approve = (who: LocalAccount, spender: Address, token: Address = c.OpenToken) =>
    send(who, 'approve', [spender, OPEN('1000000')], token);

  /** Creates a datanet with one committed version; its id. */
  const createDatanet = async (registry: Address, tag: string) => {
    await send(admin, 'createDatanet', [hash(`datanet ${tag}`), 0], registry);
    const id = await read<bigint>('datanetCount', [], registry);
    await send(admin, 'commitVersion', [id, hash(`root ${tag}`), 3n, hash('manifest')], registry);
    return id;
  };
  /** Publishes a model trained on version 1 of `datanetId`, owned by `owner`; its id. */
  const publishModel = async (
    registry: Address,
    owner: LocalAccount,
    datanetId: bigint,
    tag: string,
  ) => {
    await send(
      owner,
      'publish',
      [
        {
          baseModel: hash('base.gguf'),
          adapterHash: hash(`adapter ${tag}`),
          manifestHash: hash(`manifest ${tag}`),
          metadataHash: hash(`metadata ${tag}`),
          datanets: [{ datanetId, version: 1n }],
          pricePer1kInput: 10n ** 15n,
          pricePer1kOutput: 2n * 10n ** 15n,
          split: INITIAL_DEFAULT_SPLIT,
        },
      ],
      registry,
    );
    return read<bigint>('modelCount', [], registry);
  };

  /** A Governor proposal's arguments and its id. */
  const proposalOf = async (targets: Address[], calldatas: Hex[], description: string) => {
    const values = targets.map(() => 0n);
    const descriptionHash = keccak256(stringToHex(description));
    const id = await read<bigint>(
      'hashProposal',
      [targets, values, calldatas, descriptionHash],
      c.OpenLedgerGovernor,
    );
    return { id, targets, values, calldatas, description, descriptionHash };
  };
  type Proposal = Awaited<ReturnType<typeof proposalOf>>;
  const propose = async (proposer: LocalAccount, p: Proposal) =>
    send(
      proposer,
      'propose',
      [p.targets, p.values, p.calldatas, p.description],
      c.OpenLedgerGovernor,
    );
  const governorArgs = (p: Proposal) => [p.targets, p.values, p.calldatas, p.descriptionHash];
  const state = (p: Proposal) => read<number>('state', [p.id], c.OpenLedgerGovernor);
  /**
   * Runs a proposal through the whole cycle: proposed by the first voter, voted For by every voter,
   * queued, and executed once the Timelock's delay has passed. `during` runs right after the
   * proposal is made (what its target does while the vote is on).
   */
  const pass = async (
    voters: LocalAccount[],
    targets: Address[],
    calldatas: Hex[],
    description: string,
    during?: () => Promise<void>,
  ) => {
    const p = await proposalOf(targets, calldatas, description);
    await warp(2); // the proposer's votes are read one second back
    await propose(voters[0]!, p);
    await during?.();
    await warp(VOTING_DELAY + 1n);
    for (const voter of voters) {
      await send(voter, 'castVote', [p.id, Vote.For], c.OpenLedgerGovernor);
    }
    await warp(VOTING_PERIOD + 1n);
    assert.equal(await state(p), ProposalState.Succeeded);
    await send(mallory, 'queue', governorArgs(p), c.OpenLedgerGovernor);
    await warp(TIMELOCK_DELAY + 1n);
    const executed = await send(mallory, 'execute', governorArgs(p), c.OpenLedgerGovernor);
    assert.equal(await state(p), ProposalState.Executed);
    return executed;
  };

  return {
    env,
    conn,
    c,
    simulate,
    send,
    read,
    deploy,
    register,
    warp,
    now,
    events,
    balanceOf,
    give,
    approve,
    createDatanet,
    publishModel,
    proposalOf,
    propose,
    governorArgs,
    state,
    pass,
    close: () => env.close(),
  };
}
type Suite = Awaited<ReturnType<typeof startSuite>>;

// ---------------------------------------------------------------------------------------------
// 1-4: gOPEN, cVOTE, the Governor and the Timelock
// ---------------------------------------------------------------------------------------------

describe('governance on a local chain: gOPEN, cVOTE, the Governor and the Timelock', () => {
  let s: Suite;
  let gOPEN: Address;
  let cVOTE: Address;
  let governor: Address;
  let timelock: Address;
  let parameters: Address;
  let settlement: Address;
  const { epochSeconds: EPOCH } = escrowParameters(LOCAL_CHAIN_ID);
  const SETTLEMENT = settlementParameters(LOCAL_CHAIN_ID);
  const cumulative = new Map<Address, bigint>();

  /**
   * One attribution epoch, for real: alice pays `fees` through the escrow, the epoch closes, the
   * node posts `payouts` (added to each account's cumulative total) and, once the challenge
   * window has passed, every paid account's claim is submitted (by mallory: anyone may).
   */
  const settleEpoch = async (fees: bigint, payouts: [Address, bigint][], batch: string) => {
    const escrow = s.c.InferenceEscrow!;
    await s.send(alice, 'deposit', [fees], escrow);
    await s.send(admin, 'charge', [hash(batch), [alice.address], [fees]], escrow);
    const epoch = await s.read<bigint>('currentEpoch', [], escrow);
    await s.warp(EPOCH - ((await s.now()) % EPOCH) + 1n);
    for (const [who, amount] of payouts) cumulative.set(who, (cumulative.get(who) ?? 0n) + amount);
    const entries = [...cumulative];
    const tree = StandardMerkleTree.of(entries, ['address', 'uint256']);
    const total = payouts.reduce((sum, [, amount]) => sum + amount, 0n);
    await s.send(
      admin,
      'postEpoch',
      [epoch, hash(`receipts ${batch}`), tree.root, total],
      settlement,
    );
    await s.warp(SETTLEMENT.challengeWindowSeconds + 1n);
    for (const [i, [who, amount]] of entries.entries()) {
      if (!payouts.some(([paid]) => paid === who)) continue;
      await s.send(mallory, 'claim', [epoch, who, amount, tree.getProof(i)], settlement);
    }
  };

  before(async () => {
    s = await startSuite({ deploy: true });
    gOPEN = s.c.StakedOpen!;
    cVOTE = s.c.ContributionVotes!;
    governor = s.c.OpenLedgerGovernor!;
    timelock = s.c.OpenLedgerTimelock!;
    parameters = s.c.ProtocolParameters!;
    settlement = s.c.AttributionSettlement!;
    await s.give(admin, SETTLEMENT.minBond);
    await s.give(alice, OPEN('1000'));
    await s.give(bob, OPEN('1000'));
    await s.give(mallory, OPEN('2000'));
    await s.approve(admin, settlement);
    await s.send(admin, 'bond', [SETTLEMENT.minBond], settlement);
    await s.approve(alice, s.c.InferenceEscrow!);
    await s.approve(bob, gOPEN);
    await s.approve(mallory, gOPEN);
  });
  after(async () => s?.close());

  describe('gOPEN (OPEN staked for votes)', () => {
    it('depositFor and withdrawTo exchange OPEN and gOPEN one for one', async () => {
      assert.equal(await s.read('underlying', [], gOPEN), s.c.OpenToken);
      assert.equal(await s.read('decimals', [], gOPEN), 18);
      const bobOpen = await s.balanceOf(bob.address);
      const erinOpen = await s.balanceOf(erin.address);

      await s.send(bob, 'depositFor', [bob.address, OPEN('150')], gOPEN);
      assert.equal(await s.balanceOf(bob.address, gOPEN), OPEN('150'));
      assert.equal(await s.balanceOf(bob.address), bobOpen - OPEN('150'));
      assert.equal(await s.balanceOf(gOPEN), OPEN('150'), 'the wrapper holds the OPEN');
      assert.equal(await s.read('totalSupply', [], gOPEN), OPEN('150'));

      // withdrawTo burns the caller's gOPEN and pays the OPEN to the account named.
      await s.send(bob, 'withdrawTo', [erin.address, OPEN('30')], gOPEN);
      assert.equal(await s.balanceOf(bob.address, gOPEN), OPEN('120'));
      assert.equal(await s.balanceOf(erin.address), erinOpen + OPEN('30'));
      assert.equal(await s.balanceOf(bob.address), bobOpen - OPEN('150'));
      assert.equal(await s.balanceOf(gOPEN), OPEN('120'));
      assert.equal(await s.read('totalSupply', [], gOPEN), OPEN('120'));
      // Nobody withdraws more than they staked, nor someone else's stake.
      await expectRevert(
        s.simulate(bob, 'withdrawTo', [bob.address, OPEN('120') + 1n], gOPEN),
        'ERC20InsufficientBalance',
      );
      await expectRevert(
        s.simulate(mallory, 'withdrawTo', [mallory.address, 1n], gOPEN),
        'ERC20InsufficientBalance',
      );
    });

    it('a depositor votes at once: the first gOPEN an account receives delegates it to itself', async () => {
      assert.equal(await s.read('CLOCK_MODE', [], gOPEN), 'mode=timestamp');
      assert.equal(await s.read('delegates', [bob.address], gOPEN), bob.address);
      assert.equal(await s.read('getVotes', [bob.address], gOPEN), OPEN('120'));
      // Deposited for someone else: that account votes too, without a `delegate` call.
      assert.equal(await s.read('delegates', [frank.address], gOPEN), zeroAddress);
      await s.send(bob, 'depositFor', [frank.address, OPEN('10')], gOPEN);
      assert.equal(await s.read('delegates', [frank.address], gOPEN), frank.address);
      assert.equal(await s.read('getVotes', [frank.address], gOPEN), OPEN('10'));
      assert.equal(await s.read('getVotes', [bob.address], gOPEN), OPEN('120'));
    });

    it('delegation moves votes, and getPastVotes reads them as they were at a past timestamp', async () => {
      await s.warp(2);
      const before = await s.now(); // bob: 120 votes
      await s.warp(2);
      await s.send(bob, 'delegate', [erin.address], gOPEN);
      assert.equal(await s.read('delegates', [bob.address], gOPEN), erin.address);
      assert.equal(await s.read('getVotes', [bob.address], gOPEN), 0n);
      assert.equal(await s.read('getVotes', [erin.address], gOPEN), OPEN('120'));
      assert.equal(await s.balanceOf(erin.address, gOPEN), 0n, 'votes moved, not tokens');
      await s.warp(2);
      const during = await s.now(); // erin: bob's 120 votes
      await s.warp(2);
      await s.send(bob, 'delegate', [bob.address], gOPEN);
      await s.warp(2);

      const past = (who: Address, t: bigint) => s.read<bigint>('getPastVotes', [who, t], gOPEN);
      assert.equal(await past(bob.address, before), OPEN('120'));
      assert.equal(await past(erin.address, before), 0n);
      assert.equal(await past(bob.address, during), 0n);
      assert.equal(await past(erin.address, during), OPEN('120'));
      assert.equal(await s.read('getVotes', [bob.address], gOPEN), OPEN('120'));
      assert.equal(await s.read('getVotes', [erin.address], gOPEN), 0n);
      assert.equal(await s.read('getPastTotalSupply', [before], gOPEN), OPEN('130'));
      // The future cannot be read (a vote's weight is fixed only once its snapshot has passed).
      await expectRevert(
        s.read('getPastVotes', [bob.address, (await s.now()) + 100n], gOPEN),
        'ERC5805FutureLookup',
      );
    });
  });

  describe('cVOTE (contribution votes)', () => {
    it('sync mints exactly what the settlement says each account claimed, and nothing twice', async () => {
      // Nothing claimed yet: nothing to mint.
      assert.equal(await s.read('pending', [carol.address], cVOTE), 0n);
      const idle = await s.send(mallory, 'sync', [carol.address], cVOTE);
      assert.deepEqual(s.events(idle, ContributionVotesAbi, 'Synced'), []);
      assert.equal(await s.read('totalSupply', [], cVOTE), 0n);

      // A real epoch: carol and dave earn rewards, the treasury its platform share.
      await settleEpoch(
        OPEN('150'),
        [
          [carol.address, OPEN('60')],
          [dave.address, OPEN('70')],
          [treasury.address, OPEN('10')],
        ],
        'batch 1',
      );
      assert.equal(await s.read('claimed', [carol.address], settlement), OPEN('60'));
      assert.equal(await s.read('pending', [carol.address], cVOTE), OPEN('60'));

      // Anyone may bring an account up to date; the votes go to the account.
      const synced = await s.send(mallory, 'sync', [carol.address], cVOTE);
      assert.deepEqual(s.events(synced, ContributionVotesAbi, 'Synced'), [
        { account: carol.address, amount: OPEN('60'), credited: OPEN('60') },
      ]);
      assert.equal(await s.balanceOf(carol.address, cVOTE), OPEN('60'));
      assert.equal(await s.balanceOf(mallory.address, cVOTE), 0n);
      assert.equal(await s.read('credited', [carol.address], cVOTE), OPEN('60'));
      assert.equal(await s.read('delegates', [carol.address], cVOTE), carol.address);
      assert.equal(await s.read('getVotes', [carol.address], cVOTE), OPEN('60'));
      await s.send(dave, 'sync', [dave.address], cVOTE);
      assert.equal(await s.balanceOf(dave.address, cVOTE), OPEN('70'));

      // A second sync mints nothing.
      const again = await s.send(mallory, 'sync', [carol.address], cVOTE);
      assert.deepEqual(s.events(again, ContributionVotesAbi, 'Synced'), []);
      assert.equal(await s.balanceOf(carol.address, cVOTE), OPEN('60'));
      assert.equal(await s.read('totalSupply', [], cVOTE), OPEN('130'));

      // A later epoch raises carol's cumulative claim: only the difference is minted.
      await settleEpoch(OPEN('40'), [[carol.address, OPEN('40')]], 'batch 2');
      assert.equal(await s.read('claimed', [carol.address], settlement), OPEN('100'));
      assert.equal(await s.read('pending', [carol.address], cVOTE), OPEN('40'));
      const more = await s.send(mallory, 'sync', [carol.address], cVOTE);
      assert.deepEqual(s.events(more, ContributionVotesAbi, 'Synced'), [
        { account: carol.address, amount: OPEN('40'), credited: OPEN('100') },
      ]);
      assert.equal(await s.balanceOf(carol.address, cVOTE), OPEN('100'));
      assert.equal(await s.read('totalSupply', [], cVOTE), OPEN('170'));
    });

    it('cannot move: transfer, approve and transferFrom revert', async () => {
      await expectRevert(
        s.simulate(carol, 'transfer', [dave.address, 1n], cVOTE),
        'NonTransferable',
      );
      await expectRevert(
        s.simulate(carol, 'transfer', [dave.address, 0n], cVOTE),
        'NonTransferable',
      );
      await expectRevert(
        s.simulate(carol, 'approve', [dave.address, 1n], cVOTE),
        'NonTransferable',
      );
      await expectRevert(
        s.simulate(dave, 'transferFrom', [carol.address, dave.address, 0n], cVOTE),
        'NonTransferable',
      );
      // With a non-zero amount ERC20 checks the allowance first, and none can ever be given.
      await expectRevert(
        s.simulate(dave, 'transferFrom', [carol.address, dave.address, 1n], cVOTE),
        'ERC20InsufficientAllowance',
      );
      await expectRevert(
        s.simulate(carol, 'transferFrom', [carol.address, dave.address, 1n], cVOTE),
        'ERC20InsufficientAllowance',
      );
      assert.equal(await s.balanceOf(carol.address, cVOTE), OPEN('100'));
      assert.equal(await s.balanceOf(dave.address, cVOTE), OPEN('70'));
    });

    it('the treasury earns no votes for its platform share', async () => {
      assert.equal(await s.read('treasury', [], cVOTE), treasury.address);
      assert.equal(await s.read('claimed', [treasury.address], settlement), OPEN('10'));
      assert.equal(await s.read('pending', [treasury.address], cVOTE), 0n);
      await expectRevert(
        s.simulate(mallory, 'sync', [treasury.address], cVOTE),
        'TreasuryEarnsNoVotes',
      );
      await expectRevert(
        s.simulate(treasury, 'sync', [treasury.address], cVOTE),
        'TreasuryEarnsNoVotes',
      );
      await expectRevert(s.simulate(mallory, 'sync', [zeroAddress], cVOTE), 'ZeroAddress');
      assert.equal(await s.balanceOf(treasury.address, cVOTE), 0n);
    });
  });

  describe('the Governor', () => {
    it('counts gOPEN and cVOTE behind a Timelock that holds the protocol parameters', async () => {
      assert.equal(await s.read('token', [], governor), gOPEN);
      assert.equal(await s.read('contributionVotes', [], governor), cVOTE);
      assert.equal(await s.read('timelock', [], governor), timelock);
      assert.equal(await s.read('votingDelay', [], governor), VOTING_DELAY);
      assert.equal(await s.read('votingPeriod', [], governor), VOTING_PERIOD);
      assert.equal(await s.read('proposalThreshold', [], governor), GOV.governor.proposalThreshold);
      assert.equal(await s.read('quorumNumerator', [], governor), GOV.governor.quorumPercent);
      assert.equal(await s.read('CLOCK_MODE', [], governor), 'mode=timestamp');
      assert.equal(await s.read('getMinDelay', [], timelock), TIMELOCK_DELAY);
      assert.equal(await s.read('owner', [], parameters), timelock);
      assert.deepEqual(await s.read('defaultSplit', [], parameters), INITIAL_DEFAULT_SPLIT);
      // The votes: staked plus contribution votes, one account each.
      await s.warp(2);
      const t = (await s.now()) - 1n;
      assert.equal(await s.read('getVotes', [bob.address, t], governor), OPEN('120'));
      assert.equal(await s.read('getVotes', [carol.address, t], governor), OPEN('100'));
    });

    it('full cycle: a default-split change passes on contribution votes against a larger gOPEN holder, waits out the Timelock, then applies', async () => {
      const split: Split = { owner: 5000, stakers: 2000, contributors: 3000 };
      const p = await s.proposalOf(
        [parameters],
        [encode(ProtocolParametersAbi, 'setDefaultSplit', [split])],
        'Raise the stakers share to 20 %',
      );
      await s.warp(2);
      await s.propose(carol, p);
      assert.equal(await s.state(p), ProposalState.Pending);
      const snapshot = await s.read<bigint>('proposalSnapshot', [p.id], governor);
      await s.warp(VOTING_DELAY + 1n);
      assert.equal(await s.state(p), ProposalState.Active);

      // Capital: bob's 120 gOPEN. Contributions: carol's 100 and dave's 70 cVOTE, no gOPEN.
      const votesAt = (who: Address, token = governor) =>
        s.read<bigint>(token === governor ? 'getVotes' : 'getPastVotes', [who, snapshot], token);
      assert.equal(await votesAt(bob.address), OPEN('120'));
      assert.equal(await votesAt(carol.address), OPEN('100'));
      assert.equal(await votesAt(dave.address), OPEN('70'));
      assert.equal(await votesAt(carol.address, gOPEN), 0n);
      assert.equal(await votesAt(dave.address, gOPEN), 0n);
      await s.send(bob, 'castVote', [p.id, Vote.Against], governor);
      await s.send(carol, 'castVote', [p.id, Vote.For], governor);
      await s.send(dave, 'castVote', [p.id, Vote.For], governor);
      // Bob outweighs either contributor; together their contribution votes carry it.
      assert.deepEqual(await s.read('proposalVotes', [p.id], governor), [
        OPEN('120'),
        OPEN('170'),
        0n,
      ]);
      // The quorum: 4 % of both supplies at the snapshot (130 gOPEN + 170 cVOTE).
      assert.equal(await s.read('quorum', [snapshot], governor), (OPEN('300') * 4n) / 100n);

      await s.warp(VOTING_PERIOD + 1n);
      assert.equal(await s.state(p), ProposalState.Succeeded);
      await s.send(mallory, 'queue', s.governorArgs(p), governor);
      assert.equal(await s.state(p), ProposalState.Queued);
      const eta = await s.read<bigint>('proposalEta', [p.id], governor);
      assert.equal(eta, (await s.now()) + TIMELOCK_DELAY, 'the Timelock delay applies');

      // Not before the Timelock's delay.
      await expectRevert(
        s.simulate(mallory, 'execute', s.governorArgs(p), governor),
        'TimelockUnexpectedOperationState',
      );
      assert.deepEqual(await s.read('defaultSplit', [], parameters), INITIAL_DEFAULT_SPLIT);
      await s.warp(TIMELOCK_DELAY + 1n);
      await s.send(mallory, 'execute', s.governorArgs(p), governor);
      assert.equal(await s.state(p), ProposalState.Executed);
      assert.deepEqual(await s.read('defaultSplit', [], parameters), split);
      await expectRevert(
        s.simulate(mallory, 'execute', s.governorArgs(p), governor),
        'GovernorUnexpectedProposalState',
      );
    });

    it('only the Timelock sets the default split', async () => {
      const split: Split = { owner: 10000, stakers: 0, contributors: 0 };
      for (const who of [admin, mallory, carol]) {
        await expectRevert(
          s.simulate(who, 'setDefaultSplit', [split], parameters),
          'OwnableUnauthorizedAccount',
        );
      }
    });
  });

  describe('adversarial governance', () => {
    let p: Awaited<ReturnType<Suite['proposalOf']>>;
    let snapshot: bigint;

    it('proposing below the threshold reverts GovernorInsufficientProposerVotes', async () => {
      p = await s.proposalOf(
        [parameters],
        [encode(ProtocolParametersAbi, 'setDefaultSplit', [INITIAL_DEFAULT_SPLIT])],
        'Restore the initial default split',
      );
      await expectRevert(s.propose(mallory, p), 'GovernorInsufficientProposerVotes');
      // Half a vote short of the threshold (1 OPEN) is still short.
      await s.send(mallory, 'depositFor', [mallory.address, OPEN('0.5')], gOPEN);
      await s.warp(2);
      await expectRevert(s.propose(mallory, p), 'GovernorInsufficientProposerVotes');
    });

    it('tokens deposited after the snapshot add no weight to a vote', async () => {
      await s.warp(2);
      await s.propose(carol, p);
      snapshot = await s.read<bigint>('proposalSnapshot', [p.id], governor);
      await s.warp(VOTING_DELAY + 1n);
      assert.equal(await s.state(p), ProposalState.Active);
      const quorum = await s.read<bigint>('quorum', [snapshot], governor);

      // Mallory sees the vote open and stakes 1,000 OPEN: her current votes jump, her vote's
      // weight stays what she had at the snapshot (half a vote).
      await s.send(mallory, 'depositFor', [mallory.address, OPEN('1000')], gOPEN);
      assert.equal(await s.read('getVotes', [mallory.address], gOPEN), OPEN('1000.5'));
      const cast = await s.send(mallory, 'castVote', [p.id, Vote.For], governor);
      const [voted] = s.events(cast, OpenLedgerGovernorAbi, 'VoteCast');
      assert.equal(voted?.weight, OPEN('0.5'));
      assert.deepEqual(await s.read('proposalVotes', [p.id], governor), [0n, OPEN('0.5'), 0n]);
      assert.equal(await s.read('quorum', [snapshot], governor), quorum, 'nor to the quorum');
    });

    it('double voting reverts GovernorAlreadyCastVote', async () => {
      await s.send(carol, 'castVote', [p.id, Vote.For], governor);
      await expectRevert(
        s.simulate(carol, 'castVote', [p.id, Vote.For], governor),
        'GovernorAlreadyCastVote',
      );
      await expectRevert(
        s.simulate(carol, 'castVoteWithReason', [p.id, Vote.Against, 'changed my mind'], governor),
        'GovernorAlreadyCastVote',
      );
      await expectRevert(
        s.simulate(mallory, 'castVote', [p.id, Vote.For], governor),
        'GovernorAlreadyCastVote',
      );
      assert.deepEqual(await s.read('proposalVotes', [p.id], governor), [0n, OPEN('100.5'), 0n]);
    });

    it('gOPEN moved to a second account after voting cannot vote again', async () => {
      await s.send(bob, 'castVote', [p.id, Vote.Against], governor);
      await s.send(bob, 'transfer', [erin.address, OPEN('120')], gOPEN);
      assert.equal(await s.read('getVotes', [erin.address], gOPEN), OPEN('120'));
      const cast = await s.send(erin, 'castVote', [p.id, Vote.Against], governor);
      assert.equal(s.events(cast, OpenLedgerGovernorAbi, 'VoteCast')[0]?.weight, 0n);
      await expectRevert(
        s.simulate(bob, 'castVote', [p.id, Vote.Against], governor),
        'GovernorAlreadyCastVote',
      );
      assert.deepEqual(await s.read('proposalVotes', [p.id], governor), [
        OPEN('120'),
        OPEN('100.5'),
        0n,
      ]);
      // Decided by the snapshot: defeated, though mallory's late 1,000 would have carried it.
      await s.warp(VOTING_PERIOD + 1n);
      assert.equal(await s.state(p), ProposalState.Defeated);
      await expectRevert(
        s.simulate(mallory, 'queue', s.governorArgs(p), governor),
        'GovernorUnexpectedProposalState',
      );
    });

    it('the Timelock obeys only the Governor', async () => {
      const data = encode(ProtocolParametersAbi, 'setDefaultSplit', [
        { owner: 10000, stakers: 0, contributors: 0 },
      ]);
      const salt = hash('salt');
      for (const who of [admin, mallory]) {
        await expectRevert(
          s.simulate(
            who,
            'schedule',
            [parameters, 0n, data, zeroHash, salt, TIMELOCK_DELAY],
            timelock,
          ),
          'AccessControlUnauthorizedAccount',
        );
        await expectRevert(
          s.simulate(
            who,
            'scheduleBatch',
            [[parameters], [0n], [data], zeroHash, salt, TIMELOCK_DELAY],
            timelock,
          ),
          'AccessControlUnauthorizedAccount',
        );
        // Nor can anyone make themselves a proposer: the deployer gave up the admin role.
        await expectRevert(
          s.simulate(who, 'grantRole', [role('PROPOSER_ROLE'), who.address], timelock),
          'AccessControlUnauthorizedAccount',
        );
      }
      // Anyone may execute, but only what the Governor scheduled and the delay released.
      await expectRevert(
        s.simulate(mallory, 'execute', [parameters, 0n, data, zeroHash, salt], timelock),
        'TimelockUnexpectedOperationState',
      );
      assert.equal(await s.read('hasRole', [role('PROPOSER_ROLE'), governor], timelock), true);
      assert.equal(await s.read('hasRole', [role('CANCELLER_ROLE'), governor], timelock), true);
      assert.equal(
        await s.read('hasRole', [role('PROPOSER_ROLE'), admin.address], timelock),
        false,
      );
      assert.equal(
        await s.read('hasRole', [role('DEFAULT_ADMIN_ROLE'), admin.address], timelock),
        false,
      );
      assert.equal(await s.read('hasRole', [role('DEFAULT_ADMIN_ROLE'), timelock], timelock), true);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 5: AgentStaking
// ---------------------------------------------------------------------------------------------

describe('AgentStaking on a local chain', () => {
  let s: Suite;
  let staking: Address;
  const P = GOV.agentStaking;
  const spec = (name: string) => hash(`spec of ${name}`);
  const agentOf = (id: bigint) => s.read<AgentRecord>('agent', [id], staking);
  const launch = async (owner: LocalAccount, name: string, amount: bigint) => {
    await s.send(owner, 'launch', [name, spec(name), amount], staking);
    return s.read<bigint>('agentOfName', [keccak256(stringToHex(name))], staking);
  };
  const challenge = async (challenger: LocalAccount, agentId: bigint) => {
    await s.send(challenger, 'challenge', [agentId, hash('evaluation report')], staking);
    return s.read<bigint>('challengeCount', [], staking);
  };

  before(async () => {
    s = await startSuite({ deploy: true });
    staking = s.c.AgentStaking!;
    for (const who of [bob, carol, dave, mallory, erin]) {
      await s.give(who, OPEN('2000'));
      await s.approve(who, staking);
    }
    // bob's stake carries the governance votes below.
    await s.approve(bob, s.c.StakedOpen!);
    await s.send(bob, 'depositFor', [bob.address, OPEN('1000')], s.c.StakedOpen!);
  });
  after(async () => s?.close());

  it('is deployed with the local parameters, the Timelock governing and the node arbitrating', async () => {
    assert.equal(await s.read('minStake', [], staking), P.minStake);
    assert.equal(await s.read('unbondingPeriod', [], staking), P.unbondingSeconds);
    assert.equal(await s.read('challengeBond', [], staking), P.challengeBond);
    assert.equal(await s.read('challengeSlashBps', [], staking), P.challengeSlashBps);
    assert.equal(await s.read('reporterShareBps', [], staking), P.reporterShareBps);
    assert.equal(await s.read('treasury', [], staking), treasury.address);
    const timelock = s.c.OpenLedgerTimelock!;
    for (const name of ['DEFAULT_ADMIN_ROLE', 'PARAMS_ROLE', 'SLASHER_ROLE']) {
      assert.equal(await s.read('hasRole', [role(name), timelock], staking), true, name);
      assert.equal(await s.read('hasRole', [role(name), admin.address], staking), false, name);
    }
    assert.equal(await s.read('hasRole', [role('ARBITER_ROLE'), admin.address], staking), true);
  });

  it('launch refuses a stake below the minimum, bad names and a taken name', async () => {
    await expectRevert(
      s.simulate(carol, 'launch', ['agent-one', spec('x'), P.minStake - 1n], staking),
      'BelowMinimumStake',
    );
    await expectRevert(
      s.simulate(carol, 'launch', ['agent-one', spec('x'), 0n], staking),
      'BelowMinimumStake',
    );
    for (const name of [
      'ab',
      'Agent-one',
      '-agent',
      'agent-',
      'agent one',
      'agent_one',
      'a'.repeat(49),
      '',
    ]) {
      await expectRevert(
        s.simulate(carol, 'launch', [name, spec(name), P.minStake], staking),
        'InvalidName',
      );
    }
    const stakingBalance = await s.balanceOf(staking);
    const carolBalance = await s.balanceOf(carol.address);
    const id = await launch(carol, 'agent-one', P.minStake);
    assert.equal(id, 1n);
    assert.equal(await s.balanceOf(staking), stakingBalance + P.minStake);
    assert.equal(await s.balanceOf(carol.address), carolBalance - P.minStake);
    const agent = await agentOf(id);
    assert.equal(agent.owner, carol.address);
    assert.equal(agent.stake, P.minStake);
    assert.equal(agent.name, 'agent-one');
    assert.equal(await s.read('isActive', [id], staking), true);
    assert.equal(await s.read('isActive', [99n], staking), false);
    await expectRevert(
      s.simulate(dave, 'launch', ['agent-one', spec('y'), OPEN('500')], staking),
      'NameTaken',
    );
    // Names of 3 and 48 characters are fine.
    assert.equal(await launch(dave, 'a-1', P.minStake), 2n);
    assert.equal(await launch(dave, `a${'-'.repeat(46)}z`, P.minStake), 3n);
  });

  it('unbonding: a partial unbond must leave the minimum, and withdraw waits for releaseAt', async () => {
    const id = await launch(carol, 'unbonder', OPEN('250'));
    await expectRevert(
      s.simulate(carol, 'requestUnbond', [id, OPEN('200')], staking),
      'BelowMinimumStake',
    );
    await expectRevert(
      s.simulate(carol, 'requestUnbond', [id, OPEN('251')], staking),
      'InsufficientStake',
    );
    await expectRevert(
      s.simulate(mallory, 'requestUnbond', [id, OPEN('100')], staking),
      'NotAgentOwner',
    );
    await s.send(carol, 'requestUnbond', [id, OPEN('100')], staking);
    let agent = await agentOf(id);
    assert.equal(agent.stake, OPEN('150'));
    assert.equal(agent.unbonding, OPEN('100'));
    assert.equal(await s.read('isActive', [id], staking), true);
    await expectRevert(s.simulate(carol, 'withdraw', [id], staking), 'StillUnbonding');
    await s.warp(P.unbondingSeconds - 10n);
    await expectRevert(s.simulate(carol, 'withdraw', [id], staking), 'StillUnbonding');
    await s.warp(11);
    await expectRevert(s.simulate(mallory, 'withdraw', [id], staking), 'NotAgentOwner');
    const balance = await s.balanceOf(carol.address);
    await s.send(carol, 'withdraw', [id], staking);
    assert.equal(await s.balanceOf(carol.address), balance + OPEN('100'));
    agent = await agentOf(id);
    assert.equal(agent.unbonding, 0n);
    assert.equal(agent.stake, OPEN('150'));
    await expectRevert(s.simulate(carol, 'withdraw', [id], staking), 'NothingToWithdraw');
  });

  it('slashing is refused to a stranger, to the agent owner and to the arbiter; resolving to all but the arbiter', async () => {
    const id = await s.read<bigint>('agentOfName', [keccak256(stringToHex('agent-one'))], staking);
    for (const who of [mallory, carol, admin]) {
      await expectRevert(
        s.simulate(who, 'slash', [id, OPEN('1'), hash('reason')], staking),
        'AccessControlUnauthorizedAccount',
      );
      await expectRevert(
        s.simulate(who, 'setMinStake', [OPEN('1')], staking),
        'AccessControlUnauthorizedAccount',
      );
    }
    const cid = await challenge(erin, id);
    for (const who of [mallory, carol, erin]) {
      await expectRevert(
        s.simulate(who, 'resolveChallenge', [cid, true], staking),
        'AccessControlUnauthorizedAccount',
      );
    }
    await s.send(admin, 'resolveChallenge', [cid, false], staking); // (rejected: see below)
    await expectRevert(
      s.simulate(admin, 'resolveChallenge', [cid, true], staking),
      'ChallengeClosed',
    );
    await expectRevert(
      s.simulate(admin, 'resolveChallenge', [99n, true], staking),
      'UnknownChallenge',
    );
    assert.equal((await agentOf(id)).stake, P.minStake);
  });

  it('challenge upheld: half the stake is slashed, the challenger gets its bond and half the slash, the treasury the rest', async () => {
    const id = await launch(dave, 'misbehaver', OPEN('400'));
    const erin0 = await s.balanceOf(erin.address);
    const cid = await challenge(erin, id);
    assert.equal(await s.balanceOf(erin.address), erin0 - P.challengeBond);
    assert.equal((await agentOf(id)).openChallenges, 1);
    const staking0 = await s.balanceOf(staking);
    const treasury0 = await s.balanceOf(treasury.address);
    const dave0 = await s.balanceOf(dave.address);

    const receipt = await s.send(admin, 'resolveChallenge', [cid, true], staking);
    const slashed = OPEN('200'); // 50 % of 400
    const reward = slashed / 2n; // 50 % of the slash
    assert.deepEqual(s.events(receipt, AgentStakingAbi, 'ChallengeResolved'), [
      { challengeId: cid, agentId: id, upheld: true, slashed },
    ]);
    assert.equal(await s.balanceOf(erin.address), erin0 + reward);
    assert.equal(await s.balanceOf(treasury.address), treasury0 + (slashed - reward));
    assert.equal(await s.balanceOf(staking), staking0 - slashed - P.challengeBond);
    assert.equal(await s.balanceOf(dave.address), dave0);
    const agent = await agentOf(id);
    assert.equal(agent.stake, OPEN('200'));
    assert.equal(agent.openChallenges, 0);
    assert.equal(await s.read('isActive', [id], staking), true);
  });

  it('challenge rejected: the bond goes to the agent owner and nothing is slashed', async () => {
    const id = await s.read<bigint>('agentOfName', [keccak256(stringToHex('misbehaver'))], staking);
    const erin0 = await s.balanceOf(erin.address);
    const cid = await challenge(erin, id);
    const dave0 = await s.balanceOf(dave.address);
    const treasury0 = await s.balanceOf(treasury.address);
    await s.send(admin, 'resolveChallenge', [cid, false], staking);
    assert.equal(await s.balanceOf(dave.address), dave0 + P.challengeBond);
    assert.equal(await s.balanceOf(erin.address), erin0 - P.challengeBond);
    assert.equal(await s.balanceOf(treasury.address), treasury0);
    assert.equal((await agentOf(id)).stake, OPEN('200'));
  });

  it('unbonding is no escape: a stake in unbonding is still slashed, and not withdrawn while a challenge is open', async () => {
    const id = await launch(carol, 'runner', OPEN('300'));
    // The owner pulls everything out: the agent retires, the OPEN is in unbonding.
    await s.send(carol, 'requestUnbond', [id, OPEN('300')], staking);
    let agent = await agentOf(id);
    assert.equal(agent.retired, true);
    assert.equal(agent.stake, 0n);
    assert.equal(agent.unbonding, OPEN('300'));
    assert.equal(await s.read('isActive', [id], staking), false);
    const cid = await challenge(erin, id);
    await s.warp(P.unbondingSeconds + 1n);
    await expectRevert(s.simulate(carol, 'withdraw', [id], staking), 'ChallengeOpen');

    const erin0 = await s.balanceOf(erin.address);
    const treasury0 = await s.balanceOf(treasury.address);
    await s.send(admin, 'resolveChallenge', [cid, true], staking);
    agent = await agentOf(id);
    assert.equal(agent.unbonding, OPEN('150'), 'half of the unbonding amount was slashed');
    assert.equal(await s.balanceOf(erin.address), erin0 + P.challengeBond + OPEN('75'));
    assert.equal(await s.balanceOf(treasury.address), treasury0 + OPEN('75'));
    const carol0 = await s.balanceOf(carol.address);
    await s.send(carol, 'withdraw', [id], staking);
    assert.equal(await s.balanceOf(carol.address), carol0 + OPEN('150'));

    // Stake first, then unbonding: 400 staked, 200 of it unbonding, an upheld challenge takes
    // 50 % of the 400, all from the stake.
    const both = await launch(dave, 'half-runner', OPEN('400'));
    await s.send(dave, 'requestUnbond', [both, OPEN('200')], staking);
    await s.send(admin, 'resolveChallenge', [await challenge(erin, both), true], staking);
    agent = await agentOf(both);
    assert.equal(agent.stake, 0n);
    assert.equal(agent.unbonding, OPEN('200'));
    assert.equal(await s.read('isActive', [both], staking), false);
  });

  it('governance slash: a passed proposal calling slash through the Timelock takes the stake, even one the owner rushed into unbonding', async () => {
    const id = await launch(dave, 'governed', OPEN('500'));
    const treasury0 = await s.balanceOf(treasury.address);
    const staking0 = await s.balanceOf(staking);
    const dave0 = await s.balanceOf(dave.address);
    const reason = hash('the governance decision');
    const executed = await s.pass(
      [bob],
      [staking],
      [encode(AgentStakingAbi, 'slash', [id, OPEN('500'), reason])],
      'Slash agent "governed"',
      async () => {
        // The owner sees the proposal and runs: the unbonding period outlasts the vote.
        await s.send(dave, 'requestUnbond', [id, OPEN('500')], staking);
      },
    );
    const agent = await agentOf(id);
    const executedAt = (await s.conn.publicClient.getBlock({ blockNumber: executed.blockNumber }))
      .timestamp;
    assert.ok(agent.releaseAt > executedAt, 'the vote and the Timelock took less than unbonding');
    assert.deepEqual(s.events(executed, AgentStakingAbi, 'Slashed'), [
      { agentId: id, amount: OPEN('500'), reasonHash: reason, by: s.c.OpenLedgerTimelock },
    ]);
    assert.equal(agent.stake, 0n);
    assert.equal(agent.unbonding, 0n);
    assert.equal(await s.balanceOf(treasury.address), treasury0 + OPEN('500'));
    assert.equal(await s.balanceOf(staking), staking0 - OPEN('500'));
    await s.warp(P.unbondingSeconds);
    await expectRevert(s.simulate(dave, 'withdraw', [id], staking), 'NothingToWithdraw');
    assert.equal(await s.balanceOf(dave.address), dave0);
  });

  it('governance setMinStake makes an under-staked agent inactive', async () => {
    const id = await launch(carol, 'modest', OPEN('150'));
    assert.equal(await s.read('isActive', [id], staking), true);
    await s.pass(
      [bob],
      [staking],
      [encode(AgentStakingAbi, 'setMinStake', [OPEN('200')])],
      'Raise the minimum agent stake to 200 OPEN',
    );
    assert.equal(await s.read('minStake', [], staking), OPEN('200'));
    assert.equal(await s.read('isActive', [id], staking), false);
    // Topping it up makes it active again.
    await s.send(carol, 'addStake', [id, OPEN('50')], staking);
    assert.equal(await s.read('isActive', [id], staking), true);
  });

  it('on every chain the unbonding period outlasts a governance slash (voting delay + period + timelock)', () => {
    for (const chainId of [LOCAL_CHAIN_ID, 1]) {
      const g = governanceParameters(chainId);
      const slashTakes =
        BigInt(g.governor.votingDelaySeconds) +
        BigInt(g.governor.votingPeriodSeconds) +
        g.timelockDelaySeconds;
      assert.ok(
        g.agentStaking.unbondingSeconds > slashTakes,
        `chain ${chainId}: unbonding ${g.agentStaking.unbondingSeconds} s, a slash vote ${slashTakes} s`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 6: ModelStaking
// ---------------------------------------------------------------------------------------------

describe('ModelStaking on a local chain', () => {
  let s: Suite;
  let staking: Address;
  let model: bigint;
  const P = GOV.modelStaking;
  const stakes = async () => {
    const [accounts, amounts] = await s.read<[Address[], bigint[]]>('stakesOf', [model], staking);
    return new Map(accounts.map((a, i) => [a, amounts[i]!]));
  };

  before(async () => {
    s = await startSuite({ deploy: true });
    staking = s.c.ModelStaking!;
    const datanet = await s.createDatanet(s.c.DatanetRegistry, 'a');
    model = await s.publishModel(s.c.ModelRegistry, alice, datanet, 'm1');
    for (const who of [bob, carol, dave]) {
      await s.give(who, OPEN('100'));
      await s.approve(who, staking);
    }
  });
  after(async () => s?.close());

  it('refuses a stake on an unknown model, of zero, or below the minimum', async () => {
    assert.equal(await s.read('minStake', [], staking), P.minStake);
    assert.equal(await s.read('unbondingPeriod', [], staking), P.unbondingSeconds);
    await expectRevert(s.simulate(bob, 'stake', [0n, OPEN('5')], staking), 'UnknownModel');
    await expectRevert(s.simulate(bob, 'stake', [model + 1n, OPEN('5')], staking), 'UnknownModel');
    await expectRevert(s.simulate(bob, 'stake', [model, 0n], staking), 'ZeroAmount');
    await expectRevert(
      s.simulate(bob, 'stake', [model, P.minStake - 1n], staking),
      'BelowMinimumStake',
    );
  });

  it('stakesOf lists each staker once with its amount', async () => {
    await s.send(bob, 'stake', [model, OPEN('5')], staking);
    await s.send(carol, 'stake', [model, OPEN('3')], staking);
    await s.send(dave, 'stake', [model, OPEN('4')], staking);
    await s.send(bob, 'stake', [model, OPEN('2')], staking);
    assert.deepEqual(
      await stakes(),
      new Map([
        [bob.address, OPEN('7')],
        [carol.address, OPEN('3')],
        [dave.address, OPEN('4')],
      ]),
    );
    assert.equal(await s.read('totalStakeOf', [model], staking), OPEN('14'));
    assert.equal(await s.balanceOf(staking), OPEN('14'));
  });

  it('requestUnstake takes the amount out of stakesOf at once, and the staker when it is all', async () => {
    await expectRevert(
      s.simulate(bob, 'requestUnstake', [model, OPEN('6.5')], staking),
      'BelowMinimumStake',
    );
    await expectRevert(
      s.simulate(bob, 'requestUnstake', [model, OPEN('8')], staking),
      'InsufficientStake',
    );
    await expectRevert(s.simulate(bob, 'requestUnstake', [model, 0n], staking), 'ZeroAmount');
    // carol, in the middle of the list, leaves it.
    await s.send(carol, 'requestUnstake', [model, OPEN('3')], staking);
    await s.send(bob, 'requestUnstake', [model, OPEN('2')], staking);
    assert.deepEqual(
      await stakes(),
      new Map([
        [bob.address, OPEN('5')],
        [dave.address, OPEN('4')],
      ]),
    );
    assert.equal(await s.read('totalStakeOf', [model], staking), OPEN('9'));
    assert.equal(await s.read('stakeOf', [model, carol.address], staking), 0n);
    const [amount] = await s.read<[bigint, bigint]>('unbondingOf', [model, carol.address], staking);
    assert.equal(amount, OPEN('3'));
    // She may come back: one entry again.
    await s.send(carol, 'stake', [model, OPEN('1')], staking);
    assert.equal((await stakes()).get(carol.address), OPEN('1'));
    assert.equal((await stakes()).size, 3);
  });

  it('withdraw waits for the unbonding period, then returns exactly the amount, once', async () => {
    await expectRevert(s.simulate(carol, 'withdraw', [model], staking), 'StillUnbonding');
    await s.warp(P.unbondingSeconds - 10n);
    await expectRevert(s.simulate(carol, 'withdraw', [model], staking), 'StillUnbonding');
    await s.warp(11);
    const carol0 = await s.balanceOf(carol.address);
    const staking0 = await s.balanceOf(staking);
    await s.send(carol, 'withdraw', [model], staking);
    assert.equal(await s.balanceOf(carol.address), carol0 + OPEN('3'));
    assert.equal(await s.balanceOf(staking), staking0 - OPEN('3'));
    await expectRevert(s.simulate(carol, 'withdraw', [model], staking), 'NothingToWithdraw');
    await expectRevert(s.simulate(mallory, 'withdraw', [model], staking), 'NothingToWithdraw');
    // What is still staked stays.
    assert.equal((await stakes()).get(carol.address), OPEN('1'));
  });

  it('a full model takes a newcomer only above its smallest stake, which moves into unbonding', async () => {
    assert.equal(await s.read('maxStakers', [], staking), P.maxStakers);
    // Two places, to see the rule without 128 accounts.
    const small = (await s.deploy(ModelStakingAbi, ModelStakingBytecode, [
      s.c.OpenToken,
      s.c.ModelRegistry,
      admin.address,
      2n,
      OPEN('1'),
      600n,
    ])) as Address;
    for (const who of [bob, carol, dave]) await s.approve(who, small);
    await s.send(bob, 'stake', [model, OPEN('3')], small);
    await s.send(carol, 'stake', [model, OPEN('2')], small);
    // Not more than the smallest (2): refused, naming it.
    await expectRevert(s.simulate(dave, 'stake', [model, OPEN('2')], small), 'TooManyStakers');
    // A present staker can always add.
    await s.send(carol, 'stake', [model, OPEN('0.5')], small);
    // More than the smallest (2.5): dave takes carol's place; her stake unbonds, stops earning.
    await s.send(dave, 'stake', [model, OPEN('2.6')], small);
    const [accounts, amounts] = await s.read<[Address[], bigint[]]>('stakesOf', [model], small);
    assert.deepEqual(
      new Map(accounts.map((a, i) => [a, amounts[i]!])),
      new Map([
        [bob.address, OPEN('3')],
        [dave.address, OPEN('2.6')],
      ]),
    );
    assert.equal(await s.read('totalStakeOf', [model], small), OPEN('5.6'));
    const [unbonding] = await s.read<[bigint, bigint]>(
      'unbondingOf',
      [model, carol.address],
      small,
    );
    assert.equal(unbonding, OPEN('2.5'));
  });

  it('only the Timelock sets its parameters', async () => {
    assert.equal(await s.read('owner', [], staking), s.c.OpenLedgerTimelock);
    await expectRevert(
      s.simulate(admin, 'setParameters', [0n, 0n], staking),
      'OwnableUnauthorizedAccount',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 7: ModelProposals
// ---------------------------------------------------------------------------------------------

describe('ModelProposals on a local chain', () => {
  let s: Suite;
  let proposals: Address;
  let datanetA: bigint;
  let datanetB: bigint;
  let modelA: bigint; // carol's, trained on datanet A
  let modelB: bigint; // dave's, trained on datanet B
  const P = GOV.proposals;
  const FAR = 100_000n;
  const proposalOf = (id: bigint) => s.read<ProposalRecord>('proposal', [id], proposals);
  const create = async (
    args: {
      datanet?: bigint;
      bar?: bigint;
      higherIsBetter?: boolean;
      deadline?: bigint;
      minFunding?: bigint;
      funding?: bigint;
    } = {},
  ) => {
    const deadline = args.deadline ?? (await s.now()) + FAR;
    await s.send(
      alice,
      'create',
      [
        hash('a model that answers legal questions'),
        args.datanet ?? datanetA,
        args.bar ?? 800_000n,
        args.higherIsBetter ?? true,
        deadline,
        args.minFunding ?? OPEN('50'),
        args.funding ?? OPEN('30'),
      ],
      proposals,
    );
    return s.read<bigint>('proposalCount', [], proposals);
  };
  const submit = (id: bigint, model: bigint, score: bigint, who = admin) =>
    s.simulate(who, 'submit', [id, model, score, hash(`report ${id} ${score}`)], proposals);

  let p1: bigint; // higher is better, bar 0.8
  let p2: bigint; // lower is better, bar 2.0

  before(async () => {
    s = await startSuite({ deploy: true });
    proposals = s.c.ModelProposals!;
    datanetA = await s.createDatanet(s.c.DatanetRegistry, 'a');
    datanetB = await s.createDatanet(s.c.DatanetRegistry, 'b');
    modelA = await s.publishModel(s.c.ModelRegistry, carol, datanetA, 'a');
    modelB = await s.publishModel(s.c.ModelRegistry, dave, datanetB, 'b');
    for (const who of [alice, bob, mallory]) {
      await s.give(who, OPEN('1000'));
      await s.approve(who, proposals);
    }
  });
  after(async () => s?.close());

  it('creates and funds a proposal; refuses a past deadline and funding after the deadline', async () => {
    assert.equal(await s.read('challengeWindow', [], proposals), P.challengeWindowSeconds);
    assert.equal(await s.read('challengeBond', [], proposals), P.challengeBond);
    assert.equal(
      await s.read('hasRole', [role('DEFAULT_ADMIN_ROLE'), s.c.OpenLedgerTimelock], proposals),
      true,
    );
    for (const name of ['EVALUATOR_ROLE', 'ARBITER_ROLE']) {
      assert.equal(await s.read('hasRole', [role(name), admin.address], proposals), true, name);
    }
    await expectRevert(
      s.simulate(
        alice,
        'create',
        [hash('x'), datanetA, 1n, true, (await s.now()) - 1n, 0n, 0n],
        proposals,
      ),
      'InvalidDeadline',
    );
    const alice0 = await s.balanceOf(alice.address);
    p1 = await create();
    await s.send(bob, 'fund', [p1, OPEN('40')], proposals);
    await expectRevert(s.simulate(bob, 'fund', [p1, 0n], proposals), 'ZeroAmount');
    const p = await proposalOf(p1);
    assert.equal(p.creator, alice.address);
    assert.equal(p.datanetId, datanetA);
    assert.equal(p.status, Status.Open);
    assert.equal(p.funded, OPEN('70'));
    assert.equal(await s.read('fundedBy', [p1, alice.address], proposals), OPEN('30'));
    assert.equal(await s.read('fundedBy', [p1, bob.address], proposals), OPEN('40'));
    assert.equal(await s.balanceOf(alice.address), alice0 - OPEN('30'));
    assert.equal(await s.balanceOf(proposals), OPEN('70'));

    const short = await create({ deadline: (await s.now()) + 30n });
    await s.warp(31);
    await expectRevert(s.simulate(bob, 'fund', [short, OPEN('1')], proposals), 'DeadlinePassed');
    await expectRevert(submit(short, modelA, 900_000n), 'DeadlinePassed');
  });

  it('submit is the evaluator’s only', async () => {
    for (const who of [mallory, carol, alice]) {
      await expectRevert(submit(p1, modelA, 900_000n, who), 'AccessControlUnauthorizedAccount');
    }
  });

  it('submit refuses an unmet bar either way, the wrong datanet, an unknown model and an underfunded proposal', async () => {
    await expectRevert(submit(p1, modelA, 799_999n), 'BarNotMet');
    p2 = await create({ bar: 2_000_000n, higherIsBetter: false, funding: OPEN('60') });
    await expectRevert(submit(p2, modelA, 2_000_001n), 'BarNotMet');
    await expectRevert(submit(p1, modelB, 900_000n), 'WrongDatanet');
    await expectRevert(submit(p1, 0n, 900_000n), 'UnknownModel');
    await expectRevert(submit(p1, modelB + 1n, 900_000n), 'UnknownModel');
    const under = await create({ minFunding: OPEN('100'), funding: OPEN('99') });
    await expectRevert(submit(under, modelA, 900_000n), 'Underfunded');
    const unfunded = await create({ minFunding: 0n, funding: 0n });
    await expectRevert(submit(unfunded, modelA, 900_000n), 'Underfunded');
    assert.equal((await proposalOf(p1)).status, Status.Open);
  });

  it('a score exactly at the bar is accepted either way and opens the challenge window', async () => {
    await s.send(admin, 'submit', [p1, modelA, 800_000n, hash('report 1')], proposals);
    let p = await proposalOf(p1);
    assert.equal(p.status, Status.Submitted);
    assert.equal(p.modelId, modelA);
    assert.equal(p.score, 800_000n);
    assert.equal(p.challengeEndsAt, (await s.now()) + P.challengeWindowSeconds);
    await s.send(admin, 'submit', [p2, modelA, 2_000_000n, hash('report 2')], proposals);
    p = await proposalOf(p2);
    assert.equal(p.status, Status.Submitted);
    await expectRevert(submit(p1, modelA, 900_000n), 'NotOpen');
    await expectRevert(s.simulate(alice, 'cancel', [p1], proposals), 'NotOpen');
  });

  it('a challenge upheld voids the submission: the proposal is open again and the bond returned', async () => {
    const mallory0 = await s.balanceOf(mallory.address);
    await s.send(mallory, 'challenge', [p1, hash('the evaluation set leaked')], proposals);
    assert.equal(await s.balanceOf(mallory.address), mallory0 - P.challengeBond);
    let p = await proposalOf(p1);
    assert.equal(p.status, Status.Challenged);
    assert.equal(p.challenger, mallory.address);
    await expectRevert(
      s.simulate(bob, 'challenge', [p1, hash('me too')], proposals),
      'NotSubmitted',
    );
    await expectRevert(s.simulate(bob, 'claim', [p1], proposals), 'NotSubmitted');
    for (const who of [mallory, carol, alice]) {
      await expectRevert(
        s.simulate(who, 'resolve', [p1, true], proposals),
        'AccessControlUnauthorizedAccount',
      );
    }
    await s.send(admin, 'resolve', [p1, true], proposals);
    p = await proposalOf(p1);
    assert.equal(p.status, Status.Open);
    assert.equal(p.modelId, 0n);
    assert.equal(p.funded, OPEN('70'));
    assert.equal(await s.balanceOf(mallory.address), mallory0);
    await expectRevert(s.simulate(admin, 'resolve', [p1, true], proposals), 'NotChallenged');
  });

  it('a challenge rejected: the submission stands and the bond goes to the model holder', async () => {
    const mallory0 = await s.balanceOf(mallory.address);
    const carol0 = await s.balanceOf(carol.address);
    await s.send(mallory, 'challenge', [p2, hash('wrong metric')], proposals);
    await s.send(admin, 'resolve', [p2, false], proposals);
    assert.equal(await s.balanceOf(mallory.address), mallory0 - P.challengeBond);
    assert.equal(await s.balanceOf(carol.address), carol0 + P.challengeBond);
    const p = await proposalOf(p2);
    assert.equal(p.status, Status.Submitted);
    assert.equal(p.modelId, modelA);
    // Claimable at once, and the window does not reopen.
    await expectRevert(
      s.simulate(bob, 'challenge', [p2, hash('again')], proposals),
      'ChallengeWindowClosed',
    );
    await s.send(mallory, 'claim', [p2], proposals);
    assert.equal(await s.balanceOf(carol.address), carol0 + P.challengeBond + OPEN('60'));
    assert.equal((await proposalOf(p2)).status, Status.Paid);
  });

  it('claim after the window pays the model’s holder exactly what was funded, once', async () => {
    await s.send(admin, 'submit', [p1, modelA, 950_000n, hash('report 1b')], proposals);
    await expectRevert(s.simulate(mallory, 'claim', [p1], proposals), 'ChallengeWindowOpen');
    // The model changes hands: the holder at claim time is paid.
    await s.send(carol, 'transferFrom', [carol.address, erin.address, modelA], s.c.ModelRegistry);
    await s.warp(P.challengeWindowSeconds + 1n);
    await expectRevert(
      s.simulate(bob, 'challenge', [p1, hash('too late')], proposals),
      'ChallengeWindowClosed',
    );
    const erin0 = await s.balanceOf(erin.address);
    const carol0 = await s.balanceOf(carol.address);
    const held = await s.balanceOf(proposals);
    const receipt = await s.send(mallory, 'claim', [p1], proposals);
    assert.deepEqual(s.events(receipt, ModelProposalsAbi, 'Claimed'), [
      { id: p1, modelId: modelA, builder: erin.address, amount: OPEN('70') },
    ]);
    assert.equal(await s.balanceOf(erin.address), erin0 + OPEN('70'));
    assert.equal(await s.balanceOf(carol.address), carol0);
    assert.equal(await s.balanceOf(proposals), held - OPEN('70'));
    await expectRevert(s.simulate(mallory, 'claim', [p1], proposals), 'NotSubmitted');
    await expectRevert(s.simulate(bob, 'refund', [p1], proposals), 'NotRefundable');
  });

  it('refund after the deadline with no submission returns each funder its amount', async () => {
    const id = await create({ deadline: (await s.now()) + 60n, funding: OPEN('10') });
    await s.send(bob, 'fund', [id, OPEN('5')], proposals);
    await expectRevert(s.simulate(bob, 'refund', [id], proposals), 'NotRefundable');
    await s.warp(61);
    assert.equal(await s.read('refundable', [id], proposals), true);
    const alice0 = await s.balanceOf(alice.address);
    const bob0 = await s.balanceOf(bob.address);
    await s.send(alice, 'refund', [id], proposals);
    await s.send(bob, 'refund', [id], proposals);
    assert.equal(await s.balanceOf(alice.address), alice0 + OPEN('10'));
    assert.equal(await s.balanceOf(bob.address), bob0 + OPEN('5'));
    assert.equal((await proposalOf(id)).funded, 0n);
    await expectRevert(s.simulate(bob, 'refund', [id], proposals), 'NothingToRefund');
    await expectRevert(s.simulate(mallory, 'refund', [id], proposals), 'NothingToRefund');
  });

  it('cancel: the creator only, and a cancelled proposal refunds its funders', async () => {
    const id = await create({ funding: OPEN('20') });
    await s.send(bob, 'fund', [id, OPEN('7')], proposals);
    for (const who of [mallory, bob, admin]) {
      await expectRevert(s.simulate(who, 'cancel', [id], proposals), 'NotCreator');
    }
    await s.send(alice, 'cancel', [id], proposals);
    assert.equal((await proposalOf(id)).status, Status.Cancelled);
    await expectRevert(s.simulate(bob, 'fund', [id, OPEN('1')], proposals), 'NotOpen');
    await expectRevert(submit(id, modelA, 900_000n), 'NotOpen');
    const bob0 = await s.balanceOf(bob.address);
    await s.send(bob, 'refund', [id], proposals);
    assert.equal(await s.balanceOf(bob.address), bob0 + OPEN('7'));
  });
});

// ---------------------------------------------------------------------------------------------
// 8: re-entrancy through a hostile token
// ---------------------------------------------------------------------------------------------

describe('re-entrancy: the contracts over a hostile ERC-20 that calls back on transfer', () => {
  let s: Suite;
  let hostile: Address; // the token, and the attacker's account
  let hostileAbi: Abi;
  let agents: Address;
  let modelStaking: Address;
  let proposals: Address;
  let model: bigint; // held by the hostile contract
  const UNBONDING = 10n;
  const WINDOW = 10n;
  const BOND = OPEN('10');
  /** Makes the hostile contract call `target` (as the attacker's account). */
  const act = (target: Address, abi: unknown, functionName: string, args: readonly unknown[]) =>
    s.send(admin, 'execute', [target, encode(abi, functionName, args)], hostile);
  /** The next transfer sent by `target` calls `target` back with this call first. */
  const arm = (
    target: Address,
    abi: unknown,
    functionName: string,
    args: readonly unknown[],
    bubble = false,
  ) => s.send(admin, 'arm', [target, encode(abi, functionName, args), bubble], hostile);
  const bal = (who: Address) => s.balanceOf(who, hostile);
  /** The re-entrant call was made once, failed, and failed on the guard. */
  const assertGuarded = async (attempts: bigint) => {
    assert.equal(await s.read('attempts', [], hostile), attempts);
    assert.equal(await s.read('successes', [], hostile), 0n);
    const data = await s.read<Hex>('lastRevert', [], hostile);
    assert.equal(
      decodeErrorResult({ abi: ALL_ERRORS, data }).errorName,
      'ReentrancyGuardReentrantCall',
    );
  };

  before(async () => {
    s = await startSuite({ deploy: false });
    const compiled = await compileContracts(path.join(ROOT, 'test/fixtures-sol'));
    const token = compiled.contracts.ReentrantToken!;
    hostileAbi = token.abi as Abi;
    hostile = await s.deploy(hostileAbi, token.bytecode, []);
    const datanets = await s.deploy(DatanetRegistryAbi, DatanetRegistryBytecode, []);
    const registry = await s.deploy(ModelRegistryAbi, ModelRegistryBytecode, [datanets, 500]);
    agents = await s.deploy(AgentStakingAbi, AgentStakingBytecode, [
      hostile,
      treasury.address,
      admin.address,
      admin.address,
      OPEN('100'),
      UNBONDING,
      BOND,
      5000,
      5000,
    ]);
    modelStaking = await s.deploy(ModelStakingAbi, ModelStakingBytecode, [
      hostile,
      registry,
      admin.address,
      128n,
      OPEN('1'),
      UNBONDING,
    ]);
    proposals = await s.deploy(ModelProposalsAbi, ModelProposalsBytecode, [
      hostile,
      registry,
      admin.address,
      admin.address,
      admin.address,
      WINDOW,
      BOND,
    ]);
    const datanet = await s.createDatanet(datanets, 'hostile');
    model = await s.publishModel(registry, admin, datanet, 'hostile');
    await s.send(admin, 'transferFrom', [admin.address, hostile, model], registry);
    // The attacker's contract holds tokens and lets every contract pull them; so does admin.
    await s.send(admin, 'mint', [hostile, OPEN('10000')], hostile);
    await s.send(admin, 'mint', [admin.address, OPEN('10000')], hostile);
    for (const spender of [agents, modelStaking, proposals]) {
      await act(hostile, hostileAbi, 'approve', [spender, OPEN('10000')]);
      await s.approve(admin, spender, hostile);
    }
  });
  after(async () => s?.close());

  it('AgentStaking.withdraw: re-entering withdraw fails on the guard and pays nothing extra', async () => {
    await act(agents, AgentStakingAbi, 'launch', ['hostile-agent', hash('spec'), OPEN('200')]);
    const id = await s.read<bigint>('agentCount', [], agents);
    await act(agents, AgentStakingAbi, 'requestUnbond', [id, OPEN('100')]);
    await s.warp(UNBONDING + 1n);
    await arm(agents, AgentStakingAbi, 'withdraw', [id]);
    const hostile0 = await bal(hostile);
    await act(agents, AgentStakingAbi, 'withdraw', [id]);
    await assertGuarded(1n);
    assert.equal(await bal(hostile), hostile0 + OPEN('100'));
    assert.equal(await bal(agents), OPEN('100'));
    const agent = await s.read<AgentRecord>('agent', [id], agents);
    assert.equal(agent.unbonding, 0n);
    assert.equal(agent.stake, OPEN('100'));
  });

  it('AgentStaking.resolveChallenge: the challenger re-entering withdraw fails on the guard', async () => {
    // The attacker unbonds its own agent, then challenges someone else's.
    const own = await s.read<bigint>('agentCount', [], agents);
    await act(agents, AgentStakingAbi, 'requestUnbond', [own, OPEN('100')]);
    await s.warp(UNBONDING + 1n);
    await s.send(admin, 'launch', ['victim-agent', hash('victim'), OPEN('200')], agents);
    const victim = await s.read<bigint>('agentCount', [], agents);
    await act(agents, AgentStakingAbi, 'challenge', [victim, hash('evidence')]);
    const cid = await s.read<bigint>('challengeCount', [], agents);
    await arm(agents, AgentStakingAbi, 'withdraw', [own]);
    const hostile0 = await bal(hostile);
    const treasury0 = await bal(treasury.address);
    await s.send(admin, 'resolveChallenge', [cid, true], agents);
    await assertGuarded(2n);
    // Bond back and half of the 100 slashed; the treasury the other half; the own unbonding
    // stays where it was until a proper withdraw.
    assert.equal(await bal(hostile), hostile0 + BOND + OPEN('50'));
    assert.equal(await bal(treasury.address), treasury0 + OPEN('50'));
    assert.equal((await s.read<AgentRecord>('agent', [own], agents)).unbonding, OPEN('100'));
    assert.equal(await bal(agents), OPEN('100') + OPEN('100'));
    await act(agents, AgentStakingAbi, 'withdraw', [own]);
    assert.equal(await bal(hostile), hostile0 + BOND + OPEN('150'));
    assert.equal(await bal(agents), OPEN('100'));
  });

  it('ModelStaking.withdraw: the re-entrant withdraw reverts the whole call (ReentrancyGuardReentrantCall)', async () => {
    await act(modelStaking, ModelStakingAbi, 'stake', [model, OPEN('5')]);
    await act(modelStaking, ModelStakingAbi, 'requestUnstake', [model, OPEN('5')]);
    await s.warp(UNBONDING + 1n);
    await arm(modelStaking, ModelStakingAbi, 'withdraw', [model], true);
    const hostile0 = await bal(hostile);
    await expectRevert(
      act(modelStaking, ModelStakingAbi, 'withdraw', [model]),
      'ReentrancyGuardReentrantCall',
    );
    assert.equal(await bal(hostile), hostile0);
    assert.equal(await bal(modelStaking), OPEN('5'));
    // Disarmed, the withdrawal goes through, once.
    await s.send(admin, 'arm', [zeroAddress, '0x', false], hostile);
    await act(modelStaking, ModelStakingAbi, 'withdraw', [model]);
    assert.equal(await bal(hostile), hostile0 + OPEN('5'));
    assert.equal(await bal(modelStaking), 0n);
  });

  it('ModelProposals.claim: the holder re-entering claim fails on the guard and is paid once', async () => {
    const deadline = (await s.now()) + 10_000n;
    await s.send(
      admin,
      'create',
      [hash('spec'), 1n, 1n, true, deadline, 0n, OPEN('50')],
      proposals,
    );
    const id = await s.read<bigint>('proposalCount', [], proposals);
    await s.send(admin, 'submit', [id, model, 2n, hash('report')], proposals);
    await s.warp(WINDOW + 1n);
    await arm(proposals, ModelProposalsAbi, 'claim', [id]);
    const hostile0 = await bal(hostile);
    await s.send(mallory, 'claim', [id], proposals);
    await assertGuarded(3n);
    assert.equal(await bal(hostile), hostile0 + OPEN('50'));
    assert.equal(await bal(proposals), 0n);
  });

  it('ModelProposals.refund: the funder re-entering refund fails on the guard and gets its amount once', async () => {
    const deadline = (await s.now()) + 30n;
    await s.send(
      admin,
      'create',
      [hash('spec 2'), 1n, 1n, true, deadline, 0n, OPEN('30')],
      proposals,
    );
    const id = await s.read<bigint>('proposalCount', [], proposals);
    await act(proposals, ModelProposalsAbi, 'fund', [id, OPEN('20')]);
    await s.warp(31);
    await arm(proposals, ModelProposalsAbi, 'refund', [id]);
    const hostile0 = await bal(hostile);
    await act(proposals, ModelProposalsAbi, 'refund', [id]);
    await assertGuarded(4n);
    assert.equal(await bal(hostile), hostile0 + OPEN('20'));
    assert.equal(await bal(proposals), OPEN('30'), "the other funder's money stays");
    assert.equal(await s.read('fundedBy', [id, hostile], proposals), 0n);
  });
});
