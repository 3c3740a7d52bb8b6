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
import {
  GGML_TYPE,
  LoraAdapter,
  Trainer,
  gguf,
  loadLlamaGguf,
  makeTrainBatch,
  matmul,
  writeGguf,
  type GgufValue,
} from '../src/engine/index.ts';

const json = process.argv.includes('--json');
const AIDREAMS = path.resolve(
  import.meta.dirname,
  '../../shared/fixtures/models/aidreams260K.gguf',
);

/** Seeded normal numbers (LCG + Box–Muller): the same model every run. */
function normals(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** A random llama of the stories15M shape with a byte-level 32000-token vocabulary. */
async function writeStories15mShape(file: string): Promise<void> {
  const [dim, hidden, layers, heads, vocab] = [288, 768, 6, 6, 32000];
  const normal = normals(1);
  const matrix = (name: string, inDim: number, out: number) => ({
    name,
    dims: [inDim, out],
    type: GGML_TYPE.F32,
    data: Float32Array.from({ length: inDim * out }, () => normal() / Math.sqrt(inDim)),
  });
  const norm = (name: string) => ({
    name,
    dims: [dim],
    type: GGML_TYPE.F32,
    data: new Float32Array(dim).fill(1),
  });
  const tensors = [matrix('token_embd.weight', dim, vocab)];
  for (let l = 0; l < layers; l++) {
    tensors.push(
      norm(`blk.${l}.attn_norm.weight`),
      matrix(`blk.${l}.attn_q.weight`, dim, dim),
      matrix(`blk.${l}.attn_k.weight`, dim, dim),
      matrix(`blk.${l}.attn_v.weight`, dim, dim),
      matrix(`blk.${l}.attn_output.weight`, dim, dim),
      norm(`blk.${l}.ffn_norm.weight`),
      matrix(`blk.${l}.ffn_gate.weight`, dim, hidden),
      matrix(`blk.${l}.ffn_down.weight`, hidden, dim),
      matrix(`blk.${l}.ffn_up.weight`, dim, hidden),
    );
  }
  tensors.push(norm('output_norm.weight'));
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let i = tokens.length; i < vocab; i++) tokens.push(`▁t${i}`);
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['general.name', gguf.string('random stories15M shape')],
    ['llama.context_length', gguf.uint32(256)],
    ['llama.embedding_length', gguf.uint32(dim)],
    ['llama.feed_forward_length', gguf.uint32(hidden)],
    ['llama.block_count', gguf.uint32(layers)],
    ['llama.attention.head_count', gguf.uint32(heads)],
    ['llama.attention.head_count_kv', gguf.uint32(heads)],
    ['llama.rope.dimension_count', gguf.uint32(dim / heads)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.float32(1e-5)],
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    [
      'tokenizer.ggml.scores',
      gguf.array(
        'float32',
        tokens.map(() => 0),
      ),
    ],
    [
      'tokenizer.ggml.token_type',
      gguf.array(
        'int32',
        tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
      ),
    ],
    ['tokenizer.ggml.bos_token_id', gguf.uint32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.uint32(2)],
  ];
  await writeGguf(file, { metadata, tensors });
}

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
