import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { devAccount } from '../src/chain/index.ts';
import type { RowContent } from '../src/datanets/ingest/index.ts';
import { loadLlamaGguf, loadLoraGguf } from '../src/engine/index.ts';
import { LlamaModel } from '../src/engine/model/index.ts';
import type { LlamaConfig, LlamaLayerWeights } from '../src/engine/model/index.ts';
import {
  LoraAdapter,
  Prng,
  TrainingModel,
  adapterSketchLayout,
  checkSketchLayout,
  dataInfScores,
  exampleGradient,
  makeTrainBatch,
  projectGradient,
  sketchExamples,
  sketchLayout,
  tracInScores,
  trainLora,
  type TrainExample,
} from '../src/engine/train/index.ts';
import {
  loadDatasetRows,
  normalizeTrainParams,
  renderExample,
  type TrainingManifest,
} from '../src/factory/index.ts';
import {
  encodeSketches,
  jobSketchK,
  loadSketches,
  sketchRow,
  type SketchHeader,
} from '../src/factory/sketches.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { AIDREAMS_GGUF } from './helpers/models.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { hasCode } from './helpers/asserts.ts';

// A small random llama (as in engine-kernels.test.ts)
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
  const random = (n: number, scale = 1) =>
    Float32Array.from({ length: n }, () => scale * prng.normal());
  const { dim: C, hiddenDim: H, nHeads, nKvHeads, headDim, vocabSize: V } = config;
  const matrix = (out: number, inDim: number) => random(out * inDim, 1 / Math.sqrt(inDim));
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
  const tokenEmbd = random(V * C);
  return new LlamaModel(config, { tokenEmbd, layers, outputNorm: norm(), output: matrix(V, C) });
}

/**
 * Two planted groups: A counts up by 1 through tokens 0 … 39, B by 3 through tokens 40 … 79
 * (disjoint vocabularies and different rules), 12 examples each of 12 tokens starting at even
 * offsets. The query counts up from 11: like group A (it shares tokens and the rule with each
 * A example) but none of them.
 */
function plantedGroups(): { a: TrainExample[]; b: TrainExample[]; queryA: TrainExample } {
  const seq = (start: number, stride: number, base: number) => ({
    tokens: Array.from({ length: 12 }, (_, t) => base + ((start + t * stride) % 40)),
  });
  return {
    a: Array.from({ length: 12 }, (_, i) => seq(i * 2, 1, 0)),
    b: Array.from({ length: 12 }, (_, i) => seq(i * 2, 3, 40)),
    queryA: seq(11, 1, 0), // not among the training examples
  };
}

const LORA = { rank: 4, alpha: 8, dropout: 0, targets: ['attn_q', 'attn_v', 'ffn_down'] as const };

async function trainedPlanted() {
  const model = smallModel();
  const { a, b, queryA } = plantedGroups();
  const { adapter } = await trainLora(model, [...a, ...b], {
    lora: { ...LORA, targets: [...LORA.targets] },
    steps: 30,
    batchSize: 8,
    learningRate: 1e-2,
    seed: 3,
  });
  return { model, adapter, a, b, queryA };
}

