import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMatmulBackend } from '../src/engine/kernels/index.ts';
import type { MatmulBackend } from '../src/engine/kernels/index.ts';
import {
  GPT2_LORA_TARGETS,
  Gpt2Model,
  Gpt2TrainingModel,
  LORA_TARGETS,
  LlamaModel,
  LoraAdapter,
  Prng,
  TrainingModel,
  makePackedBatch,
  makeTrainBatch,
  type Gpt2Config,
  type Gpt2LayerWeights,
  type LlamaConfig,
  type LlamaLayerWeights,
  type LoraConfig,
  type TrainBatch,
  type TrainExample,
  type TrainingNetwork,
} from '../src/engine/index.ts';
import { hasCode, relativeError } from './helpers/asserts.ts';

/**
 * Sequence packing in the training engine: several examples in one row, kept apart by per-token
 * positions (attention within the example only, RoPE / learned positions restarting at 0). A
 * packed batch must train exactly as the same examples in separate rows.
 */

const LLAMA: LlamaConfig = {
  dim: 32,
  hiddenDim: 48,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 8,
  vocabSize: 64,
  contextLength: 16,
  ropeFreqBase: 10000,
  ropeDim: 8,
  ropeType: 'normal',
  rmsEps: 1e-5,
};

function tinyLlama(seed = 42): LlamaModel {
  const prng = new Prng(seed);
  const { dim: C, hiddenDim: H, nHeads, nKvHeads, headDim, vocabSize: V } = LLAMA;
  const matrix = (out: number, inDim: number) =>
    Float32Array.from({ length: out * inDim }, () => prng.normal() / Math.sqrt(inDim));
  const norm = () => Float32Array.from({ length: C }, () => 1 + 0.1 * prng.normal());
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < LLAMA.nLayers; l++) {
    layers.push({
      attnNorm: norm(),
      attnQ: matrix(nHeads * headDim, C),
      attnK: matrix(nKvHeads * headDim, C),
      attnV: matrix(nKvHeads * headDim, C),
      attnOutput: matrix(C, nHeads * headDim),
      ffnNorm: norm(),
      ffnGate: matrix(H, C),
      ffnUp: matrix(H, C),
      ffnDown: matrix(C, H),
    });
  }
  const tokenEmbd = Float32Array.from({ length: V * C }, () => prng.normal());
  return new LlamaModel(LLAMA, { tokenEmbd, layers, outputNorm: norm(), output: matrix(V, C) });
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

function tinyGpt2(seed = 43): Gpt2Model {
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
  return new Gpt2Model(GPT2, {
    tokenEmbd: vector(V * C, 1),
    positionEmbd: vector(nPositions * C, 0.5),
    layers,
    outputNorm: norm(),
    outputNormBias: vector(C, 0.1),
    output: matrix(V, C),
  });
}

const LORA_ALL: LoraConfig = { rank: 3, alpha: 6, dropout: 0, targets: [...LORA_TARGETS] };

/** An adapter with random B too (with B = 0 every dA would be exactly zero). */
function randomAdapter(modelConfig: LlamaConfig | Gpt2Config, config: LoraConfig): LoraAdapter {
  const adapter = LoraAdapter.create(modelConfig, config, 1);
  const prng = new Prng(1, 9);
  for (const p of adapter.parameters()) {
    if (p.kind === 'b') for (let i = 0; i < p.value.length; i++) p.value[i] = 0.3 * prng.normal();
  }
  return adapter;
}

// A (a 3-token prompt) and B (a chat-style loss mask) share a row of 8 + 5 = 13 positions; C
// (3 positions) has a row of its own, padded to 13.
const A: TrainExample = { tokens: [1, 5, 9, 13, 2, 40, 33, 7, 8], promptLength: 3 };
const B: TrainExample = { tokens: [3, 4, 60, 61, 62, 11], lossMask: [1, 1, 0, 1, 1, 1] };
const C: TrainExample = { tokens: [7, 7, 20, 21] };
const PACKED = makePackedBatch([[A, B], [C]], { padToken: 2 });
const SEPARATE = makeTrainBatch([A, B, C], { padToken: 2 });

