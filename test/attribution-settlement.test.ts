import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  concat,
  keccak256,
  parseEventLogs,
  parseUnits,
  stringToHex,
  zeroAddress,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import { AttributionSettlementBytecode } from '../src/chain/generated/contracts.ts';
import {
  AttributionSettlementAbi,
  InferenceEscrowAbi,
  LOCAL_CHAIN_ID,
  OpenTokenAbi,
  deployContracts,
  devAccount,
  ensureDeployment,
  escrowParameters,
  settlementParameters,
  writeDeployment,
  type ChainConnection,
  type Deployment,
} from '../src/chain/index.ts';
import {
  contractCalls,
  expectDeployRevert,
  expectRevert,
  startTestChain,
} from './helpers/chain.ts';

const admin = devAccount(0); // deploys; the node: settler, poster and (locally) arbiter
const alice = devAccount(1); // a caller paying for inference
const carol = devAccount(2); // a payee (model owner, staker or contributor)
const dave = devAccount(3); // a payee
const mallory = devAccount(4); // a stranger, and the challenger
const treasury = devAccount(8);
const OPEN = (n: string) => parseUnits(n, 18);
const { epochSeconds: EPOCH } = escrowParameters(LOCAL_CHAIN_ID);
const PARAMS = settlementParameters(LOCAL_CHAIN_ID);
const WINDOW = PARAMS.challengeWindowSeconds;
const label = (text: string) => keccak256(stringToHex(text));
const Status = { None: 0, Posted: 1, Challenged: 2, Voided: 3, Finalized: 4 } as const;

type Leaf = [Address, bigint];
/** A payouts tree as the node builds it: cumulative OPEN wei per account, padded with fillers. */
function payoutTree(payouts: Map<Address, bigint>, leaves: number) {
  const values: Leaf[] = [...payouts];
  for (let i = values.length; i < leaves; i++) {
    values.push([`0x${(0xf111e5n * 2n ** 100n + BigInt(i)).toString(16).padStart(40, '0')}`, 1n]);
  }
  return StandardMerkleTree.of(values, ['address', 'uint256']);
}
/** OpenZeppelin's commutative node hash (MerkleProof sorts each pair). */
const nodeHash = (a: Hex, b: Hex) =>
  keccak256(BigInt(a) < BigInt(b) ? concat([a, b]) : concat([b, a]));
const fold = (leaf: Hex, proof: Hex[]) => proof.reduce(nodeHash, leaf);

/**
 * Deepens a tree by `levels`, as if it were one subtree of a tree 2^levels times larger whose
 * other subtrees have the given (arbitrary) roots. The contract sees only the proof's length, so
 * this measures a 100k-leaf claim without hashing 100k leaves in JavaScript (~20 s on CI).
 */
function deepen(tree: StandardMerkleTree<Leaf>, levels: number) {
  const siblings = Array.from({ length: levels }, (_, i) => label(`subtree ${i}`));
  return {
    root: fold(tree.root as Hex, siblings),
    proof: (leaf: Leaf) => [...(tree.getProof(leaf) as Hex[]), ...siblings],
  };
}

