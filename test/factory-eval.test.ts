import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { devAccount } from '../src/chain/index.ts';
import { rowHash, type RowContent } from '../src/datanets/ingest/index.ts';
import { GGML_TYPE, loadLlamaGguf, makeTrainBatch, readGguf } from '../src/engine/index.ts';
import {
  activationBytes,
  contributorTotals,
  estimateTraining,
  heldOut,
  measureThroughput,
  modelShape,
  normalizeHyperparameters,
  normalizeTrainParams,
  packExamples,
  planMicroBatches,
  promptSplit,
  renderExample,
  targetsPerMember,
  trainableParameters,
  type DatasetRow,
  type EvalJobResult,
  type Evaluation,
  type ManifestRow,
} from '../src/factory/index.ts';
import { runTraining, type TrainMessage } from '../src/factory/train-core.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { AIDREAMS_GGUF, SHAPE, writeRandomModel } from './helpers/models.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

/** A deterministic mix of lengths and masks: prompt tokens masked, the rest trained. */
function syntheticExamples(count: number) {
  return Array.from({ length: count }, (_, i) => {
    const n = 3 + ((i * 37) % 29);
    const prompt = 1 + (i % 4);
    return {
      tokens: Array.from({ length: n }, (_, t) => (i * 7 + t) % 50),
      lossMask: Array.from({ length: n }, (_, t): number => (t < prompt ? 0 : 1)),
    };
  });
}

describe('sequence packing', () => {
  it('groups by length, every example once, never more padding than one batch', () => {
    const examples = syntheticExamples(23);
    const lengths = examples.map((e) => e.tokens.length);
    for (const maxBatch of [1, 4, 8, 23]) {
      const plain = planMicroBatches(lengths, { packing: false, maxBatch });
      assert.deepEqual(
        plain.flat(),
        lengths.map((_, i) => i),
        'unpacked keeps the order',
      );
      const packed = planMicroBatches(lengths, { packing: true, maxBatch });
      assert.deepEqual(
        packed.flat().sort((a, b) => a - b),
        lengths.map((_, i) => i),
      );
      assert.ok(packed.every((g) => g.length >= 1 && g.length <= maxBatch));
      const positions = (groups: number[][]) =>
        groups.reduce((n, g) => n + g.length * (Math.max(...g.map((i) => lengths[i]!)) - 1), 0);
      assert.ok(positions(packed) <= positions(plain), `maxBatch ${maxBatch}`);
    }
    // one step of 23 examples: the grouped micro-batches run far fewer padded positions
    const one = positionsOf(planMicroBatches(lengths, { packing: false }), lengths);
    const grouped = positionsOf(planMicroBatches(lengths, { packing: true }), lengths);
    const real = lengths.reduce((n, l) => n + l - 1, 0);
    assert.ok(grouped < one && grouped >= real, `${grouped} vs ${one} (real ${real})`);
  });

  it('keeps every example’s loss targets exactly (the manifest counts stay true)', () => {
    const examples = syntheticExamples(40);
    // independently: targets of example i are the mask entries 1 … n−1
    const expected = examples.map((e) => e.lossMask.slice(1).reduce<number>((a, b) => a + b, 0));
    for (const packing of [false, true]) {
      const micro = packExamples(examples, { packing, padToken: 0, maxBatch: 16, maxTokens: 32 });
      const got = new Array<number>(examples.length).fill(-1);
      let rows = 0;
      for (const m of micro) {
        const counts = targetsPerMember(m);
        m.members.forEach((i, b) => (got[i] = counts[b]!));
        // each row holds its examples' tokens one after the other (positions restarting at 0),
        // then padding that is never a target; at most maxTokens − 1 positions of examples
        const { T, inputs, mask, positions } = m.batch;
        m.rows.forEach((row, b) => {
          let t = 0;
          for (const i of row) {
            const tokens = examples[i]!.tokens;
            for (let k = 0; k + 1 < tokens.length; k++, t++) {
              assert.equal(inputs[b * T + t], tokens[k]);
              assert.equal(positions?.[b * T + t] ?? t, k);
            }
          }
          assert.ok(t <= 31, `row of ${t} positions`);
          for (; t < T; t++) assert.equal(mask[b * T + t], 0);
        });
        rows += m.rows.length;
        if (!packing) assert.ok(m.rows.every((row) => row.length === 1));
      }
      assert.deepEqual(got, expected, `packing ${packing}`);
      const real = examples.reduce((n, e) => n + e.tokens.length - 1, 0);
      // first fit never leaves two rows at most half full (the second's examples would have fit
      // in the first), so all rows but one hold more than 31 / 2 positions
      if (packing) assert.ok(rows < examples.length && rows < real / 15.5 + 1, `${rows} rows`);
      else assert.equal(rows, examples.length);
      const oneBatch = makeTrainBatch(examples);
      assert.equal(
        oneBatch.mask.reduce((a, b) => a + b, 0),
        expected.reduce((a, b) => a + b, 0),
      );
    }
  });
});