/** The loss sum and every gradient of `batch` (one forward and backward, scale 1). */
async function run(net: TrainingNetwork, batch: TrainBatch) {
  const result = await net.forward(batch);
  await net.backward(1);
  return {
    lossSum: result.loss * result.count,
    count: result.count,
    grads: net.gradientList().map((g) => Float64Array.from(g)),
  };
}

async function assertExactlySame(make: () => TrainingNetwork): Promise<number> {
  const packed = await run(make(), PACKED);
  const separate = await run(make(), SEPARATE);
  assert.equal(packed.count, separate.count);
  assert.equal(packed.lossSum, separate.lossSum, 'loss sum');
  assert.equal(packed.grads.length, separate.grads.length);
  packed.grads.forEach((g, j) => assert.deepEqual(g, separate.grads[j], `gradient ${j}`));
  return packed.grads.length;
}

describe('makePackedBatch', () => {
  it('lays examples one after the other with restarting positions and no cross-example target', () => {
    assert.equal(PACKED.B, 2);
    assert.equal(PACKED.T, 13);
    const row0 = (a: ArrayLike<number>) => [...Array.from(a).slice(0, 13)];
    assert.deepEqual(row0(PACKED.inputs), [1, 5, 9, 13, 2, 40, 33, 7, 3, 4, 60, 61, 62]);
    assert.deepEqual(row0(PACKED.targets), [5, 9, 13, 2, 40, 33, 7, 8, 4, 60, 61, 62, 11]);
    assert.deepEqual(row0(PACKED.mask), [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]);
    assert.deepEqual(row0(PACKED.positions!), [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4]);
    // row 1: C, then padding (token 2, mask 0) as a segment of its own
    assert.deepEqual([...PACKED.inputs.subarray(13, 19)], [7, 7, 20, 2, 2, 2]);
    assert.deepEqual([...PACKED.mask.subarray(13, 26)], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(
      [...PACKED.positions!.subarray(13, 26)],
      [0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const sum = (m: Float32Array) => m.reduce((s, x) => s + x, 0);
    assert.equal(sum(PACKED.mask), sum(SEPARATE.mask));
    assert.throws(
      () => makePackedBatch([[A, B]], { T: 12 }),
      hasCode('VALIDATION_FAILED', /needs 13 positions/),
    );
    assert.throws(() => makePackedBatch([[A], []]), hasCode('VALIDATION_FAILED'));
    assert.throws(() => makePackedBatch([[{ tokens: [4] }]]), hasCode('VALIDATION_FAILED'));
  });

  it('is refused by the models when positions do not run 0, 1, 2, … within an example', async () => {
    const net = new TrainingModel(tinyLlama(), randomAdapter(LLAMA, LORA_ALL));
    for (const bad of [
      [1, 2, 3],
      [0, 2, 3],
      [0, 1, 1],
    ]) {
      const batch = makePackedBatch([[{ tokens: [1, 2, 3, 4] }]]);
      batch.positions!.set(bad);
      await assert.rejects(() => net.forward(batch), hasCode('VALIDATION_FAILED', /position/));
    }
    const short = {
      ...makePackedBatch([[{ tokens: [1, 2, 3, 4] }]]),
      positions: new Int32Array(2),
    };
    await assert.rejects(() => net.forward(short), hasCode('VALIDATION_FAILED', /positions must/));
  });
});

describe('packed rows train exactly as separate rows (float64, TypeScript backend)', () => {
  it('llama (RoPE, GQA): LoRA and every base weight', async () => {
    const model = tinyLlama();
    const adapter = randomAdapter(LLAMA, LORA_ALL);
    const n = await assertExactlySame(
      () => new TrainingModel(model, adapter, { precision: 'float64', trainBase: true }),
    );
    assert.ok(n > 14);
  });

  it('GPT-2 (learned positions): LoRA and every base weight, position_embd included', async () => {
    const model = tinyGpt2();
    const config: LoraConfig = { rank: 3, alpha: 6, dropout: 0, targets: [...GPT2_LORA_TARGETS] };
    const adapter = randomAdapter(GPT2, config);
    await assertExactlySame(
      () => new Gpt2TrainingModel(model, adapter, { precision: 'float64', trainBase: true }),
    );
  });

  it('has gradients equal to central finite differences on a packed batch', async (t) => {
    const adapter = randomAdapter(LLAMA, LORA_ALL);
    const net = new TrainingModel(tinyLlama(), adapter, { precision: 'float64' });
    await net.forward(PACKED);
    await net.backward();
    const grads = net.gradientList();
    let checked = 0;
    let worst = 0;
    for (const [j, p] of adapter.parameters().entries()) {
      for (let i = j % 5; i < p.value.length; i += 5) {
        const original = p.value[i]!;
        const plus = Math.fround(original + 1e-3);
        const minus = Math.fround(original - 1e-3);
        p.value[i] = plus;
        const lossPlus = (await net.forward(PACKED)).loss;
        p.value[i] = minus;
        const lossMinus = (await net.forward(PACKED)).loss;
        p.value[i] = original;
        const fd = (lossPlus - lossMinus) / (plus - minus);
        const g = grads[j]![i]!;
        const size = Math.max(Math.abs(g), Math.abs(fd));
        assert.ok(Math.abs(g - fd) <= 1e-2 * size + 1e-6, `${p.name}[${i}]: ${g} vs ${fd}`);
        if (size > 1e-4) worst = Math.max(worst, Math.abs(g - fd) / size);
        checked++;
      }
    }
    t.diagnostic(`${checked} elements, worst relative error ${worst.toExponential(1)}`);
  });
});

describe('packed rows on the onnxruntime backend (batched attention products)', () => {
  let ort: MatmulBackend;
  before(async () => {
    ort = await createMatmulBackend({ backend: 'onnxruntime', threads: 2 });
  });
  after(async () => {
    await ort.close();
  });

  it('give the loss and gradients of separate rows within 1e-5 relative (llama and GPT-2)', async () => {
    const llama = tinyLlama();
    const gpt2 = tinyGpt2();
    const gptConfig: LoraConfig = {
      rank: 3,
      alpha: 6,
      dropout: 0,
      targets: [...GPT2_LORA_TARGETS],
    };
    const nets: [string, () => TrainingNetwork][] = [
      [
        'llama',
        () =>
          new TrainingModel(llama, randomAdapter(LLAMA, LORA_ALL), {
            precision: 'float64',
            trainBase: true,
            backend: ort,
          }),
      ],
      [
        'gpt2',
        () =>
          new Gpt2TrainingModel(gpt2, randomAdapter(GPT2, gptConfig), {
            precision: 'float64',
            trainBase: true,
            backend: ort,
          }),
      ],
    ];
    for (const [name, make] of nets) {
      const packed = await run(make(), PACKED);
      const separate = await run(make(), SEPARATE);
      assert.equal(packed.count, separate.count);
      const lossErr = Math.abs(packed.lossSum - separate.lossSum) / separate.lossSum;
      assert.ok(lossErr < 1e-5, `${name} loss: ${lossErr}`);
      packed.grads.forEach((g, j) => {
        const err = relativeError(g, separate.grads[j]!);
        assert.ok(err < 1e-5, `${name} gradient ${j}: ${err}`);
      });
      // and the native path agrees with the TypeScript loops on the packed batch
      const loops = await run(
        name === 'llama'
          ? new TrainingModel(llama, randomAdapter(LLAMA, LORA_ALL), {
              precision: 'float64',
              trainBase: true,
            })
          : new Gpt2TrainingModel(gpt2, randomAdapter(GPT2, gptConfig), {
              precision: 'float64',
              trainBase: true,
            }),
        PACKED,
      );
      assert.ok(
        Math.abs(loops.lossSum - packed.lossSum) / loops.lossSum < 1e-5,
        `${name} vs loops`,
      );
    }
  });
});