/** Every parameter's gradient (float64 copies) for one example. */
async function exactGradient(network: TrainingModel, example: TrainExample) {
  await exampleGradient(network, example);
  return new Map(network.parameters().map((p) => [p.name, Float64Array.from(p.grad)]));
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

describe('gradient sketches (engine)', () => {
  it('lays out groups per tensor or per block, identity when a group is small', () => {
    const params = [
      { name: 'blk.0.attn_q.weight.lora_a', size: 256 },
      { name: 'blk.0.attn_q.weight.lora_b', size: 40 },
      { name: 'blk.1.attn_q.weight.lora_a', size: 256 },
      { name: 'blk.1.attn_q.weight.lora_b', size: 40 },
    ];
    const tensor = sketchLayout(params, { k: 64 });
    assert.equal(tensor.grouping, 'tensor');
    assert.deepEqual(
      tensor.groups.map((g) => [g.name, g.size, g.k, g.offset, g.projection]),
      [
        ['blk.0.attn_q.weight.lora_a', 256, 64, 0, 'rademacher'],
        ['blk.0.attn_q.weight.lora_b', 40, 40, 64, 'identity'],
        ['blk.1.attn_q.weight.lora_a', 256, 64, 104, 'rademacher'],
        ['blk.1.attn_q.weight.lora_b', 40, 40, 168, 'identity'],
      ],
    );
    assert.equal(tensor.dims, 208);
    const block = sketchLayout(params, { k: 64, grouping: 'block' });
    assert.deepEqual(
      block.groups.map((g) => [g.name, g.size, g.k]),
      [
        ['blk.0', 296, 64],
        ['blk.1', 296, 64],
      ],
    );
    assert.deepEqual(
      block.params.map((p) => p.group),
      [0, 0, 1, 1],
    );
    checkSketchLayout(block);
    assert.throws(
      () => checkSketchLayout({ ...block, dims: 129 }),
      hasCode('VALIDATION_FAILED', /inconsistent/),
    );
    assert.throws(() => sketchLayout(params, { k: 0 }), hasCode('VALIDATION_FAILED', /k must/));
    assert.throws(
      () => sketchLayout([...params, params[0]!]),
      hasCode('VALIDATION_FAILED', /twice/),
    );
    assert.equal(jobSketchK(16), 128);
    assert.equal(jobSketchK(128), 64);
    assert.equal(jobSketchK(1000), 16);
  });

  it('regenerates the projection from the seed: deterministic, linear, zeros keep the stream aligned', () => {
    const params = [
      { name: 'blk.0.attn_q.weight.lora_a', size: 300 },
      { name: 'blk.0.attn_q.weight.lora_b', size: 20 },
    ];
    const layout = sketchLayout(params, { k: 40 }); // 40: the last word's high bits are dropped
    const prng = new Prng(11);
    const x = Float64Array.from({ length: 300 }, () => prng.normal());
    const y = Float64Array.from({ length: 300 }, () => prng.normal());
    const small = Float64Array.from({ length: 20 }, (_, i) => i - 5);
    const grads = (a: Float64Array) =>
      new Map([
        [params[0]!.name, a],
        [params[1]!.name, small],
      ]);
    const px = projectGradient({ seed: 5, layout }, grads(x));
    assert.deepEqual(projectGradient({ seed: 5, layout }, grads(x)), px, 'bit for bit');
    assert.notDeepEqual(projectGradient({ seed: 6, layout }, grads(x)), px);
    // the identity group is the gradient itself
    assert.deepEqual([...px.subarray(40, 60)], [...small]);
    // linear: P(x + y) = P(x) + P(y) (the identity part doubles: small is in both)
    const py = projectGradient({ seed: 5, layout }, grads(y));
    const pxy = projectGradient({ seed: 5, layout }, grads(x.map((v, i) => v + y[i]!)));
    for (let j = 0; j < 40; j++) assert.ok(Math.abs(pxy[j]! - px[j]! - py[j]!) < 1e-9);
    // a sparse vector (most entries zero) projects to the sum of its coordinates' columns
    const sparse = new Float64Array(300);
    sparse[7] = 2;
    sparse[250] = -1;
    const unit = (i: number) => {
      const e = new Float64Array(300);
      e[i] = 1;
      return projectGradient({ seed: 5, layout }, grads(e));
    };
    const ps = projectGradient({ seed: 5, layout }, grads(sparse));
    const e7 = unit(7);
    const e250 = unit(250);
    for (let j = 0; j < 40; j++) {
      assert.ok(Math.abs(ps[j]! - (2 * e7[j]! - e250[j]!)) < 1e-12);
      assert.equal(Math.abs(e7[j]!), 1 / Math.sqrt(40), 'entries are ±1/√k');
    }
    // the same values given as a parameter list, in any order
    const listed = projectGradient({ seed: 5, layout }, [
      { name: params[1]!.name, grad: small },
      { name: params[0]!.name, grad: x },
    ]);
    assert.deepEqual(listed, px);
    assert.throws(
      () => projectGradient({ seed: 5, layout }, new Map([[params[0]!.name, x]])),
      hasCode('VALIDATION_FAILED', /no gradient for/),
    );
  });

  it('per-example gradients are exact: their token-weighted mean is the batch gradient', async () => {
    const model = smallModel();
    const adapter = LoraAdapter.create(model.config, { ...LORA, targets: [...LORA.targets] }, 1);
    for (const p of adapter.parameters()) if (p.kind === 'b') p.value.fill(0.05); // B ≠ 0
    const network = new TrainingModel(model, adapter, { precision: 'float64' });
    const { a, b } = plantedGroups();
    const short = { tokens: b[0]!.tokens.slice(0, 6) }; // a shorter one: padding in the batch
    const ga = await exactGradient(network, a[0]!);
    const la = (await network.forward(makeTrainBatch([a[0]!]))).count;
    const gb = await exactGradient(network, short);
    const lb = (await network.forward(makeTrainBatch([short]))).count;
    network.zeroGrad();
    await network.forward(makeTrainBatch([a[0]!, short]));
    await network.backward();
    for (const p of network.parameters()) {
      const expected = ga
        .get(p.name)!
        .map((v, i) => (la * v + lb * gb.get(p.name)![i]!) / (la + lb));
      for (let i = 0; i < p.grad.length; i++)
        assert.ok(Math.abs(p.grad[i]! - expected[i]!) < 1e-12, `${p.name}[${i}]`);
    }
  });

  it('preserves inner products within the measured error, and ranks a planted group first', async (t) => {
    const { model, adapter, a, b, queryA } = await trainedPlanted();
    const network = new TrainingModel(model, adapter);
    const examples = [...a, ...b];
    const exact = [];
    const started = performance.now();
    for (const e of examples) exact.push(await exactGradient(network, e));
    const gradMs = (performance.now() - started) / examples.length;
    const layout = adapterSketchLayout(adapter); // per tensor, k = 128
    assert.ok(layout.groups.some((g) => g.projection === 'rademacher'));
    const header = { seed: 9, layout };
    const { values, losses } = await sketchExamples(network, examples, header);
    assert.equal(values.length, examples.length * layout.dims);
    assert.ok(losses.every((l) => l.tokens === 11 && l.loss > 0));
    // the stored sketches are the projections of the exact gradients
    const flat = (g: Map<string, Float64Array>) =>
      projectGradient({ seed: 0, layout: adapterSketchLayout(adapter, { k: 1 << 16 }) }, g);
    const full = exact.map(flat);
    const sketches = { layout, count: examples.length, values };
    const row = (i: number) => values.subarray(i * layout.dims, (i + 1) * layout.dims);
    const p0 = projectGradient(header, exact[0]!);
    for (let j = 0; j < layout.dims; j++) assert.equal(row(0)[j], Math.fround(p0[j]!));

    // (a) inner products: |ŝ_i·ŝ_j − g_i·g_j| / (‖g_i‖‖g_j‖) over all pairs
    const errors: number[] = [];
    for (let i = 0; i < examples.length; i++)
      for (let j = i; j < examples.length; j++) {
        const exactDot = dot(full[i]!, full[j]!);
        const norm = Math.sqrt(dot(full[i]!, full[i]!) * dot(full[j]!, full[j]!));
        errors.push(Math.abs(dot(row(i), row(j)) - exactDot) / norm);
      }
    errors.sort((x, y) => x - y);
    const mean = errors.reduce((s, e) => s + e, 0) / errors.length;
    const p95 = errors[Math.floor(0.95 * errors.length)]!;
    t.diagnostic(
      `${adapter.parameterCount} LoRA values in ${layout.groups.length} tensors → ${layout.dims} dims; inner-product error / (‖a‖‖b‖): mean ${mean.toFixed(4)}, p95 ${p95.toFixed(4)}, max ${errors.at(-1)!.toFixed(4)}; ${gradMs.toFixed(1)} ms per example gradient`,
    );
    // JL: about √(2/k) ≈ 0.125 at most per group for k = 128, less summed over groups
    assert.ok(mean < 0.05, `mean error ${mean}`);
    assert.ok(p95 < 0.12, `p95 error ${p95}`);

    // (b) the planted case: a new group-A example is most influenced by group A
    const query = projectGradient(header, await exactGradient(network, queryA));
    const exactQuery = flat(await exactGradient(network, queryA));
    const exactSketches = {
      layout: adapterSketchLayout(adapter, { k: 1 << 16 }),
      count: examples.length,
      values: Float64Array.from(full.flatMap((f) => [...f])),
    };
    for (const [name, scores, reference] of [
      ['TracIn', tracInScores(sketches, query), tracInScores(exactSketches, exactQuery)],
      ['DataInf', dataInfScores(sketches, query), dataInfScores(exactSketches, exactQuery)],
    ] as const) {
      // AUC: the chance that a random A example outscores a random B example
      const auc = (xs: Float64Array) => {
        let wins = 0;
        for (let i = 0; i < a.length; i++)
          for (let j = a.length; j < examples.length; j++) wins += xs[i]! > xs[j]! ? 1 : 0;
        return wins / (a.length * b.length);
      };
      // what would be paid: A's share of the positive influence
      const positiveShareA = (xs: Float64Array) => {
        const positive = [...xs].map((x) => Math.max(0, x));
        const total = positive.reduce((s, x) => s + x, 0);
        return positive.slice(0, a.length).reduce((s, x) => s + x, 0) / total;
      };
      const top5 = [...scores.keys()].sort((i, j) => scores[j]! - scores[i]!).slice(0, 5);
      t.diagnostic(
        `${name}: A's share of positive influence ${positiveShareA(scores).toFixed(3)} (unprojected ${positiveShareA(reference).toFixed(3)}); AUC(A over B) ${auc(scores).toFixed(3)} (unprojected ${auc(reference).toFixed(3)}); top 5 ${top5.join(' ')}`,
      );
      assert.ok(positiveShareA(scores) >= 0.8, `${name}: A's share ${positiveShareA(scores)}`);
      assert.ok(
        top5.every((i) => i < a.length),
        `${name}: the top five are group A (${top5})`,
      );
      // influence is local (A examples sharing few tokens with the query score near zero even
      // unprojected): the sketch must rank like the exact gradients, not better than them
      assert.ok(auc(scores) >= 0.75, `${name}: AUC ${auc(scores)}`);
      assert.ok(Math.abs(auc(scores) - auc(reference)) <= 0.1, `${name}: AUC vs unprojected`);
    }
  });

  it('encodes and decodes the sketch file, refusing damaged ones', () => {
    const layout = sketchLayout([
      { name: 'blk.0.attn_q.weight.lora_a', size: 100 },
      { name: 'blk.0.attn_q.weight.lora_b', size: 3 },
    ]);
    const header: SketchHeader = {
      kind: 'openledger.gradient-sketches',
      formatVersion: 1,
      seed: 1,
      stream: 0x40000000,
      projection: 'rademacher',
      loss: 'mean',
      dropout: false,
      step: 4,
      adapterSha256: '0'.repeat(64),
      backend: 'typescript',
      layout,
      count: 2,
      rows: [
        { index: 0, rowHash: 'a'.repeat(64), tokens: 3, loss: 1.5 },
        { index: 2, rowHash: 'b'.repeat(64), tokens: 4, loss: 0.25 },
      ],
    };
    const values = Float32Array.from({ length: 2 * layout.dims }, (_, i) => i / 7 - 3);
    const bytes = encodeSketches(header, values);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), 'OLSKETCH');
    const loaded = loadSketches(bytes);
    assert.deepEqual(loaded.header, header);
    assert.deepEqual(loaded.values, values);
    assert.deepEqual(sketchRow(loaded, 1), values.subarray(layout.dims));
    assert.equal((bytes.length - 4 * values.length) % 4, 0, 'values start 4-aligned');
    assert.throws(() => loadSketches(bytes.subarray(0, bytes.length - 4)), hasCode('FILE_INVALID'));
    assert.throws(() => loadSketches(new Uint8Array(20)), hasCode('FILE_INVALID', /magic/));
    const bad = encodeSketches({ ...header, layout: { ...layout, k: 32 } }, values);
    assert.throws(() => loadSketches(bad), hasCode('FILE_INVALID', /layout/));
    assert.throws(() => encodeSketches(header, new Float32Array(3)), hasCode('VALIDATION_FAILED'));
  });
});

