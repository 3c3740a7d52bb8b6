import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  influenceOfOutput,
  influenceScores,
  influenceWeights,
  outputSketch,
  sketchContributors,
} from '../src/attribution/index.ts';
import { encodeGguf } from '../src/engine/gguf/index.ts';
import { LlamaModel } from '../src/engine/model/index.ts';
import type { LlamaConfig, LlamaLayerWeights } from '../src/engine/model/index.ts';
import {
  LoraAdapter,
  Prng,
  loraGgufInput,
  trainLora,
  type TrainExample,
} from '../src/engine/train/index.ts';
import { loadSketches, sketchTrainingSet, type Sketches } from '../src/factory/sketches.ts';
import { hasCode } from './helpers/asserts.ts';

// A small random llama, as in factory-sketches.test.ts: trains and sketches in a few seconds.
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

function smallModel(seed = 7): LlamaModel {
  const prng = new Prng(seed);
  const random = (n: number, scale = 1) =>
    Float32Array.from({ length: n }, () => scale * prng.normal());
  const { dim: C, hiddenDim: H, nHeads, nKvHeads, headDim, vocabSize: V } = SMALL;
  const matrix = (out: number, inDim: number) => random(out * inDim, 1 / Math.sqrt(inDim));
  const norm = () => Float32Array.from({ length: C }, () => 1 + 0.1 * prng.normal());
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < SMALL.nLayers; l++) {
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
  return new LlamaModel(SMALL, {
    tokenEmbd: random(V * C),
    layers,
    outputNorm: norm(),
    output: matrix(V, C),
  });
}

/** A served-call shape: 4 prompt tokens, then 8 output tokens continuing the same rule. */
interface Pattern {
  base: number;
  period: number;
  stride: number;
}
const call = ({ base, period, stride }: Pattern, start: number) => {
  const tokens = Array.from({ length: 12 }, (_, t) => base + ((start + t * stride) % period));
  return { promptTokens: tokens.slice(0, 4), outputTokens: tokens.slice(4) };
};

const BACKGROUND: Pattern = { base: 0, period: 40, stride: 1 }; // counting up through 0 … 39

/**
 * Three planted contributors, each with a canary of its own: 8 tokens drawn from the whole
 * vocabulary, the output of each of their rows after a prompt like the background's.
 */
const CANARIES: number[][] = (() => {
  const prng = new Prng(17);
  return [0, 1, 2].map(() => Array.from({ length: 8 }, () => prng.nextUint32() % SMALL.vocabSize));
})();
const planted = (p: number, start: number) => ({
  promptTokens: call(BACKGROUND, start).promptTokens,
  outputTokens: CANARIES[p]!,
});
const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;

interface Row {
  contributor: string;
  planted: number | null;
  example: ReturnType<typeof call>;
}

/**
 * Two more planted contributors, each with a rule rather than a passage: counting up through
 * 40 … 59 and through 60 … 79. An output that applies a rule to a new start reproduces no row.
 */
const RULES: Pattern[] = [
  { base: 40, period: 20, stride: 1 },
  { base: 60, period: 20, stride: 1 },
];
/** A near reproduction: tokens 2 and 5 of the canary replaced. */
const nearCanary = (p: number, start: number) => {
  const example = planted(p, start);
  const outputTokens = example.outputTokens.map((t, i) => (i === 2 || i === 5 ? (t + 41) % 80 : t));
  return { ...example, outputTokens };
};

/** 4 background contributors × 6 rows, 5 planted contributors × 4 rows. */
function dataset(): Row[] {
  const rows: Row[] = [];
  for (let c = 0; c < 4; c++)
    for (let i = 0; i < 6; i++)
      rows.push({
        contributor: address(c + 1),
        planted: null,
        example: call(BACKGROUND, 2 * (6 * c + i)),
      });
  CANARIES.forEach((_, p) => {
    for (let i = 0; i < 4; i++)
      rows.push({ contributor: address(100 + p), planted: p, example: planted(p, 10 * i + 3 * p) });
  });
  RULES.forEach((rule, r) => {
    for (let i = 0; i < 4; i++)
      rows.push({ contributor: address(200 + r), planted: 3 + r, example: call(rule, 4 * i) });
  });
  return rows;
}
/** Prompts no planted row has (rows use starts 10i + 3p). */
const QUERY_STARTS = [5, 27];

const toTrain = (e: ReturnType<typeof call>): TrainExample => ({
  tokens: [...e.promptTokens, ...e.outputTokens],
  promptLength: e.promptTokens.length,
});

