// Engine benchmark: our TypeScript kernels, inference and LoRA training against llama.cpp in one
// run, so the figures compare as ratios on a shared, noisy machine.
//
//   node --import tsx bench/engine.ts [--json]
//
// Models: the trained aidreams260K fixture (when ../shared/fixtures is there) and a generated
// random llama of the stories15M shape (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000),
// written to a temporary folder and deleted afterwards.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { getLlama } from 'node-llama-cpp';
import { normals, writeStories15mShape } from './models.ts';
import {
  LoraAdapter,
  Trainer,
  loadLlamaGguf,
  makeTrainBatch,
  matmul,
} from '../src/engine/index.ts';

const json = process.argv.includes('--json');
const AIDREAMS = path.resolve(
  import.meta.dirname,
  '../../shared/fixtures/models/aidreams260K.gguf',
);

function seconds<T>(run: () => T): [T, number] {
  const started = performance.now();
  const result = run();
  return [result, (performance.now() - started) / 1000];
}

/** Our matmul kernel: out[T][d] = x[T][n] · W[d][n]ᵀ; repeated to ~0.2 s, best of 3. */
function matmulGflops(n: number, d: number, T: number): number {
  const random = normals(3);
  const x = Float32Array.from({ length: T * n }, random);
  const w = Float32Array.from({ length: d * n }, random);
  const out = new Float32Array(T * d);
  const flops = 2 * n * d * T;
  const repeats = Math.max(1, Math.round(4e8 / flops));
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    best = Math.min(
      best,
      seconds(() => {
        for (let r = 0; r < repeats; r++) matmul(out, x, w, n, d, T);
      })[1],
    );
  }
  return (flops * repeats) / best / 1e9;
}

interface ModelResult {
  model: string;
  parameters: number;
  oursGenerate: number;
  llamaCppGenerate: number;
  oursPrompt: number;
  loraTrain: number;
}

async function measure(
  name: string,
  file: string,
  llama: Awaited<ReturnType<typeof getLlama>>,
): Promise<ModelResult> {
  const ours = await loadLlamaGguf(file);
  const prompt = Array.from({ length: 64 }, (_, i) => 3 + ((i * 37) % (ours.config.vocabSize - 3)));
  const newTokens = 64;
  // Warm-up, then greedy generation of newTokens after a one-token prompt.
  ours.generate([1], 8, { stopAtEos: false });
  const [, generateSeconds] = seconds(() => ours.generate([1], newTokens, { stopAtEos: false }));
  const [, promptSeconds] = seconds(() => ours.forwardSequence(prompt));

  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ threads: 2, contextSize: 256 });
  const sequence = context.getSequence();
  let produced = 0;
  const started = performance.now();
  for await (const _token of sequence.evaluate([1 as never], { temperature: 0 })) {
    if (++produced >= newTokens) break;
  }
  const llamaSeconds = (performance.now() - started) / 1000;
  await context.dispose();
  await model.dispose();

  // LoRA training: rank 8 on q and v, one sequence of 64 tokens per step.
  const adapter = LoraAdapter.create(
    ours.config,
    { rank: 8, alpha: 16, dropout: 0, targets: ['attn_q', 'attn_v'] },
    1,
  );
  const trainer = new Trainer(ours, adapter, { learningRate: 1e-3, totalSteps: 10 });
  const batch = makeTrainBatch([{ tokens: prompt.concat(prompt.slice(0, 1)) }], { T: 64 });
  await trainer.trainStep([batch]);
  const steps = 3;
  const trainStarted = performance.now();
  for (let i = 0; i < steps; i++) await trainer.trainStep([batch]);
  const trainSeconds = (performance.now() - trainStarted) / 1000;
  return {
    model: name,
    parameters: ours.parameterCount,
    oursGenerate: newTokens / generateSeconds,
    llamaCppGenerate: produced / llamaSeconds,
    oursPrompt: prompt.length / promptSeconds,
    loraTrain: (steps * 64) / trainSeconds,
  };
}

const machine = {
  cpus: cpus().length,
  cpu: cpus()[0]?.model.trim() ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  date: new Date().toISOString().slice(0, 10),
};
const kernels = [
  { shape: '288×288, T=1 (one token)', gflops: matmulGflops(288, 288, 1) },
  { shape: '288×768, T=64', gflops: matmulGflops(288, 768, 64) },
  { shape: '512×512, T=512', gflops: matmulGflops(512, 512, 512) },
];
// Always pass threads: node-llama-cpp's default of 4 runs hundreds of times slower on 2 cores.
const llama = await getLlama({
  gpu: false,
  build: 'never',
  maxThreads: 2,
  logLevel: 'error' as never,
});
const dir = await mkdtemp(path.join(tmpdir(), 'openledger-bench-engine-'));
const models: ModelResult[] = [];
try {
  if (existsSync(AIDREAMS)) models.push(await measure('aidreams260K (trained)', AIDREAMS, llama));
  const random = path.join(dir, 'stories15m-shape.gguf');
  await writeStories15mShape(random);
  models.push(await measure('random 15M (stories15M shape)', random, llama));
} finally {
  await llama.dispose();
  await rm(dir, { recursive: true, force: true });
}

if (json) {
  console.log(JSON.stringify({ machine, kernels, models }, null, 2));
} else {
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
  console.log(`## Engine (${machine.date})\n`);
  console.log(
    `${machine.cpus} CPUs (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; llama.cpp with 2 threads (one JavaScript round trip per generated token), ours on 1.\n`,
  );
  console.log('| matmul kernel (TypeScript, 1 thread) | GFLOP/s |\n| --- | --- |');
  for (const k of kernels) console.log(`| ${k.shape} | ${f(k.gflops)} |`);
  console.log(
    '\n| model | params | ours: greedy tok/s | llama.cpp: greedy tok/s | ratio | ours: prompt tok/s | ours: LoRA training tok/s (T=64, r=8, q+v) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const m of models) {
    console.log(
      `| ${m.model} | ${(m.parameters / 1e6).toFixed(2)}M | ${f(m.oursGenerate)} | ${f(m.llamaCppGenerate)} | ${(m.oursGenerate / m.llamaCppGenerate).toFixed(2)} | ${f(m.oursPrompt)} | ${f(m.loraTrain)} |`,
    );
  }
}
