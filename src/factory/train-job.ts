/**
 * The `factory.train` job: checks its inputs (parameters, read access to every datanet, the base
 * model), then trains a LoRA adapter in a worker thread so the node stays responsive, streaming
 * progress, checkpointing, and finally storing the adapter (llama.cpp GGUF LoRA) and the training
 * manifest as blobs.
 */
import type { Address } from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import type { DatanetService } from '../datanets/index.ts';
import { OpenLedgerError, type ErrorCode } from '../errors.ts';
import type { JobContext, JobRunner } from '../jobs/index.ts';
import {
  contributorTotals,
  loadDatasetRows,
  storeManifest,
  type ManifestRow,
  type TrainingManifest,
} from './dataset.ts';
import { readGguf } from '../engine/index.ts';
import { estimateTraining, measureThroughput, modelShape } from './estimate.ts';
import type { Evaluation } from './eval.ts';
import { EVAL_JOB_KIND, evalJob } from './eval-job.ts';
import type { ModelCatalog } from './models.ts';
import { normalizeTrainParams, type TrainParams, type TrainParamsInput } from './params.ts';
import type { TrainInput, TrainMessage } from './train-core.ts';
import { manifestSketches, storeSketches, type SketchSummary } from './sketches.ts';
import { startWorker } from './worker.ts';

export const TRAIN_JOB_KIND = 'factory.train';

export interface TrainResult {
  adapterBlobId: string;
  manifestBlobId: string;
  manifestHash: string;
  trainLoss: number;
  evalLoss: number | null;
  baseEvalLoss: number | null;
  /** Loss tokens of the training rows, each row counted once (= Σ contributors). */
  tokens: number;
  /** Loss tokens over all steps (rows are seen once per epoch). */
  tokensSeen: number;
  contributors: Record<string, number>;
  rows: { train: number; eval: number };
  seconds: number;
  /** The effective tokens-per-row limit: the requested one, capped at the model's context. */
  maxTokens: number;
  /**
   * Base vs adapter on the held-out rows (loss, perplexity) and side-by-side samples, computed
   * at the end of training (eval.ts); null when the evaluation could not run.
   */
  evaluation: Evaluation | null;
  /** The per-row gradient sketches for influence attribution (absent on jobs from before them). */
  sketches?: SketchSummary;
}

export interface FactoryDeps {
  datanets: DatanetService | undefined;
  blobs: BlobStore;
  models: ModelCatalog;
}

function datanetsOf(deps: FactoryDeps): DatanetService {
  if (!deps.datanets)
    throw new OpenLedgerError('NOT_FOUND', 'This node has no datanet registry deployed.');
  return deps.datanets;
}

/**
 * Everything that can be checked before a job is queued: the parameters, the base model file,
 * and `owner`'s read access to each datanet (FORBIDDEN without a grant). Answers the normalised
 * parameters. The job checks all of it again when it runs.
 */
export async function checkTrainRequest(
  deps: FactoryDeps,
  owner: Address,
  input: TrainParamsInput,
): Promise<TrainParams> {
  // The caller names a model of the node's catalogue; the job records the name (never a path:
  // job records are shown to their owner) and resolves it to the file when it runs.
  const model = await deps.models.resolve(String(input.baseModel ?? ''));
  const params = normalizeTrainParams({ ...input, baseModel: model.name });
  const service = datanetsOf(deps);
  for (const ref of params.datanets) {
    await service.assertCanRead(ref.id, owner);
    const versions = await service.versions(ref.id);
    if (
      ref.version === 'latest'
        ? versions.length === 0
        : !versions.some((v) => v.version === ref.version)
    )
      throw new OpenLedgerError('NOT_FOUND', `Datanet ${ref.id} has no version ${ref.version}.`, {
        hint: 'Approve contributions to commit a version first.',
      });
  }
  return params;
}

/**
 * How long a cancelled training worker gets to finish its current step and close its native
 * matmul sessions before it is terminated anyway.
 */
const STOP_GRACE_MS = 30_000;

/**
 * Runs the training in a worker; `onMessage` sees every message. On abort the job fails at once
 * with the abort reason, while the worker is asked to stop after its current step and terminated
 * only once it has (or after STOP_GRACE_MS): terminating it inside an onnxruntime call would
 * abort the whole node.
 */
function trainInWorker(
  input: TrainInput,
  signal: AbortSignal,
  onMessage: (message: TrainMessage) => void,
): Promise<Extract<TrainMessage, { type: 'done' }>> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const worker = startWorker('train-worker', input);
    let settled = false;
    const settle = (run: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', abort);
      run();
    };
    const abort = () =>
      settle(() => {
        worker.postMessage({ type: 'stop' });
        const timer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
        timer.unref();
        worker.once('exit', () => clearTimeout(timer));
        reject(signal.reason as Error);
      });
    signal.addEventListener('abort', abort, { once: true });
    worker.on('message', (message: TrainMessage) => {
      if (message.type === 'stopped') return; // after an abort: the job has settled already
      if (message.type === 'done') settle(() => resolve(message));
      else if (message.type === 'error')
        settle(() =>
          reject(
            new OpenLedgerError(
              message.code as ErrorCode,
              message.message,
              message.hint ? { hint: message.hint } : {},
            ),
          ),
        );
      else onMessage(message);
    });
    worker.on('error', (error) => settle(() => reject(error)));
    worker.on('exit', (code) =>
      settle(() =>
        reject(new OpenLedgerError('INTERNAL', `The training worker exited with code ${code}.`)),
      ),
    );
  });
}

