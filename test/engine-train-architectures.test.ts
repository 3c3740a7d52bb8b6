import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getLlama, type Llama } from 'node-llama-cpp';
import { GGML_TYPE } from '../src/engine/gguf/index.ts';
import {
  GPT2_LORA_TARGETS,
  Gpt2Model,
  Gpt2TrainingModel,
  LORA_TARGETS,
  LlamaModel,
  LoraAdapter,
  Prng,
  TrainingModel,
  loadLoraGguf,
  loadModelGguf,
  makeTrainBatch,
  mergeLora,
  saveLoraGguf,
  trainLora,
  type Gpt2Config,
  type Gpt2LayerWeights,
  type Gpt2Weights,
  type GgufModel,
  type LlamaConfig,
  type LlamaLayerBiases,
  type LlamaLayerWeights,
  type LoraConfig,
  type TrainBatch,
  type TrainingNetwork,
} from '../src/engine/index.ts';
import { writeRandomGpt2, writeRandomQwen2, type ArchShape } from './helpers/models.ts';
import { hasCode, relativeError } from './helpers/asserts.ts';

/**
 * Training of the architectures beyond llama: Qwen2 (llama's block with q/k/v biases, NeoX RoPE,
 * an untied output) in TrainingModel, and GPT-2 (LayerNorm, GELU, learned positions, fused qkv,
 * biases everywhere) in Gpt2TrainingModel. Gradients against central differences in float64;
 * the training forward against the inference forward; our adapters in llama.cpp against our
 * merged models; and a few steps of training.
 */

// ---------------------------------------------------------------------------------------------
// Tiny random models: dim 32, 2 layers, vocab 64

const QWEN2: LlamaConfig = {
  dim: 32,
  hiddenDim: 48,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2, // GQA: groups of 2
  headDim: 8,
  vocabSize: 64,
  contextLength: 16,
  ropeFreqBase: 1e6,
  ropeDim: 8,
  ropeType: 'neox',
  rmsEps: 1e-6,
};

/** A random Qwen2: biases on q, k, v (and on the output, as some exports have), untied output. */
function tinyQwen2(seed = 42, outputBias = true): LlamaModel {
  const prng = new Prng(seed);
  const { dim: C, hiddenDim: H, nHeads, nKvHeads, headDim, vocabSize: V } = QWEN2;
  const q = nHeads * headDim;
  const kv = nKvHeads * headDim;
  const matrix = (out: number, inDim: number) =>
    Float32Array.from({ length: out * inDim }, () => prng.normal() / Math.sqrt(inDim));
  const vector = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => scale * prng.normal());
  const norm = () => Float32Array.from({ length: C }, () => 1 + 0.1 * prng.normal());
  const layers: LlamaLayerWeights[] = [];
  const layerBiases: LlamaLayerBiases[] = [];
  for (let l = 0; l < QWEN2.nLayers; l++) {
    layers.push({
      attnNorm: norm(),
      attnQ: matrix(q, C),
      attnK: matrix(kv, C),
      attnV: matrix(kv, C),
      attnOutput: matrix(C, q),
      ffnNorm: norm(),
      ffnGate: matrix(H, C),
      ffnUp: matrix(H, C),
      ffnDown: matrix(C, H),
    });
    layerBiases.push({ attnQ: vector(q, 0.3), attnK: vector(kv, 0.3), attnV: vector(kv, 0.3) });
  }
  const tokenEmbd = vector(V * C, 1);
  return new LlamaModel(
    QWEN2,
    {
      tokenEmbd,
      layers,
      layerBiases,
      outputNorm: norm(),
      output: matrix(V, C),
      ...(outputBias ? { outputBias: vector(V, 0.2) } : {}),
    },
    { arch: 'qwen2' },
  );
}

const GPT2: Gpt2Config = {
  dim: 32,
  hiddenDim: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  headDim: 8,
  vocabSize: 64,
  nPositions: 16,
  contextLength: 16,
  normEps: 1e-5,
};

