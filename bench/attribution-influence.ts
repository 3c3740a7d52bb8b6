/**
 * Benchmark of the influence channel of attribution (src/attribution/influence.ts): what scoring
 * one served output against a training job's gradient sketches costs.
 *
 *   node --import tsx bench/attribution-influence.ts [--rows 10000] [--repeat 3] [--json]
 *
 * The base model is the aidreams260K fixture (/work/shared/fixtures/models; the script stops
 * when it is absent) with a LoRA adapter of rank 8 on attn_q and attn_v (8192 values in 16
 * tensors, B random so gradients reach A), sketched per tensor with K = 128 (2048 dims, a job's
 * default). The sketches are `--rows` random rows: the scoring cost depends on their number and
 * size, not their values. Measured: the output gradient (one forward and backward of prompt +
 * output on the TypeScript backend, and its projection) for outputs of 64 and 128 tokens, and
 * TracIn and DataInf over all rows.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { influenceScores, outputSketch } from '../src/attribution/index.ts';
import {
  LoraAdapter,
  Prng,
  SKETCH_STREAM,
  adapterSketchLayout,
  loadLlamaGguf,
} from '../src/engine/index.ts';
import type { Sketches } from '../src/factory/sketches.ts';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000' },
    repeat: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const rows = Number(args.rows);
const repeat = Number(args.repeat);
const file = path.resolve(import.meta.dirname, '../../shared/fixtures/models/aidreams260K.gguf');
if (!existsSync(file)) {
  console.error(`fixture absent: ${file}`);
  process.exit(1);
}
const model = await loadLlamaGguf(file);
const adapter = LoraAdapter.create(
  model.config,
  { rank: 8, alpha: 16, dropout: 0, targets: ['attn_q', 'attn_v'] },
  1,
);
const prng = new Prng(2);
for (const p of adapter.parameters())
  if (p.kind === 'b') for (let i = 0; i < p.value.length; i++) p.value[i] = 0.01 * prng.normal();
const layout = adapterSketchLayout(adapter, { k: 128 });
const sketches: Sketches = {
  header: {
    kind: 'openledger.gradient-sketches',
    formatVersion: 1,
    seed: 1,
    stream: SKETCH_STREAM,
    projection: 'rademacher',
    loss: 'mean',
    dropout: false,
    step: 1,
    adapterSha256: '',
    backend: 'typescript',
    layout,
    count: rows,
    rows: Array.from({ length: rows }, (_, index) => ({
      index,
      rowHash: String(index),
      tokens: 1,
      loss: 1,
    })),
  },
  values: Float32Array.from({ length: rows * layout.dims }, () => prng.normal()),
};

const result: Record<string, number> = {};
for (const length of [64, 128]) {
  const tokens = Array.from({ length }, (_, i) => 1 + ((i * 7) % 500));
  const example = { promptTokens: tokens.slice(0, 16), outputTokens: tokens.slice(16) };
  await outputSketch({ sketches, model, adapter, example }); // warm-up
  const started = performance.now();
  for (let r = 0; r < repeat; r++) await outputSketch({ sketches, model, adapter, example });
  result[`gradient${length}Ms`] = (performance.now() - started) / repeat;
}
const query = Float64Array.from({ length: layout.dims }, () => prng.normal());
for (const method of ['tracin', 'datainf'] as const) {
  influenceScores(sketches, query, { method });
  const started = performance.now();
  for (let r = 0; r < repeat; r++) influenceScores(sketches, query, { method });
  result[`${method}Ms`] = (performance.now() - started) / repeat;
}
if (args.json) console.log(JSON.stringify({ rows, dims: layout.dims, ...result }));
else {
  const ms = (x: number | undefined) => x!.toFixed(1);
  console.log(
    '| sketch rows × dims | output gradient, 64 / 128 tokens ms | TracIn ms | DataInf ms |',
  );
  console.log('| --- | --- | --- | --- |');
  console.log(
    `| ${rows} × ${layout.dims} | ${ms(result.gradient64Ms)} / ${ms(result.gradient128Ms)} | ${ms(result.tracinMs)} | ${ms(result.datainfMs)} |`,
  );
}
