// Training benchmark: tokens/s and model FLOP utilisation (MFU) of our trainer, and the memory
// of LoRA against QLoRA, in one run so that the figures compare as ratios on a shared machine.
//
//   node --import tsx bench/training.ts [--json] [--quick]
//
// MFU = achieved model FLOP/s ÷ the matmul peak measured in the same run (onnxruntime's Gemm on
// a large square product, the best any product of ours can do here). Model FLOPs per token
// (PaLM's convention, attention counted without the causal half): forward F = 2·N + 4·L·T·C
// for N weights in the layers and classifier; full training 3·F; LoRA 2·F (no weight gradients
// of the frozen base, the adapter's own products are negligible).
//
// Models: the built-in base model (models/openledger-base-1m.gguf, built by npm install) and a
// generated random llama of the stories15M shape (dim 288, 6 layers, vocab 32000). Memory is
// measured in child processes, one per configuration: resident set size after loading the base,
// preparing it (QLoRA quantizes the projections and drops their float32 arrays) and three
// training steps, after a garbage collection.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import {
  LORA_TARGETS,
  LoraAdapter,
  Trainer,
  createMatmulBackend,
  loadLlamaGguf,
  makeTrainBatch,
  quantizeBase,
  trainingWeightBytes,
  type LlamaConfig,
  type MatmulBackend,
  type TrainingWeights,
} from '../src/engine/index.ts';
import { builtinModelPath } from '../src/factory/builtin/build.ts';
import { normals, writeStories15mShape } from './models.ts';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const THREADS = 2;

/** Best-of-3 GFLOP/s of out [M][N] = A [M][K] · B [N][K]ᵀ on a backend. */
async function gemmGflops(backend: MatmulBackend, M: number, K: number, N: number) {
  const random = normals(3);
  const a = Float32Array.from({ length: M * K }, random);
  const w = Float32Array.from({ length: N * K }, random);
  const out = new Float32Array(M * N);
  const flops = 2 * M * N * K;
  const repeats = Math.max(1, Math.round((backend.native ? 2e10 : 1e9) / flops));
  await backend.forward(out, a, w, M, K, N);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    for (let r = 0; r < repeats; r++) await backend.forward(out, a, w, M, K, N);
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return (flops * repeats) / best / 1e9;
}

/** Forward FLOPs per token at sequence length T (see the header). */
function forwardFlopsPerToken(config: LlamaConfig, T: number): number {
  const { dim: C, hiddenDim: H, nLayers: L, nHeads, nKvHeads, headDim, vocabSize: V } = config;
  const perLayer = C * nHeads * headDim * 2 + 2 * C * nKvHeads * headDim + 3 * C * H;
  return 2 * (L * perLayer + V * C) + 4 * L * T * C;
}

interface Throughput {
  model: string;
  mode: string;
  backend: string;
  batch: string;
  tokensPerSecond: number;
  modelGflops: number;
  mfu: number;
}

async function throughput(
  name: string,
  model: { config: LlamaConfig; weights: TrainingWeights },
  mode: 'full' | 'lora',
  backend: MatmulBackend,
  B: number,
  T: number,
  peak: number,
): Promise<Throughput> {
  const adapter =
    mode === 'lora'
      ? LoraAdapter.create(
          model.config,
          { rank: 8, alpha: 16, dropout: 0, targets: [...LORA_TARGETS] },
          1,
        )
      : null;
  const trainer = new Trainer(model, adapter, {
    backend,
    trainBase: mode === 'full',
    learningRate: 1e-4,
    totalSteps: 1000,
  });
  const V = model.config.vocabSize;
  const examples = Array.from({ length: B }, (_, b) => ({
    tokens: Array.from({ length: T + 1 }, (_, t) => 3 + ((b * 131 + t * 37) % (V - 3))),
  }));
  const batch = makeTrainBatch(examples);
  await trainer.trainStep([batch]); // warm-up: buffers, JIT
  const steps = quick ? 2 : 4;
  const started = performance.now();
  for (let s = 0; s < steps; s++) await trainer.trainStep([batch]);
  const seconds = (performance.now() - started) / 1000;
  const tokensPerSecond = (steps * B * T) / seconds;
  const flops = (mode === 'full' ? 3 : 2) * forwardFlopsPerToken(model.config, T) * tokensPerSecond;
  return {
    model: name,
    mode: mode === 'full' ? 'full training' : 'LoRA r=8, all 7 targets',
    backend: backend.name,
    batch: `${B}×${T}`,
    tokensPerSecond,
    modelGflops: flops / 1e9,
    mfu: flops / 1e9 / peak,
  };
}

// ---------------------------------------------------------------------------------------------
// Memory probe (a child process per configuration)