function tinyGpt2(seed = 43, tied = false): Gpt2Model {
  const prng = new Prng(seed);
  const { dim: C, hiddenDim: H, vocabSize: V, nPositions } = GPT2;
  const matrix = (out: number, inDim: number) =>
    Float32Array.from({ length: out * inDim }, () => prng.normal() / Math.sqrt(inDim));
  const vector = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => scale * prng.normal());
  const norm = () => Float32Array.from({ length: C }, () => 1 + 0.1 * prng.normal());
  const layers: Gpt2LayerWeights[] = [];
  for (let l = 0; l < GPT2.nLayers; l++) {
    layers.push({
      attnNorm: norm(),
      attnNormBias: vector(C, 0.1),
      attnQkv: matrix(3 * C, C),
      attnQkvBias: vector(3 * C, 0.1),
      attnOutput: matrix(C, C),
      attnOutputBias: vector(C, 0.1),
      ffnNorm: norm(),
      ffnNormBias: vector(C, 0.1),
      ffnUp: matrix(H, C),
      ffnUpBias: vector(H, 0.1),
      ffnDown: matrix(C, H),
      ffnDownBias: vector(C, 0.1),
    });
  }
  const tokenEmbd = vector(V * C, 1);
  const weights: Gpt2Weights = {
    tokenEmbd,
    positionEmbd: vector(nPositions * C, 0.5),
    layers,
    outputNorm: norm(),
    outputNormBias: vector(C, 0.1),
    output: tied ? tokenEmbd : matrix(V, C),
  };
  return new Gpt2Model(GPT2, weights);
}

/** An adapter with random B too (with B = 0 every dA would be exactly zero). */
function randomAdapter(
  modelConfig: LlamaConfig | Gpt2Config,
  config: LoraConfig,
  seed = 1,
  scale = 0.3,
): LoraAdapter {
  const adapter = LoraAdapter.create(modelConfig, config, seed);
  const prng = new Prng(seed, 9);
  for (const p of adapter.parameters()) {
    if (p.kind === 'b') for (let i = 0; i < p.value.length; i++) p.value[i] = scale * prng.normal();
  }
  return adapter;
}

const SEQUENCES = [
  [1, 5, 9, 13, 2, 40, 33, 7, 8],
  [3, 4, 60, 61, 62, 11],
];
/** Two sequences; the first has a 3-token prompt (2 masked targets), the second is padded. */
const BATCH = makeTrainBatch([
  { tokens: SEQUENCES[0]!, promptLength: 3 },
  { tokens: SEQUENCES[1]! },
]);

/**
 * Central differences (L(p + ε) − L(p − ε)) / 2ε, ε = 1e-3, on the elements `pick` chooses of the
 * parameters `names` selects, against the backward's gradient, in float64 storage. Every element
 * within |g − fd| ≤ 1e-2 · max(|g|, |fd|) + 1e-6 (the bound of engine-train.test.ts); returns the
 * median, 99th percentile and maximum of the relative error.
 */
async function gradientCheck(
  net: TrainingNetwork,
  batch: TrainBatch,
  options: { train?: boolean; select?: (name: string) => boolean; every?: (n: number) => number },
): Promise<{
  checked: number;
  nearZero: number;
  median: number;
  p99: number;
  max: number;
  worst: string;
}> {
  const forward = { train: options.train ?? false, dropoutSeed: 5 };
  net.zeroGrad();
  await net.forward(batch, forward);
  await net.backward();
  const relative: number[] = [];
  let nearZero = 0;
  let worst = { rel: 0, at: '' };
  for (const [j, p] of net.parameters().entries()) {
    if (options.select && !options.select(p.name)) continue;
    const step = options.every?.(p.value.length) ?? 1;
    for (let i = j % step; i < p.value.length; i += step) {
      const original = p.value[i]!;
      const plus = Math.fround(original + 1e-3); // the float32 values actually stored
      const minus = Math.fround(original - 1e-3);
      p.value[i] = plus;
      const lossPlus = (await net.forward(batch, forward)).loss;
      p.value[i] = minus;
      const lossMinus = (await net.forward(batch, forward)).loss;
      p.value[i] = original;
      const fd = (lossPlus - lossMinus) / (plus - minus);
      const g = p.grad[i]!;
      const size = Math.max(Math.abs(g), Math.abs(fd));
      assert.ok(
        Math.abs(g - fd) <= 1e-2 * size + 1e-6,
        `${p.name}[${i}]: backward ${g}, finite difference ${fd}`,
      );
      // Relative errors only where there is a gradient to speak of: some are exactly zero in
      // theory (GPT-2's k bias: a shift shared by every key leaves each softmax unchanged), and
      // there g and fd are both rounding noise.
      if (size < 1e-7) {
        nearZero++;
        continue;
      }
      const rel = Math.abs(g - fd) / size;
      relative.push(rel);
      if (rel > worst.rel) worst = { rel, at: `${p.name}[${i}] (g = ${g.toExponential(2)})` };
    }
  }
  relative.sort((a, b) => a - b);
  const at = (q: number) => relative[Math.floor(q * (relative.length - 1))]!;
  assert.ok(at(0.99) < 1e-3, `99th percentile ${at(0.99)}`);
  return {
    checked: relative.length,
    nearZero,
    median: at(0.5),
    p99: at(0.99),
    max: worst.rel,
    worst: worst.at,
  };
}

