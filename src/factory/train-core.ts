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
  GPT2_LORA_TARGETS,
  LoraAdapter,
  Trainer,
  createMatmulBackend,
  Gpt2Model,
  quantizeBase,
  quantizeGpt2Base,
  type TrainableModel,
  Prng,
  encodeGguf,
  ggufString,
  loadModelGguf,
  loraGgufInput,
  readGguf,
  type AnyLoraTarget,
  type GgufModel,
  type LoraTarget,
  type TrainBatch,
  type TrainExample,
} from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { encodeCheckpoint, restoreCheckpoint } from './checkpoint.ts';
import { heldOut, type DatasetRow, type ManifestRow } from './dataset.ts';
import { evaluateAdapter, heldOutRows, type Evaluation } from './eval.ts';
import { packExamples } from './packing.ts';
import type { TrainParams } from './params.ts';
import { sketchTrainingSet } from './sketches.ts';
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
  /** The run stopped before `step` because it was asked to (see runTraining). */
  | { type: 'stopped'; step: number }
  | { type: 'checkpoint'; step: number; bytes: Uint8Array }
  | {
      type: 'done';
      adapter: Uint8Array;
      trainLoss: number;
      evalLoss: number | null;
      baseEvalLoss: number | null;
      tokensSeen: number;
      seconds: number;
      evaluation?: Evaluation;
      /** The gradient sketch blob (sketches.ts) and the seconds it took. */
      sketches?: { bytes: Uint8Array; seconds: number };
    }
  | { type: 'error'; code: string; message: string; hint?: string };

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Evaluation batches, grouped by length (losses are sums: exact however grouped). */
function batches(
  examples: readonly TrainExample[],
  size: number,
  padToken: number,
  maxTokens: number,
): TrainBatch[] {
  return packExamples(examples, { packing: true, maxBatch: size, padToken, maxTokens }).map(
    (m) => m.batch,
  );
}

/**
 * The job's LoRA targets on this architecture. GPT-2 keeps q, k and v in one matrix, so any of
 * attn_q, attn_k, attn_v adapts attn_qkv (as PEFT's `c_attn`); it has no ffn_gate.
 */
export function targetsFor(arch: GgufModel['arch'], targets: readonly LoraTarget[]) {
  if (arch !== 'gpt2') return [...targets];
  if (targets.includes('ffn_gate'))
    throw new OpenLedgerError('VALIDATION_FAILED', 'GPT-2 has no ffn_gate to adapt.', {
      hint: 'on GPT-2 choose among attn_q/attn_k/attn_v (one fused attn_qkv), attn_output, ffn_up, ffn_down',
    });
  const fused = (t: LoraTarget): AnyLoraTarget =>
    t === 'attn_q' || t === 'attn_k' || t === 'attn_v' ? 'attn_qkv' : t;
  const chosen = new Set(targets.map(fused));
  return GPT2_LORA_TARGETS.filter((t) => chosen.has(t));
}

/**
 * Runs the job's training. `shouldStop` is polled before each step (the worker sets it when the
 * job is cancelled): the run then closes its matmul backend and posts 'stopped', because
 * terminating a worker inside a native onnxruntime call aborts the whole process.
 */
export async function runTraining(
  input: TrainInput,
  post: (message: TrainMessage) => void,
  shouldStop: () => boolean = () => false,
) {
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
  const model = await loadModelGguf(gguf); // llama (Mistral), qwen2 or gpt2, with its tokenizer
  const tokenizer = model.tokenizer;
  if (!tokenizer)
    throw new OpenLedgerError('GGUF_UNSUPPORTED', `${params.baseModel} has no tokenizer.`);
  const maxTokens = Math.min(h.maxTokens, model.config.contextLength);

  // Render every row; the split is by row hash.
  const evalHashes = heldOut(rows, h.evalPercent);
  const train: { example: TrainExample; contributor: string; index: number }[] = [];
  const evaluation: TrainExample[] = [];
  const manifestRows: ManifestRow[] = rows.map((row, index) => {
    const rendered = renderExample(params.template, row, tokenizer, maxTokens);
    const split = evalHashes.has(row.rowHash) ? 'eval' : 'train';
    const usable = rendered.tokens.length >= 2 && rendered.trainedTokens > 0;
    const example: TrainExample = { tokens: rendered.tokens, lossMask: rendered.mask };
    if (usable && split === 'train') train.push({ example, contributor: row.contributor, index });
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
  const targets = targetsFor(model.arch, h.targets);
  const lora = { rank: h.rank, alpha: h.alpha, dropout: h.dropout, targets };
  const adapter = LoraAdapter.create(model.config, lora, h.seed);
  // onnxruntime when it loads (the worker is this job's only heavy thread), else TypeScript
  const backend = await createMatmulBackend();
  // QLoRA: the trainer reads the projections as quantized blocks (evaluation and the merged
  // samples below still use the float32 model this worker loaded)
  const frozen: TrainableModel =
    h.quantizeBase === 'none'
      ? model
      : model instanceof Gpt2Model
        ? { config: model.config, weights: quantizeGpt2Base(model, h.quantizeBase) }
        : { config: model.config, weights: quantizeBase(model, h.quantizeBase) };
  const trainer = new Trainer(frozen, adapter, {
    backend,
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
  const pad = Math.max(0, tokenizer.eosId); // padding is masked: any id will do without an EOS
  const evalBatches = batches(evaluation, h.batchSize, pad, maxTokens);

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
    // a macrotask turn, so that the worker sees a stop message even when every product is sync
    await new Promise((resolve) => setImmediate(resolve));
    if (shouldStop()) {
      await backend.close();
      post({ type: 'stopped', step });
      return;
    }
    const chosen = Array.from({ length: perBatch }, (_, j) => exampleAt(step * perBatch + j));
    const microBatches = packExamples(
      chosen.map((c) => c.example),
      { packing: h.packing, padToken: pad, maxTokens },
    ).map((m) => m.batch);
    for (const c of chosen) processed += c.example.tokens.length;
    const result = await trainer.trainStep(microBatches);
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
          ? await trainer.evaluate(evalBatches)
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

  const trainLoss = await trainer.evaluate(
    batches(
      train.map((t) => t.example),
      h.batchSize,
      pad,
      maxTokens,
    ),
  );
  const evalLoss = evalBatches.length > 0 ? await trainer.evaluate(evalBatches) : null;
  const base = new Trainer(model, LoraAdapter.create(model.config, lora, h.seed), {
    backend,
    learningRate: h.learningRate,
    totalSteps: h.steps,
  }); // B = 0: exactly the base model
  const baseEvalLoss = evalBatches.length > 0 ? await base.evaluate(evalBatches) : null;
  await backend.close();
  const adapterBytes = encodeGguf(
    loraGgufInput(adapter, {
      baseModelName,
      name: 'openledger-lora',
      architecture: model.arch, // llama.cpp refuses an adapter of another architecture
    }),
  );
  const sketches = await sketchTrainingSet({
    model,
    adapter,
    adapterBytes,
    rows: train.map((t) => ({
      index: t.index,
      rowHash: rows[t.index]!.rowHash,
      example: t.example,
    })),
    seed: h.seed,
    step: h.steps,
  });
  const samples = evaluateAdapter({
    model,
    adapter,
    template: params.template,
    heldOut: heldOutRows(rows, evalHashes),
    maxTokens,
  });
  post({
    type: 'done',
    evaluation: samples,
    adapter: adapterBytes,
    sketches,
    trainLoss,
    evalLoss,
    baseEvalLoss,
    tokensSeen,
    seconds: (performance.now() - started) / 1000,
  });
}