async function memoryProbe(file: string, mode: 'lora' | 'q8_0' | 'q4_0'): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const loaded = await loadLlamaGguf(file);
  const model: { config: LlamaConfig; weights: TrainingWeights } =
    mode === 'lora' ? loaded : { config: loaded.config, weights: quantizeBase(loaded, mode) };
  const baseBytes = trainingWeightBytes(model.weights);
  const config = model.config;
  // drop every float32 projection the QLoRA copy no longer needs
  if (mode !== 'lora') (loaded as { weights: unknown }).weights = null;
  const backend = await createMatmulBackend({ threads: THREADS });
  const adapter = LoraAdapter.create(
    config,
    { rank: 8, alpha: 16, dropout: 0, targets: [...LORA_TARGETS] },
    1,
  );
  const trainer = new Trainer(model, adapter, { backend, learningRate: 1e-4, totalSteps: 10 });
  const V = config.vocabSize;
  const batch = makeTrainBatch(
    Array.from({ length: 4 }, (_, b) => ({
      tokens: Array.from({ length: 129 }, (_, t) => 3 + ((b * 131 + t * 37) % (V - 3))),
    })),
  );
  for (let s = 0; s < 3; s++) await trainer.trainStep([batch]);
  gc();
  gc();
  const rss = process.memoryUsage().rss;
  await backend.close();
  console.log(
    JSON.stringify({ mode, baseBytes, rss, maxRss: process.resourceUsage().maxRSS * 1024 }),
  );
}

interface MemoryResult {
  mode: string;
  baseBytes: number;
  rss: number;
  maxRss: number;
}

function runProbe(file: string, mode: string): MemoryResult {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', import.meta.filename, '--memory-probe', mode, file],
    { encoding: 'utf8' },
  );
  if (child.status !== 0) throw new Error(`memory probe ${mode} failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as MemoryResult;
}

// ---------------------------------------------------------------------------------------------

const probe = process.argv.indexOf('--memory-probe');
if (probe >= 0) {
  await memoryProbe(process.argv[probe + 2]!, process.argv[probe + 1] as 'lora' | 'q8_0' | 'q4_0');
} else {
  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
  };
  const ort = await createMatmulBackend({ backend: 'onnxruntime', threads: THREADS });
  const ts = await createMatmulBackend({ backend: 'typescript' });
  const peak = await gemmGflops(ort, 1024, 1024, 1024);
  const tsPeak = await gemmGflops(ts, 256, 512, 512);
  const results: Throughput[] = [];
  const dir = await mkdtemp(path.join(tmpdir(), 'openledger-bench-training-'));
  let memory: MemoryResult[];
  try {
    const builtin = builtinModelPath();
    if (existsSync(builtin)) {
      const model = await loadLlamaGguf(builtin);
      results.push(await throughput('openledger-base-1m', model, 'full', ort, 16, 128, peak));
      results.push(await throughput('openledger-base-1m', model, 'lora', ort, 16, 128, peak));
      results.push(await throughput('openledger-base-1m', model, 'lora', ts, 16, 128, peak));
    }
    const random = path.join(dir, 'stories15m-shape.gguf');
    await writeStories15mShape(random);
    const model = await loadLlamaGguf(random);
    results.push(await throughput('random 15M llama', model, 'lora', ort, 4, 128, peak));
    if (!quick) results.push(await throughput('random 15M llama', model, 'lora', ts, 4, 128, peak));
    results.push(await throughput('random 15M llama', model, 'full', ort, 4, 128, peak));
    memory = ['lora', 'q8_0', 'q4_0'].map((mode) => runProbe(random, mode));
  } finally {
    await ort.close();
    await rm(dir, { recursive: true, force: true });
  }

  if (json) {
    console.log(
      JSON.stringify(
        { machine, peakGflops: peak, typescriptGflops: tsPeak, results, memory },
        null,
        2,
      ),
    );
  } else {
    const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    console.log(`## Training (${machine.date})\n`);
    console.log(
      `${machine.cpus} CPUs (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; onnxruntime with ${THREADS} threads.\n`,
    );
    console.log(
      `Matmul peak (onnxruntime Gemm 1024³): ${f(peak)} GFLOP/s; our TypeScript loops (256×512×512, 1 thread): ${f(tsPeak)} GFLOP/s (${(peak / tsPeak).toFixed(1)}×).\n`,
    );
    console.log('| model | training | matmuls | batch | tokens/s | model GFLOP/s | MFU |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of results) {
      console.log(
        `| ${r.model} | ${r.mode} | ${r.backend} | ${r.batch} | ${f(r.tokensPerSecond)} | ${f(r.modelGflops)} | ${(100 * r.mfu).toFixed(1)} % |`,
      );
    }
    console.log(
      '\n| random 15M llama, LoRA r=8 (4×128) | base weights | RSS after 3 steps | peak RSS |',
    );
    console.log('| --- | --- | --- | --- |');
    for (const m of memory) {
      const label = m.mode === 'lora' ? 'LoRA (float32 base)' : `QLoRA ${m.mode.toUpperCase()}`;
      console.log(
        `| ${label} | ${mib(m.baseBytes)} MiB | ${mib(m.rss)} MiB | ${mib(m.maxRss)} MiB |`,
      );
    }
  }
}