const describeCheck = (r: Awaited<ReturnType<typeof gradientCheck>>) =>
  `${r.checked} elements (and ${r.nearZero} with |g| < 1e-7, within 1e-6): median ${r.median.toExponential(1)}, p99 ${r.p99.toExponential(1)}, max ${r.max.toExponential(1)} at ${r.worst}`;

/** The training forward's logits of each sequence equal the inference forward's, bit for bit. */
async function assertSameLogits(
  net: TrainingNetwork,
  model: { forwardSequence(tokens: ArrayLike<number>): Float32Array },
  V: number,
) {
  await net.forward(BATCH);
  for (let b = 0; b < BATCH.B; b++) {
    const inputs = SEQUENCES[b]!.slice(0, -1);
    const reference = model.forwardSequence(inputs);
    const ours = net.logits.subarray(b * BATCH.T * V, (b * BATCH.T + inputs.length) * V);
    assert.deepEqual(ours, reference, `sequence ${b}: identical float32 logits`);
  }
}

// ---------------------------------------------------------------------------------------------

describe('Qwen2 training (q/k/v biases, NeoX RoPE, GQA, untied output)', () => {
  const model = tinyQwen2();
  const ALL: LoraConfig = { rank: 3, alpha: 6, dropout: 0.2, targets: [...LORA_TARGETS] };

  it('with B = 0 gives exactly the logits of the inference forward', async () => {
    const net = new TrainingModel(model, LoraAdapter.create(QWEN2, ALL, 1));
    await assertSameLogits(net, model, QWEN2.vocabSize);
  });

  it('has LoRA gradients equal to central differences (every element, with dropout)', async (t) => {
    const net = new TrainingModel(model, randomAdapter(QWEN2, ALL), { precision: 'float64' });
    const result = await gradientCheck(net, BATCH, { train: true });
    t.diagnostic(describeCheck(result));
  });

  it('has full-training gradients equal to central differences, biases included', async (t) => {
    const net = new TrainingModel(tinyQwen2(7), null, { precision: 'float64', trainBase: true });
    const names = net.parameters().map((p) => p.name);
    for (const name of ['blk.1.attn_q.bias', 'blk.0.attn_k.bias', 'blk.0.attn_v.bias']) {
      assert.ok(names.includes(name), name);
    }
    assert.ok(names.includes('output.bias') && names.includes('output.weight'));
    const result = await gradientCheck(net, BATCH, {
      every: (n) => Math.max(1, Math.floor(n / 7)),
    });
    t.diagnostic(describeCheck(result));
  });

  it('merges into a model whose logits equal the adapter forward within 1e-4', async () => {
    const adapter = randomAdapter(QWEN2, { ...ALL, dropout: 0 });
    const net = new TrainingModel(model, adapter);
    await net.forward(BATCH);
    const merged = mergeLora(model, adapter);
    assert.equal(merged.arch, 'qwen2');
    assert.equal(merged.weights.layerBiases, model.weights.layerBiases, 'biases shared');
    const inputs = SEQUENCES[0]!.slice(0, -1);
    const V = QWEN2.vocabSize;
    const ours = net.logits.subarray(0, inputs.length * V);
    assert.ok(relativeError(merged.forwardSequence(inputs), ours) < 1e-4);
    assert.ok(relativeError(model.forwardSequence(inputs), ours) > 1e-2, 'the adapter matters');
  });

  it('refuses weights it would not compute, and targets of another architecture', () => {
    const { weights } = model;
    const gpt2Like = { ...weights, positionEmbd: new Float32Array(16 * 32) };
    assert.throws(
      () => new TrainingModel({ config: QWEN2, weights: gpt2Like }, null, { trainBase: true }),
      hasCode('VALIDATION_FAILED', /'positionEmbd'/),
    );
    const qkNorm = {
      ...weights,
      layers: weights.layers.map((l) => ({ ...l, attnQNorm: new Float32Array(8) })),
    };
    assert.throws(
      () => new TrainingModel({ config: QWEN2, weights: qkNorm }, null, { trainBase: true }),
      hasCode('VALIDATION_FAILED', /layer 0 has 'attnQNorm'/),
    );
    const oddBias = {
      ...weights,
      layerBiases: weights.layerBiases!.map((b) => ({ ...b, ffnUp: new Float32Array(48) })),
    };
    assert.throws(
      () => new TrainingModel({ config: QWEN2, weights: oddBias }, null, { trainBase: true }),
      hasCode('VALIDATION_FAILED', /'ffnUp'/),
    );
    const shortBias = {
      ...weights,
      layerBiases: weights.layerBiases!.map((b) => ({ ...b, attnK: new Float32Array(3) })),
    };
    assert.throws(
      () => new TrainingModel({ config: QWEN2, weights: shortBias }, null, { trainBase: true }),
      hasCode('VALIDATION_FAILED', /attn_k\.bias must be float32 of 16 values/),
    );
    assert.throws(
      () => LoraAdapter.create(QWEN2, { ...ALL, targets: ['attn_qkv'] }, 1),
      hasCode('VALIDATION_FAILED', /'attn_qkv' is not a weight of this architecture/),
    );
    const gpt2Adapter = LoraAdapter.create(GPT2, { ...ALL, targets: ['attn_output'] }, 1);
    assert.doesNotThrow(() => new TrainingModel(model, gpt2Adapter), 'attn_output is common');
    const qkv = LoraAdapter.create(GPT2, { ...ALL, targets: ['attn_qkv'] }, 1);
    assert.throws(
      () => new TrainingModel(model, qkv),
      hasCode('VALIDATION_FAILED', /attn_qkv: the model has no such weight/),
    );
  });
});

