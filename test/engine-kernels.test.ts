import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GGML_TYPE, dequantize } from '../src/engine/gguf/index.ts';
import {
  TypeScriptBackend,
  createMatmulBackend,
  isQuantized,
  quantizeMatrix,
} from '../src/engine/kernels/index.ts';
import type { MatmulBackend } from '../src/engine/kernels/index.ts';
import { LlamaModel } from '../src/engine/model/index.ts';
import type { LlamaConfig, LlamaLayerWeights } from '../src/engine/model/index.ts';
import {
  LORA_TARGETS,
  LoraAdapter,
  Prng,
  Trainer,
  TrainingModel,
  makeTrainBatch,
  quantizeBase,
  trainingWeightBytes,
} from '../src/engine/train/index.ts';
import { hasCode, relativeError } from './helpers/asserts.ts';

function randomArray(n: number, prng: Prng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * prng.normal());
}

// A small random llama whose rows fill whole blocks of 32 (so QLoRA can quantize it)
const SMALL: LlamaConfig = {
  dim: 64,
  hiddenDim: 96,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 16,
  vocabSize: 80,
  contextLength: 32,
  ropeFreqBase: 10000,
  ropeDim: 16,
  ropeType: 'normal',
  rmsEps: 1e-5,
};

function smallModel(config: LlamaConfig = SMALL, seed = 7): LlamaModel {
  const prng = new Prng(seed);
  const { dim: C, hiddenDim: H, nHeads, nKvHeads, headDim, vocabSize: V } = config;
  const matrix = (out: number, inDim: number) =>
    randomArray(out * inDim, prng, 1 / Math.sqrt(inDim));
  const norm = () => Float32Array.from({ length: C }, () => 1 + 0.1 * prng.normal());
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
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
  const tokenEmbd = randomArray(V * C, prng);
  return new LlamaModel(config, { tokenEmbd, layers, outputNorm: norm(), output: matrix(V, C) });
}

/** A deterministic toy corpus: repeated patterns a model can learn in a few steps. */
function sequences(count: number, length: number, vocab: number, seed = 3): number[][] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => {
    const start = Math.floor(prng.uniform() * vocab);
    const stride = 1 + Math.floor(prng.uniform() * 3);
    return Array.from({ length }, (_, t) => (start + t * stride) % vocab);
  });
}

