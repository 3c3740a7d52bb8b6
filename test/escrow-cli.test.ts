// Tests read arbitrary JSON answers and assert on their fields: `any` is the honest type here.
/* eslint-disable @typescript-eslint/no-explicit-any */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseUnits } from 'viem';
import { InferenceEscrowAbi, devAccount } from '../src/chain/index.ts';
import { call, signIn } from './helpers/http.ts';
import { ROOT, startTestNode, type TestNode } from './helpers/node.ts';

const BIN = path.join(ROOT, 'bin/openledger.js');
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
    assert.equal(early.json.error.code, 'VALIDATION_FAILED');
    assert.match(early.json.error.message, /unlocks at/);

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
});
