import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { desc, eq } from 'drizzle-orm';
import OpenAI from 'openai';
import { resolveConfig } from '../src/config.ts';
import { schema } from '../src/db/index.ts';
import { rankByAffinity } from '../src/serving/affinity.ts';
import { receiptHash, type InferenceReceipt } from '../src/serving/index.ts';
import { setKey } from '../src/serving/runtime.ts';
import { call } from './helpers/http.ts';
import { startServingNode, writeTinyAdapter, type ServingNode } from './helpers/serving.ts';

/**
 * Remote backends: node A renders, tokenizes, meters and writes receipts, and forwards the
 * generation to node B (an ordinary serving node, standing in for vLLM: the same OpenAI API,
 * token-id prompts and load_lora_adapter). A's first backend is a dead port, ranked first for
 * the base model, so every base-model call also goes through the retry on the next backend.
 */
describe('OpenLoRA: remote backends', () => {
  let a: ServingNode;
  let b: ServingNode;
  let bClosed = false;
  let shared: string;
  let dead: string;
  let viaA: OpenAI;
  let onB: OpenAI;
  const LONG = 240;

  before(async () => {
    b = await startServingNode({ maxTokens: LONG });
    const bUrl = `${b.url}/v1`;
    // A closed port that outranks B for the base model's key.
    for (;;) {
      const port = await freePort();
      dead = `http://127.0.0.1:${port}/v1`;
      if (rankByAffinity(setKey([]), [dead, bUrl])[0] === dead) break;
    }
    shared = await mkdtemp(path.join(tmpdir(), 'openledger-remote-adapters-'));
    a = await startServingNode({
      maxTokens: LONG,
      remote: {
        backends: [dead, bUrl],
        apiKey: b.operatorKey,
        model: undefined,
        adapterDir: { local: shared, remote: shared },
        adapterFormat: 'gguf',
      },
    });
    viaA = new OpenAI({ apiKey: a.callerKey, baseURL: `${a.url}/v1`, maxRetries: 0 });
    onB = new OpenAI({ apiKey: b.callerKey, baseURL: `${b.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await a?.close();
    if (!bClosed) await b?.close();
    if (shared) await rm(shared, { recursive: true, force: true });
  });

  const complete = (client: OpenAI, model: string, prompt: string, extra = {}) =>
    client.completions.create({
      model,
      prompt,
      max_tokens: 24,
      temperature: 0,
      seed: 1,
      ...extra,
    } as OpenAI.CompletionCreateParamsNonStreaming);
  const rowsOf = (node: ServingNode) =>
    node.node.context.database.db
      .select()
      .from(schema.inferenceUsage)
      .orderBy(desc(schema.inferenceUsage.createdAt));

  it('forwards completions and chats, retrying past a dead backend, with the same output as local generation', async () => {
    const { data: remote, response } = await complete(viaA, 'tiny', 'hello there').withResponse();
    const local = await complete(onB, 'tiny', 'hello there');
    assert.equal(remote.choices[0]!.text, local.choices[0]!.text);
    assert.equal(remote.choices[0]!.finish_reason, local.choices[0]!.finish_reason);
    assert.deepEqual(remote.usage, local.usage);
    const ext = (remote as unknown as { openledger: { backend: string; base_model: string } })
      .openledger;
    assert.equal(ext.backend, `${b.url}/v1`);
    assert.equal(ext.base_model, 'tiny');

    const chat = (client: OpenAI) =>
      client.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'tell me a story' }],
        max_tokens: 24,
        temperature: 0,
      });
    const [chatA, chatB] = [await chat(viaA), await chat(onB)];
    assert.equal(chatA.choices[0]!.message.content, chatB.choices[0]!.message.content);
    assert.deepEqual(chatA.usage, chatB.usage);

    // A's usage row and receipt, as for local generation; B's row hashes the same tokens.
    const receiptId = response.headers.get('x-openledger-receipt-id')!;
    const [row] = await a.node.context.database.db
      .select()
      .from(schema.inferenceUsage)
      .where(eq(schema.inferenceUsage.id, receiptId));
    assert.ok(row, 'A wrote the usage row');
    assert.equal(row.receiptHash, response.headers.get('x-openledger-receipt-hash'));
    assert.equal(receiptHash(row.receipt as InferenceReceipt), row.receiptHash);
    assert.equal(row.completionTokens, local.usage!.completion_tokens);
    assert.equal(row.status, 'completed');
    const input = (row.receipt as InferenceReceipt).inputSha256;
    const onBRows = await rowsOf(b);
    assert.ok(
      onBRows.some((r) => (r.receipt as InferenceReceipt).inputSha256 === input),
      'B received exactly the prompt tokens A hashed',
    );

    // The dead backend was tried, marked down, and is reported.
    const engine = (await call(a.url, 'GET', '/v1/lora_adapters', { token: a.callerKey })).body
      .engine;
    const [down, up] = engine.remotes as { healthy: boolean; failures: number; served: number }[];
    assert.ok(down!.failures >= 1 && !down!.healthy, JSON.stringify(engine.remotes));
    assert.ok(up!.served >= 2 && up!.healthy);
    const health = await call(a.url, 'GET', '/healthz');
    assert.equal(health.body.checks.engine.ok, true);
    assert.match(health.body.checks.engine.detail, /forwarding to 1 of 2 remote backends healthy/);
  });

  it('streams through the official openai client, with usage', async () => {
    const stream = await viaA.completions.create({
      model: 'tiny',
      prompt: 'the quick brown fox',
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    const local = await complete(onB, 'tiny', 'the quick brown fox');
    assert.equal(text, local.choices[0]!.text);
    assert.deepEqual(usage, local.usage);
  });

  it('loads an adapter on the backend through load_lora_adapter and serves it', async () => {
    const file = path.join(a.dataDir, 'style.gguf');
    await writeTinyAdapter(file, 3, { scale: 0.5 });
    const loaded = await call(a.url, 'POST', '/v1/load_lora_adapter', {
      token: a.operatorKey,
      body: { lora_name: 'style', lora_path: file },
    });
    assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    const sha = loaded.body.id as string;

    const styled = await complete(viaA, 'style', 'hello there');
    const again = await complete(viaA, 'style', 'hello there');
    assert.equal(again.choices[0]!.text, styled.choices[0]!.text);
    assert.deepEqual(await readdir(shared), [`${sha}.gguf`], 'written once, by its sha256');
    const onBAdapters = await call(b.url, 'GET', '/v1/lora_adapters', { token: b.callerKey });
    assert.deepEqual(
      onBAdapters.body.data.map((x: { names: string[] }) => x.names),
      [[sha]],
      'B loaded it once, named by its sha256',
    );
    const direct = await complete(onB, sha, 'hello there');
    assert.equal(styled.choices[0]!.text, direct.choices[0]!.text);
    const base = await complete(onB, 'tiny', 'hello there');
    assert.notEqual(styled.choices[0]!.text, base.choices[0]!.text, 'the adapter was applied');
    const [row] = await rowsOf(a);
    assert.deepEqual(row!.adapters, [{ id: sha, weight: 1 }]);

    // A mix is served as its linear merge, made once and loaded on B like any adapter; B
    // composing the two sources itself (llama.cpp, two LoRAs) gives the same completion.
    const toneFile = path.join(a.dataDir, 'tone.gguf');
    await writeTinyAdapter(toneFile, 4, { scale: 0.5 });
    for (const [node, name, lora] of [
      [a, 'tone', toneFile],
      [b, 'style-b', file],
      [b, 'tone-b', toneFile],
    ] as const) {
      const answer = await call(node.url, 'POST', '/v1/load_lora_adapter', {
        token: node.operatorKey,
        body: { lora_name: name, lora_path: lora },
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
    }
    const mix = { adapters: [{ id: 'tone', weight: 0.5 }] };
    const mixed = await complete(viaA, 'style', 'hello there', mix);
    const composed = await complete(onB, 'style-b', 'hello there', {
      adapters: [{ id: 'tone-b', weight: 0.5 }],
    });
    assert.equal(mixed.choices[0]!.text, composed.choices[0]!.text);
    assert.notEqual(mixed.choices[0]!.text, styled.choices[0]!.text);
    assert.equal((await readdir(shared)).length, 2, 'the merge was written beside the adapter');
    assert.equal(
      (await complete(viaA, 'style', 'hello there', mix)).choices[0]!.text,
      mixed.choices[0]!.text,
    );
    assert.equal((await readdir(shared)).length, 2, 'and made once');

    // One adapter at another weight would be a merge of one: refused before it is queued.
    await assert.rejects(
      complete(viaA, 'tiny', 'hi', { adapters: [{ id: 'style', weight: 0.5 }] }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError);
        assert.equal(error.status, 400);
        assert.equal(error.code, 'adapter_mix_unsupported');
        return true;
      },
    );
  });

  it('takes token ids as the prompt, and refuses ids outside the vocabulary', async () => {
    const ids = await call(b.url, 'POST', '/v1/completions', {
      token: b.callerKey,
      body: { model: 'tiny', prompt: [1, 40, 41, 42], max_tokens: 4, temperature: 0 },
    });
    assert.equal(ids.status, 200, JSON.stringify(ids.body));
    assert.equal(ids.body.usage.prompt_tokens, 4);
    const bad = await call(b.url, 'POST', '/v1/completions', {
      token: b.callerKey,
      body: { model: 'tiny', prompt: [1, 512], max_tokens: 4 },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'prompt');
  });

  it('stops the remote generation when the client disconnects', async () => {
    let longPrompt: string | undefined;
    for (const candidate of ['a', 'the', 'once upon', 'hello', 'sea and sky', 'zz', 'q']) {
      const answer = await complete(onB, 'tiny', candidate, { max_tokens: LONG });
      if (answer.usage!.completion_tokens === LONG) {
        longPrompt = candidate;
        break;
      }
    }
    assert.ok(longPrompt, 'a prompt the random model completes at length');
    const controller = new AbortController();
    const response = await fetch(`${a.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.callerKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        prompt: longPrompt,
        max_tokens: LONG,
        temperature: 0,
        stream: true,
      }),
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    const receiptId = response.headers.get('x-openledger-receipt-id')!;
    await response.body!.getReader().read();
    controller.abort();
    const until = async (check: () => Promise<boolean>) => {
      for (let i = 0; i < 400 && !(await check()); i++) await sleep(5);
      assert.ok(await check(), 'timed out waiting');
    };
    await until(async () => {
      const [row] = await a.node.context.database.db
        .select()
        .from(schema.inferenceUsage)
        .where(eq(schema.inferenceUsage.id, receiptId));
      return row?.status === 'cancelled' && row.completionTokens < LONG;
    });
    // B saw its client (A) go away too.
    await until(async () => (await rowsOf(b))[0]?.status === 'cancelled');
  });

  it('answers remote_backend_failed (502) when no backend answers', async () => {
    await b.close();
    bClosed = true;
    await assert.rejects(complete(viaA, 'tiny', 'hello'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError, String(error));
      assert.equal(error.status, 502);
      assert.equal(error.code, 'remote_backend_failed');
      assert.match(error.message, /could not be reached/);
      return true;
    });
    const health = await call(a.url, 'GET', '/healthz');
    assert.equal(health.status, 503);
    assert.equal(health.body.checks.engine.ok, false);
  });
});

