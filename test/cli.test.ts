import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { BlobStore } from '../src/blobs/index.ts';
import { devAccount } from '../src/chain/index.ts';
import { call, signIn } from './helpers/http.ts';
import { CLI_ENTRY } from './helpers/cli.ts';
import { ROOT } from './helpers/node.ts';

const BIN = CLI_ENTRY;
const ENV = {
  ...process.env,
  OPENLEDGER_LOG_LEVEL: 'warn',
  OPENLEDGER_API_KEY: '',
  OPENLEDGER_PRIVATE_KEY: '',
};

/** Runs a CLI command to completion. */
function run(
  args: string[],
  env: NodeJS.ProcessEnv = ENV,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `openledger up` and resolves with its first stdout line (the ready line). */
function startUp(
  args: string[],
): Promise<{ child: ChildProcessWithoutNullStreams; firstLine: string; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, 'up', ...args], { env: ENV });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (firstLine) =>
      resolve({ child, firstLine, ms: performance.now() - started }),
    );
    child.once('exit', (code) => reject(new Error(`up exited with ${code}: ${stderr}`)));
  });
}

function stop(
  child: ChildProcessWithoutNullStreams,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}

describe('openledger CLI', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-cli-'));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it('documents its commands in --help (through the bin/openledger.js launcher)', async () => {
    const launcher = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin/openledger.js'), '--help'], {
        env: ENV,
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('exit', (code) => resolve({ code, stdout: out }));
    });
    assert.equal(launcher.code, 0);
    const { code, stdout } = await run(['--help']);
    assert.equal(code, 0);
    assert.equal(launcher.stdout, stdout);
    for (const command of ['up', 'status', 'deploy', 'keys'])
      assert.match(stdout, new RegExp(`\\n  ${command}\\b`));
    const up = await run(['up', '--help']);
    for (const flag of ['--port', '--host', '--data-dir', '--rpc-url'])
      assert.match(up.stdout, new RegExp(flag));
  });

  it('reports bad input as JSON on stderr with a non-zero exit code and nothing on stdout', async () => {
    const cases: [string[], string][] = [
      [['status', '--url', 'http://127.0.0.1:9', '--json'], 'NODE_UNREACHABLE'],
      [['up', '--port', '99999', '--data-dir', dataDir, '--json'], 'CONFIG_INVALID'],
      [['deploy', '--json'], 'BAD_REQUEST'],
      [['no-such-command', '--json'], 'BAD_REQUEST'],
    ];
    for (const [args, code] of cases) {
      const result = await run(args, { ...ENV, OPENLEDGER_RPC_URL: '' });
      assert.notEqual(result.code, 0, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
      assert.equal(JSON.parse(result.stderr.trim()).error.code, code, result.stderr);
    }
    const human = await run(['status', '--url', 'http://127.0.0.1:9']);
    assert.equal(human.code, 1);
    assert.match(human.stderr, /^error \[NODE_UNREACHABLE\]: .*\nhint: /);
  });

  it('runs the node, stops on SIGTERM, and keeps chain state, database rows and blobs across a restart', async () => {
    const first = await startUp([
      '--json',
      '--port',
      '0',
      '--chain-port',
      '0',
      '--data-dir',
      dataDir,
    ]);
    const ready = JSON.parse(first.firstLine);
    assert.ok(first.ms < 30_000, `healthy within 30 s (took ${first.ms} ms)`);
    assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(ready.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(ready.chainId, 31337);
    assert.match(ready.contracts.OpenToken, /^0x[0-9a-fA-F]{40}$/);
    assert.equal((await call(ready.url, 'GET', '/healthz')).body.status, 'ok');

    const status = await run(['status', '--json', '--url', ready.url]);
    assert.equal(status.code, 0, status.stderr);
    const statusJson = JSON.parse(status.stdout);
    assert.equal(statusJson.chainId, 31337);
    assert.equal(statusJson.health.status, 'ok');

    // A second node on the same data dir is refused rather than corrupting it.
    const clash = await run([
      'up',
      '--json',
      '--port',
      '0',
      '--chain-port',
      '0',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(clash.code, 1);
    assert.equal(JSON.parse(clash.stderr.trim()).error.code, 'CONFIG_INVALID');

    // Leave traces in all three stores: a chain transfer, a database row, a blob.
    const created = await run([
      'keys',
      'create',
      '--name',
      'kept',
      '--account',
      '1',
      '--url',
      ready.url,
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout);
    const session = await signIn(ready.url, devAccount(4));
    const drip = await call(ready.url, 'POST', '/api/faucet', { token: session, body: {} });
    assert.equal(drip.status, 200, JSON.stringify(drip.body));
    const balance = (await call(ready.url, 'GET', `/api/token/balances/${devAccount(4).address}`))
      .body.open;
    const blob = await new BlobStore(path.join(dataDir, 'blobs')).put('kept across restarts');

    assert.equal(await stop(first.child), 0);
    assert.equal(existsSync(path.join(dataDir, 'node.lock')), false, 'the lock is released');

    const second = await startUp(['--port', '0', '--chain-port', '0', '--data-dir', dataDir]);
    try {
      const match = /^ready (http:\/\/127\.0\.0\.1:\d+)$/.exec(second.firstLine);
      assert.ok(match, `plain ready line, got "${second.firstLine}"`);
      const url = match[1]!;
      const after = (await call(url, 'GET', '/api/status')).body;
      assert.deepEqual(after.contracts, ready.contracts, 'no redeployment on restart');
      assert.equal(
        (await call(url, 'GET', `/api/token/balances/${devAccount(4).address}`)).body.open,
        balance,
      );
      const keys = await run(['keys', 'list', '--url', url, '--json'], {
        ...ENV,
        OPENLEDGER_API_KEY: key.key,
      });
      assert.equal(keys.code, 0, keys.stderr);
      assert.deepEqual(
        JSON.parse(keys.stdout).keys.map((k: { name: string }) => k.name),
        ['kept'],
      );
      assert.equal(
        (await new BlobStore(path.join(dataDir, 'blobs')).get(blob.id)).toString(),
        'kept across restarts',
      );

      const revoked = await run([
        'keys',
        'revoke',
        key.id,
        '--account',
        '1',
        '--url',
        url,
        '--json',
      ]);
      assert.equal(revoked.code, 0, revoked.stderr);
      const refused = await run(['keys', 'list', '--url', url, '--json'], {
        ...ENV,
        OPENLEDGER_API_KEY: key.key,
      });
      assert.equal(refused.code, 1);
      assert.equal(JSON.parse(refused.stderr.trim()).error.code, 'INVALID_API_KEY');

      // `deploy` to any chain: here the running node's own chain, recorded in another data dir.
      const other = path.join(dataDir, 'other');
      const deployed = await run([
        'deploy',
        '--rpc-url',
        after.rpcUrl,
        '--account',
        '0',
        '--data-dir',
        other,
        '--json',
      ]);
      assert.equal(deployed.code, 0, deployed.stderr);
      const deployment = JSON.parse(deployed.stdout);
      assert.notEqual(deployment.contracts.OpenToken, ready.contracts.OpenToken);
      assert.ok(existsSync(path.join(other, 'deployments', '31337.json')));
      const again = await run([
        'deploy',
        '--rpc-url',
        after.rpcUrl,
        '--account',
        '0',
        '--data-dir',
        other,
        '--json',
      ]);
      assert.equal(JSON.parse(again.stderr.trim()).error.code, 'CONFLICT');
    } finally {
      assert.equal(await stop(second.child, 'SIGINT'), 0);
    }
  });
});
