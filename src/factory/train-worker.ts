/**
 * The worker thread of a training job: runs `runTraining` on what the job sends in workerData
 * and posts its messages back. Errors are posted as { code, message } (structured clone would
 * drop an OpenLedgerError's code).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OpenLedgerError } from '../errors.ts';
import { runTraining, type TrainInput, type TrainMessage } from './train-core.ts';

const port = parentPort;
if (port) {
  const post = (message: TrainMessage) => port.postMessage(message);
  let stopping = false;
  port.on('message', (message: { type?: string }) => {
    if (message.type === 'stop') stopping = true;
  });
  runTraining(workerData as TrainInput, post, () => stopping)
    .then(() => port.close()) // nothing else keeps the worker alive
    .catch((error: unknown) => {
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
      );
    });
}
