/**
 * Benchmark of the span channel of attribution (src/attribution): what indexing a datanet version
 * costs, and how long the trace of one output takes on a large index.
 *
 *   node --import tsx bench/attribution.ts [--tokens 20000000] [--shards 4] [--traces 200]
 *     [--vocab 32000] [--seed 1] [--json]
 *
 * Rows of generated token ids (Zipf-distributed over `--vocab` ids, 50-800 tokens a row, so that
 * short n-grams repeat like words do and long ones are unique like text is) up to `--tokens`
 * tokens are cut into `--shards` shards, as the versions of a datanet would be. Each shard is
 * built (SA-IS suffix array, bucket table) and encoded to its blob format: seconds per million
 * tokens. Then `--traces` outputs of 500 tokens are traced over all shards: half reproduce pieces
 * of rows (20-120 tokens each) between generated tokens, half are wholly generated; p50/p95/max
 * latency in ms. The trace uses the node's defaults (spans ≥ 8 tokens, ≤ 10 occurrences).
 *
 * Markdown goes to stdout (progress to stderr); with --json, one JSON document instead.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { SpanIndex, SpanShard, type ShardRow } from '../src/attribution/index.ts';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '20000000' },
    shards: { type: 'string', default: '4' },
    traces: { type: 'string', default: '200' },
    vocab: { type: 'string', default: '32000' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const TOKENS = Number(values.tokens);
const SHARDS = Number(values.shards);
const TRACES = Number(values.traces);
const VOCAB = Number(values.vocab);
const log = (text: string) => process.stderr.write(`${text}\n`);

/** mulberry32: a small seeded generator, the same stream on every machine. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(Number(values.seed));

/** Zipf(1) over [0, VOCAB) by inverse CDF on a table. */
const cdf = new Float64Array(VOCAB);
{
  let sum = 0;
  for (let k = 0; k < VOCAB; k++) cdf[k] = sum += 1 / (k + 1);
  for (let k = 0; k < VOCAB; k++) cdf[k]! /= sum;
}
function zipf(): number {
  const u = rnd();
  let lo = 0;
  let hi = VOCAB - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

log(`generating ${TOKENS} tokens`);
const rows: Int32Array[] = [];
let total = 0;
while (total < TOKENS) {
  const length = Math.min(TOKENS - total, 50 + Math.floor(rnd() * 750));
  const row = new Int32Array(length);
  for (let i = 0; i < length; i++) row[i] = zipf();
  rows.push(row);
  total += length;
}

const shards: SpanShard[] = [];
const builds: {
  tokens: number;
  rows: number;
  buildSeconds: number;
  encodeSeconds: number;
  bytes: number;
}[] = [];
const per = Math.ceil(rows.length / SHARDS);
for (let s = 0; s < SHARDS; s++) {
  const part = rows.slice(s * per, (s + 1) * per);
  const input = part.map((tokens, i) => ({
    row: {
      rowHash: `${s}-${i}`,
      contributor: `0x${(i % 1000).toString(16).padStart(40, '0')}`,
      contributionId: `${s}-${i}`,
      committedAt: s,
      submittedAt: i,
    } satisfies ShardRow,
    tokens,
  }));
  const t0 = performance.now();
  const shard = SpanShard.build(
    { datanetId: 1, version: s + 1, tokenizer: 'bench', separator: VOCAB },
    input,
  );
  const t1 = performance.now();
  const bytes = shard.encode().length;
  const t2 = performance.now();
  shards.push(shard);
  builds.push({
    tokens: shard.tokenCount,
    rows: part.length,
    buildSeconds: (t1 - t0) / 1000,
    encodeSeconds: (t2 - t1) / 1000,
    bytes,
  });
  log(`shard ${s + 1}: ${shard.tokenCount} tokens in ${((t1 - t0) / 1000).toFixed(2)} s`);
}
const indexed = builds.reduce((n, b) => n + b.tokens, 0);
const buildSeconds = builds.reduce((n, b) => n + b.buildSeconds, 0);
const encodeSeconds = builds.reduce((n, b) => n + b.encodeSeconds, 0);

const t0 = performance.now();
const index = new SpanIndex(shards);
const openMs = performance.now() - t0;

const latencies: number[] = [];
const spans: number[] = [];
for (let t = 0; t < TRACES; t++) {
  const output: number[] = [];
  const copies = t % 2 === 0;
  while (output.length < 500) {
    if (copies && rnd() < 0.5) {
      const row = rows[Math.floor(rnd() * rows.length)]!;
      const length = 20 + Math.floor(rnd() * 100);
      const start = Math.floor(rnd() * Math.max(1, row.length - length));
      output.push(...row.subarray(start, start + length));
    } else for (let k = 0; k < 20; k++) output.push(zipf());
  }
  output.length = 500;
  const started = performance.now();
  const result = index.trace(output);
  latencies.push(performance.now() - started);
  spans.push(result.spans.length);
}
const sorted = [...latencies].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

const result = {
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
  },
  date: new Date().toISOString().slice(0, 10),
  index: {
    tokens: indexed,
    shards: SHARDS,
    vocab: VOCAB,
    buildSeconds,
    buildSecondsPerMillion: buildSeconds / (indexed / 1e6),
    encodeSecondsPerMillion: encodeSeconds / (indexed / 1e6),
    bytesPerToken: builds.reduce((n, b) => n + b.bytes, 0) / indexed,
    openMs,
  },
  trace: {
    outputTokens: 500,
    traces: TRACES,
    p50Ms: pct(0.5),
    p95Ms: pct(0.95),
    maxMs: sorted[sorted.length - 1]!,
    meanSpansWithCopies:
      spans.filter((_, i) => i % 2 === 0).reduce((a, b) => a + b, 0) / Math.ceil(TRACES / 2),
    meanSpansGenerated:
      spans.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0) / Math.floor(TRACES / 2),
  },
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
};

if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  const f = (x: number, d = 2) => x.toFixed(d);
  process.stdout.write(
    [
      `| index tokens | shards | build s / M tokens | encode s / M tokens | bytes / token | open index ms |`,
      `| --- | --- | --- | --- | --- | --- |`,
      `| ${indexed} | ${SHARDS} | ${f(result.index.buildSecondsPerMillion, 3)} | ${f(result.index.encodeSecondsPerMillion, 3)} | ${f(result.index.bytesPerToken)} | ${f(openMs, 1)} |`,
      '',
      `| trace of 500 tokens | p50 ms | p95 ms | max ms | spans (copies / generated) |`,
      `| --- | --- | --- | --- | --- |`,
      `| ${TRACES} traces | ${f(result.trace.p50Ms)} | ${f(result.trace.p95Ms)} | ${f(result.trace.maxMs)} | ${f(result.trace.meanSpansWithCopies, 1)} / ${f(result.trace.meanSpansGenerated, 1)} |`,
      '',
      `peak RSS ${result.peakRssMiB} MiB; ${result.machine.cpu}, ${result.machine.cores} cores, Node ${result.machine.node}, ${result.date}`,
      '',
    ].join('\n'),
  );
}
