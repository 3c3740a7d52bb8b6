/**
 * The worker thread of an evaluation job: loads the base model and the adapter, runs
 * `evaluateAdapter` and posts the evaluation back (errors as { code, message }, since structured
 * clone would drop an OpenLedgerError's code).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadLoraGguf, loadModelGguf } from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { evaluateAdapter, type EvalPrompt, type Evaluation } from './eval.ts';
import type { TemplateName, TemplateRow } from './templates.ts';

export interface EvalWorkerInput {
  modelPath: string;
  adapter: Uint8Array;
  template: TemplateName;
  heldOut: { rowHash: string; row: TemplateRow }[];
  maxTokens: number;
  prompts?: EvalPrompt[] | undefined;
  samples?: number | undefined;
  maxNewTokens?: number | undefined;
}

export type EvalWorkerMessage =
  | { type: 'done'; evaluation: Evaluation }
  | { type: 'error'; code: string; message: string; hint?: string };

async function run(input: EvalWorkerInput): Promise<Evaluation> {
  const model = await loadModelGguf(input.modelPath); // llama, qwen2 or gpt2
  const adapter = await loadLoraGguf(input.adapter, { modelConfig: model.config });
  return evaluateAdapter({ ...input, model, adapter });
}

const port = parentPort;
if (port) {
  const post = (message: EvalWorkerMessage) => port.postMessage(message);
  run(workerData as EvalWorkerInput).then(
    (evaluation) => post({ type: 'done', evaluation }),
    (error: unknown) =>
      post(
        error instanceof OpenLedgerError
          ? {
              type: 'error',
              code: error.code,
              message: error.message,
              ...(error.hint ? { hint: error.hint } : {}),
            }
          : {
              type: 'error',
              code: 'INTERNAL',
              message: error instanceof Error ? (error.stack ?? error.message) : String(error),
            },
      ),
  );
}
