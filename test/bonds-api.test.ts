import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { parseUnits, type Address, type Hex, type LocalAccount } from 'viem';
import { OpenTokenAbi, devAccount } from '../src/chain/index.ts';
import {
  requestUnbondTypedData,
  slashMaliciousTypedData,
  slashReasonHash,
} from '../src/datanets/bonds-typed-data.ts';
import { rowHash, type RowContent } from '../src/datanets/ingest/index.ts';
import { schema } from '../src/db/index.ts';
import { permitTypedData } from '../src/payments/typed-data.ts';
import { CLI_ENTRY } from './helpers/cli.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';

const ONE = parseUnits('1', 18);
const DESCRIPTION =
  'Facts about solar physics: sunspots, the corona, the solar wind, flares, coronal mass ejections and nuclear fusion in the core of the sun.';
const doc = (n: number): RowContent => ({
  type: 'document',
  text: `Solar observation ${n}: the sun's ${['corona', 'photosphere', 'chromosphere', 'core'][n % 4]} shows ${['sunspots', 'flares', 'plasma loops', 'magnetic fields'][(n * 7) % 4]} that scientists measure with ${['spectrographs', 'coronagraphs', 'magnetometers', 'radio telescopes'][(n * 3) % 4]} during cycle ${20 + n}.`,
});