export function trainJob(deps: FactoryDeps) {
  return async (context: JobContext<TrainParamsInput>): Promise<TrainResult> => {
    // The runner has set `validating` already; `running` once the inputs are checked.
    const params = await checkTrainRequest(deps, context.owner, context.params);
    const model = await deps.models.resolve(params.baseModel);
    const dataset = await loadDatasetRows(datanetsOf(deps), context.owner, params.datanets);
    context.signal.throwIfAborted();
    await emitEstimate(context, model.path, params);
    await context.setStatus('running');

    // Events are recorded in order; the worker does not wait for them.
    let chain: Promise<void> = Promise.resolve();
    const enqueue = (run: () => Promise<void>) => {
      chain = chain.then(run);
      chain.catch(() => undefined);
    };
    let prepared: Extract<TrainMessage, { type: 'prepared' }> | undefined;
    const done = await trainInWorker(
      {
        params: { ...params, baseModel: model.path },
        rows: dataset.rows,
        ...(context.checkpoint ? { checkpoint: new Uint8Array(context.checkpoint) } : {}),
      },
      context.signal,
      (message) => {
        if (message.type === 'prepared') {
          prepared = message;
          const train = message.manifestRows.filter((r) => r.split === 'train').length;
          enqueue(() =>
            context.emit('log', {
              message: `training on ${train} rows, ${message.manifestRows.length - train} held out; max ${message.maxTokens} tokens per row${message.resumedFrom ? `; resumed at step ${message.resumedFrom}` : ''}`,
            }),
          );
        } else if (message.type === 'progress') {
          enqueue(() => context.emit('progress', { ...message.progress }));
        } else if (message.type === 'checkpoint') {
          enqueue(() => context.saveCheckpoint(message.bytes));
        }
      },
    );
    await chain;
    context.signal.throwIfAborted();
    if (!prepared)
      throw new OpenLedgerError('INTERNAL', 'The training worker reported no dataset.');

    const rows: ManifestRow[] = prepared.manifestRows;
    const contributors = contributorTotals(rows);
    const tokens = Object.values(contributors).reduce((n, c) => n + c.tokens, 0);
    const trainRows = rows.filter((r) => r.split === 'train').length;
    const sketches = done.sketches
      ? await storeSketches(deps.blobs, done.sketches.bytes, done.sketches.seconds)
      : undefined;
    const manifest: TrainingManifest = {
      kind: 'openledger.training-manifest',
      formatVersion: 1,
      jobId: context.id,
      owner: context.owner,
      baseModel: prepared.baseModel,
      template: params.template,
      hyperparameters: { ...params.hyperparameters, maxTokens: prepared.maxTokens },
      datanets: dataset.datanets,
      split: { method: 'sha256-bucket', evalPercent: params.hyperparameters.evalPercent },
      rows,
      contributors,
      totals: { rows: rows.length, trainRows, evalRows: rows.length - trainRows, tokens },
      ...(sketches ? { gradientSketches: manifestSketches(sketches) } : {}),
    };
    const { manifestBlobId, manifestHash } = await storeManifest(deps.blobs, manifest);
    const adapter = await deps.blobs.put(done.adapter);
    return {
      adapterBlobId: adapter.id,
      manifestBlobId,
      manifestHash,
      trainLoss: done.trainLoss,
      evalLoss: done.evalLoss,
      baseEvalLoss: done.baseEvalLoss,
      tokens,
      tokensSeen: done.tokensSeen,
      contributors: Object.fromEntries(Object.entries(contributors).map(([a, c]) => [a, c.tokens])),
      rows: { train: trainRows, eval: rows.length - trainRows },
      seconds: done.seconds,
      maxTokens: prepared.maxTokens,
      evaluation: done.evaluation ?? null,
      ...(sketches ? { sketches } : {}),
    };
  };
}

/**
 * The memory/time estimate as an `estimate` event of the validating phase (informational: a
 * failure to estimate is logged, never fails the job, which checks the model itself).
 */
async function emitEstimate(
  context: JobContext<TrainParamsInput>,
  modelPath: string,
  params: TrainParams,
): Promise<void> {
  try {
    const header = await readGguf(modelPath);
    const h = params.hyperparameters;
    const flopsPerSecond = await measureThroughput(modelShape(header), h);
    await context.emit('estimate', { ...estimateTraining(h, header, { flopsPerSecond }) });
  } catch (error) {
    await context.emit('log', {
      message: `no estimate: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
}

/** Registers the factory's job kinds on the node's runner. */
export function registerFactoryJobs(jobs: JobRunner, deps: FactoryDeps): void {
  jobs.register(TRAIN_JOB_KIND, trainJob(deps));
  jobs.register(EVAL_JOB_KIND, evalJob({ ...deps, jobs }));
}
