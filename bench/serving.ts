/**
 * OpenLoRA serving benchmark (issue #5): what adapters cost a serving node.
 *
 *   node --import tsx bench/serving.ts [--adapters 1000] [--seconds 20] [--json]
 *
 * A whole node runs in this process (real HTTP, real llama.cpp, the embedded database) on a
 * seeded random llama of the stories15M shape (15M parameters, 32000-token vocabulary), with
 * seeded rank-8 adapters on q, k, v and o of every layer (442 KiB each). It measures, in one
 * run so that the ratios survive a noisy shared machine:
 *
 * 1. time to first token (streamed, at the client) with a cold adapter — its first call, so
 *    llama.cpp attaches it from the file — against the same adapter warm, and the base alone;
 * 2. aggregate completion tokens/s of `--clients` closed-loop clients drawing 1, 32 and N
 *    distinct adapters under Zipf(1) popularity, each relative to the base model alone;
 * 3. the node's resident memory after every one of N adapters has been served.
 *
 * The adapter files were just written, so "cold" means attached from the page cache, not the
 * disk (dropping the cache needs root); docs/benchmarks.md says so.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { devAccount } from '../src/chain/index.ts';
import { resolveConfig } from '../src/config.ts';
import { LoraAdapter, Prng, saveLoraGguf } from '../src/engine/index.ts';
import { startNode } from '../src/node/index.ts';
import { call, signIn } from '../test/helpers/http.ts';
import { writeStories15mShape } from './models.ts';

// glibc keeps freed adapter buffers in per-thread arenas unless told otherwise (docs/serving.md):
// measure the node as the docs tell operators to run it.
const MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };
if (process.env.MALLOC_ARENA_MAX === undefined) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...MALLOC_ENV },
  });
  process.exit(child.status ?? 1);
}

const { values: args } = parseArgs({
  options: {
    adapters: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    clients: { type: 'string', default: '4' },
    samples: { type: 'string', default: '40' },
    budget: { type: 'string', default: '256' },
    json: { type: 'boolean', default: false },
  },
});
const ADAPTERS = Number(args.adapters);
const SECONDS = Number(args.seconds);
const CLIENTS = Number(args.clients);
const SAMPLES = Number(args.samples);
const BUDGET_MIB = Number(args.budget);
const RANK = 8;
const MAX_TOKENS = 32;
const STORIES = { dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, headDim: 48 };
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  log(`writing the base model and ${ADAPTERS} rank-${RANK} adapters…`);
  const models = path.join(work, 'models');
  await mkdir(models, { recursive: true });
  await writeStories15mShape(path.join(models, 'stories15m-shape.gguf'), { neverEos: true });
  const adapterFiles: string[] = [];
  for (let i = 0; i < ADAPTERS; i++) {
    const file = path.join(work, 'adapters', `a${i}.gguf`);
    await mkdir(path.dirname(file), { recursive: true });
    const adapter = LoraAdapter.create(
      STORIES,
      {
        rank: RANK,
        alpha: RANK,
        dropout: 0,
        targets: ['attn_q', 'attn_k', 'attn_v', 'attn_output'],
      },
      i + 1,
    );
    const random = new Prng(1_000_000 + i);
    for (const layer of adapter.layers)
      for (const pair of Object.values(layer))
        for (let j = 0; j < pair.b.length; j++) pair.b[j] = 0.02 * random.normal();
    await saveLoraGguf(file, adapter, { alpha: RANK, baseModelName: 'stories15m-shape' });
    adapterFiles.push(file);
  }

  const dataDir = path.join(work, 'data');
  const config = resolveConfig({ port: '0', chainPort: '0', dataDir, logLevel: 'silent' }, {});
  const node = await startNode({
    ...config,
    modelsDirs: [models],
    serving: {
      ...config.serving,
      baseModels: ['stories15m-shape'],
      threads: os.availableParallelism(),
      adapterBudgetBytes: BUDGET_MIB * 1024 * 1024,
      maxConcurrent: CLIENTS,
      maxQueue: 1024,
      maxTokens: 256,
    },
  });
  try {
    const operator = await apiKey(node.url, 0);
    const caller = await apiKey(node.url, 1);
    log('registering adapters through /v1/load_lora_adapter…');
    for (const [i, file] of adapterFiles.entries()) {
      const loaded = await call(node.url, 'POST', '/v1/load_lora_adapter', {
        token: operator,
        body: { lora_name: `a${i}`, lora_path: file },
      });
      if (loaded.status !== 200) throw new Error(`load a${i}: ${JSON.stringify(loaded.body)}`);
    }
    const client = new Client(node.url, caller);
    await client.complete('stories15m-shape', 4); // warm the base and its first context
    const baseOnly = await residentMiB();

    log('time to first token: cold adapter vs warm vs base…');
    const ttft = { cold: [] as number[], warm: [] as number[], base: [] as number[] };
    for (let i = 0; i < Math.min(SAMPLES, ADAPTERS); i++) {
      const name = `a${ADAPTERS - 1 - i}`; // never called before: cold
      ttft.cold.push(await client.firstToken(name));
      ttft.warm.push(await client.firstToken(name));
      ttft.base.push(await client.firstToken('stories15m-shape'));
    }

    log('throughput under Zipf traffic…');
    // Two rounds, the second in reverse order, so a drift of the machine's speed during the
    // run weighs on every configuration alike.
    const configs = [0, 1, 32, ADAPTERS].map((distinct) => {
      const pick = zipf(Math.max(1, distinct), 1, 7 + distinct);
      return {
        adapters: distinct,
        model: distinct === 0 ? () => 'stories15m-shape' : () => `a${pick()}`,
        tokens: 0,
        requests: 0,
        seconds: 0,
      };
    });
    for (const round of [configs, [...configs].reverse()]) {
      for (const config of round) {
        const measured = await client.throughput(config.model, SECONDS / 2);
        config.tokens += measured.tokens;
        config.requests += measured.requests;
        config.seconds += measured.seconds;
      }
    }
    const rows = configs.map((c) => ({
      adapters: c.adapters,
      tokensPerSecond: c.tokens / c.seconds,
      requests: c.requests,
    }));
    const base = rows[0]!;
    for (const row of rows)
      log(`  ${row.adapters} adapters: ${row.tokensPerSecond.toFixed(1)} tokens/s`);

    log(`resident memory: serving each of the ${ADAPTERS} adapters once…`);
    const before = await residentMiB();
    let peak = before;
    for (let i = 0; i < ADAPTERS; i++) {
      await client.complete(`a${i}`, 1);
      if (i % 10 === 0) peak = Math.max(peak, await residentMiB());
    }
    const after = await residentMiB();
    peak = Math.max(peak, after);
    const state = await call(node.url, 'GET', '/v1/lora_adapters', { token: operator });
    const recycles = (state.body.engine.bases as { recycles: number }[])[0]?.recycles;

    const result = {
      machine: `${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      date: new Date().toISOString().slice(0, 10),
      adapters: ADAPTERS,
      adapterBytes: (await readFile(adapterFiles[0]!)).length,
      budgetMiB: BUDGET_MIB,
      clients: CLIENTS,
      ttftMs: {
        cold: quantiles(ttft.cold),
        warm: quantiles(ttft.warm),
        base: quantiles(ttft.base),
        addedCold: quantiles(ttft.cold.map((c, i) => c - ttft.warm[i]!)),
      },
      throughput: rows.map((r) => ({
        ...r,
        relativeToBase: r.tokensPerSecond / base.tokensPerSecond,
      })),
      residentMiB: { baseOnly, before, peak, after, recycles },
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const ms = (q: { p50: number; p95: number }) => `${q.p50.toFixed(1)} / ${q.p95.toFixed(1)}`;
    const out = [
      `Machine: ${result.machine}; ${result.date}. Base: random stories15M-shape llama (F32);`,
      `adapters: rank ${RANK} on q/k/v/o, ${(result.adapterBytes / 1024).toFixed(0)} KiB each; budget ${BUDGET_MIB} MiB; ${CLIENTS} clients, ${MAX_TOKENS} tokens per request.`,
      '',
      '| time to first token (ms)  | p50 / p95 |',
      '| ------------------------- | --------- |',
      `| base model                | ${ms(result.ttftMs.base)} |`,
      `| warm adapter              | ${ms(result.ttftMs.warm)} |`,
      `| cold adapter (first call) | ${ms(result.ttftMs.cold)} |`,
      `| added by a cold adapter   | ${ms(result.ttftMs.addedCold)} |`,
      '',
      '| distinct adapters (Zipf 1) | tokens/s | vs base | requests |',
      '| -------------------------- | -------- | ------- | -------- |',
      ...result.throughput.map(
        (r) =>
          `| ${r.adapters === 0 ? 'none (base model)' : r.adapters} | ${r.tokensPerSecond.toFixed(1)} | ${(r.relativeToBase * 100).toFixed(1)} % | ${r.requests} |`,
      ),
      '',
      `Resident memory of the node's process: ${baseOnly.toFixed(0)} MiB with the base model alone; ${before.toFixed(0)} MiB after the throughput runs; ` +
        `peak ${peak.toFixed(0)} MiB and ${after.toFixed(0)} MiB at the end of serving each of the ${ADAPTERS} adapters once ` +
        `(${((ADAPTERS * result.adapterBytes) / 2 ** 20).toFixed(0)} MiB of adapters in all, budget ${BUDGET_MIB} MiB; ${recycles ?? '?'} model recycles).`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await node.close();
  }
}

async function apiKey(url: string, account: number): Promise<string> {
  const token = await signIn(url, devAccount(account));
  const created = await call(url, 'POST', '/api/keys', { token, body: { name: 'bench' } });
  return created.body.key as string;
}

class Client {
  constructor(
    private readonly url: string,
    private readonly key: string,
  ) {}

  private request(model: string, maxTokens: number, stream: boolean): Promise<Response> {
    return fetch(`${this.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        prompt: 'Once upon a time there was a little',
        max_tokens: maxTokens,
        temperature: 0,
        stream,
      }),
    });
  }

  /** Completion tokens of one non-streamed request. */
  async complete(model: string, maxTokens: number): Promise<number> {
    const response = await this.request(model, maxTokens, false);
    const body = (await response.json()) as { usage?: { completion_tokens: number } };
    if (!response.ok) throw new Error(`${model}: ${JSON.stringify(body)}`);
    return body.usage!.completion_tokens;
  }

  /** Milliseconds from sending to the first streamed text delta. */
  async firstToken(model: string): Promise<number> {
    const started = performance.now();
    const response = await this.request(model, 2, true);
    if (!response.ok || !response.body) throw new Error(`${model}: ${await response.text()}`);
    const decoder = new TextDecoder();
    let seen = '';
    let at: number | undefined;
    for await (const chunk of response.body) {
      seen += decoder.decode(chunk as Uint8Array, { stream: true });
      if (at === undefined && /"text":"[^"]/.test(seen)) at = performance.now() - started;
    }
    if (at === undefined) throw new Error(`${model}: no text streamed`);
    return at;
  }

  /** Closed-loop clients for `seconds`: completion tokens, requests and the wall time. */
  async throughput(
    model: () => string,
    seconds: number,
  ): Promise<{ tokens: number; requests: number; seconds: number }> {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let tokens = 0;
    let requests = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < deadline) {
          const name = model();
          const generated = await this.complete(name, MAX_TOKENS);
          // Every request must cost the same tokens, or tokens/s compares unlike work.
          if (generated !== MAX_TOKENS)
            throw new Error(`${name} stopped after ${generated} tokens`);
          tokens += generated;
          requests++;
        }
      }),
    );
    return { tokens, requests, seconds: (performance.now() - started) / 1000 };
  }
}

/** Ranks 0..n-1 drawn with probability ∝ 1/(rank+1)^s, seeded. */
function zipf(n: number, s: number, seed: number): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (let k = 1; k <= n; k++) cumulative.push((total += 1 / k ** s));
  const random = new Prng(seed);
  return () => {
    const u = random.uniform() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function quantiles(values: number[]): { p50: number; p95: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p95: at(0.95) };
}

async function residentMiB(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

// Last: main() uses the class and functions above.
const work = await mkdtemp(path.join(os.tmpdir(), 'openledger-bench-serving-'));
try {
  await main();
} finally {
  await rm(work, { recursive: true, force: true });
}
