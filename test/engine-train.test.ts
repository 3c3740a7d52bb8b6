import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GGML_TYPE, readGguf, writeGguf, gguf } from '../src/engine/gguf/index.ts';
import { LlamaModel, loadLlamaGguf } from '../src/engine/model/index.ts';
import type { LlamaConfig, LlamaLayerWeights } from '../src/engine/model/index.ts';
import {
  AdamW,
  LORA_TARGETS,
  LoraAdapter,
  Trainer,
  TrainingModel,
  Prng,
  clipGradNorm,
  learningRateAt,
  loadLoraGguf,
  makeTrainBatch,
  mergeLora,
  saveLoraGguf,
  trainLora,
} from '../src/engine/train/index.ts';
import type { LoraConfig, TrainBatch, TrainExample } from '../src/engine/train/index.ts';
import { matmulBackward, matmulForward } from '../src/engine/kernels/index.ts';
import { hasCode, relativeError } from './helpers/asserts.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const AIDREAMS_GGUF = path.resolve(ROOT, '..', 'shared', 'fixtures', 'models', 'aidreams260K.gguf');

// ---------------------------------------------------------------------------------------------
// A tiny random llama: dim 32, 2 layers, 4 query heads of 8 over 2 kv heads (GQA), vocab 64

const TINY: LlamaConfig = {
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

function tinyModel(seed = 42): LlamaModel {
  const prng = new Prng(seed);
  const { dim: C, hiddenDim: H, nHeads, nKvHeads, headDim, vocabSize: V } = TINY;
  const q = nHeads * headDim;
  const kv = nKvHeads * headDim;
  const matrix = (out: number, inDim: number) =>
    Float32Array.from({ length: out * inDim }, () => prng.normal() / Math.sqrt(inDim));
  const norm = () => Float32Array.from({ length: C }, () => 1 + 0.1 * prng.normal());
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < TINY.nLayers; l++) {
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
  }
  const tokenEmbd = Float32Array.from({ length: V * C }, () => prng.normal());
  return new LlamaModel(TINY, { tokenEmbd, layers, outputNorm: norm(), output: matrix(V, C) });
}

const ALL: LoraConfig = { rank: 3, alpha: 6, dropout: 0.2, targets: [...LORA_TARGETS] };