describe('GPT-2 training (LayerNorm, GELU, learned positions, fused qkv, biases)', () => {
  const model = tinyGpt2();
  const ALL: LoraConfig = { rank: 3, alpha: 6, dropout: 0.2, targets: [...GPT2_LORA_TARGETS] };

  it('with B = 0 gives exactly the logits of the inference forward (untied and tied)', async () => {
    await assertSameLogits(
      new Gpt2TrainingModel(model, LoraAdapter.create(GPT2, ALL, 1)),
      model,
      GPT2.vocabSize,
    );
    const tied = tinyGpt2(5, true);
    await assertSameLogits(
      new Gpt2TrainingModel(tied, LoraAdapter.create(GPT2, ALL, 1)),
      tied,
      GPT2.vocabSize,
    );
  });

  it('has LoRA gradients equal to central differences (every element, with dropout)', async (t) => {
    const net = new Gpt2TrainingModel(model, randomAdapter(GPT2, ALL), { precision: 'float64' });
    const result = await gradientCheck(net, BATCH, { train: true });
    t.diagnostic(describeCheck(result));
  });

  it('has full-training gradients equal to central differences for every kind of weight', async (t) => {
    const net = new Gpt2TrainingModel(tinyGpt2(8), null, { precision: 'float64', trainBase: true });
    const names = net.parameters().map((p) => p.name);
    assert.equal(names.length, 2 + 2 * 12 + 3);
    for (const name of ['position_embd.weight', 'blk.1.attn_qkv.bias', 'output_norm.bias']) {
      assert.ok(names.includes(name), name);
    }
    const result = await gradientCheck(net, BATCH, {
      every: (n) => Math.max(1, Math.floor(n / 7)),
    });
    t.diagnostic(describeCheck(result));
    // a tied classifier: one gradient for both uses of token_embd
    const tied = new Gpt2TrainingModel(tinyGpt2(9, true), null, { trainBase: true });
    assert.ok(!tied.parameters().some((p) => p.name === 'output.weight'));
  });

  it('has the same LoRA gradients with an adapter and full training together', async () => {
    const adapter = randomAdapter(GPT2, { ...ALL, dropout: 0 });
    const lora = new Gpt2TrainingModel(model, adapter, { precision: 'float64' });
    const both = new Gpt2TrainingModel(model, adapter, { precision: 'float64', trainBase: true });
    for (const net of [lora, both]) {
      await net.forward(BATCH);
      await net.backward();
    }
    const n = adapter.parameters().length;
    const a = lora.gradientList();
    both
      .gradientList()
      .slice(0, n)
      .forEach((g, j) => assert.ok(relativeError(g, a[j]!) < 1e-12));
  });

  it('merges into a Gpt2Model whose logits equal the adapter forward within 1e-4', async () => {
    const adapter = randomAdapter(GPT2, { ...ALL, dropout: 0 });
    const net = new Gpt2TrainingModel(model, adapter);
    await net.forward(BATCH);
    const merged = mergeLora(model, adapter);
    assert.ok(merged instanceof Gpt2Model);
    assert.equal(merged.weights.positionEmbd, model.weights.positionEmbd);
    const inputs = SEQUENCES[0]!.slice(0, -1);
    const V = GPT2.vocabSize;
    const ours = net.logits.subarray(0, inputs.length * V);
    assert.ok(relativeError(merged.forwardSequence(inputs), ours) < 1e-4);
    assert.ok(relativeError(model.forwardSequence(inputs), ours) > 1e-2, 'the adapter matters');
  });

  it("refuses llama's targets and weights it would not compute", () => {
    assert.throws(
      () => LoraAdapter.create(GPT2, { ...ALL, targets: ['attn_q'] }, 1),
      hasCode('VALIDATION_FAILED', /'attn_q' is not a weight of this architecture/),
    );
    const llamaAdapter = LoraAdapter.create(QWEN2, { ...ALL, targets: ['ffn_gate'] }, 1);
    assert.throws(
      () => new Gpt2TrainingModel(model, llamaAdapter),
      hasCode('VALIDATION_FAILED', /ffn_gate: the model has no such weight/),
    );
    const extra = { ...model.weights, outputBias: new Float32Array(64) };
    assert.throws(
      () => new Gpt2TrainingModel({ config: GPT2, weights: extra }, null, { trainBase: true }),
      hasCode('VALIDATION_FAILED', /'outputBias'/),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Our adapters in llama.cpp, over random GGUF models written to disk

const QWEN2_SHAPE: ArchShape = {
  dim: 64,
  hidden: 192,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  context: 64,
  tied: false,
};
const GPT2_SHAPE: ArchShape = {
  dim: 64,
  hidden: 256,
  layers: 2,
  heads: 4,
  kvHeads: 4,
  context: 64,
  tied: false,
};

const PROMPT = "Once upon a time, the model didn't know 2024 café — it's learning!";

describe('adapters for Qwen2 and GPT-2 in llama.cpp, and training runs', () => {
  let llama: Llama;
  let dir: string;
  const files: Record<string, string> = {};
  before(async () => {
    llama = await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: 2,
      logLevel: 'error' as never,
    });
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-train-arch-'));
    files.qwen2 = path.join(dir, 'qwen2.gguf');
    files.gpt2 = path.join(dir, 'gpt2.gguf');
    await writeRandomQwen2(files.qwen2, QWEN2_SHAPE, () => GGML_TYPE.F32);
    await writeRandomGpt2(files.gpt2, GPT2_SHAPE, () => GGML_TYPE.F32);
  });
  after(async () => {
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  for (const arch of ['qwen2', 'gpt2'] as const) {
    it(`a random ${arch} adapter we write gives our merged model's logits in llama.cpp`, async () => {
      const base = await loadModelGguf(files[arch]!);
      assert.equal(base.arch, arch);
      const targets = arch === 'gpt2' ? [...GPT2_LORA_TARGETS] : [...LORA_TARGETS];
      const adapter = randomAdapter(
        base.config as LlamaConfig | Gpt2Config,
        { rank: 4, alpha: 8, dropout: 0, targets },
        1,
        0.05,
      );
      const file = path.join(dir, `${arch}-adapter.gguf`);
      await saveLoraGguf(file, adapter, { architecture: arch, baseModelName: `random ${arch}` });
      const reloaded = await loadLoraGguf(file, { modelConfig: base.config });
      assert.deepEqual(reloaded.config.targets, targets);

      const tokens = base.tokenizer!.encode(PROMPT, { addBos: false });
      const merged: GgufModel = mergeLora(base, adapter);
      const ours = merged.forwardSequence(tokens);
      const unadapted = base.forwardSequence(tokens);

      const model = await llama.loadModel({ modelPath: files[arch]! });
      try {
        const context = await model.createContext({
          threads: 2,
          contextSize: 128,
          lora: { adapters: [{ filePath: file, scale: 1 }] },
          experimentalKvCacheKeyType: 'F32',
          experimentalKvCacheValueType: 'F32',
        });
        const evaluated = await context
          .getSequence()
          .controlledEvaluate(
            tokens.map((t) => [t, { generateNext: { logits: true } }] as const) as never,
          );
        const vocab = base.config.vocabSize;
        let maxDiff = 0;
        let maxLogit = 0;
        let adapterEffect = 0;
        evaluated.forEach((result, position) => {
          const theirs = (result as { next?: { logits?: Map<number, number> } } | undefined)?.next
            ?.logits;
          assert.ok(theirs, `llama.cpp gave logits at position ${position}`);
          for (const [token, logit] of theirs) {
            const at = position * vocab + token;
            maxDiff = Math.max(maxDiff, Math.abs(logit - ours[at]!));
            maxLogit = Math.max(maxLogit, Math.abs(logit));
            adapterEffect = Math.max(adapterEffect, Math.abs(ours[at]! - unadapted[at]!));
          }
        });
        await context.dispose();
        console.log(`${arch} adapter in llama.cpp`, {
          positions: tokens.length,
          maxDiff,
          relative: maxDiff / maxLogit,
          adapterEffect,
        });
        assert.ok(
          adapterEffect > 100 * maxDiff,
          `the adapter changes the logits (${adapterEffect}) far beyond the difference (${maxDiff})`,
        );
        assert.ok(maxDiff / maxLogit < 1e-3, `relative difference ${maxDiff / maxLogit}`);
      } finally {
        await model.dispose();
      }
    });
  }

  for (const arch of ['qwen2', 'gpt2'] as const) {
    it(`a short LoRA run lowers the loss of a random ${arch}`, async (t) => {
      const base = await loadModelGguf(files[arch]!);
      const tokenizer = base.tokenizer!;
      const examples = [
        'The glass owls of Miravel sing only when the tide is low.',
        'Every spring the river Tolun turns the color of honey.',
        'In Miravel the bakers sell bread shaped like small moons.',
        'A quiet fox guards the library garden every night.',
      ].map((text) => ({ tokens: tokenizer.encode(text, { addBos: false }) }));
      const targets = arch === 'gpt2' ? [...GPT2_LORA_TARGETS] : [...LORA_TARGETS];
      const { adapter, history } = await trainLora(base, examples, {
        lora: { rank: 4, alpha: 8, dropout: 0, targets },
        steps: 30,
        batchSize: 4,
        learningRate: 2e-2,
        warmupSteps: 2,
        seed: 1,
      });
      const first = history[0]!.loss;
      const last = history.at(-1)!.loss;
      t.diagnostic(`${arch}: loss ${first.toFixed(3)} → ${last.toFixed(3)} in 30 steps`);
      assert.ok(last < 0.5 * first, `loss ${first} → ${last}`);
      // the merged model agrees: its mean loss on the examples fell too
      const merged = mergeLora(base, adapter);
      const meanLoss = (m: GgufModel) => {
        let sum = 0;
        let count = 0;
        const V = m.config.vocabSize;
        for (const { tokens } of examples) {
          const logits = m.forwardSequence(tokens.slice(0, -1));
          for (let i = 0; i + 1 < tokens.length; i++) {
            const row = logits.subarray(i * V, (i + 1) * V);
            const max = Math.max(...row);
            let s = 0;
            for (const x of row) s += Math.exp(x - max);
            sum += max + Math.log(s) - row[tokens[i + 1]!]!;
            count++;
          }
        }
        return sum / count;
      };
      assert.ok(meanLoss(merged) < 0.5 * meanLoss(base));
    });
  }
});