describe('up --remote-backend flags', () => {
  const serving = (flags: Parameters<typeof resolveConfig>[0], env = {}) =>
    resolveConfig({ dataDir: tmpdir(), ...flags }, env).serving;

  it('resolves the remote backends from flags or the environment', () => {
    assert.equal(serving({}).remote, undefined);
    assert.deepEqual(
      serving({
        remoteBackend: ['http://gpu1:8000/v1', 'http://gpu2:8000/'],
        remoteAdapterDir: '/srv/adapters=/mnt/adapters/',
        remoteAdapterFormat: 'gguf',
      }).remote,
      {
        backends: ['http://gpu1:8000/v1', 'http://gpu2:8000/v1'],
        apiKey: undefined,
        model: undefined,
        adapterDir: { local: '/srv/adapters', remote: '/mnt/adapters' },
        adapterFormat: 'gguf',
      },
    );
    const fromEnv = serving(
      {},
      {
        OPENLEDGER_REMOTE_BACKENDS: 'http://a:1, http://b:2/v1',
        OPENLEDGER_REMOTE_API_KEY: 'k',
        OPENLEDGER_REMOTE_MODEL: 'llama',
      },
    ).remote!;
    assert.deepEqual(fromEnv.backends, ['http://a:1/v1', 'http://b:2/v1']);
    assert.equal(fromEnv.apiKey, 'k');
    assert.equal(fromEnv.model, 'llama');
    assert.equal(fromEnv.adapterFormat, 'peft');
  });

  it('refuses bad remote settings with CONFIG_INVALID', () => {
    for (const [flags, message] of [
      [{ remoteModel: 'x' }, /--remote-model needs --remote-backend/],
      [{ remoteBackend: ['ftp://x'] }, /http\(s\) URL/],
      [{ remoteBackend: ['not a url'] }, /not a valid URL/],
      [{ remoteBackend: ['http://a/v1', 'http://a'] }, /same server twice/],
      [{ remoteBackend: ['http://a'], remoteAdapterFormat: 'onnx' }, /peft, gguf/],
      [{ remoteBackend: ['http://a'], remoteAdapterDir: '=/x' }, /--remote-adapter-dir must be/],
    ] as const) {
      assert.throws(
        () => serving(flags as never),
        (error: { code?: string; message: string }) =>
          error.code === 'CONFIG_INVALID' && message.test(error.message),
      );
    }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
