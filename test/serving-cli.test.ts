// Tests read arbitrary JSON answers and assert on their fields: `any` is the honest type here.
/* eslint-disable @typescript-eslint/no-explicit-any */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { parseAdapterFlag } from '../src/cli/commands/chat.ts';
import { schema } from '../src/db/index.ts';

import { startServingNode, writeTinyAdapter, type ServingNode } from './helpers/serving.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

const BIN = CLI_ENTRY;

/** Runs `openledger <args> --url <node>` to its end; stdin is closed (not a terminal). */
function cli(
  url: string,
  args: string[],
  stdin = '',
): Promise<{ code: number | null; stdout: string; stderr: string; json: any; chunks: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, '--url', url], {
      env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    let chunks = 0;
    child.stdout.on('data', (d) => {
      chunks++;
      stdout += d;
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(stdin);
    child.on('exit', (code) => {
      let json: unknown;
      try {
        json = JSON.parse((code === 0 ? stdout : stderr).trim().split('\n').pop() ?? '');
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json, chunks });
    });
  });
}

describe('openledger chat and adapters (CLI)', () => {
  let node: ServingNode;
  let adapterFile: string;
  before(async () => {
    node = await startServingNode({ maxTokens: 32 });
    adapterFile = path.join(node.dataDir, 'style-a.gguf');
    await writeTinyAdapter(adapterFile, 7, { scale: 0.5 });
  });
  after(async () => {
    await node?.close();
  });

  it('reads --adapter as name[:weight], keeping the model: and adapter: prefixes', () => {
    assert.deepEqual(parseAdapterFlag('style-a:0.7'), { id: 'style-a', weight: 0.7 });
    assert.deepEqual(parseAdapterFlag('style-a'), { id: 'style-a', weight: 1 });
    assert.deepEqual(parseAdapterFlag('model:3'), { id: 'model:3', weight: 1 });
    assert.deepEqual(parseAdapterFlag('model:3:-0.5'), { id: 'model:3', weight: -0.5 });
    const hash = 'ab'.repeat(32);
    assert.deepEqual(parseAdapterFlag(`adapter:${hash}`), { id: `adapter:${hash}`, weight: 1 });
    assert.deepEqual(parseAdapterFlag(`adapter:${hash}:2`), { id: `adapter:${hash}`, weight: 2 });
  });

  it('loads, lists and unloads an adapter; only operators may load', async () => {
    const refused = await cli(node.url, [
      'adapters',
      'load',
      'style-a',
      adapterFile,
      '--key',
      node.callerKey,
      '--json',
    ]);
    assert.equal(refused.code, 1);
    assert.equal(refused.json.error.code, 'forbidden');

    const loaded = await cli(node.url, [
      'adapters',
      'load',
      'style-a',
      adapterFile,
      '--key',
      node.operatorKey,
      '--json',
    ]);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal(loaded.json.name, 'style-a');
    assert.equal(loaded.json.base_model, 'tiny');
    assert.match(loaded.json.id, /^[0-9a-f]{64}$/);

    // Signing in as dev account 0 (the node's signer) is the other way to be an operator.
    const listed = await cli(node.url, ['adapters', 'list', '--account', '0', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const entry = listed.json.adapters.find((a: any) => a.id === loaded.json.id);
    assert.deepEqual(entry.names, ['style-a']);
    assert.ok(listed.json.engine);

    const human = await cli(node.url, ['adapters', 'list', '--key', node.callerKey]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^style-a  adapter:${loaded.json.id}\\n  base tiny `));
  });

  it('chat --json: one document with the whole answer, usage, adapters and receipt', async () => {
    const result = await cli(node.url, [
      'chat',
      'Tell me about the tides.',
      '--model',
      'tiny',
      '--adapter',
      'style-a:0.5',
      '--system',
      'Be brief.',
      '--max-tokens',
      '12',
      '--key',
      node.callerKey,
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const doc = result.json;
    assert.equal(typeof doc.answer, 'string');
    assert.ok(doc.answer.length > 0);
    assert.ok(doc.usage.completion_tokens > 0 && doc.usage.completion_tokens <= 12);
    assert.ok(doc.usage.prompt_tokens > 0);
    assert.equal(doc.openledger.base_model, 'tiny');
    assert.deepEqual(
      doc.openledger.adapters.map((a: any) => [a.name, a.weight]),
      [['style-a', 0.5]],
    );
    assert.match(doc.openledger.receipt.hash, /^[0-9a-f]{64}$/);
    assert.ok(doc.openledger.timings.tokens_per_second > 0);
    // The receipt is the one the node recorded for this call.
    const [row] = await node.node.context.database.db
      .select()
      .from(schema.inferenceUsage)
      .where(eq(schema.inferenceUsage.id, doc.openledger.receipt.id));
    assert.equal(row?.receiptHash, doc.openledger.receipt.hash);
  });

  it('chat streams the answer to stdout and reports tokens/s and adapters on stderr', async () => {
    const result = await cli(
      node.url,
      [
        'chat',
        '--model',
        'style-a',
        '--max-tokens',
        '24',
        '--key',
        node.callerKey,
        '--temperature',
        '0',
      ],
      'Hello there',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.trim().length > 0, 'an answer on stdout');
    assert.match(
      result.stderr,
      /^— \d+ tokens · \d+\.\d tokens\/s · tiny \+ style-a · receipt [0-9a-f]{16}…\n$/,
    );
    // Same request, same seedless greedy answer, through --json: the streamed text is the answer.
    const json = await cli(node.url, [
      'chat',
      'Hello there',
      '--model',
      'style-a',
      '--max-tokens',
      '24',
      '--key',
      node.callerKey,
      '--temperature',
      '0',
      '--json',
    ]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(result.stdout, `${json.json.answer}\n`);
  });

  it('chat answers errors in the CLI shape (--json) and needs a message', async () => {
    const badKey = await cli(node.url, ['chat', 'hi', '--key', 'olk_nope', '--json']);
    assert.equal(badKey.code, 1);
    assert.equal(badKey.json.error.code, 'invalid_api_key');
    const empty = await cli(node.url, ['chat', '--key', node.callerKey, '--json'], '  \n');
    assert.equal(empty.code, 1);
    assert.equal(empty.json.error.code, 'BAD_REQUEST');
  });

  it('unloads a name; the name is then unknown', async () => {
    const unloaded = await cli(node.url, [
      'adapters',
      'unload',
      'style-a',
      '--key',
      node.operatorKey,
      '--json',
    ]);
    assert.equal(unloaded.code, 0, unloaded.stderr);
    assert.deepEqual(
      { name: unloaded.json.name, deleted: unloaded.json.deleted },
      { name: 'style-a', deleted: true },
    );
    assert.match(unloaded.json.id, /^[0-9a-f]{64}$/);
    const gone = await cli(node.url, ['chat', 'hi', '--model', 'style-a', '--key', node.callerKey]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error \[model_not_found\]/);
  });
});