describe('matmul backends', () => {
  let ort: MatmulBackend;
  const ts = new TypeScriptBackend();
  before(async () => {
    ort = await createMatmulBackend({ backend: 'onnxruntime', threads: 2 });
  });
  after(async () => {
    await ort.close();
  });

  it('onnxruntime agrees with the TypeScript loops: forward, dinp and dweight (accumulating)', async () => {
    assert.equal(ort.name, 'onnxruntime');
    const prng = new Prng(1);
    for (const [BT, C, OC] of [
      [64, 96, 80],
      [37, 128, 200],
      [300, 64, 33],
    ] as const) {
      const inp = randomArray(BT * C + 5, prng); // longer than BT·C: only the first rows count
      const w = randomArray(OC * C, prng);
      const dout = randomArray(BT * OC, prng);
      const outs = [new Float32Array(BT * OC + 3), new Float32Array(BT * OC + 3)];
      await ts.forward(outs[0]!, inp, w, BT, C, OC);
      await ort.forward(outs[1]!, inp, w, BT, C, OC);
      assert.ok(relativeError(outs[1]!, outs[0]!) < 1e-5, `forward ${BT}×${C}×${OC}`);
      assert.equal(outs[1]![BT * OC], 0, 'nothing written past BT·OC');

      const start = randomArray(BT * C, new Prng(2));
      const dinps = [Float32Array.from(start), Float32Array.from(start)];
      const dws = [new Float64Array(OC * C).fill(0.5), new Float64Array(OC * C).fill(0.5)];
      await ts.backward(dinps[0]!, dws[0]!, dout, inp, w, BT, C, OC);
      await ort.backward(dinps[1]!, dws[1]!, dout, inp, w, BT, C, OC);
      assert.ok(relativeError(dinps[1]!, dinps[0]!) < 1e-5, `dinp ${BT}×${C}×${OC}`);
      assert.ok(relativeError(dws[1]!, dws[0]!) < 1e-5, `dweight ${BT}×${C}×${OC}`);
    }
  });

  it('batched products agree with the TypeScript loops (A·Bᵀ, A·B, Aᵀ·B)', async () => {
    const prng = new Prng(8);
    const [count, M, N, K] = [6, 20, 24, 16];
    for (const [transA, transB] of [
      [false, true],
      [false, false],
      [true, false],
    ] as const) {
      const a = randomArray(count * M * K, prng);
      const b = randomArray(count * K * N, prng);
      const expected = new Float32Array(count * M * N);
      const got = new Float32Array(count * M * N);
      await ts.batchedMatmul(expected, a, b, count, M, N, K, transA, transB);
      await ort.batchedMatmul(got, a, b, count, M, N, K, transA, transB);
      assert.ok(relativeError(got, expected) < 1e-5, `transA ${transA} transB ${transB}`);
      // one item by hand
      const n = 4;
      const m = 3;
      const j = 5;
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? a[n * M * K + k * M + m]! : a[n * M * K + m * K + k]!;
        const bv = transB ? b[n * K * N + j * K + k]! : b[n * K * N + k * N + j]!;
        sum += av * bv;
      }
      assert.ok(Math.abs(expected[n * M * N + m * N + j]! - sum) < 1e-4);
    }
  });

  it('dequantizes Q8_0 and Q4_0 weights inside the product, and keeps them frozen', async () => {
    const prng = new Prng(4);
    const [BT, C, OC] = [48, 64, 96];
    const inp = randomArray(BT * C, prng);
    const values = randomArray(OC * C, prng, 0.1);
    for (const type of [GGML_TYPE.Q8_0, GGML_TYPE.Q4_0]) {
      const q = quantizeMatrix(values, OC, C, type);
      assert.ok(isQuantized(q));
      const plain = dequantize(type, q.data);
      for (const backend of [ts, ort]) {
        const fromBlocks = new Float32Array(BT * OC);
        const fromFloats = new Float32Array(BT * OC);
        await backend.forward(fromBlocks, inp, q, BT, C, OC);
        await backend.forward(fromFloats, inp, plain, BT, C, OC);
        assert.deepEqual(fromBlocks, fromFloats, `${backend.name} type ${type}`);
      }
      await assert.rejects(
        () =>
          ort.backward(
            null,
            new Float32Array(OC * C),
            new Float32Array(BT * OC),
            inp,
            q,
            BT,
            C,
            OC,
          ),
        hasCode('VALIDATION_FAILED', /frozen/),
      );
    }
  });
});

describe('full training (every base weight)', () => {
  it('has gradients equal to central finite differences for every kind of weight', async (t) => {
    const config: LlamaConfig = {
      ...SMALL,
      dim: 16,
      hiddenDim: 24,
      nHeads: 2,
      nKvHeads: 1,
      headDim: 8,
      ropeDim: 8,
      vocabSize: 24,
    };
    const model = smallModel(config, 11);
    const net = new TrainingModel(model, null, { precision: 'float64', trainBase: true });
    const batch = makeTrainBatch(
      sequences(2, 9, config.vocabSize).map((tokens, i) => ({ tokens, promptLength: i + 1 })),
    );
    await net.forward(batch);
    await net.backward();
    const parameters = net.parameters();
    const names = parameters.map((p) => p.name);
    assert.ok(names.includes('token_embd.weight') && names.includes('output.weight'));
    assert.ok(names.includes('blk.1.attn_norm.weight') && names.includes('output_norm.weight'));
    let checked = 0;
    let worst = 0;
    for (const p of parameters) {
      // a few elements of each tensor (embedding rows of tokens that occur, and others)
      for (let i = 0; i < p.value.length; i += Math.max(1, Math.floor(p.value.length / 6))) {
        const original = p.value[i]!;
        const plus = Math.fround(original + 1e-3);
        const minus = Math.fround(original - 1e-3);
        p.value[i] = plus;
        const lossPlus = (await net.forward(batch)).loss;
        p.value[i] = minus;
        const lossMinus = (await net.forward(batch)).loss;
        p.value[i] = original;
        const fd = (lossPlus - lossMinus) / (plus - minus);
        const g = p.grad[i]!;
        const size = Math.max(Math.abs(g), Math.abs(fd));
        assert.ok(Math.abs(g - fd) <= 1e-2 * size + 1e-6, `${p.name}[${i}]: ${g} vs ${fd}`);
        if (size > 1e-6) worst = Math.max(worst, Math.abs(g - fd) / size);
        checked++;
      }
    }
    t.diagnostic(
      `${checked} elements over ${parameters.length} tensors; worst relative error ${worst.toExponential(1)}`,
    );
  });

  it('ties the classifier to the embedding: one gradient for both uses', async () => {
    const base = smallModel();
    const tied = new LlamaModel(SMALL, { ...base.weights, output: base.weights.tokenEmbd });
    const net = new TrainingModel(tied, null, { trainBase: true });
    assert.ok(!net.parameters().some((p) => p.name === 'output.weight'));
    await net.forward(
      makeTrainBatch(sequences(2, 8, SMALL.vocabSize).map((tokens) => ({ tokens }))),
    );
    await net.backward();
    const embd = net.parameters().find((p) => p.name === 'token_embd.weight')!;
    assert.ok(embd.grad.some((g) => g !== 0));
  });

  it('refuses nothing to train, and full training of a quantized base', () => {
    const model = smallModel();
    assert.throws(
      () => new TrainingModel(model, null),
      hasCode('VALIDATION_FAILED', /nothing to train/),
    );
    const quantized = { config: SMALL, weights: quantizeBase(model, 'q8_0') };
    assert.throws(
      () => new TrainingModel(quantized, null, { trainBase: true }),
      hasCode('VALIDATION_FAILED', /float32 base weights/),
    );
  });
});