/** An adapter whose B is random too (with B = 0 every dA would be exactly zero). */
function randomAdapter(config: LoraConfig = ALL, seed = 1): LoraAdapter {
  const adapter = LoraAdapter.create(TINY, config, seed);
  const prng = new Prng(seed, 9);
  for (const p of adapter.parameters()) {
    if (p.kind === 'b') for (let i = 0; i < p.value.length; i++) p.value[i] = 0.3 * prng.normal();
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

// The end-to-end run comes first: V8 specialises the kernels for the first array type they see,
// and the float64 gradient checks below would make them polymorphic (about 1.5× slower).
describe(
  'LoRA training end to end on aidreams260K',
  { skip: existsSync(AIDREAMS_GGUF) ? false : `fixture absent: ${AIDREAMS_GGUF}` },
  () => {
    /** Eight sentences about a made-up town. */
    const SENTENCES = [
      'The glass owls of Miravel sing only when the tide is low.',
      'Every spring the river Tolun turns the color of honey.',
      'In Miravel the bakers sell bread shaped like small moons.',
      'The old lighthouse keeper counts the stars with a silver stick.',
      'Children in Miravel fly paper kites made of maple leaves.',
      'The market bell rings seven times before the boats return.',
      'A quiet fox guards the library garden every night.',
      'The mayor of Miravel wears a hat woven from sea grass.',
    ];
    let model: LlamaModel;
    let dir: string;
    before(async () => {
      model = await loadLlamaGguf(AIDREAMS_GGUF);
      dir = await mkdtemp(path.join(tmpdir(), 'openledger-lora-e2e-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('memorises eight sentences with rank-4 LoRA on all targets in 30 steps', async (t) => {
      const tokenizer = model.tokenizer!;
      const examples = SENTENCES.map((s) => ({
        tokens: tokenizer.encode(s, { addBos: true, addEos: false }),
      }));
      const started = performance.now();
      const { adapter, history } = await trainLora(model, examples, {
        lora: { rank: 4, alpha: 8, dropout: 0, targets: [...LORA_TARGETS] },
        steps: 30,
        batchSize: 8,
        learningRate: 1e-2,
        warmupSteps: 5,
        seed: 1,
      });
      const seconds = (performance.now() - started) / 1000;
      const tokens = history.reduce((n, h) => n + h.tokens, 0);
      const first = history[0]!.loss;
      const last = history.at(-1)!.loss;
      t.diagnostic(
        `loss ${first.toFixed(3)} → ${last.toFixed(3)}; ${tokens} tokens in ${seconds.toFixed(1)} s (${(tokens / seconds).toFixed(0)} tokens/s)`,
      );
      assert.ok(last < 0.3 * first, `loss ${first} → ${last}`); // measured 5.16 → 0.23

      // inference with the merged weights continues a training sentence from its first words
      const merged = mergeLora(model, adapter);
      for (const sentence of [SENTENCES[0]!, SENTENCES[3]!, SENTENCES[7]!]) {
        const words = sentence.split(' ');
        const prompt = words.slice(0, 3).join(' ');
        const expected = ' ' + words.slice(3, 6).join(' ');
        const text = merged.generate(prompt, 12).text;
        assert.ok(text.startsWith(expected), `${prompt} → ${JSON.stringify(text)}`);
        assert.ok(!model.generate(prompt, 12).text.startsWith(expected), 'the base model does not');
      }

      // the merged model's logits equal the training forward with the adapter
      const batch: TrainBatch = makeTrainBatch([examples[2]!]);
      const net = new TrainingModel(model, adapter);
      await net.forward(batch);
      const logits = merged.forwardSequence(examples[2]!.tokens.slice(0, -1));
      assert.ok(relativeError(logits, net.logits) < 1e-4);

      // and the saved GGUF adapter gives the same model
      const file = path.join(dir, 'miravel.gguf');
      await saveLoraGguf(file, adapter, { baseModelName: 'aidreams260K' });
      const reloaded = mergeLora(model, await loadLoraGguf(file, { modelConfig: model.config }));
      assert.deepEqual(
        reloaded.forwardSequence(examples[0]!.tokens),
        merged.forwardSequence(examples[0]!.tokens),
      );
    });

    it('trains with the Trainer step API and gradient accumulation', async () => {
      const tokenizer = model.tokenizer!;
      const examples = SENTENCES.slice(0, 4).map((s) => ({
        tokens: tokenizer.encode(s, { addBos: true, addEos: false }),
      }));
      const adapter = LoraAdapter.create(
        model.config,
        { rank: 4, alpha: 8, dropout: 0.05, targets: ['attn_q', 'attn_v'] },
        2,
      );
      const trainer = new Trainer(model, adapter, {
        learningRate: 2e-2,
        totalSteps: 12,
        warmupSteps: 2,
        weightDecay: 0.01,
        seed: 2,
      });
      const micro = [makeTrainBatch(examples.slice(0, 2)), makeTrainBatch(examples.slice(2))];
      const before = await trainer.evaluate(micro);
      for (let s = 0; s < 12; s++) await trainer.trainStep(micro);
      const afterTraining = await trainer.evaluate(micro);
      assert.equal(trainer.step, 12);
      assert.ok(afterTraining < 0.7 * before, `loss ${before} → ${afterTraining}`);
    });
  },
);

describe('Prng (xoshiro128**)', () => {
  it('is deterministic per seed and stream, and uniform enough', async () => {
    const a = new Prng(7);
    const b = new Prng(7);
    const first = Array.from({ length: 5 }, () => a.nextUint32());
    assert.deepEqual(
      first,
      Array.from({ length: 5 }, () => b.nextUint32()),
    );
    assert.notDeepEqual(
      first,
      Array.from({ length: 5 }, () => new Prng(7, 1).nextUint32()),
    );
    assert.notDeepEqual(
      first,
      Array.from({ length: 5 }, () => new Prng(8).nextUint32()),
    );
    const prng = new Prng(1);
    let sum = 0;
    let sq = 0;
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const u = prng.uniform();
      assert.ok(u >= 0 && u < 1);
      counts[Math.floor(u * 10)]!++;
      const z = prng.normal();
      sum += z;
      sq += z * z;
    }
    for (const c of counts) assert.ok(Math.abs(c - 2000) < 200, `bucket count ${c}`);
    assert.ok(Math.abs(sum / 20_000) < 0.03 && Math.abs(sq / 20_000 - 1) < 0.05);
    const shuffled = new Prng(3).shuffle([0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual([...shuffled].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(new Prng(3).shuffle([0, 1, 2, 3, 4, 5, 6, 7]), shuffled);
  });
});

describe('LoRA adapter', () => {
  it('starts with A Kaiming-uniform in ±1/√in (seeded) and B = 0', async () => {
    const adapter = LoraAdapter.create(TINY, ALL, 5);
    assert.equal(adapter.scale, 2);
    // per layer: q 3·32 + 32·3, k and v 3·32 + 16·3, o 3·32 + 32·3, gate and up 3·32 + 48·3,
    // down 3·48 + 32·3
    assert.equal(adapter.parameterCount, 2 * (192 + 144 + 144 + 192 + 240 + 240 + 240));
    for (const p of adapter.parameters()) {
      const pair = adapter.layers[p.layer]![p.target]!;
      if (p.kind === 'b') {
        assert.ok(p.value.every((v) => v === 0));
      } else {
        const bound = 1 / Math.sqrt(pair.inDim);
        assert.ok(p.value.every((v) => Math.abs(v) <= bound && v !== 0));
      }
    }
    const same = LoraAdapter.create(TINY, ALL, 5).parameters();
    const other = LoraAdapter.create(TINY, ALL, 6).parameters();
    adapter.parameters().forEach((p, i) => {
      assert.deepEqual(p.value, same[i]!.value);
      if (p.kind === 'a') assert.notDeepEqual(p.value, other[i]!.value);
    });
    assert.equal(
      adapter.parameters()[0]!.name,
      'blk.0.attn_q.weight.lora_a',
      'GGUF names, A before B',
    );
  });

  it('refuses bad configurations', async () => {
    const bad: Partial<LoraConfig>[] = [
      { rank: 0 },
      { rank: 2.5 },
      { alpha: 0 },
      { dropout: 1 },
      { targets: [] },
      { targets: ['attn_q', 'attn_q'] },
      { targets: ['wq' as 'attn_q'] },
    ];
    for (const change of bad) {
      assert.throws(
        () => LoraAdapter.create(TINY, { ...ALL, ...change }, 1),
        hasCode('VALIDATION_FAILED', /LoRA config/),
      );
    }
    const other = { ...TINY, nLayers: 3 };
    assert.throws(
      () => new TrainingModel(tinyModel(), LoraAdapter.create(other, ALL, 1)),
      hasCode('VALIDATION_FAILED', /3 layers/),
    );
  });
});

describe('matmulForward / matmulBackward', () => {
  it('agree with naive loops (odd sizes, accumulating backward)', async () => {
    const prng = new Prng(11);
    const [BT, C, OC] = [5, 7, 6];
    const fill = (n: number) => Float64Array.from({ length: n }, () => prng.normal());
    const inp = fill(BT * C);
    const w = fill(OC * C);
    const dout = fill(BT * OC);
    const out = new Float64Array(BT * OC);
    matmulForward(out, inp, w, BT, C, OC);
    const dinp = fill(BT * C);
    const dw = fill(OC * C);
    const dinp0 = dinp.slice();
    const dw0 = dw.slice();
    matmulBackward(dinp, dw, dout, inp, w, BT, C, OC);
    for (let t = 0; t < BT; t++) {
      for (let o = 0; o < OC; o++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += inp[t * C + c]! * w[o * C + c]!;
        assert.ok(Math.abs(out[t * OC + o]! - s) < 1e-12);
      }
      for (let c = 0; c < C; c++) {
        let s = dinp0[t * C + c]!;
        for (let o = 0; o < OC; o++) s += dout[t * OC + o]! * w[o * C + c]!;
        assert.ok(Math.abs(dinp[t * C + c]! - s) < 1e-12);
      }
    }
    for (let o = 0; o < OC; o++) {
      for (let c = 0; c < C; c++) {
        let s = dw0[o * C + c]!;
        for (let t = 0; t < BT; t++) s += dout[t * OC + o]! * inp[t * C + c]!;
        assert.ok(Math.abs(dw[o * C + c]! - s) < 1e-12);
      }
    }
  });
});

describe('training forward and backward on a tiny random GQA llama (all seven targets, rank 3)', () => {
  const model = tinyModel();

  it('makes batches: shifted targets, prompt and padding masked', async () => {
    assert.equal(BATCH.B, 2);
    assert.equal(BATCH.T, 8);
    assert.deepEqual([...BATCH.inputs.subarray(0, 8)], SEQUENCES[0]!.slice(0, 8));
    assert.deepEqual([...BATCH.targets.subarray(0, 8)], SEQUENCES[0]!.slice(1));
    assert.deepEqual([...BATCH.mask], [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    assert.throws(
      () => makeTrainBatch([{ tokens: [1, 2, 3, 4] }], { T: 2 }),
      hasCode('VALIDATION_FAILED', /at most 3/),
    );
    assert.throws(() => makeTrainBatch([{ tokens: [1] }]), hasCode('VALIDATION_FAILED'));
  });

  it('with B = 0 gives exactly the logits and loss of LlamaModel.forwardSequence', async () => {
    const net = new TrainingModel(model, LoraAdapter.create(TINY, ALL, 1));
    const result = await net.forward(BATCH);
    const { T } = BATCH;
    const V = TINY.vocabSize;
    let lossSum = 0;
    let count = 0;
    for (let b = 0; b < BATCH.B; b++) {
      const inputs = SEQUENCES[b]!.slice(0, -1);
      const reference = model.forwardSequence(inputs);
      const ours = net.logits.subarray(b * T * V, (b * T + inputs.length) * V);
      assert.deepEqual(ours, reference, `sequence ${b}: identical float32 logits`);
      for (let t = 0; t < inputs.length; t++) {
        if (BATCH.mask[b * T + t] === 0) continue;
        const row = reference.subarray(t * V, (t + 1) * V);
        const max = Math.max(...row);
        let sum = 0;
        for (const x of row) sum += Math.exp(x - max);
        lossSum += max + Math.log(sum) - row[BATCH.targets[b * T + t]!]!;
        count++;
      }
    }
    assert.equal(result.count, count);
    assert.ok(
      Math.abs(result.loss - lossSum / count) < 1e-12,
      `${result.loss} vs ${lossSum / count}`,
    );
  });

  it('pads without changing the loss, and refuses bad batches', async () => {
    const net = new TrainingModel(model, randomAdapter(), { precision: 'float64' });
    const alone = await net.forward(makeTrainBatch([{ tokens: SEQUENCES[1]! }]));
    const padded = await net.forward(
      makeTrainBatch([{ tokens: SEQUENCES[1]! }], { T: 12, padToken: 9 }),
    );
    assert.equal(padded.count, alone.count);
    assert.ok(Math.abs(padded.loss - alone.loss) < 1e-13);
    await assert.rejects(
      () => net.forward(makeTrainBatch([{ tokens: Array.from({ length: 18 }, () => 1) }])),
      hasCode('VALIDATION_FAILED', /context of 16/),
    );
    await assert.rejects(
      () => net.forward(makeTrainBatch([{ tokens: [1, 64] }])),
      hasCode('VALIDATION_FAILED', /vocabulary of 64/),
    );
    await assert.rejects(
      () => new TrainingModel(model, randomAdapter()).backward(),
      /forward first/,
    );
  });

  /**
   * Central differences (L(p + ε) − L(p − ε)) / 2ε with ε = 1e-3 on every A and B element, in
   * float64 storage. The error of a central difference is ε²/6 · ∂³L/∂p³, about 1e-7 here: an
   * absolute error, so the relative error is tiny for ordinary gradients and grows only where
   * the gradient itself is near zero. Bound: |g − fd| ≤ 1e-2 · max(|g|, |fd|) + 1e-6 for every
   * element, and the 99th percentile of the relative error below 1e-3.
   */
  async function gradientCheck(train: boolean, every: number) {
    const adapter = randomAdapter();
    const net = new TrainingModel(model, adapter, { precision: 'float64' });
    const options = { train, dropoutSeed: 5 }; // the same dropout masks at every forward
    await net.forward(BATCH, options);
    await net.backward();
    const grads = net.gradientList();
    const relative: number[] = [];
    let worst = { rel: 0, at: '' };
    for (const [j, p] of adapter.parameters().entries()) {
      for (let i = j % every; i < p.value.length; i += every) {
        const original = p.value[i]!;
        const plus = Math.fround(original + 1e-3); // the float32 values actually stored
        const minus = Math.fround(original - 1e-3);
        p.value[i] = plus;
        const lossPlus = (await net.forward(BATCH, options)).loss;
        p.value[i] = minus;
        const lossMinus = (await net.forward(BATCH, options)).loss;
        p.value[i] = original;
        const fd = (lossPlus - lossMinus) / (plus - minus);
        const g = grads[j]![i]!;
        const size = Math.max(Math.abs(g), Math.abs(fd));
        assert.ok(
          Math.abs(g - fd) <= 1e-2 * size + 1e-6,
          `${p.name}[${i}]: backward ${g}, finite difference ${fd}`,
        );
        const rel = Math.abs(g - fd) / size;
        relative.push(rel);
        if (rel > worst.rel) worst = { rel, at: `${p.name}[${i}] (g = ${g.toExponential(2)})` };
      }
    }
    relative.sort((a, b) => a - b);
    const at = (q: number) => relative[Math.floor(q * (relative.length - 1))]!;
    assert.ok(at(0.99) < 1e-3, `99th percentile ${at(0.99)}`);
    return `${relative.length} elements: median ${at(0.5).toExponential(1)}, p99 ${at(0.99).toExponential(1)}, max ${worst.rel.toExponential(1)} at ${worst.at}`;
  }

  it('has gradients equal to central finite differences (no dropout, every element)', async (t) => {
    t.diagnostic(await gradientCheck(false, 1)); // measured: median 1e-7, p99 2e-5, max 5e-4
  });

  it('has gradients equal to central finite differences with LoRA dropout 0.2', async (t) => {
    t.diagnostic(await gradientCheck(true, 3)); // measured: median 2e-7, p99 3e-5
  });

  it('computes the same gradients in float32 storage within 1e-4 of float64', async () => {
    const adapter = randomAdapter();
    const grads: Float64Array[][] = [];
    for (const precision of ['float32', 'float64'] as const) {
      const net = new TrainingModel(model, adapter, { precision });
      await net.forward(BATCH, { train: true, dropoutSeed: 5 });
      await net.backward();
      grads.push(net.gradientList());
    }
    grads[0]!.forEach((g, j) => {
      const err = relativeError(g, grads[1]![j]!);
      assert.ok(err < 1e-4, `parameter ${j}: ${err}`);
    });
  });

  it('accumulates micro-batches into the gradient of the mean over all their targets', async () => {
    const adapter = randomAdapter();
    const whole = new TrainingModel(model, adapter, { precision: 'float64' });
    await whole.forward(BATCH);
    await whole.backward();
    const parts = new TrainingModel(model, adapter, { precision: 'float64' });
    const halves = [
      makeTrainBatch([{ tokens: SEQUENCES[0]!, promptLength: 3 }]),
      makeTrainBatch([{ tokens: SEQUENCES[1]! }]),
    ];
    const count = halves.reduce((n, b) => n + b.mask.reduce((s, m) => s + m, 0), 0);
    for (const batch of halves) {
      await parts.forward(batch);
      await parts.backward(1 / count);
    }
    const a = whole.gradientList();
    parts.gradientList().forEach((g, j) => assert.ok(relativeError(g, a[j]!) < 1e-12));
  });

  it('merges into weights whose LlamaModel logits equal the adapter forward within 1e-4', async () => {
    const adapter = randomAdapter();
    const net = new TrainingModel(model, adapter);
    await net.forward(BATCH); // dropout off
    const merged = mergeLora(model, adapter);
    assert.equal(merged.weights.tokenEmbd, model.weights.tokenEmbd, 'unadapted weights shared');
    assert.notEqual(merged.weights.layers[0]!.attnQ, model.weights.layers[0]!.attnQ);
    const T = BATCH.T;
    const V = TINY.vocabSize;
    const inputs = SEQUENCES[0]!.slice(0, -1);
    const err = relativeError(merged.forwardSequence(inputs), net.logits.subarray(0, T * V));
    assert.ok(err < 1e-4, `relative error ${err}`);
    const base = relativeError(model.forwardSequence(inputs), net.logits.subarray(0, T * V));
    assert.ok(base > 1e-2, 'the adapter does change the logits');
  });
});

describe('AdamW, schedule and clipping', () => {
  it('does bias-corrected Adam steps with decoupled weight decay', async () => {
    const p = Float32Array.of(1, -2);
    const opt = new AdamW([p], { weightDecay: 0.1 });
    opt.step([Float64Array.of(0.5, 0)], 0.01);
    // t = 1: m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε) ≈ lr·sign(g); decay lr·λ·p
    assert.ok(Math.abs(p[0]! - (1 * (1 - 0.001) - 0.01)) < 1e-7);
    assert.ok(Math.abs(p[1]! - -2 * (1 - 0.001)) < 1e-7);
    // a reference for two more steps, by the formulas
    let [x, m, v] = [p[0]!, 0.05, 0.00025 * 1];
    for (const [t, g] of [
      [2, -0.25],
      [3, 1],
    ] as const) {
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      x =
        x * (1 - 0.001) - (0.01 * (m / (1 - 0.9 ** t))) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
      opt.step([Float64Array.of(g, 0)], 0.01);
      assert.ok(Math.abs(p[0]! - x) < 1e-6, `step ${t}: ${p[0]} vs ${x}`);
    }
    assert.throws(() => opt.step([], 0.01), hasCode('VALIDATION_FAILED'));
  });

  it('warms up linearly and decays by a cosine to the floor', async () => {
    const s = { learningRate: 1e-3, warmupSteps: 10, totalSteps: 110, minLearningRate: 1e-4 };
    assert.ok(Math.abs(learningRateAt(0, s) - 1e-4) < 1e-15);
    assert.ok(Math.abs(learningRateAt(9, s) - 1e-3) < 1e-15);
    assert.ok(Math.abs(learningRateAt(10, s) - 1e-3) < 1e-15);
    assert.ok(Math.abs(learningRateAt(60, s) - 5.5e-4) < 1e-12); // half way down
    assert.ok(learningRateAt(109, s) > 1e-4 && learningRateAt(109, s) < 1.01e-4);
    assert.ok(Math.abs(learningRateAt(110, s) - 1e-4) < 1e-15);
    assert.ok(learningRateAt(30, s) > learningRateAt(31, s));
    const model = tinyModel();
    const adapter = LoraAdapter.create(TINY, ALL, 1);
    assert.throws(
      () => new Trainer(model, adapter, { learningRate: 0, totalSteps: 10 }),
      hasCode('VALIDATION_FAILED', /learningRate 0/),
    );
    assert.throws(
      () => new Trainer(model, adapter, { learningRate: 1e-3, totalSteps: 0 }),
      hasCode('VALIDATION_FAILED', /totalSteps 0/),
    );
  });

  it('clips the global norm', async () => {
    const grads = [Float64Array.of(3), Float64Array.of(0, 4)];
    assert.equal(clipGradNorm(grads, 10), 5);
    assert.deepEqual([...grads[1]!], [0, 4]);
    assert.equal(clipGradNorm(grads, 1), 5);
    assert.ok(Math.abs(grads[0]![0]! - 0.6) < 1e-15 && Math.abs(grads[1]![1]! - 0.8) < 1e-15);
  });

  it('trains deterministically for a seed (dropout, shuffling, accumulation)', async () => {
    const model = tinyModel();
    const examples: TrainExample[] = SEQUENCES.map((tokens) => ({ tokens }));
    const run = async (seed: number) =>
      await trainLora(model, examples, {
        lora: ALL,
        steps: 4,
        batchSize: 1,
        accumulationSteps: 2,
        learningRate: 1e-2,
        warmupSteps: 1,
        seed,
      });
    const a = await run(3);
    const b = await run(3);
    const c = await run(4);
    assert.deepEqual(a.history, b.history);
    a.adapter.parameters().forEach((p, i) => {
      assert.deepEqual(p.value, b.adapter.parameters()[i]!.value);
      assert.notDeepEqual(p.value, c.adapter.parameters()[i]!.value);
    });
    assert.equal(a.history[0]!.tokens, 8 + 5);
    assert.equal(a.history[0]!.learningRate, 1e-2); // warmup of 1 step
    assert.ok(a.history[3]!.learningRate < a.history[1]!.learningRate);
  });
});

describe('GGUF LoRA files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-lora-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes llama.cpp's format (F32 lora_a ne [in, r], lora_b ne [r, out]) and reads it back", async () => {
    const adapter = randomAdapter({ ...ALL, targets: ['attn_q', 'attn_v', 'ffn_down'] });
    const file = path.join(dir, 'adapter.gguf');
    await saveLoraGguf(file, adapter, { baseModelName: 'tiny', name: 'test adapter' });
    const gg = await readGguf(file);
    const meta = Object.fromEntries([...gg.metadata].map(([k, v]) => [k, v.value]));
    assert.deepEqual(meta, {
      'general.architecture': 'llama',
      'general.type': 'adapter',
      'general.name': 'test adapter',
      'general.base_model.count': 1,
      'general.base_model.0.name': 'tiny',
      'adapter.type': 'lora',
      'adapter.lora.alpha': 6,
    });
    assert.equal(gg.metadata.get('adapter.lora.alpha')!.type, 'float32');
    const info = (name: string) => {
      const t = gg.tensor(name);
      return { dims: t.dims, type: t.type };
    };
    assert.deepEqual(info('blk.1.attn_q.weight.lora_a'), { dims: [32, 3], type: GGML_TYPE.F32 });
    assert.deepEqual(info('blk.1.attn_q.weight.lora_b'), { dims: [3, 32], type: GGML_TYPE.F32 });
    assert.deepEqual(info('blk.0.attn_v.weight.lora_b'), { dims: [3, 16], type: GGML_TYPE.F32 });
    assert.deepEqual(info('blk.0.ffn_down.weight.lora_a'), { dims: [48, 3], type: GGML_TYPE.F32 });
    assert.equal(gg.tensors.length, 2 * 3 * 2);

    const loaded = await loadLoraGguf(file, { modelConfig: TINY });
    assert.deepEqual(loaded.config, { ...adapter.config, dropout: 0 });
    loaded.parameters().forEach((p, i) => {
      const original = adapter.parameters()[i]!;
      assert.equal(p.name, original.name);
      assert.deepEqual(p.value, original.value);
    });
    // alpha can be overridden when saving
    await saveLoraGguf(file, adapter, { alpha: 3 });
    assert.equal((await loadLoraGguf(file)).scale, 1);
  });

  it('refuses files that are not llama LoRA adapters, or do not fit the model', async () => {
    const file = path.join(dir, 'not-adapter.gguf');
    await writeGguf(file, { metadata: { 'general.architecture': gguf.string('llama') } });
    await assert.rejects(loadLoraGguf(file), hasCode('GGUF_INVALID', /general.type/));
    const adapter = randomAdapter({ ...ALL, targets: ['attn_q'] });
    const good = path.join(dir, 'q.gguf');
    await saveLoraGguf(good, adapter);
    const smaller: LlamaConfig = { ...TINY, dim: 16, headDim: 4, ropeDim: 4 };
    await assert.rejects(
      loadLoraGguf(good, { modelConfig: smaller }),
      hasCode('VALIDATION_FAILED', /the model's is/),
    );
    // qwen2 adapters have llama's targets; GPT-2's do not; other architectures are refused
    const qwen = path.join(dir, 'qwen.gguf');
    await saveLoraGguf(qwen, adapter, { architecture: 'qwen2' });
    assert.equal((await loadLoraGguf(qwen)).layers[1]!.attn_q!.outDim, 32);
    const gpt2 = path.join(dir, 'gpt2.gguf');
    await saveLoraGguf(gpt2, adapter, { architecture: 'gpt2' });
    await assert.rejects(loadLoraGguf(gpt2), hasCode('GGUF_UNSUPPORTED', /not a LoRA of a gpt2/));
    const falcon = path.join(dir, 'falcon.gguf');
    await saveLoraGguf(falcon, adapter, { architecture: 'falcon' });
    await assert.rejects(loadLoraGguf(falcon), hasCode('GGUF_UNSUPPORTED', /falcon/));
  });
});
