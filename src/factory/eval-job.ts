/**
 * Evaluation on demand: the `factory.eval` job re-runs the evaluation of a succeeded training
 * job (base vs adapter loss and perplexity on its held-out rows, side-by-side samples), on the
 * held-out prompts or on prompts the caller gives. It is a job, not a request, because loading a
 * base model and generating takes seconds to minutes on real models: it runs in a worker, can be
 * cancelled and is followed over SSE like training. Its result is the evaluation.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Address } from 'viem';
import { OpenLedgerError, type ErrorCode } from '../errors.ts';
import type { JobContext, JobRow, JobRunner } from '../jobs/index.ts';
import { loadDatasetRows, type TrainingManifest } from './dataset.ts';
import {
  DEFAULT_SAMPLES,
  DEFAULT_SAMPLE_TOKENS,
  MAX_CUSTOM_PROMPTS,
  MAX_SAMPLE_TOKENS,
  type EvalPrompt,
  type Evaluation,
} from './eval.ts';
import type { EvalWorkerInput, EvalWorkerMessage } from './eval-worker.ts';
import { normalizeTrainParams, type TrainParamsInput } from './params.ts';
import type { FactoryDeps, TrainResult } from './train-job.ts';
import { startWorker } from './worker.ts';

export const EVAL_JOB_KIND = 'factory.eval';

export interface EvalParams {
  /** The training job whose adapter is evaluated. */
  jobId: string;
  /** Custom prompts; absent: the first `samples` held-out rows. */
  prompts?: EvalPrompt[];
  samples: number;
  maxNewTokens: number;
}

export type EvalJobResult = Evaluation & { trainingJobId: string };

export type EvalParamsInput = {
  prompts?: unknown;
  samples?: unknown;
  maxNewTokens?: unknown;
};

function invalid(message: string): never {
  throw new OpenLedgerError('VALIDATION_FAILED', message);
}

/** Defaults filled in and checked: prompts as strings or { prompt, reference }. */
export function normalizeEvalParams(jobId: string, input: EvalParamsInput): EvalParams {
  const samples = input.samples ?? DEFAULT_SAMPLES;
  if (
    typeof samples !== 'number' ||
    !Number.isSafeInteger(samples) ||
    samples < 0 ||
    samples > MAX_CUSTOM_PROMPTS
  )
    invalid(`samples must be an integer in [0, ${MAX_CUSTOM_PROMPTS}].`);
  const maxNewTokens = input.maxNewTokens ?? DEFAULT_SAMPLE_TOKENS;
  if (
    typeof maxNewTokens !== 'number' ||
    !Number.isSafeInteger(maxNewTokens) ||
    maxNewTokens < 1 ||
    maxNewTokens > MAX_SAMPLE_TOKENS
  )
    invalid(`maxNewTokens must be an integer in [1, ${MAX_SAMPLE_TOKENS}].`);
  let prompts: EvalPrompt[] | undefined;
  if (input.prompts !== undefined) {
    if (!Array.isArray(input.prompts) || input.prompts.length === 0)
      invalid('prompts must be a non-empty list of texts or { prompt, reference } objects.');
    if (input.prompts.length > MAX_CUSTOM_PROMPTS)
      invalid(`at most ${MAX_CUSTOM_PROMPTS} prompts per evaluation.`);
    prompts = (input.prompts as unknown[]).map((p, i): EvalPrompt => {
      const entry = typeof p === 'string' ? { prompt: p } : (p as Record<string, unknown>);
      if (
        typeof entry !== 'object' ||
        entry === null ||
        typeof entry.prompt !== 'string' ||
        entry.prompt.trim() === '' ||
        entry.prompt.length > 4000
      )
        invalid(`prompts[${i}] needs a non-empty prompt text of at most 4000 characters.`);
      if (entry.reference !== undefined && typeof entry.reference !== 'string')
        invalid(`prompts[${i}].reference must be a text.`);
      return {
        prompt: entry.prompt as string,
        ...(typeof entry.reference === 'string' ? { reference: entry.reference } : {}),
      };
    });
  }
  return { jobId, ...(prompts ? { prompts } : {}), samples, maxNewTokens };
}

/**
 * The caller's succeeded training job: NOT_FOUND for an unknown id, FORBIDDEN for another
 * wallet's job, BAD_REQUEST for a job of another kind, CONFLICT (with the job's status and
 * error) while it has no adapter.
 */