describe('QLoRA and the onnxruntime trainer', () => {
  const model = smallModel();
  const examples = sequences(8, 17, SMALL.vocabSize).map((tokens) => ({ tokens }));
  const lora = { rank: 4, alpha: 8, dropout: 0, targets: [...LORA_TARGETS] };
  const batch = makeTrainBatch(examples);

  async function train(
    weights: LlamaModel['weights'] | ReturnType<typeof quantizeBase>,
    backend: MatmulBackend,
  ) {
    const adapter = LoraAdapter.create(SMALL, lora, 5);
    const trainer = new Trainer({ config: SMALL, weights }, adapter, {
      backend,
      learningRate: 2e-2,
      totalSteps: 15,
      warmupSteps: 2,
      seed: 5,
    });
    const losses: number[] = [];
    for (let s = 0; s < 15; s++) losses.push((await trainer.trainStep([batch])).loss);
    return { losses, after: await trainer.evaluate([batch]) };
  }

  it('keeps the frozen base in 8-bit or 4-bit blocks and still lowers the loss', async (t) => {
    const floatBytes = trainingWeightBytes(model.weights);
    const ts = new TypeScriptBackend();
    for (const bits of ['q8_0', 'q4_0'] as const) {
      const weights = quantizeBase(model, bits);
      assert.ok(isQuantized(weights.layers[0]!.attnQ) && !isQuantized(weights.tokenEmbd as never));
      const bytes = trainingWeightBytes(weights);
      const { losses, after } = await train(weights, ts);
      t.diagnostic(
        `${bits}: base ${bytes} bytes (${((100 * bytes) / floatBytes).toFixed(0)} % of float32); loss ${losses[0]!.toFixed(3)} → ${after.toFixed(3)}`,
      );
      assert.ok(bytes < floatBytes * (bits === 'q8_0' ? 0.6 : 0.45));
      assert.ok(after < 0.8 * losses[0]!, `${bits}: ${losses[0]} → ${after}`);
    }
    // rows that do not fill blocks of 32 cannot be quantized
    const odd = smallModel({ ...SMALL, dim: 40, nHeads: 4, headDim: 10, ropeDim: 10, nKvHeads: 2 });
    assert.throws(() => quantizeBase(odd, 'q4_0'), hasCode('VALIDATION_FAILED', /blocks of 32/));
  });

  it('trains the same on onnxruntime as on the TypeScript loops (float32 rounding apart)', async () => {
    const ort = await createMatmulBackend({ backend: 'onnxruntime', threads: 2 });
    try {
      const onTs = await train(model.weights, new TypeScriptBackend());
      const onOrt = await train(model.weights, ort);
      for (let s = 0; s < onTs.losses.length; s++) {
        assert.ok(
          Math.abs(onOrt.losses[s]! - onTs.losses[s]!) < 1e-3 * onTs.losses[s]!,
          `step ${s}`,
        );
      }
    } finally {
      await ort.close();
    }
  });
});
