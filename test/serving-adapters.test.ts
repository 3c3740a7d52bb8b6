import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { devAccount } from '../src/chain/index.ts';
import { Prng } from '../src/engine/index.ts';
import { call } from './helpers/http.ts';
import {
  SERVING_MALLOC_ENV,
  publishServingModel,
  startServingNode,
  writeTinyAdapter,
  type ServingNode,
} from './helpers/serving.ts';

const MiB = 1024 * 1024;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The engine's view: which adapters are in memory, and the base model's counters. */
async function engineState(node: Pick<ServingNode, 'url' | 'callerKey'>) {
  const answer = await call(node.url, 'GET', '/v1/lora_adapters', { token: node.callerKey });
  assert.equal(answer.status, 200);
  return answer.body as {
    data: { id: string; names: string[]; resident: boolean; pinned: boolean }[];
    engine: { bases: { recycles: number; attachedBytes: number; adapterBudgetBytes: number }[] };
  };
}

describe('OpenLoRA: adapters just in time, by content hash, under a byte budget', () => {
  let node: ServingNode;
  let client: OpenAI;
  let adapterBytes: number;
  before(async () => {
    // Rank-4 adapters of the tiny model are ~82 KB: a budget of 3.5 of them.
    const probe = path.join(process.env.TMPDIR ?? '/tmp', `openledger-probe-${process.pid}.gguf`);
    await writeTinyAdapter(probe, 1);
    adapterBytes = (await stat(probe)).size;
    node = await startServingNode({ adapterBudgetBytes: Math.floor(3.5 * adapterBytes) });
    client = new OpenAI({ apiKey: node.callerKey, baseURL: `${node.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await node?.close();
  });

  it('serves an adapter from the blob store by its hash, and a published Model ID', async () => {
    const file = path.join(node.dataDir, 'from-blob.gguf');
    await writeTinyAdapter(file, 42, { scale: 0.5 });
    const { id } = await node.node.context.blobs.put(await readFile(file));
    const byHash = await client.completions.create({
      model: `adapter:${id}`,
      prompt: 'once upon a time',
      max_tokens: 8,
      temperature: 0,
    });
    const plain = await client.completions.create({
      model: 'tiny',
      prompt: 'once upon a time',
      max_tokens: 8,
      temperature: 0,
    });
    assert.notEqual(byHash.choices[0]!.text, plain.choices[0]!.text);

    // A published model: its ModelRegistry record on-chain and the node's mirror of it.
    const modelId = await publishServingModel(node, {
      owner: devAccount(1),
      adapterBlob: id,
      name: 'storyteller',
    });
    const { data, response } = await client.completions
      .create({
        model: `model:${modelId}`,
        prompt: 'once upon a time',
        max_tokens: 8,
        temperature: 0,
      })
      .withResponse();
    assert.equal(data.choices[0]!.text, byHash.choices[0]!.text);
    const receipt = (data as unknown as { openledger: { published_model_id: number } }).openledger;
    assert.equal(receipt.published_model_id, modelId);
    assert.ok(response.headers.get('x-openledger-receipt-hash'));
    const listed = await client.models.list();
    assert.ok(listed.data.some((m) => m.id === `model:${modelId}`));

    const missing = await call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: { model: `adapter:${'ab'.repeat(32)}`, prompt: 'x', max_tokens: 1 },
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'adapter_not_found');
  });

  it('keeps the most recently used and pinned adapters through a recycle, drops the rest', async () => {
    const names = ['lru-a', 'lru-b', 'lru-c', 'lru-d'];
    for (const [i, name] of names.entries()) {
      const file = path.join(node.dataDir, `${name}.gguf`);
      await writeTinyAdapter(file, 100 + i);
      const loaded = await call(node.url, 'POST', '/v1/load_lora_adapter', {
        token: node.operatorKey,
        body: { lora_name: name, lora_path: file, pinned: name === 'lru-a' },
      });
      assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    }
    const use = (model: string) =>
      client.completions.create({ model, prompt: 'x', max_tokens: 1, temperature: 0 });
    const resident = async () =>
      (await engineState(node)).data
        .filter((a) => a.resident)
        .flatMap((a) => a.names)
        .sort();
    const recycles = async () => (await engineState(node)).engine.bases[0]!.recycles;

    const before = await recycles();
    await use('lru-a');
    await use('lru-b');
    await use('lru-c');
    await use('lru-d');
    // Four adapters (five with the blob adapter of the test before) do not fit in 3.5: the
    // model was recycled. a is pinned and came back; b, the least recently used, did not.
    assert.ok((await recycles()) > before, 'the model was recycled');
    const now = await resident();
    assert.ok(now.includes('lru-a') && now.includes('lru-d'), now.join());
    assert.ok(!now.includes('lru-b'), now.join());
    const state = await engineState(node);
    assert.ok(state.engine.bases[0]!.attachedBytes <= state.engine.bases[0]!.adapterBudgetBytes);

    // a set larger than the whole budget is refused, not served by thrashing
    const tooBig = await call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: {
        model: 'tiny',
        prompt: 'x',
        max_tokens: 1,
        adapters: names.map((id) => ({ id, weight: 0.25 })),
      },
    });
    assert.equal(tooBig.status, 400);
    assert.equal(tooBig.body.error.code, 'adapter_budget_exceeded');
  });
});

/**
 * llama.cpp frees no adapter while its model lives. Rotating through hundreds of distinct
 * adapters must still hold the node's resident memory to the base model plus the adapter
 * budget: the engine recycles the model instance when the budget is reached.
 *
 * The node runs in a process of its own, so that its resident set is measured alone, with the
 * allocator settings docs/serving.md gives for serving (glibc's per-thread arenas and its
 * sliding mmap threshold otherwise keep freed adapter buffers of under 32 MB for reuse, which
 * bounds memory at several times the budget instead).
 */
describe('OpenLoRA: memory stays bounded while a thousand adapters rotate', () => {
  const COUNT = 1000;
  const BUDGET = 16 * MiB;
  let child: ChildProcess;
  let node: Pick<ServingNode, 'url' | 'dataDir' | 'operatorKey' | 'callerKey'> & { pid: number };
  before(async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(import.meta.dirname, 'helpers', 'serving-child.ts'),
        JSON.stringify({ adapterBudgetBytes: BUDGET, maxTokens: 4 }),
      ],
      {
        env: { ...process.env, ...SERVING_MALLOC_ENV },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    node = JSON.parse(line);
  });
  after(async () => {
    if (child && child.exitCode === null) {
      child.stdin!.end();
      await once(child, 'exit');
    }
  });
  const rss = async () => {
    const status = await readFile(`/proc/${node.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  };

  it(`${COUNT} distinct adapters registered through load_lora_adapter, called in random order`, async (t) => {
    // rank 16 over every target: 0.31 MiB each, 312 MiB together, far beyond the budget
    const files: string[] = [];
    for (let i = 0; i < COUNT; i++) {
      const file = path.join(node.dataDir, 'rotation', `adapter-${i}.gguf`);
      await writeTinyAdapter(file, 1000 + i, { rank: 16, randomB: false });
      files.push(file);
    }
    const each = (await stat(files[0]!)).size;
    const total = each * COUNT;
    for (const [i, file] of files.entries()) {
      const loaded = await call(node.url, 'POST', '/v1/load_lora_adapter', {
        token: node.operatorKey,
        body: { lora_name: `rot-${i}`, lora_path: file },
      });
      assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    }
    const complete = async (model: string) => {
      const answer = await call(node.url, 'POST', '/v1/completions', {
        token: node.callerKey,
        body: { model, prompt: 'the sea', max_tokens: 2, temperature: 0 },
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body.openledger.timings as { first_token_ms: number; cold_adapters: boolean };
    };

    // The baseline: the base model loaded and serving (as many calls as the rotation makes, so
    // the database and the JavaScript heap have grown as they will), no adapter yet.
    const baseFloors: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      await complete('tiny');
      if (i % 5 === 0 && (4 * i) % COUNT >= COUNT / 2) {
        const q = Math.floor((4 * i) / COUNT);
        baseFloors[q] = Math.min(baseFloors[q] ?? Infinity, await rss());
      }
    }
    const baseline = await rss();
    t.diagnostic(
      `base-only floors by quarter ${baseFloors.map((f) => `${(f / MiB).toFixed(1)}`).join(' ')} MiB`,
    );
    const baseBytes = (await stat(path.join(node.dataDir, 'models', 'tiny.gguf'))).size;

    const random = new Prng(7);
    const order = Array.from({ length: COUNT }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let peak = 0;
    /** The lowest RSS in the second half of each quarter of the rotation. */
    const quarters: number[] = [];
    const cold: number[] = [];
    const warm: number[] = [];
    const started = performance.now();
    for (const [n, i] of order.entries()) {
      const first = await complete(`rot-${i}`);
      if (first.cold_adapters) cold.push(first.first_token_ms);
      // the same adapter again at once: it is attached (warm)
      if (n % 8 === 0) {
        const again = await complete(`rot-${i}`);
        assert.equal(again.cold_adapters, false);
        warm.push(again.first_token_ms);
      }
      if (n % 5 === 0) {
        const now = await rss();
        peak = Math.max(peak, now);
        // The floor of each quarter's second half: spikes come and go, a leak would lift it.
        const quarter = Math.floor((4 * n) / COUNT);
        if ((4 * n) % COUNT >= COUNT / 2)
          quarters[quarter] = Math.min(quarters[quarter] ?? now, now);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    peak = Math.max(peak, await rss());
    const state = await engineState(node);
    const growth = peak - baseline;
    t.diagnostic(
      `${COUNT} adapters of ${(each / MiB).toFixed(2)} MiB (${(total / MiB).toFixed(0)} MiB in all) in ${seconds.toFixed(1)} s; ` +
        `budget ${BUDGET / MiB} MiB, base ${(baseBytes / MiB).toFixed(2)} MiB; node RSS baseline ${(baseline / MiB).toFixed(0)} MiB, ` +
        `peak ${(peak / MiB).toFixed(0)} MiB (+${(growth / MiB).toFixed(1)} MiB), by quarter ${quarters.map((q) => `+${((q - baseline) / MiB).toFixed(1)}`).join(' ')} MiB; ${state.engine.bases[0]!.recycles} recycles; ` +
        `first token cold p50 ${percentile(cold, 50).toFixed(1)} ms p95 ${percentile(cold, 95).toFixed(1)} ms (${cold.length}), ` +
        `warm p50 ${percentile(warm, 50).toFixed(1)} ms p95 ${percentile(warm, 95).toFixed(1)} ms (${warm.length})`,
    );
    assert.ok(state.engine.bases[0]!.recycles >= Math.floor(total / BUDGET) - 1);
    assert.ok(state.engine.bases[0]!.attachedBytes <= BUDGET);
    // Bounded means level: the node must not keep the adapters it served. Between the first
    // and the last quarter of the rotation 235 MiB of new adapters pass through; if llama.cpp
    // kept them the floor of the resident set would rise by that much. It rose by -2 to +27 MiB
    // in three runs — about what serving the base model alone adds over as many calls (the
    // base-only floors above climb ~5.5 MiB per 250 calls: the node's heap and the embedded
    // database's memory grow with the usage rows). Sampled every 5 calls, the peak over the
    // baseline was +72 to +85 MiB: short spikes, not a trend.
    assert.ok(
      quarters[3]! - quarters[0]! < 48 * MiB,
      `resident memory climbed by ${((quarters[3]! - quarters[0]!) / MiB).toFixed(1)} MiB between the first and the last quarter`,
    );
    assert.ok(
      growth < total / 2,
      `resident memory grew by ${(growth / MiB).toFixed(1)} MiB over ${(total / MiB).toFixed(0)} MiB of adapters`,
    );
  });
});