export async function succeededTrainingJob(
  jobs: JobRunner,
  caller: Address,
  id: string,
): Promise<{ job: JobRow; result: TrainResult }> {
  const job = await jobs.get(id);
  if (job.owner.toLowerCase() !== caller.toLowerCase())
    throw new OpenLedgerError('FORBIDDEN', `Job ${id} is not yours.`, {
      hint: 'Only the wallet that started a training job may evaluate it.',
    });
  if (job.kind !== 'factory.train')
    throw new OpenLedgerError('BAD_REQUEST', `Job ${id} is a ${job.kind} job, not a training job.`);
  if (job.status !== 'succeeded' || !job.result)
    throw new OpenLedgerError(
      'CONFLICT',
      `Training job ${id} is ${job.status}; only a succeeded training job has an adapter to evaluate.`,
      {
        hint:
          job.status === 'failed'
            ? `It failed: [${job.error?.code}] ${job.error?.message}`
            : 'Wait for it to succeed (GET /api/jobs/:id/events).',
      },
    );
  return { job, result: job.result as TrainResult };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Runs the evaluation worker to its answer; terminates it when `signal` aborts. Model proposals'
 * evaluator (src/market/proposals.ts) runs it too.
 */
export function evaluateInWorker(input: EvalWorkerInput, signal: AbortSignal): Promise<Evaluation> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const worker = startWorker('eval-worker', input);
    let settled = false;
    const settle = (run: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', abort);
      void worker.terminate();
      run();
    };
    const abort = () => settle(() => reject(signal.reason as Error));
    signal.addEventListener('abort', abort, { once: true });
    worker.on('message', (message: EvalWorkerMessage) => {
      if (message.type === 'done') settle(() => resolve(message.evaluation));
      else
        settle(() =>
          reject(
            new OpenLedgerError(
              message.code as ErrorCode,
              message.message,
              message.hint ? { hint: message.hint } : {},
            ),
          ),
        );
    });
    worker.on('error', (error) => settle(() => reject(error)));
    worker.on('exit', (code) =>
      settle(() =>
        reject(new OpenLedgerError('INTERNAL', `The evaluation worker exited with code ${code}.`)),
      ),
    );
  });
}

export function evalJob(deps: FactoryDeps & { jobs: JobRunner }) {
  return async (context: JobContext<EvalParams>): Promise<EvalJobResult> => {
    const params = normalizeEvalParams(context.params.jobId, context.params);
    const { job, result } = await succeededTrainingJob(deps.jobs, context.owner, params.jobId);
    const train = normalizeTrainParams(job.params as TrainParamsInput);
    const manifest = JSON.parse(
      (await deps.blobs.get(result.manifestBlobId)).toString('utf8'),
    ) as TrainingManifest;
    const model = await deps.models.resolve(train.baseModel);
    if ((await sha256File(model.path)) !== manifest.baseModel.sha256)
      throw new OpenLedgerError(
        'CONFLICT',
        `The base model ${model.name} on this node is not the file the adapter was trained on.`,
        { hint: `The training used sha256 ${manifest.baseModel.sha256}.` },
      );
    if (!deps.datanets)
      throw new OpenLedgerError('NOT_FOUND', 'This node has no datanet registry deployed.');
    // The held-out rows, re-read from the very versions trained on (read access checked again).
    const dataset = await loadDatasetRows(
      deps.datanets,
      context.owner,
      manifest.datanets.map((d) => ({ id: d.id, version: d.version })),
    );
    const byKey = new Map(dataset.rows.map((r) => [`${r.datanetId}@${r.version}:${r.rowHash}`, r]));
    const seen = new Set<string>();
    const heldOut: EvalWorkerInput['heldOut'] = [];
    for (const r of manifest.rows) {
      if (r.split !== 'eval' || seen.has(r.rowHash)) continue;
      seen.add(r.rowHash);
      const row = byKey.get(`${r.datanetId}@${r.version}:${r.rowHash}`);
      if (row)
        heldOut.push({
          rowHash: r.rowHash,
          row: { content: row.content, ...(row.messages ? { messages: row.messages } : {}) },
        });
    }
    context.signal.throwIfAborted();
    await context.setStatus('running');
    await context.emit('log', {
      message: `evaluating ${heldOut.length} held-out rows; ${params.prompts ? `${params.prompts.length} custom prompts` : `${params.samples} held-out samples`} of up to ${params.maxNewTokens} tokens`,
    });
    const evaluation = await evaluateInWorker(
      {
        modelPath: model.path,
        adapter: new Uint8Array(await deps.blobs.get(result.adapterBlobId)),
        template: train.template,
        heldOut,
        maxTokens: result.maxTokens,
        prompts: params.prompts,
        samples: params.samples,
        maxNewTokens: params.maxNewTokens,
      },
      context.signal,
    );
    return { trainingJobId: params.jobId, ...evaluation };
  };
}