describe('contribution bonds and penalties over the API', () => {
  let node: TestNode;
  let owner: DatanetActor; // the datanet's owner, who may slash
  let alice: DatanetActor;
  let bob: DatanetActor;
  let stranger: DatanetActor;
  let datanetId: number;
  let first: string; // alice's contribution in version 1

  const signing = async (who: LocalAccount) =>
    (await call(node.url, 'GET', `/api/bonds/signing-info?address=${who.address}`)).body;
  const bondOf = async (cid: string) =>
    (await call(node.url, 'GET', `/api/contributions/${cid}/bond`)).body;
  const deadline = async () => BigInt((await bondOf(first)).chainTime + 3600);
  const balance = (address: Address) =>
    node.node.context.chain.publicClient.readContract({
      address: node.node.contracts.OpenToken!,
      abi: OpenTokenAbi,
      functionName: 'balanceOf',
      args: [address],
    });

  /** Bonds `amount` on `cid` as `actor` through the relayed permit; `signer` may differ (forged). */
  const bond = async (actor: DatanetActor, cid: string, amount: bigint, signer = actor.account) => {
    const info = await signing(actor.account);
    const until = await deadline();
    const signature = await signer.signTypedData(
      permitTypedData({
        chainId: info.chainId,
        token: info.token,
        escrow: info.bonds,
        owner: actor.account.address,
        value: amount,
        nonce: BigInt(info.tokenNonce),
        deadline: until,
      }),
    );
    return actor.call('POST', `/api/contributions/${cid}/bond`, {
      amount: amount.toString(),
      deadline: until.toString(),
      signature,
    });
  };

  /** `actor` (signed in) relays a slash signed by `signer` as curator `signer.address`. */
  const slash = async (
    actor: DatanetActor,
    cid: string,
    reason: string,
    signer = actor.account,
  ) => {
    const info = await signing(signer);
    const b = await bondOf(cid);
    const until = await deadline();
    const signature = await signer.signTypedData(
      slashMaliciousTypedData(
        { chainId: info.chainId, bonds: info.bonds, nonce: BigInt(info.nonce), deadline: until },
        {
          curator: signer.address,
          datanetId: BigInt(datanetId),
          contributionId: b.contributionIdBytes32 as Hex,
          contributor: b.contributor,
          reasonHash: slashReasonHash(reason),
        },
      ),
    );
    return actor.call('POST', `/api/datanets/${datanetId}/contributions/${cid}/slash`, {
      contributor: b.contributor,
      reason,
      deadline: until.toString(),
      signature,
    });
  };

  before(async () => {
    node = await startTestNode();
    owner = new DatanetActor(node.url, devAccount(1));
    alice = new DatanetActor(node.url, devAccount(2));
    bob = new DatanetActor(node.url, devAccount(3));
    stranger = new DatanetActor(node.url, devAccount(4));
    for (const who of [alice, bob]) {
      const drip = await call(node.url, 'POST', '/api/faucet', {
        token: await who.session(),
        body: {},
      });
      assert.equal(drip.status, 200, JSON.stringify(drip.body));
    }
    const created = await owner.create({ name: 'Solar physics', description: DESCRIPTION });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    datanetId = created.body.id;
    const contributed = await alice.contributeRows(datanetId, [doc(1), doc(2)]);
    assert.equal(contributed.status, 201, JSON.stringify(contributed.body));
    first = contributed.body.id;
    const approved = await owner.approve(datanetId, [first]);
    assert.equal(approved.status, 201, JSON.stringify(approved.body));
  });
  after(async () => node?.close());

  it('bonds with a permit the node relays, and refuses a forged one', async () => {
    const forged = await bond(alice, first, ONE, stranger.account);
    assert.equal(forged.status, 401, JSON.stringify(forged.body));
    assert.equal(forged.body.error.code, 'INVALID_SIGNATURE');
    const before = await balance(alice.account.address);
    const bonded = await bond(alice, first, ONE);
    assert.equal(bonded.status, 200, JSON.stringify(bonded.body));
    const state = await bondOf(first);
    assert.equal(state.contributor, alice.account.address);
    assert.equal(state.datanetId, datanetId);
    assert.equal(state.amount, ONE.toString());
    assert.equal(state.unlockAt, null);
    assert.equal(state.slashed, false);
    assert.equal(await balance(alice.account.address), before - ONE);
    const missing = await call(
      node.url,
      'GET',
      '/api/contributions/00000000-0000-4000-8000-000000000000/bond',
    );
    assert.equal(missing.status, 404);
  });

  it('relays a signed unbond request, and refuses to unbond before the delay', async () => {
    const info = await signing(alice.account);
    const b = await bondOf(first);
    const until = await deadline();
    const message = {
      contributor: alice.account.address,
      datanetId: BigInt(datanetId),
      contributionId: b.contributionIdBytes32 as Hex,
    };
    const ctx = {
      chainId: info.chainId,
      bonds: info.bonds,
      nonce: BigInt(info.nonce),
      deadline: until,
    };
    const byStranger = await stranger.account.signTypedData(requestUnbondTypedData(ctx, message));
    const bad = await stranger.call('POST', `/api/contributions/${first}/unbond-request`, {
      deadline: until.toString(),
      signature: byStranger,
    });
    assert.equal(bad.status, 401, JSON.stringify(bad.body));
    const signature = await alice.account.signTypedData(requestUnbondTypedData(ctx, message));
    const requested = await stranger.call('POST', `/api/contributions/${first}/unbond-request`, {
      deadline: until.toString(),
      signature,
    });
    assert.equal(requested.status, 200, JSON.stringify(requested.body));
    const state = await bondOf(first);
    assert.equal(state.unlockAt - state.chainTime > 500, true, JSON.stringify(state));
    const early = await stranger.call('POST', `/api/contributions/${first}/unbond`);
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.equal(early.body.error.details.revert, 'BondLocked');
  });

  it('lets a curator slash a bonded contribution to the treasury; others get 403 or 401', async () => {
    const notCurator = await slash(stranger, first, 'spam');
    assert.equal(notCurator.status, 403, JSON.stringify(notCurator.body));
    const forged = await slash(owner, first, 'spam', stranger.account);
    assert.equal(forged.status, 401, JSON.stringify(forged.body));
    const treasury = (await signing(owner.account)).parameters.treasury as Address;
    const before = await balance(treasury);
    const slashed = await slash(owner, first, 'spam rows'); // the pending unbond does not escape it
    assert.equal(slashed.status, 200, JSON.stringify(slashed.body));
    assert.equal(slashed.body.slashed, ONE.toString());
    assert.equal(slashed.body.reasonHash, slashReasonHash('spam rows'));
    assert.equal(await balance(treasury), before + ONE);
    const state = await bondOf(first);
    assert.equal(state.slashed, true);
    assert.equal(state.amount, '0');
    const again = await slash(owner, first, 'spam rows');
    assert.equal(again.status, 409, JSON.stringify(again.body));
    const penalty = (
      await call(node.url, 'GET', `/api/contributors/${alice.account.address}/penalty`)
    ).body;
    assert.deepEqual(penalty, {
      address: alice.account.address,
      score: '1',
      threshold: '3',
      rewardsCut: false,
    });
  });

  it('cuts rewards once penalties reach the threshold', async () => {
    for (const n of [3, 5]) {
      const c = await alice.contributeRows(datanetId, [doc(n)]);
      assert.equal(c.status, 201, JSON.stringify(c.body));
      assert.equal((await bond(alice, c.body.id, ONE / 2n)).status, 200);
      const slashed = await slash(owner, c.body.id, 'off-topic');
      assert.equal(slashed.status, 200, JSON.stringify(slashed.body));
    }
    const penalty = await call(
      node.url,
      'GET',
      `/api/contributors/${alice.account.address}/penalty`,
    );
    assert.equal(penalty.body.score, '3');
    assert.equal(penalty.body.rewardsCut, true);
  });

  it('proves a re-uploaded row itself and slashes its contributor, once', async () => {
    const copied = await bob.contributeRows(datanetId, [doc(1), doc(8)]);
    assert.equal(copied.status, 201, JSON.stringify(copied.body));
    // This node's ingest refuses exact duplicates, so versions it commits never hold one; a
    // version committed with another client can. Let the copy through as such a version would.
    await node.node.context.database.db
      .update(schema.datanetRows)
      .set({ status: 'pending' })
      .where(
        and(
          eq(schema.datanetRows.contributionId, copied.body.id),
          eq(schema.datanetRows.rowHash, rowHash(doc(1))),
        ),
      );
    const approved = await owner.approve(datanetId, [copied.body.id]);
    assert.equal(approved.status, 201, JSON.stringify(approved.body));
    const unknown = await bob.call('POST', `/api/datanets/${datanetId}/slash-duplicate`, {
      rowHash: rowHash(doc(8)), // bob's own new row: no earlier copy
    });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    const proven = await stranger.call('POST', `/api/datanets/${datanetId}/slash-duplicate`, {
      rowHash: rowHash(doc(1)),
    });
    assert.equal(proven.status, 200, JSON.stringify(proven.body));
    assert.deepEqual(proven.body.later, {
      version: approved.body.version,
      contributionId: copied.body.id,
      contributor: bob.account.address,
    });
    assert.deepEqual(proven.body.earlier, {
      version: 1,
      contributionId: first,
      contributor: alice.account.address,
    });
    assert.equal(proven.body.penaltyScore, '1');
    const twice = await stranger.call('POST', `/api/datanets/${datanetId}/slash-duplicate`, {
      rowHash: rowHash(doc(1)),
    });
    assert.equal(twice.status, 409, JSON.stringify(twice.body));

    // The CLI reads the same penalty (one spawn).
    const cli = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const child = spawn(
          process.execPath,
          [CLI_ENTRY, 'bonds', 'penalty', bob.account.address, '--json', '--url', node.url],
          { env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' } },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('exit', (code) => resolve({ code, stdout, stderr }));
      },
    );
    assert.equal(cli.code, 0, cli.stderr);
    const printed = JSON.parse(cli.stdout.trim().split('\n').pop()!);
    assert.equal(printed.address, bob.account.address);
    assert.equal(printed.score, '1');
    assert.equal(printed.rewardsCut, false);
  });
});