/** The chance that a random positive row outscores a random negative one (ties count ½). */
function auc(
  scores: ArrayLike<number>,
  positive: (i: number) => boolean,
  negative: (i: number) => boolean,
) {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!positive(i)) continue;
    for (let j = 0; j < scores.length; j++) {
      if (!negative(j)) continue;
      pairs += 1;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

describe('influence channel', () => {
  let model: LlamaModel;
  let adapter: LoraAdapter;
  let adapterBytes: Uint8Array;
  let sketches: Sketches;
  let rows: Row[];
  let contributors: string[];
  let trainSeconds = 0;
  let sketchSeconds = 0;

  before(async () => {
    model = smallModel();
    rows = dataset();
    const started = performance.now();
    ({ adapter } = await trainLora(
      model,
      rows.map((r) => toTrain(r.example)),
      {
        lora: { rank: 4, alpha: 8, dropout: 0, targets: ['attn_q', 'attn_v', 'ffn_down'] },
        steps: 40,
        batchSize: 8,
        learningRate: 1e-2,
        seed: 3,
      },
    ));
    trainSeconds = (performance.now() - started) / 1000;
    adapterBytes = encodeGguf(loraGgufInput(adapter));
    const manifestRows = rows.map((r) => ({
      rowHash: createHash('sha256').update(JSON.stringify(r.example)).digest('hex'),
      contributor: r.contributor,
    }));
    const sketched = await sketchTrainingSet({
      model,
      adapter,
      adapterBytes,
      rows: rows.map((r, index) => ({
        index,
        rowHash: manifestRows[index]!.rowHash,
        example: toTrain(r.example),
      })),
      seed: 3,
      step: 40,
    });
    sketchSeconds = sketched.seconds;
    sketches = loadSketches(sketched.bytes);
    contributors = sketchContributors(sketches.header, manifestRows);
  });

  it('ranks the planted rows of a reproduced pattern above the rest, and pays their contributor', async (t) => {
    type Kind = 'canary' | 'near canary' | 'rule';
    const queries: { kind: Kind; p: number; owner: string; example: ReturnType<typeof call> }[] =
      [];
    for (const start of QUERY_STARTS)
      for (const p of CANARIES.keys()) {
        queries.push({ kind: 'canary', p, owner: address(100 + p), example: planted(p, start) });
        queries.push({
          kind: 'near canary',
          p,
          owner: address(100 + p),
          example: nearCanary(p, start),
        });
      }
    for (const start of [2, 9])
      for (const [r, rule] of RULES.entries())
        queries.push({
          kind: 'rule',
          p: 3 + r,
          owner: address(200 + r),
          example: call(rule, start),
        });
    const aucs = new Map<string, number[]>();
    let queryMs = 0;
    for (const { kind, p, owner, example } of queries) {
      const started = performance.now();
      const sketch = await outputSketch({ sketches, model, adapter: adapterBytes, example });
      queryMs += performance.now() - started;
      for (const method of ['datainf', 'tracin'] as const) {
        const scores = influenceScores(sketches, sketch.query, { method });
        const mine = (i: number) => rows[i]!.planted === p;
        // the planted rows of the pattern against the background rows
        const value = auc(scores, mine, (i) => rows[i]!.planted === null);
        aucs.set(`${kind} ${method}`, [...(aucs.get(`${kind} ${method}`) ?? []), value]);
        const { weightsPpb } = influenceWeights(scores, contributors);
        const top = [...weightsPpb].sort((x, y) => (x[1] > y[1] ? -1 : x[1] < y[1] ? 1 : 0))[0];
        assert.equal(top?.[0], owner, `${kind} ${p} ${method}: its contributor gets the most`);
      }
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    t.diagnostic(
      `mean AUC (planted rows of the pattern vs background rows): ${[...aucs].map(([k, xs]) => `${k} ${mean(xs).toFixed(3)} (min ${Math.min(...xs).toFixed(3)})`).join('; ')}`,
    );
    t.diagnostic(
      `${rows.length} rows × ${sketches.header.layout.dims} dims; training ${trainSeconds.toFixed(1)} s, sketching ${sketchSeconds.toFixed(1)} s, ${(queryMs / queries.length).toFixed(0)} ms per output gradient`,
    );
    for (const method of ['datainf', 'tracin'] as const) {
      assert.ok(mean(aucs.get(`canary ${method}`)!) >= 0.99, `${method}: canary`);
      assert.ok(mean(aucs.get(`near canary ${method}`)!) >= 0.93, `${method}: near canary`);
      assert.ok(mean(aucs.get(`rule ${method}`)!) >= 0.75, `${method}: rule`);
    }
  });

  it('a background-like output does not pay the planted contributors most of the weight', async (t) => {
    for (const start of [5, 31]) {
      const result = await influenceOfOutput({
        sketches,
        model,
        adapter,
        example: call(BACKGROUND, start),
      });
      const { weightsPpb } = influenceWeights(result.scores, contributors);
      let planted = 0n;
      for (const [who, ppb] of weightsPpb) if (BigInt(who) >= 100n) planted += ppb;
      t.diagnostic(
        `background start ${start}: planted contributors' weight ${(Number(planted) / 1e9).toFixed(3)}`,
      );
      assert.ok(planted < 500_000_000n, `planted weight ${planted} ppb`);
    }
  });

  it('is deterministic, pays positive scores only, and sums to 10^9 ppb', async () => {
    const example = planted(0, 5);
    const a = await influenceOfOutput({ sketches, model, adapter, example, method: 'datainf' });
    const b = await influenceOfOutput({
      sketches,
      model,
      adapter: adapterBytes,
      example,
      method: 'datainf',
    });
    assert.deepEqual(b.query, a.query, 'the same gradient bit for bit');
    assert.deepEqual(b.scores, a.scores, 'the same scores bit for bit');
    const tracin = await influenceOfOutput({ sketches, model, adapter, example, method: 'tracin' });
    assert.notDeepEqual(tracin.scores, a.scores);
    assert.deepEqual(influenceScores(sketches, a.query), a.scores, 'DataInf is the default');
    assert.notDeepEqual(influenceScores(sketches, a.query, { lambdaScale: 10 }), a.scores);
    assert.throws(
      () => influenceScores(sketches, a.query, { lambdaScale: 0 }),
      hasCode('VALIDATION_FAILED', /lambdaScale/),
    );
    assert.throws(
      () => influenceScores(sketches, a.query, { method: 'shapley' as 'tracin' }),
      hasCode('VALIDATION_FAILED', /unknown method/),
    );

    const { weightsPpb, rows: paid } = influenceWeights(a.scores, contributors);
    assert.equal(
      [...weightsPpb.values()].reduce((s, x) => s + x, 0n),
      1_000_000_000n,
    );
    assert.ok(paid.every((r) => r.score > 0) && paid.length < a.scores.length, 'some rows hurt');
    // a contributor whose rows all scored ≤ 0 gets nothing; negative rows take nothing away
    const flipped = Float64Array.from(a.scores, (s, i) =>
      contributors[i] === address(100) ? -Math.abs(s) : s,
    );
    assert.equal(influenceWeights(flipped, contributors).weightsPpb.has(address(100)), false);
    const worse = Float64Array.from(a.scores, (s) => (s < 0 ? 100 * s : s));
    assert.deepEqual(influenceWeights(worse, contributors).weightsPpb, weightsPpb);
    // exact sums: the order of the rows does not change the weights
    const order = [...a.scores.keys()].reverse();
    assert.deepEqual(
      influenceWeights(
        order.map((i) => a.scores[i]!),
        order.map((i) => contributors[i]!),
      ).weightsPpb,
      weightsPpb,
    );
    assert.deepEqual(
      influenceWeights([-1, 0], ['a', 'b']).weightsPpb,
      new Map(),
      'nobody helped: empty',
    );
    assert.deepEqual(
      [...influenceWeights([1, 2, 1e-300, -5], ['b', 'a', 'b', 'c']).weightsPpb],
      [
        ['a', 666_666_667n],
        ['b', 333_333_333n],
      ],
    );
    assert.throws(() => influenceWeights([1], ['a', 'b']), hasCode('VALIDATION_FAILED'));
    assert.throws(() => influenceWeights([Number.NaN], ['a']), hasCode('VALIDATION_FAILED'));
  });

  it('refuses sketches that do not fit the adapter, the manifest or the model', async () => {
    const example = planted(0, 5);
    // another adapter (other targets): another layout
    const other = LoraAdapter.create(
      SMALL,
      { rank: 4, alpha: 8, dropout: 0, targets: ['attn_q'] },
      1,
    );
    await assert.rejects(
      outputSketch({ sketches, model, adapter: other, example }),
      hasCode('SKETCH_MISMATCH', /layout/),
    );
    await assert.rejects(
      outputSketch({ sketches, model, adapter: encodeGguf(loraGgufInput(other)), example }),
      hasCode('SKETCH_MISMATCH', /sha256/),
    );
    // the same adapter, sketched with another K: the layouts differ
    const regrouped = {
      ...sketches,
      header: { ...sketches.header, layout: { ...sketches.header.layout, k: 64 } },
    };
    await assert.rejects(
      outputSketch({ sketches: regrouped, model, adapter, example }),
      hasCode('SKETCH_MISMATCH', /layout/),
    );
    await assert.rejects(
      outputSketch({
        sketches: { ...sketches, header: { ...sketches.header, stream: 7 } },
        model,
        adapter,
        example,
      }),
      hasCode('SKETCH_MISMATCH', /stream/),
    );
    assert.throws(
      () => sketchContributors(sketches.header, [{ rowHash: 'x', contributor: address(1) }]),
      hasCode('SKETCH_MISMATCH', /manifest/),
    );
    await assert.rejects(
      outputSketch({
        sketches,
        model,
        adapter,
        example: { promptTokens: [1], outputTokens: [80] },
      }),
      hasCode('VALIDATION_FAILED', /vocabulary/),
    );
    await assert.rejects(
      outputSketch({ sketches, model, adapter, example: { promptTokens: [1], outputTokens: [] } }),
      hasCode('VALIDATION_FAILED'),
    );
    await assert.rejects(
      outputSketch({
        sketches,
        model,
        adapter,
        example: { promptTokens: new Array(31).fill(1), outputTokens: [2, 3, 4] }, // 34 > 32 + 1
      }),
      hasCode('CONTEXT_LENGTH_EXCEEDED'),
    );
    assert.throws(
      () => influenceScores(sketches, new Float64Array(3)),
      hasCode('VALIDATION_FAILED', /query/),
    );
  });
});