const THINGS: [string, string][] = [
  ['lantern', 'blue'],
  ['kettle', 'red'],
  ['blanket', 'green'],
  ['teapot', 'yellow'],
  ['ladder', 'brown'],
  ['bucket', 'orange'],
  ['pillow', 'white'],
  ['basket', 'purple'],
  ['curtain', 'pink'],
  ['bicycle', 'black'],
];
const row = ([thing, color]: [string, string]): RowContent => ({
  type: 'instruction',
  instruction: `What color is the ${thing} in the little house?`,
  output: `The ${thing} is ${color}. The ${thing} is ${color}.`,
});

describe(
  'gradient sketches of a training job',
  { skip: existsSync(AIDREAMS_GGUF) ? false : `fixture absent: ${AIDREAMS_GGUF}` },
  () => {
    let node: TestNode;
    let alice: DatanetActor;
    let bob: DatanetActor;
    let datanetId: number;

    before(async () => {
      node = await startTestNode();
      const owner = new DatanetActor(node.url, devAccount(0));
      alice = new DatanetActor(node.url, devAccount(1));
      bob = new DatanetActor(node.url, devAccount(2));
      const created = await owner.create({
        name: 'House colors',
        description:
          'Short questions and answers about the colors of things in the little house: lanterns, kettles, blankets and more.',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      datanetId = created.body.id;
      const a = await alice.contributeRows(datanetId, THINGS.slice(0, 5).map(row));
      const b = await bob.contributeRows(datanetId, THINGS.slice(5).map(row));
      assert.equal(a.status, 201, JSON.stringify(a.body));
      assert.equal(b.status, 201, JSON.stringify(b.body));
      const approved = await owner.approve(datanetId, [a.body.id, b.body.id]);
      assert.equal(approved.status, 201, JSON.stringify(approved.body));
    });
    after(() => node?.close());

    it('stores a sketch per trained row, named by the manifest, served to the job owner', async (t) => {
      const token = await alice.session();
      const hyperparameters = { steps: 12, rank: 4, batchSize: 4, learningRate: 1e-2, seed: 5 };
      const submitted = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: {
          baseModel: AIDREAMS_GGUF,
          datanets: [{ id: datanetId, version: 1 }],
          template: 'llama2',
          hyperparameters,
        },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      const id = submitted.body.id as string;
      const early = await call(node.url, 'GET', `/api/factory/jobs/${id}/sketches`, { token });
      assert.equal(early.status, 409, 'the job is still queued or running');
      assert.equal(early.body.error.code, 'JOB_NOT_SUCCEEDED');
      const runner = node.node.context.jobs;
      let job = await runner.get(id);
      while (!['succeeded', 'failed', 'cancelled'].includes(job.status)) {
        await new Promise((r) => setTimeout(r, 100));
        job = await runner.get(id);
      }
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      const result = job.result as {
        seconds: number;
        manifestBlobId: string;
        adapterBlobId: string;
        sketches: { sha256: string; count: number; dims: number; k: number; seconds: number };
      };
      const blobs = node.node.context.blobs;
      const manifest = JSON.parse(
        (await blobs.get(result.manifestBlobId)).toString('utf8'),
      ) as TrainingManifest;
      const { seconds: _, ...recorded } = result.sketches;
      assert.deepEqual(manifest.gradientSketches, recorded, 'the manifest names the sketches');

      // the binary file, as the API serves it
      const response = await fetch(`${node.url}/api/factory/jobs/${id}/sketches`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.status, 200);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const sha = createHash('sha256').update(bytes).digest('hex');
      assert.equal(sha, result.sketches.sha256);
      assert.equal(response.headers.get('x-openledger-sha256'), sha);
      const sketches = loadSketches(bytes);
      const { header } = sketches;
      const trained = manifest.rows
        .map((r, index) => ({ ...r, index }))
        .filter((r) => r.split === 'train' && r.tokens > 0);
      assert.deepEqual(
        header.rows.map((r) => [r.index, r.rowHash, r.tokens]),
        trained.map((r) => [r.index, r.rowHash, r.tokens]),
        'one sketch per trained row, in manifest order, with its loss tokens',
      );
      assert.equal(header.count, result.sketches.count);
      assert.equal(header.layout.dims, result.sketches.dims);
      assert.equal(header.step, 12);
      assert.equal(header.seed, 5);
      assert.equal(header.adapterSha256, result.adapterBlobId);
      assert.equal(header.layout.grouping, 'tensor');
      t.diagnostic(
        `${header.count} rows × ${header.layout.dims} dims (k ${header.layout.k}) = ${bytes.length} bytes; sketching ${result.sketches.seconds} s of the job's ${result.seconds.toFixed(1)} s in the worker`,
      );
      const headerOnly = await call(
        node.url,
        'GET',
        `/api/factory/jobs/${id}/sketches?part=header`,
        {
          token,
        },
      );
      assert.equal(headerOnly.status, 200);
      assert.deepEqual(headerOnly.body, JSON.parse(JSON.stringify(header)));

      // Anyone with the adapter, the row and the seed recomputes a row's sketch: what the
      // influence channel does for a served output's gradient.
      const model = await loadLlamaGguf(AIDREAMS_GGUF);
      const adapter = await loadLoraGguf(await blobs.get(result.adapterBlobId), {
        modelConfig: model.config,
      });
      const params = normalizeTrainParams({
        baseModel: AIDREAMS_GGUF,
        datanets: [{ id: datanetId, version: 1 }],
        template: 'llama2',
        hyperparameters,
      });
      const dataset = await loadDatasetRows(node.node.context.datanets!, devAccount(1).address, [
        { id: datanetId, version: 1 },
      ]);
      assert.equal(header.layout.groups.length, model.config.nLayers * 2 * 2, 'q, v × A, B');
      const network = new TrainingModel(model, adapter);
      const queries = [];
      for (const [i, entry] of header.rows.entries()) {
        const source = dataset.rows[entry.index]!;
        assert.equal(source.rowHash, entry.rowHash);
        const rendered = renderExample(
          params.template,
          source,
          model.tokenizer!,
          manifest.hyperparameters.maxTokens,
        );
        const loss = await exampleGradient(network, {
          tokens: rendered.tokens,
          lossMask: rendered.mask,
        });
        assert.equal(loss.tokens, entry.tokens);
        const projected = projectGradient(header, network.parameters());
        const stored = sketchRow(sketches, i);
        const scale = Math.sqrt(dot(projected, projected));
        let worst = 0;
        for (let j = 0; j < projected.length; j++)
          worst = Math.max(worst, Math.abs(projected[j]! - stored[j]!));
        assert.ok(worst <= 1e-4 * scale, `row ${i}: max |Δ| ${worst} of ‖ŝ‖ ${scale}`);
        queries.push(projected);
      }
      // self-influence: each row's own gradient scores that row highest under TracIn
      const matrix = { layout: header.layout, count: header.count, values: sketches.values };
      let top = 0;
      for (const [i, q] of queries.entries()) {
        const scores = tracInScores(matrix, q);
        if (scores.indexOf(Math.max(...scores)) === i) top += 1;
      }
      assert.ok(top >= header.count - 1, `self-influence first for ${top}/${header.count}`);

      // access: only the owner; unauthenticated 401
      const other = await call(node.url, 'GET', `/api/factory/jobs/${id}/sketches`, {
        token: await bob.session(),
      });
      assert.equal(other.status, 404);
      const anonymous = await call(node.url, 'GET', `/api/factory/jobs/${id}/sketches`);
      assert.equal(anonymous.status, 401);
      const badPart = await call(node.url, 'GET', `/api/factory/jobs/${id}/sketches?part=x`, {
        token,
      });
      assert.equal(badPart.status, 400);
    });
  },
);
