// Tests read arbitrary JSON answers and assert on their fields: `any` is the honest type here.
/* eslint-disable @typescript-eslint/no-explicit-any */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseUnits } from 'viem';
import { InferenceEscrowAbi, OpenTokenAbi, devAccount } from '../src/chain/index.ts';
import { schema } from '../src/db/index.ts';
import { permitTypedData, requestWithdrawalTypedData } from '../src/payments/typed-data.ts';
import { call, signIn } from './helpers/http.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

const BIN = CLI_ENTRY;
const caller = devAccount(1);
const ONE = parseUnits('1', 18);

/** Runs `openledger <args> --url <node>` (with `--json` unless `human`) and parses what it printed. */
function cli(
  url: string,
  args: string[],
  options: { human?: boolean } = {},
): Promise<{ code: number | null; json: any; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [BIN, ...args, ...(options.human ? [] : ['--json']), '--url', url],
      { env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      let json: unknown;
      try {
        json = JSON.parse((code === 0 ? stdout : stderr).trim().split('\n').pop() ?? '');
      } catch {
        json = undefined;
      }
      resolve({ code, json, stdout, stderr });
    });
  });
}

describe('openledger escrow (CLI)', () => {
  let node: TestNode;

  before(async () => {
    node = await startTestNode();
    assert.ok(node.node.contracts.InferenceEscrow, 'the deployment has an escrow');
    const session = await signIn(node.url, caller);
    const drip = await call(node.url, 'POST', '/api/faucet', { token: session, body: {} });
    assert.equal(drip.status, 200, JSON.stringify(drip.body));
  });
  after(async () => node?.close());

  const onChain = (functionName: 'balanceOf' | 'withdrawalOf') =>
    node.node.context.chain.publicClient.readContract({
      address: node.node.contracts.InferenceEscrow!,
      abi: InferenceEscrowAbi,
      functionName,
      args: [caller.address],
    });

  it('shows the balance, deposits with a relayed permit, requests and cancels a withdrawal', async () => {
    const empty = await cli(node.url, ['escrow', 'balance', '--account', '1']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.json.address, caller.address);
    assert.equal(empty.json.balance, '0');
    assert.equal(empty.json.withdrawal, null);
    assert.ok(BigInt(empty.json.wallet) >= ONE, 'the faucet paid the wallet');

    const deposited = await cli(node.url, ['escrow', 'deposit', '1', '--account', '1']);
    assert.equal(deposited.code, 0, deposited.stderr);
    assert.equal(deposited.json.deposited, ONE.toString());
    assert.match(deposited.json.txHash, /^0x[0-9a-f]{64}$/);
    assert.equal(await onChain('balanceOf'), ONE, 'the deposit is on-chain');
    assert.equal(BigInt(deposited.json.escrow.wallet), BigInt(empty.json.wallet) - ONE);

    const requested = await cli(node.url, ['escrow', 'withdraw', '0.5', '--account', '1']);
    assert.equal(requested.code, 0, requested.stderr);
    const half = parseUnits('0.5', 18);
    assert.equal(requested.json.requested, half.toString());
    const [amount, unlockAt] = (await onChain('withdrawalOf')) as readonly [bigint, bigint];
    assert.equal(amount, half, 'the signed request reached the chain');
    const pending = await cli(node.url, ['escrow', 'balance', '--account', '1']);
    assert.equal(pending.json.withdrawal.amount, half.toString());
    assert.equal(pending.json.withdrawal.unlockAt, Number(unlockAt));
    assert.equal(pending.json.balance, ONE.toString());
    assert.equal(pending.json.available, (ONE - half).toString());

    // Human output, for people; anyone may read an escrow by address, without signing in.
    const text = await cli(node.url, ['escrow', 'balance', '--address', caller.address], {
      human: true,
    });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /balance\s+1 OPEN/);
    assert.match(text.stdout, /withdrawal\s+0\.5 OPEN requested, unlocks/);

    // Paying out before the delay is refused with the unlock time, before any transaction.
    const early = await cli(node.url, ['escrow', 'withdraw', '--complete', '--account', '1']);
    assert.equal(early.code, 1);
    assert.equal(early.json.error.code, 'WITHDRAWAL_LOCKED');
    assert.match(early.json.error.message, /unlocks .* \(in \d+ s\) by the chain's clock/);

    // 0 cancels the request (a second signature: the escrow nonce moved on).
    const cancelled = await cli(node.url, ['escrow', 'withdraw', '0', '--account', '1']);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(cancelled.json.escrow.withdrawal, null);
    assert.equal(cancelled.json.escrow.available, ONE.toString());
  });

  it('refuses bad amounts with VALIDATION_FAILED and exit 1, and more than is held', async () => {
    for (const args of [
      ['escrow', 'deposit', 'abc', '--account', '1'],
      ['escrow', 'deposit', '0.0000000000000000001', '--account', '1'],
      ['escrow', 'withdraw', '1e18', '--account', '1'],
    ]) {
      const bad = await cli(node.url, args);
      assert.equal(bad.code, 1, `${args.join(' ')}: ${bad.stderr}`);
      assert.equal(bad.json.error.code, 'VALIDATION_FAILED', args.join(' '));
      assert.match(bad.json.error.message, /amount|OPEN/);
    }
    const tooMuch = await cli(node.url, ['escrow', 'withdraw', '5', '--account', '1']);
    assert.equal(tooMuch.code, 1);
    assert.equal(tooMuch.json.error.code, 'INSUFFICIENT_BALANCE');
    const broke = await cli(node.url, ['escrow', 'deposit', '1', '--account', '7']);
    assert.equal(broke.code, 1);
    assert.equal(broke.json.error.code, 'INSUFFICIENT_BALANCE');
    assert.match(broke.json.error.message, /holds 0 OPEN/);
  });

  it('pays out an unlocked withdrawal by the chain clock, keeping back unsettled fees', async () => {
    const session = await signIn(node.url, caller);
    const escrowOf = async () => {
      const answer = await call(node.url, 'GET', '/api/escrow', { token: session });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body;
    };
    const wallet = () =>
      node.node.context.chain.publicClient.readContract({
        address: node.node.context.deployment.contracts.OpenToken,
        abi: OpenTokenAbi,
        functionName: 'balanceOf',
        args: [caller.address],
      });
    const request = async (amount: bigint) => {
      const e = await escrowOf();
      const deadline = BigInt(e.chainTime + 3600);
      const signature = await caller.signTypedData(
        requestWithdrawalTypedData({
          chainId: e.chainId,
          escrow: e.escrow,
          owner: caller.address,
          amount,
          nonce: BigInt(e.escrowNonce),
          deadline,
        }),
      );
      return call(node.url, 'POST', '/api/escrow/withdraw', {
        token: session,
        body: {
          owner: caller.address,
          amount: amount.toString(),
          deadline: deadline.toString(),
          signature,
        },
      });
    };
    const complete = () =>
      call(node.url, 'POST', '/api/escrow/withdraw', {
        token: session,
        body: { owner: caller.address, complete: true },
      });

    const start = await escrowOf();
    const latest = Number((await node.node.context.chain.publicClient.getBlock()).timestamp);
    assert.ok(
      start.chainTime >= latest && start.chainTime <= latest + 60,
      'chainTime is the chain’s',
    );
    const balance = BigInt(start.balance);
    assert.equal(balance, ONE, 'the first test left 1 OPEN deposited');

    // A fee this node charged and has not settled yet (as a served paid call leaves it). The
    // minutely settlement stops first, so that the fee stays unsettled until this test settles.
    await node.node.context.escrow!.stop();
    const fee = parseUnits('0.25', 18);
    await node.node.context.database.db.insert(schema.inferenceUsage).values({
      id: randomUUID(),
      caller: caller.address.toLowerCase(),
      credentialId: 'test',
      endpoint: 'chat.completions',
      model: 'model:1',
      baseModel: 'tiny',
      adapters: [],
      publishedModelId: 1,
      promptTokens: 10,
      completionTokens: 10,
      latencyMs: 1,
      status: 'completed',
      receipt: {},
      receiptHash: 'ab'.repeat(32),
      feeWei: fee.toString(),
    });
    const charged = await escrowOf();
    assert.equal(charged.unsettled, fee.toString());
    assert.equal(charged.available, (balance - fee).toString());
    assert.equal(charged.withdrawable, (balance - fee).toString());

    // More than the balance less unsettled fees is refused before any transaction.
    const tooMuch = await request(balance);
    assert.equal(tooMuch.status, 402, JSON.stringify(tooMuch.body));
    assert.equal(tooMuch.body.error.code, 'INSUFFICIENT_BALANCE');
    assert.match(tooMuch.body.error.message, /at most 0\.75 OPEN/);
    assert.equal(tooMuch.body.error.details.withdrawable, (balance - fee).toString());

    // Signatures by someone else are refused as such, not as a contract error nobody can act on.
    const stranger = devAccount(5);
    const deadline = BigInt(start.chainTime + 3600);
    const badPermit = await call(node.url, 'POST', '/api/escrow/deposit', {
      token: session,
      body: {
        owner: caller.address,
        amount: ONE.toString(),
        deadline: deadline.toString(),
        signature: await stranger.signTypedData(
          permitTypedData({
            chainId: start.chainId,
            token: start.token,
            escrow: start.escrow,
            owner: caller.address,
            value: ONE,
            nonce: BigInt(start.tokenNonce),
            deadline,
          }),
        ),
      },
    });
    assert.equal(badPermit.status, 401, JSON.stringify(badPermit.body));
    assert.equal(badPermit.body.error.code, 'INVALID_SIGNATURE');
    assert.match(badPermit.body.error.message, /permit/);

    const half = parseUnits('0.5', 18);
    const forged = await call(node.url, 'POST', '/api/escrow/withdraw', {
      token: session,
      body: {
        owner: caller.address,
        amount: half.toString(),
        deadline: deadline.toString(),
        signature: await stranger.signTypedData(
          requestWithdrawalTypedData({
            chainId: start.chainId,
            escrow: start.escrow,
            owner: caller.address,
            amount: half,
            nonce: BigInt(start.escrowNonce),
            deadline,
          }),
        ),
      },
    });
    assert.equal(forged.status, 401, JSON.stringify(forged.body));
    assert.equal(forged.body.error.code, 'INVALID_SIGNATURE');

    const requested = await request(half);
    assert.equal(requested.status, 200, JSON.stringify(requested.body));
    const pending = await escrowOf();
    assert.equal(pending.withdrawal.amount, half.toString());
    const delay = pending.withdrawalDelaySeconds;
    assert.ok(Math.abs(pending.chainTime + delay - pending.withdrawal.unlockAt) <= 5);
    assert.equal(pending.available, (balance - half - fee).toString());

    // Before the delay the chain refuses the payout; the node says when, by the chain's clock.
    const early = await complete();
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.equal(early.body.error.code, 'WITHDRAWAL_LOCKED');
    assert.match(early.body.error.message, /unlocks at .*, in \d+ s by the chain's clock/);
    assert.equal(early.body.error.details.unlockAt, pending.withdrawal.unlockAt);

    // The chain's clock moves past the unlock time; this machine's stays 10 minutes behind, so
    // only a client that asks the chain for the time sees the withdrawal unlocked. No block is
    // mined (anvil mines only on transactions): the node mines one before paying out, since
    // calls are simulated against the latest block.
    const publicClient = node.node.context.chain.publicClient;
    await publicClient.request({
      method: 'evm_increaseTime' as never,
      params: [delay + 1] as never,
    });
    const unlocked = await escrowOf();
    assert.ok(unlocked.chainTime >= pending.withdrawal.unlockAt);
    assert.ok(unlocked.withdrawal.unlockAt > Date.now() / 1000, 'still locked by the local clock');
    const stale = await publicClient.getBlock();
    assert.ok(Number(stale.timestamp) < pending.withdrawal.unlockAt, 'the latest block is older');

    const walletBefore = await wallet();
    const paid = await cli(node.url, ['escrow', 'withdraw', '--complete', '--account', '1']);
    assert.equal(paid.code, 0, paid.stderr);
    assert.equal(paid.json.withdrawn, half.toString());
    assert.equal(await wallet(), walletBefore + half, 'the wallet got the withdrawal');
    assert.equal(await onChain('balanceOf'), balance - half, 'the escrow paid it out');
    assert.equal(paid.json.escrow.withdrawal, null);
    assert.equal(paid.json.escrow.balance, (balance - half).toString());
    assert.equal(paid.json.escrow.available, (balance - half - fee).toString());

    // Nothing left to pay out; settling then charges the fee kept back.
    const again = await complete();
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'CONFLICT');
    const settled = await node.node.context.escrow!.settle();
    assert.equal(settled.batches[0]?.total, fee.toString());
    const settledView = await escrowOf();
    assert.equal(settledView.balance, (balance - half - fee).toString());
    assert.equal(settledView.unsettled, '0');
    assert.equal(settledView.available, settledView.balance);
  });
});
