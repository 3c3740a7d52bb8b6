/**
 * The training run itself, meant for a worker thread (see train-worker.ts): loads the base
 * model, renders the rows with the template, splits them, trains the LoRA with checkpoints,
 * evaluates base and adapter on the held-out rows and encodes the adapter as GGUF.
 * Everything it reports goes through `post`, so it knows nothing of threads or jobs.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  LoraAdapter,
  LoraTrainer,
  Prng,
  encodeGguf,
  ggufString,
  loadLlamaGguf,
  loraGgufInput,
  makeTrainBatch,
  readGguf,
  type TrainBatch,
  type TrainExample,
} from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { encodeCheckpoint, restoreCheckpoint } from './checkpoint.ts';
import { heldOut, type DatasetRow, type ManifestRow } from './dataset.ts';
import type { TrainParams } from './params.ts';
import { renderExample } from './templates.ts';

export interface TrainInput {
  params: TrainParams;
  rows: DatasetRow[];
  checkpoint?: Uint8Array | undefined;
}

export interface TrainProgress {
  step: number;
  of: number;
  loss: number;
  evalLoss?: number;
  learningRate: number;
  tokensPerSecond: number;
  etaSeconds: number;
}

export type TrainMessage =
  | {
      type: 'prepared';
      manifestRows: ManifestRow[];
      baseModel: { name: string; sha256: string; bytes: number };
      maxTokens: number;
      resumedFrom: number;
    }
  | { type: 'progress'; progress: TrainProgress }
  | { type: 'checkpoint'; step: number; bytes: Uint8Array }
  | {
      type: 'done';
      adapter: Uint8Array;
      trainLoss: number;
      evalLoss: number | null;
      baseEvalLoss: number | null;
      tokensSeen: number;
      seconds: number;
    }
  | { type: 'error'; code: string; message: string; hint?: string };

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function batches(examples: readonly TrainExample[], size: number, padToken: number): TrainBatch[] {
  const out: TrainBatch[] = [];
  for (let i = 0; i < examples.length; i += size)
    out.push(makeTrainBatch(examples.slice(i, i + size), { padToken }));
  return out;
}

export async function runTraining(input: TrainInput, post: (message: TrainMessage) => void) {
  const { params, rows } = input;
  const h = params.hyperparameters;
  const started = performance.now();
  const file = await stat(params.baseModel).catch(() => undefined);
  if (!file?.isFile())
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `There is no base model file ${params.baseModel}.`,
    );
  const gguf = await readGguf(params.baseModel);
  const model = await loadLlamaGguf(gguf);
  const tokenizer = model.tokenizer;
  if (!tokenizer)
    throw new OpenLedgerError('GGUF_UNSUPPORTED', `${params.baseModel} has no tokenizer.`);
  const maxTokens = Math.min(h.maxTokens, model.config.contextLength);

  // Render every row; the split is by row hash.
  const evalHashes = heldOut(rows, h.evalPercent);
  const train: { example: TrainExample; contributor: string }[] = [];
  const evaluation: TrainExample[] = [];
  const manifestRows: ManifestRow[] = rows.map((row) => {
    const rendered = renderExample(params.template, row, tokenizer, maxTokens);
    const split = evalHashes.has(row.rowHash) ? 'eval' : 'train';
    const usable = rendered.tokens.length >= 2 && rendered.trainedTokens > 0;
    const example: TrainExample = { tokens: rendered.tokens, lossMask: rendered.mask };
    if (usable && split === 'train') train.push({ example, contributor: row.contributor });
    if (usable && split === 'eval') evaluation.push(example);
    return {
      datanetId: row.datanetId,
      version: row.version,
      rowHash: row.rowHash,
      contributor: row.contributor,
      contributionId: row.contributionId,
      split,
      tokens: split === 'train' && usable ? rendered.trainedTokens : 0,
      truncated: rendered.truncated,
    };
  });
  if (train.length === 0)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'No row leaves anything to train on with this template (no assistant turns or documents).',
    );
  const lora = { rank: h.rank, alpha: h.alpha, dropout: h.dropout, targets: h.targets };
  const adapter = LoraAdapter.create(model.config, lora, h.seed);
  const trainer = new LoraTrainer(model, adapter, {
    learningRate: h.learningRate,
    totalSteps: h.steps,
    warmupSteps: h.warmupSteps,
    seed: h.seed,
  });
  const resumedFrom = input.checkpoint ? restoreCheckpoint(trainer, input.checkpoint) : 0;
  const baseModelName = ggufString(gguf.metadata, 'general.name', path.basename(params.baseModel));
  post({
    type: 'prepared',
    manifestRows,
    baseModel: {
      name: baseModelName,
      sha256: await sha256File(params.baseModel),
      bytes: file.size,
    },
    maxTokens,
    resumedFrom,
  });
  const pad = tokenizer.eosId;
  const evalBatches = batches(evaluation, h.batchSize, pad);

  // The data order is a function of the seed and the step, so a resumed run continues it.
  const permutations = new Map<number, number[]>();
  const n = train.length;
  const exampleAt = (position: number) => {
    const epoch = Math.floor(position / n);
    let order = permutations.get(epoch);
    if (!order) {
      order = new Prng(h.seed, 1000 + epoch).shuffle(Array.from({ length: n }, (_, i) => i));
      permutations.clear();
      permutations.set(epoch, order);
    }
    return train[order[position % n]!]!;
  };

  const perBatch = Math.min(h.batchSize, n);
  const progressEvery = Math.max(1, Math.ceil(h.steps / 100));
  const evalEvery = Math.max(1, Math.ceil(h.steps / 5));
  const runStarted = performance.now();
  let processed = 0;
  let lastReport = 0;
  let tokensSeen = 0;
  for (let step = resumedFrom; step < h.steps; step++) {
    const chosen = Array.from({ length: perBatch }, (_, j) => exampleAt(step * perBatch + j));
    const batch = makeTrainBatch(
      chosen.map((c) => c.example),
      { padToken: pad },
    );
    for (const c of chosen) processed += c.example.tokens.length;
    const result = trainer.trainStep([batch]);
    tokensSeen += result.tokens;
    const done = step + 1;
    if (done % h.checkpointEvery === 0 && done < h.steps)
      post({ type: 'checkpoint', step: done, bytes: encodeCheckpoint(trainer) });
    const now = performance.now();
    // Every step on short runs; about 100 reports on long ones, and at least one every 2 s.
    if (
      done % progressEvery === 0 ||
      done === h.steps ||
      done === resumedFrom + 1 ||
      now - lastReport >= 2000
    ) {
      lastReport = now;
      const elapsed = (now - runStarted) / 1000;
      const perStep = elapsed / (done - resumedFrom);
      const evalLoss =
        evalBatches.length > 0 && (done % evalEvery === 0 || done === h.steps)
          ? trainer.evaluate(evalBatches)
          : undefined;
      post({
        type: 'progress',
        progress: {
          step: done,
          of: h.steps,
          loss: result.loss,
          ...(evalLoss === undefined ? {} : { evalLoss }),
          learningRate: result.learningRate,
          tokensPerSecond: elapsed > 0 ? Math.round(processed / elapsed) : 0,
          etaSeconds: Math.round(perStep * (h.steps - done) * 10) / 10,
        },
      });
    }
  }

  const trainLoss = trainer.evaluate(
    batches(
      train.map((t) => t.example),
      h.batchSize,
      pad,
    ),
  );
  const evalLoss = evalBatches.length > 0 ? trainer.evaluate(evalBatches) : null;
  const base = new LoraTrainer(model, LoraAdapter.create(model.config, lora, h.seed), {
    learningRate: h.learningRate,
    totalSteps: h.steps,
  }); // B = 0: exactly the base model
  const baseEvalLoss = evalBatches.length > 0 ? base.evaluate(evalBatches) : null;
  const adapterBytes = encodeGguf(
    loraGgufInput(trainer.adapter, {
      baseModelName,
      name: 'openledger-lora',
    }),
  );
  post({
    type: 'done',
    adapter: adapterBytes,
    trainLoss,
    evalLoss,
    baseEvalLoss,
    tokensSeen,
    seconds: (performance.now() - started) / 1000,
  });
}