function positionsOf(groups: number[][], lengths: number[]) {
  return groups.reduce((n, g) => n + g.length * (Math.max(...g.map((i) => lengths[i]!)) - 1), 0);
}

describe('training estimate', () => {
  let file: string;
  before(async () => {
    file = path.join(await mkdtemp(path.join(tmpdir(), 'openledger-estimate-')), 'random.gguf');
    await writeRandomModel(file, () => GGML_TYPE.Q8_0);
  });

  it('counts base and LoRA parameters exactly and the stored and float32 bytes', async () => {
    const header = await readGguf(file);
    const { dim, hidden, layers, heads, kvHeads } = SHAPE;
    const kvDim = (kvHeads * dim) / heads;
    const h = normalizeHyperparameters({ rank: 8, targets: ['attn_q', 'attn_v'] });
    const estimate = estimateTraining(h, header);
    // r · (in + out) per adapted weight: q is [dim → dim], v [dim → kvDim]
    assert.equal(estimate.parameters.trainable, layers * 8 * (dim + dim + dim + kvDim));
    const all = normalizeHyperparameters({
      rank: 4,
      targets: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'],
    });
    assert.equal(
      estimateTraining(all, header).parameters.trainable,
      layers * 4 * (2 * (dim + dim) + 2 * (dim + kvDim) + 3 * (dim + hidden)),
    );
    const model = await loadLlamaGguf(file);
    assert.equal(estimate.parameters.base, model.parameterCount);
    assert.equal(estimate.memory.baseF32Bytes, 4 * model.parameterCount);
    assert.equal(
      estimate.memory.baseStoredBytes,
      header.tensors.reduce((n, t) => n + t.byteLength, 0),
    );
    assert.ok(estimate.memory.baseStoredBytes < estimate.memory.baseF32Bytes / 3, 'Q8_0 is small');
    assert.equal(estimate.memory.loraBytes, 20 * estimate.parameters.trainable);
    assert.equal(estimate.memory.kvCacheBytes, 2 * layers * SHAPE.context * kvDim * 4);
    assert.equal(estimate.maxTokens, SHAPE.context, 'maxTokens is capped at the context');
  });

  it('grows with batch size and rank, and FLOPs are about 4N + 6n per position', async () => {
    const header = await readGguf(file);
    const at = (overrides: Record<string, unknown>) =>
      estimateTraining(normalizeHyperparameters({ maxTokens: 48, ...overrides }), header);
    let previous = at({ batchSize: 1 });
    for (const batchSize of [2, 4, 8, 16]) {
      const next = at({ batchSize });
      assert.ok(next.memory.activationBytes > previous.memory.activationBytes);
      assert.ok(next.memory.peakBytes > previous.memory.peakBytes);
      assert.ok(next.compute.flopsPerStep > previous.compute.flopsPerStep);
      previous = next;
    }
    previous = at({ rank: 1 });
    for (const rank of [2, 8, 32]) {
      const next = at({ rank });
      assert.ok(next.parameters.trainable > previous.parameters.trainable);
      assert.ok(next.memory.loraBytes > previous.memory.loraBytes);
      assert.ok(next.memory.activationBytes > previous.memory.activationBytes);
      previous = next;
    }
    // dropout keeps a dropped copy of every adapted input
    assert.ok(
      at({ dropout: 0.1 }).memory.activationBytes > at({ dropout: 0 }).memory.activationBytes,
    );
    const shape = modelShape(header);
    const e = at({ batchSize: 4 });
    const { dim, hidden, layers, heads, kvHeads } = SHAPE;
    const kvDim = (kvHeads * dim) / heads;
    const N = layers * (2 * dim * dim + 2 * dim * kvDim + 3 * dim * hidden) + 512 * dim;
    const n = trainableParameters(shape, 8, ['attn_q', 'attn_v']);
    const ratio = e.compute.flopsPerPosition / (4 * N + 6 * n);
    assert.ok(ratio > 1 && ratio < 1.5, `attention adds a little: ${ratio}`);
    assert.equal(e.compute.positionsPerStep, 4 * 47);
    assert.equal(
      activationBytes(shape, { ...normalizeHyperparameters({}), dropout: 0 }, 2, 10) * 2,
      // everything but the attention probabilities (B·nH·T·T) is linear in B
      activationBytes(shape, { ...normalizeHyperparameters({}), dropout: 0 }, 4, 10),
    );
  });

  it('times steps with a throughput measured on this machine', async (t) => {
    const header = await readGguf(file);
    const h = normalizeHyperparameters({ steps: 50 });
    const flopsPerSecond = await measureThroughput(modelShape(header), h);
    assert.ok(Number.isFinite(flopsPerSecond) && flopsPerSecond > 1e6, `${flopsPerSecond}`);
    const e = estimateTraining(h, header, { flopsPerSecond });
    assert.ok(e.time && e.time.totalSeconds > 0);
    assert.equal(e.time.totalSeconds, 50 * e.time.secondsPerStep);
    t.diagnostic(`probe ${(flopsPerSecond / 1e9).toFixed(2)} GFLOP/s`);
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
  ['umbrella', 'grey'],
  ['mirror', 'silver'],
];
const row = ([thing, color]: [string, string]): RowContent => ({
  type: 'instruction',
  instruction: `What color is the ${thing} in the little house?`,
  output: `The ${thing} is ${color}. The ${thing} is ${color}.`,
});

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}
function cli(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
      env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function waitFor(node: TestNode, id: string) {
  const runner = node.node.context.jobs;
  for (;;) {
    const job = await runner.get(id);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe(
  'model factory evaluation and jobs',
  { skip: existsSync(AIDREAMS_GGUF) ? false : `fixture absent: ${AIDREAMS_GGUF}` },
  () => {
    let node: TestNode;
    let owner: DatanetActor;
    let alice: DatanetActor;
    let bob: DatanetActor;
    let datanetId: number;
    let trainedId: string;

    before(async () => {
      node = await startTestNode();
      owner = new DatanetActor(node.url, devAccount(0));
      alice = new DatanetActor(node.url, devAccount(1));
      bob = new DatanetActor(node.url, devAccount(2));
      const created = await owner.create({
        name: 'House colors for evaluation',
        description:
          'Short questions and answers about the colors of things in the little house: lanterns, kettles, blankets and more.',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      datanetId = created.body.id;
      const a = await alice.contributeRows(datanetId, THINGS.slice(0, 7).map(row));
      const b = await bob.contributeRows(datanetId, THINGS.slice(7).map(row));
      assert.equal(a.status, 201, JSON.stringify(a.body));
      assert.equal(b.status, 201, JSON.stringify(b.body));
      const approved = await owner.approve(datanetId, [a.body.id, b.body.id]);
      assert.equal(approved.status, 201, JSON.stringify(approved.body));
    });
    after(() => node?.close());

    it('keeps per-contributor tokens exact through truncation, packing and masking', async () => {
      const rows: DatasetRow[] = THINGS.map((thing, i) => {
        const content = row(thing) as { instruction: string; output: string };
        return {
          datanetId: 1,
          version: 1,
          rowHash: rowHash(row(thing)),
          contributor: devAccount(1 + (i % 3)).address,
          contributionId: '00000000-0000-0000-0000-000000000000',
          content,
          messages: [
            { role: 'user', content: content.instruction },
            { role: 'assistant', content: content.output },
          ],
        };
      });
      const model = await loadLlamaGguf(AIDREAMS_GGUF);
      const tokenizer = model.tokenizer!;
      // a limit that cuts some answers short: truncation must show in the counts
      const full = rows.map((r) => renderExample('llama2', r, tokenizer, 1000).tokens.length);
      const maxTokens = Math.min(...full) + 3;
      const params = normalizeTrainParams({
        baseModel: AIDREAMS_GGUF,
        datanets: [{ id: 1, version: 1 }],
        hyperparameters: { steps: 1, rank: 2, maxTokens, evalPercent: 20, packing: true },
      });
      const trainCount = THINGS.length - heldOut(rows, 20).size;
      params.hyperparameters.batchSize = trainCount; // one step sees every training row once
      const messages: TrainMessage[] = [];
      await runTraining({ params, rows }, (m) => messages.push(m));
      const prepared = messages.find((m) => m.type === 'prepared');
      const done = messages.find((m) => m.type === 'done');
      assert.ok(prepared?.type === 'prepared' && done?.type === 'done');
      const manifestRows: ManifestRow[] = prepared.manifestRows;
      assert.ok(
        manifestRows.some((r) => r.truncated),
        'some rows are cut',
      );
      assert.ok(manifestRows.some((r) => !r.truncated));

      // Independently: render each training row, cut it, pack all of them into micro-batches,
      // and count the targets each row has in the packed batches, by contributor.
      const train = rows.filter(
        (r) => manifestRows.find((m) => m.rowHash === r.rowHash)!.split === 'train',
      );
      const examples = train.map((r) => {
        const tokens = renderExample('llama2', r, tokenizer, 10_000);
        return {
          tokens: tokens.tokens.slice(0, maxTokens),
          lossMask: tokens.mask.slice(0, maxTokens),
        };
      });
      const micro = packExamples(examples, { packing: true, padToken: tokenizer.eosId, maxTokens });
      const byContributor: Record<string, number> = {};
      for (const m of micro) {
        const counts = targetsPerMember(m);
        m.members.forEach((i, b) => {
          const who = train[i]!.contributor;
          byContributor[who] = (byContributor[who] ?? 0) + counts[b]!;
        });
      }
      const manifest = contributorTotals(manifestRows);
      assert.deepEqual(
        Object.fromEntries(Object.entries(manifest).map(([a, c]) => [a, c.tokens])),
        byContributor,
      );
      const total = Object.values(byContributor).reduce((a, b) => a + b, 0);
      assert.equal(done.tokensSeen, total, 'the trainer saw exactly the manifest tokens');
    });

    it('trains with an estimate event and stores the evaluation with the job', async (t) => {
      const token = await alice.session();
      const submitted = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: {
          baseModel: 'aidreams260K',
          datanets: [{ id: datanetId, version: 1 }],
          hyperparameters: {
            steps: 25,
            rank: 4,
            learningRate: 1e-2,
            batchSize: 4,
            seed: 3,
            evalPercent: 50,
          },
        },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      trainedId = submitted.body.id;
      const job = await waitFor(node, trainedId);
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      const events = await node.node.context.jobs.eventsOf(trainedId);
      const estimate = events.find((e) => e.type === 'estimate');
      assert.ok(estimate, 'the validating phase emits an estimate');
      const validating = events.findIndex(
        (e) => e.type === 'status' && (e.data as { status: string }).status === 'validating',
      );
      const running = events.findIndex(
        (e) => e.type === 'status' && (e.data as { status: string }).status === 'running',
      );
      assert.ok(validating < events.indexOf(estimate) && events.indexOf(estimate) < running);

      const got = await call(node.url, 'GET', `/api/factory/jobs/${trainedId}/evaluation`, {
        token,
      });
      assert.equal(got.status, 200, JSON.stringify(got.body));
      const evaluation = got.body.evaluation as Evaluation;
      const result = job.result as { evalLoss: number; baseEvalLoss: number };
      assert.ok(evaluation.heldOutRows >= 2, JSON.stringify(evaluation));
      assert.ok(evaluation.adapterLoss! < evaluation.baseLoss!);
      assert.ok(Math.abs(evaluation.adapterPerplexity! - Math.exp(evaluation.adapterLoss!)) < 1e-9);
      // the inference engine agrees with the trainer's own held-out loss
      assert.ok(Math.abs(evaluation.adapterLoss! - result.evalLoss) < 1e-3);
      assert.ok(Math.abs(evaluation.baseLoss! - result.baseEvalLoss) < 1e-3);
      assert.equal(evaluation.samples.length, Math.min(3, evaluation.heldOutRows));
      for (const s of evaluation.samples) {
        assert.equal(s.source, 'held-out');
        assert.match(s.prompt, /\[INST\] What color is the \w+ in the little house\? \[\/INST\]$/);
        assert.match(s.reference!, /^The \w+ is \w+\. The \w+ is \w+\.$/);
        assert.equal(typeof s.base, 'string');
        assert.ok(s.adapter.length > 0);
      }
      const estimated = (estimate.data as { time: { totalSeconds: number } }).time.totalSeconds;
      t.diagnostic(
        `estimated ${estimated.toFixed(2)} s of training steps; the job took ${(job.result as { seconds: number }).seconds.toFixed(2)} s in its worker`,
      );
      t.diagnostic(
        `eval loss ${evaluation.baseLoss!.toFixed(3)} → ${evaluation.adapterLoss!.toFixed(3)}; ${JSON.stringify(evaluation.samples[0])}`,
      );

      // re-run on demand: deterministic, the same samples and losses
      const rerun = await call(node.url, 'POST', `/api/factory/jobs/${trainedId}/evaluation`, {
        token,
        body: {},
      });
      assert.equal(rerun.status, 202, JSON.stringify(rerun.body));
      const again = await waitFor(node, rerun.body.id);
      assert.equal(again.status, 'succeeded', JSON.stringify(again.error));
      const second = again.result as EvalJobResult;
      assert.equal(second.trainingJobId, trainedId);
      assert.deepEqual(second.samples, evaluation.samples);
      assert.equal(second.adapterLoss, evaluation.adapterLoss);
      assert.equal(second.baseLoss, evaluation.baseLoss);
      const listed = await call(node.url, 'GET', `/api/factory/jobs/${trainedId}/evaluation`, {
        token,
      });
      assert.equal(listed.body.reruns.length, 1);
      assert.equal(listed.body.reruns[0].id, rerun.body.id);
    });

    it('evaluates custom prompts over the API and refuses what it cannot evaluate', async () => {
      assert.ok(trainedId, 'needs the trained job');
      const token = await alice.session();
      const posted = await call(node.url, 'POST', `/api/factory/jobs/${trainedId}/evaluation`, {
        token,
        body: {
          prompts: [
            'What color is the kettle in the little house?',
            { prompt: 'What color is the door?', reference: 'The door is red.' },
          ],
          maxNewTokens: 12,
        },
      });
      assert.equal(posted.status, 202, JSON.stringify(posted.body));
      const job = await waitFor(node, posted.body.id);
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      const result = job.result as EvalJobResult;
      assert.equal(result.samples.length, 2);
      assert.equal(result.maxNewTokens, 12);
      assert.deepEqual(
        result.samples.map((s) => [s.source, s.reference]),
        [
          ['custom', null],
          ['custom', 'The door is red.'],
        ],
      );
      assert.match(result.samples[0]!.prompt, /^<s> ?\[INST\] What color is the kettle/);
      assert.match(result.samples[0]!.prompt, /\[\/INST\]$/);
      assert.ok(result.samples.every((s) => s.adapter.split(/\s+/).length <= 12));

      // unknown job, another wallet's, a failed one, a job that is not training, bad bodies
      const unknown = '00000000-0000-4000-8000-000000000000';
      const missing = await call(node.url, 'GET', `/api/factory/jobs/${unknown}/evaluation`, {
        token,
      });
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'NOT_FOUND');
      const bobToken = await bob.session();
      for (const method of ['GET', 'POST'] as const) {
        const foreign = await call(node.url, method, `/api/factory/jobs/${trainedId}/evaluation`, {
          token: bobToken,
          ...(method === 'POST' ? { body: {} } : {}),
        });
        assert.equal(foreign.status, 403, JSON.stringify(foreign.body));
        assert.equal(foreign.body.error.code, 'FORBIDDEN');
      }
      const failed = await node.node.context.jobs.submit('factory.train', devAccount(1).address, {
        baseModel: 'aidreams260K',
        datanets: [{ id: 999 }],
      });
      assert.equal((await waitFor(node, failed.id)).status, 'failed');
      const ofFailed = await call(node.url, 'POST', `/api/factory/jobs/${failed.id}/evaluation`, {
        token,
        body: {},
      });
      assert.equal(ofFailed.status, 409, JSON.stringify(ofFailed.body));
      assert.equal(ofFailed.body.error.code, 'CONFLICT');
      assert.match(ofFailed.body.error.message, /is failed/);
      assert.match(ofFailed.body.error.hint, /It failed: \[DATANET_NOT_FOUND\]/);
      const ofEval = await call(node.url, 'GET', `/api/factory/jobs/${posted.body.id}/evaluation`, {
        token,
      });
      assert.equal(ofEval.status, 400);
      const tooMany = await call(node.url, 'POST', `/api/factory/jobs/${trainedId}/evaluation`, {
        token,
        body: { maxNewTokens: 100_000 },
      });
      assert.equal(tooMany.status, 400);
      const anonymous = await call(node.url, 'GET', `/api/factory/jobs/${trainedId}/evaluation`);
      assert.equal(anonymous.status, 401);
    });

    it('estimates a job over the API', async () => {
      const token = await alice.session();
      const answer = await call(node.url, 'POST', '/api/factory/estimate', {
        token,
        body: { baseModel: 'aidreams260K', hyperparameters: { rank: 4, batchSize: 2 } },
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const model = await loadLlamaGguf(AIDREAMS_GGUF);
      const { dim, nLayers, nKvHeads, headDim } = model.config;
      assert.equal(
        answer.body.parameters.trainable,
        nLayers * 4 * (2 * dim + dim + nKvHeads * headDim),
      );
      assert.equal(answer.body.parameters.base, model.parameterCount);
      assert.ok(answer.body.time.totalSeconds > 0);
      assert.ok(answer.body.memory.peakBytes > answer.body.memory.baseF32Bytes);
      const bad = await call(node.url, 'POST', '/api/factory/estimate', {
        token,
        body: { baseModel: 'no-such-model' },
      });
      assert.equal(bad.status, 400);
      const badRank = await call(node.url, 'POST', '/api/factory/estimate', {
        token,
        body: { baseModel: 'aidreams260K', hyperparameters: { rank: 0 } },
      });
      assert.equal(badRank.status, 400);
    });

    it('lists, shows, cancels and logs jobs from the CLI, and evaluates with --prompts', async () => {
      assert.ok(trainedId, 'needs the trained job');
      const as = ['--url', node.url, '--account', '1', '--json'];
      const list = await cli(['jobs', 'list', ...as]);
      assert.equal(list.code, 0, list.stderr);
      const jobs = (JSON.parse(list.stdout) as { jobs: { id: string; kind: string }[] }).jobs;
      assert.ok(jobs.some((j) => j.id === trainedId && j.kind === 'factory.train'));
      assert.ok(jobs.some((j) => j.kind === 'factory.eval'));
      const onlyEval = await cli(['jobs', 'list', '--kind', 'factory.eval', ...as]);
      assert.ok(
        (JSON.parse(onlyEval.stdout) as { jobs: { kind: string }[] }).jobs.every(
          (j) => j.kind === 'factory.eval',
        ),
      );
      const show = await cli(['jobs', 'show', trainedId, ...as]);
      assert.equal(show.code, 0, show.stderr);
      assert.equal(JSON.parse(show.stdout).status, 'succeeded');
      const human = await cli(['jobs', 'show', trainedId, '--url', node.url, '--account', '1']);
      assert.match(human.stdout, /status {3}succeeded/);
      const logs = await cli(['jobs', 'logs', trainedId, ...as]);
      const log = JSON.parse(logs.stdout) as { events: { type: string }[] };
      assert.ok(log.events.some((e) => e.type === 'estimate'));
      assert.equal(log.events.at(-1)!.type, 'status');
      const followed = await cli([
        'jobs',
        'logs',
        trainedId,
        '--follow',
        '--url',
        node.url,
        '--account',
        '1',
      ]);
      assert.equal(followed.code, 0, followed.stderr);
      assert.match(followed.stdout, /status succeeded\n$/);
      const notMine = await cli([
        'jobs',
        'show',
        trainedId,
        '--url',
        node.url,
        '--account',
        '2',
        '--json',
      ]);
      assert.equal(notMine.code, 1);
      assert.match(notMine.stderr, /NOT_FOUND/);

      // cancel a running job: one of a kind that runs until it is cancelled (training jobs are
      // cancelled in factory.test.ts; this checks the command, on any kind)
      const runner = node.node.context.jobs;
      runner.register('test.until-cancelled', async (context) => {
        await context.setStatus('running');
        await new Promise((_, reject) =>
          context.signal.addEventListener('abort', () => reject(context.signal.reason as Error)),
        );
      });
      const long = await runner.submit('test.until-cancelled', devAccount(1).address, {});
      while ((await runner.get(long.id)).status !== 'running')
        await new Promise((r) => setTimeout(r, 20));
      const cancel = await cli(['jobs', 'cancel', long.id, ...as]);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.equal(JSON.parse(cancel.stdout).id, long.id);
      assert.equal((await waitFor(node, long.id)).status, 'cancelled');
      const again = await cli(['jobs', 'cancel', long.id, '--url', node.url, '--account', '1']);
      assert.match(again.stdout, /cancelled/);

      // eval with a prompts file (one per line)
      const dir = await mkdtemp(path.join(tmpdir(), 'openledger-prompts-'));
      const prompts = path.join(dir, 'prompts.txt');
      await writeFile(
        prompts,
        'What color is the ladder in the little house?\n\nWhat color is the teapot?\n',
      );
      const evaluated = await cli([
        'eval',
        trainedId,
        '--prompts',
        prompts,
        '--max-tokens',
        '8',
        ...as,
      ]);
      assert.equal(evaluated.code, 0, evaluated.stderr);
      const result = JSON.parse(evaluated.stdout) as EvalJobResult;
      assert.equal(result.samples.length, 2);
      assert.equal(result.maxNewTokens, 8);
      assert.ok(result.samples[0]!.prompt.includes('What color is the ladder'));
      const stored = await cli([
        'eval',
        trainedId,
        '--stored',
        '--url',
        node.url,
        '--account',
        '1',
      ]);
      assert.equal(stored.code, 0, stored.stderr);
      assert.match(stored.stdout, /adapter +\d+\.\d+ +\d+\.\d+/);
      assert.match(stored.stdout, /sample 1 \(held-out\)/);
      const ofOther = await cli(['eval', trainedId, '--url', node.url, '--account', '2', '--json']);
      assert.equal(ofOther.code, 1);
      assert.match(ofOther.stderr, /FORBIDDEN/);
    });
  },
);

describe('prompt split', () => {
  it('cuts before the answer, or a document in half', () => {
    assert.deepEqual(promptSplit([0, 0, 0, 1, 1, 0, 1]), { at: 3, end: 5 });
    assert.deepEqual(promptSplit([0, 1, 1, 1, 1, 1]), { at: 3, end: 6 });
    assert.deepEqual(promptSplit([0, 0, 0]), { at: 3, end: 3 });
  });
});
