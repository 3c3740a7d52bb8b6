import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { devAccount } from '../src/chain/index.ts';
import { rowHash, type RowContent } from '../src/datanets/ingest/index.ts';
import {
  GGML_TYPE,
  ggufString,
  loadLoraGguf,
  loadModelGguf,
  readGguf,
} from '../src/engine/index.ts';
import { normalizeTrainParams, type DatasetRow } from '../src/factory/index.ts';
import { runTraining, targetsFor, type TrainMessage } from '../src/factory/train-core.ts';
import { writeRandomGpt2, writeRandomQwen2, type ArchShape } from './helpers/models.ts';

/**
 * A factory training run (train-core's runTraining: render, train with checkpoints, evaluate,
 * sketch, encode the adapter) on Qwen2 and GPT-2 bases: random models with a byte-level BPE
 * vocabulary, written as GGUF files.
 */

const SHAPE: ArchShape = {
  dim: 64,
  hidden: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  context: 64,
  tied: false,
};

const THINGS: [string, string][] = [
  ['lantern', 'blue'],
  ['kettle', 'red'],
  ['blanket', 'green'],
  ['teapot', 'yellow'],
  ['ladder', 'brown'],
  ['bucket', 'orange'],
  ['pillow', 'white'],
  ['basket', 'purple'],
];

function rows(): DatasetRow[] {
  return THINGS.map(([thing, color], i) => {
    const content: RowContent = {
      type: 'instruction',
      instruction: `What color is the ${thing}?`,
      output: `The ${thing} is ${color}.`,
    };
    return {
      datanetId: 1,
      version: 1,
      rowHash: rowHash(content),
      contributor: devAccount(1 + (i % 2)).address,
      contributionId: '00000000-0000-0000-0000-000000000000',
      content,
      messages: [
        { role: 'user', content: content.instruction },
        { role: 'assistant', content: content.output },
      ],
    };
  });
}

describe('factory training on Qwen2 and GPT-2 bases', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-factory-arch-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('maps the targets onto GPT-2 (one fused attn_qkv, no gate)', () => {
    assert.deepEqual(targetsFor('gpt2', ['attn_q', 'attn_v', 'ffn_down']), [
      'attn_qkv',
      'ffn_down',
    ]);
    assert.deepEqual(targetsFor('qwen2', ['attn_q', 'attn_v']), ['attn_q', 'attn_v']);
    assert.throws(() => targetsFor('gpt2', ['ffn_gate']), /GPT-2 has no ffn_gate/);
  });

  for (const [arch, template] of [
    ['qwen2', 'chatml'],
    ['gpt2', 'plain'],
  ] as const) {
    it(`trains a ${arch} job (${template} template) into an adapter llama.cpp would load`, async (t) => {
      const file = path.join(dir, `${arch}.gguf`);
      if (arch === 'qwen2') await writeRandomQwen2(file, SHAPE, () => GGML_TYPE.F32);
      else await writeRandomGpt2(file, { ...SHAPE, kvHeads: SHAPE.heads }, () => GGML_TYPE.F32);
      const params = normalizeTrainParams({
        baseModel: file,
        datanets: [{ id: 1, version: 1 }],
        template,
        hyperparameters: {
          steps: 12,
          rank: 4,
          dropout: 0,
          batchSize: 4,
          learningRate: 2e-2,
          warmupSteps: 1,
          checkpointEvery: 6,
          evalPercent: 20,
        },
      });
      const messages: TrainMessage[] = [];
      await runTraining({ params, rows: rows() }, (m) => messages.push(m));
      const progress = messages.flatMap((m) => (m.type === 'progress' ? [m.progress] : []));
      const done = messages.find((m) => m.type === 'done');
      assert.ok(done?.type === 'done');
      t.diagnostic(
        `${arch}: step loss ${progress[0]!.loss.toFixed(3)} → ${progress.at(-1)!.loss.toFixed(3)}; train loss ${done.trainLoss.toFixed(3)}, eval ${done.evalLoss?.toFixed(3)} (base ${done.baseEvalLoss?.toFixed(3)})`,
      );
      // measured: qwen2 7.06 → 4.65 (held-out 7.57 → 6.19), gpt2 7.00 → 5.13 (6.94 → 5.62)
      assert.ok(done.trainLoss < 0.8 * progress[0]!.loss, 'the training loss fell');
      assert.ok(done.evalLoss! < done.baseEvalLoss! - 0.5, 'and the held-out loss');
      assert.ok(done.evaluation && done.evaluation.samples.length > 0, 'samples generated');

      // the adapter: this architecture's, its targets, and it fits the base
      const adapterFile = path.join(dir, `${arch}-adapter.gguf`);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(adapterFile, done.adapter);
      const gguf = await readGguf(adapterFile);
      assert.equal(ggufString(gguf.metadata, 'general.architecture'), arch);
      const base = await loadModelGguf(file);
      const adapter = await loadLoraGguf(adapterFile, { modelConfig: base.config });
      assert.deepEqual(
        adapter.config.targets,
        arch === 'gpt2' ? ['attn_qkv'] : ['attn_q', 'attn_v'], // the default attn_q, attn_v
      );
      // a checkpoint resumes to the very same adapter
      const checkpoint = messages.find((m) => m.type === 'checkpoint');
      assert.ok(checkpoint?.type === 'checkpoint');
      const resumed: TrainMessage[] = [];
      await runTraining({ params, rows: rows(), checkpoint: checkpoint.bytes }, (m) =>
        resumed.push(m),
      );
      const again = resumed.find((m) => m.type === 'done');
      assert.ok(again?.type === 'done');
      assert.deepEqual(again.adapter, done.adapter);
    });
  }

  for (const [arch, bits] of [
    ['qwen2', 'q4_0'],
    ['gpt2', 'q8_0'],
  ] as const) {
    it(`trains a ${arch} job on a ${bits} base (QLoRA hyperparameter)`, async () => {
      const file = path.join(dir, `${arch}-qlora.gguf`);
      if (arch === 'qwen2') await writeRandomQwen2(file, SHAPE, () => GGML_TYPE.F32);
      else await writeRandomGpt2(file, { ...SHAPE, kvHeads: SHAPE.heads }, () => GGML_TYPE.F32);
      const params = normalizeTrainParams({
        baseModel: file,
        datanets: [{ id: 1, version: 1 }],
        template: 'plain',
        hyperparameters: {
          steps: 12,
          rank: 4,
          dropout: 0,
          batchSize: 4,
          learningRate: 2e-2,
          warmupSteps: 1,
          evalPercent: 20,
          quantizeBase: bits,
        },
      });
      assert.equal(params.hyperparameters.quantizeBase, bits);
      const messages: TrainMessage[] = [];
      await runTraining({ params, rows: rows() }, (m) => messages.push(m));
      const progress = messages.flatMap((m) => (m.type === 'progress' ? [m.progress] : []));
      const done = messages.find((m) => m.type === 'done');
      assert.ok(done?.type === 'done');
      assert.ok(
        done.trainLoss < 0.8 * progress[0]!.loss,
        `${arch} ${bits}: the training loss fell`,
      );
    });
  }

  it('refuses an unknown quantizeBase', () => {
    assert.throws(
      () =>
        normalizeTrainParams({
          datanets: [{ id: 1, version: 1 }],
          hyperparameters: { quantizeBase: 'q3_k' },
        }),
      /quantizeBase "q3_k" is not one of none, q8_0, q4_0/,
    );
  });
});