describe('AttributionSettlement on a local chain', () => {
  let env: Awaited<ReturnType<typeof startTestChain>>;
  let conn: ChainConnection;
  let token: Address;
  let escrow: Address;
  let settlement: Address;
  let deployment: Deployment;
  const cumulative = new Map<Address, bigint>();
  const gas: Record<string, bigint> = {};

  const abiOf = (address: Address): Abi =>
    (address === settlement
      ? AttributionSettlementAbi
      : address === escrow
        ? InferenceEscrowAbi
        : OpenTokenAbi) as Abi;
  const { simulate, send, read } = contractCalls(
    () => conn,
    abiOf,
    () => settlement,
  );
  const balance = (who: Address) => read<bigint>('balanceOf', [who], token);
  const events = (receipt: TransactionReceipt, eventName: string) =>
    parseEventLogs({ abi: AttributionSettlementAbi, logs: receipt.logs, eventName } as never).map(
      (log) => (log as unknown as { args: Record<string, unknown> }).args,
    );
  const epochOf = (epoch: bigint) =>
    read<{ status: number; total: bigint; held: bigint; payoutsRoot: Hex; poster: Address }>(
      'epochOf',
      [epoch],
    );
  const warp = async (seconds: bigint) => {
    await conn.publicClient.request({
      method: 'evm_increaseTime' as never,
      params: [Number(seconds)] as never,
    });
    await conn.publicClient.request({ method: 'evm_mine' as never, params: [] as never });
  };
  /** Charges `alice` `amount` through the escrow in the current epoch and closes that epoch. */
  const feesFor = async (amount: bigint, batch: string): Promise<bigint> => {
    await send(alice, 'approve', [escrow, amount], token);
    await send(alice, 'deposit', [amount], escrow);
    await send(admin, 'charge', [label(batch), [alice.address], [amount]], escrow);
    const epoch = await read<bigint>('currentEpoch', [], escrow);
    const now = (await conn.publicClient.getBlock()).timestamp;
    await warp(EPOCH - (now % EPOCH) + 1n);
    return epoch;
  };
  const credit = (payouts: [Address, bigint][]) => {
    for (const [who, amount] of payouts) cumulative.set(who, (cumulative.get(who) ?? 0n) + amount);
  };
  const leaf = (who: Address): Leaf => [who, cumulative.get(who)!];

  before(async () => {
    env = await startTestChain();
    conn = env.conn;
    // The real deployment: the wiring (roles, parameters) is part of what is tested.
    deployment = await deployContracts(conn, { signer: admin, treasury: treasury.address });
    token = deployment.contracts.OpenToken;
    escrow = deployment.contracts.InferenceEscrow!;
    settlement = deployment.contracts.AttributionSettlement!;
    for (const who of [alice, mallory, admin]) {
      await send(treasury, 'transfer', [who.address, OPEN('10000')], token);
    }
    await send(mallory, 'approve', [settlement, OPEN('10000')], token);
    await send(admin, 'approve', [settlement, OPEN('10000')], token);
    const now = (await conn.publicClient.getBlock()).timestamp;
    await warp(EPOCH - (now % EPOCH) + 1n);
  });
  after(async () => env?.close());

  it('is deployed over the escrow with its parameters and roles', async () => {
    assert.equal(await read('escrow'), escrow);
    assert.equal(await read('token'), token);
    assert.equal(await read('treasury'), treasury.address);
    assert.equal(await read('minBond'), PARAMS.minBond);
    assert.equal(await read('challengeBond'), PARAMS.challengeBond);
    assert.equal(await read('slashAmount'), PARAMS.slashAmount);
    assert.equal(await read('challengeWindow'), WINDOW);
    for (const role of ['POSTER_ROLE', 'ARBITER_ROLE']) {
      assert.equal(await read('hasRole', [label(role), admin.address]), true, role);
    }
    assert.equal(
      await read('hasRole', [label('DISTRIBUTOR_ROLE'), settlement], escrow),
      true,
      'the settlement may release escrow epochs',
    );
    const contract = {
      abi: AttributionSettlementAbi as Abi,
      bytecode: AttributionSettlementBytecode,
    };
    const args = [escrow, admin.address, treasury.address, OPEN('10'), OPEN('1'), OPEN('5'), 60n];
    await expectDeployRevert(
      conn,
      admin.address,
      { ...contract, args: args.with(2, zeroAddress) },
      'ZeroAddress',
    );
    await expectDeployRevert(
      conn,
      admin.address,
      { ...contract, args: args.with(5, OPEN('11')) }, // a slash above the minimum bond
      'InvalidParameters',
    );
  });

  let epochA: bigint;
  it('refuses a post without bond, from a non-poster, of an open epoch or beyond its fees', async () => {
    const post = (who: LocalAccount, epoch: bigint, total: bigint) =>
      simulate(who, 'postEpoch', [epoch, label('receipts'), label('payouts'), total]);
    const open = await read<bigint>('currentEpoch', [], escrow);
    await expectRevert(post(admin, open - 1n, OPEN('1')), 'InsufficientBond');
    await send(admin, 'bond', [PARAMS.minBond - 1n]);
    await expectRevert(post(admin, open - 1n, OPEN('1')), 'InsufficientBond');
    await send(admin, 'bond', [1n]);
    assert.equal(await read('bondOf', [admin.address]), PARAMS.minBond);
    await expectRevert(post(mallory, open - 1n, OPEN('1')), 'AccessControlUnauthorizedAccount');
    await expectRevert(post(admin, open, OPEN('1')), 'EpochNotClosed');

    epochA = await feesFor(OPEN('100'), 'batch A');
    assert.equal(await read('epochFees', [epochA], escrow), OPEN('100'));
    await expectRevert(post(admin, epochA, OPEN('100') + 1n), 'ExceedsEpochFees');
    await expectRevert(post(admin, epochA, 0n), 'ZeroAmount');
  });

  it('posts a closed epoch, pays two accounts exactly after the window, and only once', async () => {
    credit([
      [carol.address, OPEN('59')],
      [dave.address, OPEN('40')],
    ]);
    const tree = payoutTree(cumulative, 1000);
    const total = OPEN('99') + 998n; // the fillers' 1 wei each
    const posted = await send(admin, 'postEpoch', [epochA, label('receipts A'), tree.root, total]);
    gas.postEpoch = posted.gasUsed;
    assert.deepEqual(events(posted, 'EpochPosted'), [
      {
        epoch: epochA,
        poster: admin.address,
        receiptsRoot: label('receipts A'),
        payoutsRoot: tree.root,
        total,
        repost: false,
      },
    ]);
    assert.equal(await read('epochReleased', [epochA], escrow), total);
    assert.equal(await balance(settlement), PARAMS.minBond + total);
    const record = await epochOf(epochA);
    assert.equal(record.status, Status.Posted);
    assert.equal(record.held, total);
    assert.equal(record.poster, admin.address);

    const claim = (who: Address, amount: bigint, proof: readonly string[], epoch = epochA) =>
      simulate(mallory, 'claim', [epoch, who, amount, proof]);
    await expectRevert(
      simulate(admin, 'postEpoch', [epochA, label('r'), label('p'), 1n]),
      'AlreadyPosted',
    );
    await expectRevert(simulate(admin, 'unbond', [1n]), 'BondLocked');
    await expectRevert(
      claim(carol.address, OPEN('59'), tree.getProof(leaf(carol.address))),
      'EpochNotFinal',
    );
    assert.equal(await read('isFinal', [epochA]), false);

    await warp(WINDOW);
    assert.equal(await read('isFinal', [epochA]), true);
    // Dave's proof does not prove Carol's claim, nor Carol's a larger amount.
    await expectRevert(
      claim(carol.address, OPEN('59'), tree.getProof(leaf(dave.address))),
      'InvalidProof',
    );
    await expectRevert(
      claim(carol.address, OPEN('60'), tree.getProof(leaf(carol.address))),
      'InvalidProof',
    );
    assert.equal(await read('claimable', [carol.address, OPEN('59')]), OPEN('59'));

    // Anyone (here Mallory) may submit a claim; the tokens go to the account.
    const before = await balance(carol.address);
    const paid = await send(mallory, 'claim', [
      epochA,
      carol.address,
      OPEN('59'),
      tree.getProof(leaf(carol.address)),
    ]);
    gas.claimFinalizing = paid.gasUsed; // also finalizes the epoch and is the first claim ever
    assert.equal((await balance(carol.address)) - before, OPEN('59'));
    assert.equal((await epochOf(epochA)).status, Status.Finalized);
    await send(dave, 'claim', [
      epochA,
      dave.address,
      OPEN('40'),
      tree.getProof(leaf(dave.address)),
    ]);
    assert.equal(await balance(dave.address), OPEN('40'));
    assert.equal(await read('totalFunded'), total);
    assert.equal(await read('totalClaimed'), OPEN('99'));
    await expectRevert(
      claim(carol.address, OPEN('59'), tree.getProof(leaf(carol.address))),
      'NothingToClaim',
    );
    assert.equal(await read('claimable', [carol.address, OPEN('59')]), 0n);

    // Out of its window the bond is free again.
    await send(admin, 'unbond', [OPEN('1')]);
    await send(admin, 'bond', [OPEN('1')]);
  });

  let epochB: bigint;
  it("pays from a later epoch's cumulative root only the increment, within what was funded", async () => {
    epochB = await feesFor(OPEN('50'), 'batch B');
    credit([
      [carol.address, OPEN('30')],
      [dave.address, OPEN('20')],
    ]);
    // A root promising Mallory more than was ever funded: solvency must not rest on the root.
    const payouts = new Map(cumulative).set(mallory.address, OPEN('1000000'));
    const tree = payoutTree(payouts, 1000);
    // ceil(log2(100,000)) = 17 levels: a claim's proof in a 100k-payee epoch.
    const deep = deepen(tree, 7);
    assert.equal(
      fold(tree.leafHash(leaf(carol.address)) as Hex, deep.proof(leaf(carol.address))),
      deep.root,
    );
    await send(admin, 'postEpoch', [epochB, label('receipts B'), deep.root, OPEN('50')]);
    await warp(WINDOW);

    // The stale root of epoch A pays nothing more.
    const stale = payoutTree(
      new Map([
        [carol.address, OPEN('59')],
        [dave.address, OPEN('40')],
      ]),
      1000,
    );
    await expectRevert(
      simulate(mallory, 'claim', [
        epochA,
        carol.address,
        OPEN('59'),
        stale.getProof([carol.address, OPEN('59')]),
      ]),
      'NothingToClaim',
    );
    gas.finalize = (await send(mallory, 'finalize', [epochB])).gasUsed;
    const before = await balance(carol.address);
    const paid = await send(mallory, 'claim', [
      epochB,
      carol.address,
      OPEN('89'),
      deep.proof(leaf(carol.address)),
    ]);
    gas.claim100k = paid.gasUsed;
    assert.equal(deep.proof(leaf(carol.address)).length, 17);
    assert.equal((await balance(carol.address)) - before, OPEN('30'));
    await expectRevert(
      simulate(mallory, 'claim', [
        epochB,
        mallory.address,
        OPEN('1000000'),
        deep.proof([mallory.address, OPEN('1000000')]),
      ]),
      'ExceedsFunded',
    );
    assert.equal(await read('totalClaimed'), OPEN('129'));
  });

  it('upholds a challenge: slashes the poster, voids the epoch, pays the corrected re-post', async () => {
    const epochC = await feesFor(OPEN('20'), 'batch C');
    const bad = payoutTree(new Map(cumulative).set(mallory.address, OPEN('20')), 1000);
    await send(admin, 'postEpoch', [epochC, label('receipts C'), bad.root, OPEN('20')]);

    const evidence = label('verify report C');
    const challenged = await send(mallory, 'challenge', [epochC, evidence]);
    gas.challenge = challenged.gasUsed;
    assert.deepEqual(events(challenged, 'EpochChallenged'), [
      { epoch: epochC, challenger: mallory.address, evidenceHash: evidence },
    ]);
    await expectRevert(simulate(carol, 'challenge', [epochC, evidence]), 'NotChallengeable');
    await warp(WINDOW); // a challenge holds the epoch past its window
    await expectRevert(
      simulate(mallory, 'claim', [
        epochC,
        mallory.address,
        OPEN('20'),
        bad.getProof([mallory.address, OPEN('20')]),
      ]),
      'EpochNotFinal',
    );
    await expectRevert(simulate(admin, 'unbond', [1n]), 'BondLocked');
    await expectRevert(
      simulate(mallory, 'resolve', [epochC, true]),
      'AccessControlUnauthorizedAccount',
    );

    const [challenger, toTreasury, posterBond] = await Promise.all([
      balance(mallory.address),
      balance(treasury.address),
      read<bigint>('bondOf', [admin.address]),
    ]);
    const resolved = await send(admin, 'resolve', [epochC, true]);
    gas.resolveUpheld = resolved.gasUsed;
    const half = PARAMS.slashAmount / 2n;
    assert.equal((await balance(mallory.address)) - challenger, half + PARAMS.challengeBond);
    assert.equal((await balance(treasury.address)) - toTreasury, PARAMS.slashAmount - half);
    assert.equal(posterBond - (await read<bigint>('bondOf', [admin.address])), PARAMS.slashAmount);
    assert.equal((await epochOf(epochC)).status, Status.Voided);
    await expectRevert(simulate(admin, 'resolve', [epochC, true]), 'NotChallenged');

    // The slashed poster must top its bond up; the re-post redistributes what is held, no more.
    const repost = (total: bigint, root: string) =>
      simulate(admin, 'postEpoch', [epochC, label('receipts C'), root, total]);
    await expectRevert(repost(OPEN('18'), label('x')), 'InsufficientBond');
    await send(admin, 'bond', [PARAMS.slashAmount]);
    await expectRevert(repost(OPEN('20') + 1n, label('x')), 'ExceedsEpochFees');
    credit([[dave.address, OPEN('18')]]);
    const good = payoutTree(cumulative, 1000);
    const reposted = await send(admin, 'postEpoch', [
      epochC,
      label('receipts C'),
      good.root,
      OPEN('18'),
    ]);
    assert.equal(events(reposted, 'EpochPosted')[0]!.repost, true);
    assert.equal(
      await read('epochReleased', [epochC], escrow),
      OPEN('20'),
      'nothing more released',
    );
    await warp(WINDOW);

    const treasuryBefore = await balance(treasury.address);
    gas.repost = reposted.gasUsed;
    const paid = await send(carol, 'claim', [
      epochC,
      dave.address,
      OPEN('78'),
      good.getProof(leaf(dave.address)),
    ]);
    assert.deepEqual(events(paid, 'EpochFinalized'), [
      { epoch: epochC, total: OPEN('18'), surplus: OPEN('2') },
    ]);
    assert.equal((await balance(treasury.address)) - treasuryBefore, OPEN('2'));
    assert.equal(await balance(dave.address), OPEN('78'));
  });

  it("rejects a challenge: the challenger's bond goes to the poster and the posting stands", async (t) => {
    const epochD = await feesFor(OPEN('10'), 'batch D');
    credit([[carol.address, OPEN('10')]]);
    const tree = payoutTree(cumulative, 1000);
    await send(admin, 'postEpoch', [epochD, label('receipts D'), tree.root, OPEN('10')]);
    await send(mallory, 'challenge', [epochD, label('weak evidence')]);
    const poster = await balance(admin.address);
    const resolved = await send(admin, 'resolve', [epochD, false]);
    gas.resolveRejected = resolved.gasUsed;
    assert.equal((await balance(admin.address)) - poster - 0n, PARAMS.challengeBond);
    assert.equal((await epochOf(epochD)).status, Status.Posted);
    await warp(WINDOW);
    await expectRevert(
      simulate(mallory, 'challenge', [epochD, label('late')]),
      'ChallengeWindowClosed',
    );
    await expectRevert(
      simulate(mallory, 'challenge', [epochD + 1n, label('never posted')]),
      'NotChallengeable',
    );
    await send(mallory, 'finalize', [epochD]);
    assert.equal((await epochOf(epochD)).status, Status.Finalized);
    await expectRevert(simulate(mallory, 'finalize', [epochD]), 'EpochNotFinal');
    // The same claim as epoch B's (an increment, epoch already final) with a 10-level proof.
    const proof = tree.getProof(leaf(carol.address));
    assert.equal(proof.length, 10);
    const paid = await send(carol, 'claim', [epochD, carol.address, OPEN('99'), proof]);
    gas.claim1k = paid.gasUsed;
    assert.deepEqual(events(paid, 'Claimed'), [
      { epoch: epochD, account: carol.address, amount: OPEN('10'), cumulative: OPEN('99') },
    ]);
    // Every challenge settled and every window passed: the whole bond can leave.
    await send(admin, 'unbond', [await read<bigint>('bondOf', [admin.address])]);
    assert.equal(await read('bondOf', [admin.address]), 0n);

    // postEpoch stores two roots whatever the epoch's size, and a claim grows by one hash per
    // proof level: these bounds would catch an accidental loop over payees or receipts.
    assert.ok(gas.postEpoch! < 300_000n, `postEpoch gas ${gas.postEpoch}`);
    assert.ok(
      gas.claim100k! - gas.claim1k! < 7n * 1_000n,
      `claim gas ${gas.claim1k} -> ${gas.claim100k}`,
    );
    const perReceipt = (receipts: number) => Math.round(Number(gas.postEpoch!) / receipts);
    t.diagnostic(
      `settlement gas ${JSON.stringify(Object.fromEntries(Object.entries(gas).map(([k, v]) => [k, Number(v)])))}; ` +
        `postEpoch per receipt: 1k ${perReceipt(1000)}, 100k ${perReceipt(100_000)}`,
    );
  });

  it('is added to a recorded deployment from before settlement, by its deployer only', async () => {
    const { AttributionSettlement: _, ...older } = deployment.contracts;
    await writeDeployment(env.dataDir, { ...deployment, contracts: older });
    const stranger = await ensureDeployment(conn, { dataDir: env.dataDir, signer: mallory });
    assert.equal(stranger.deployment.contracts.AttributionSettlement, undefined);
    const { deployment: upgraded, deployedNow } = await ensureDeployment(conn, {
      dataDir: env.dataDir,
      signer: admin,
    });
    assert.equal(deployedNow, false);
    const added = upgraded.contracts.AttributionSettlement!;
    assert.ok(added && added !== settlement);
    assert.equal(upgraded.contracts.InferenceEscrow, escrow, 'the escrow is kept');
    assert.equal(await read('hasRole', [label('DISTRIBUTOR_ROLE'), added], escrow), true);
  });
});
