/**
 * Worker threads of the factory's jobs (training, evaluation), so that the node stays responsive
 * while they compute.
 */
import { Worker } from 'node:worker_threads';

/**
 * A worker running `entry` (a module of this folder, without extension): `.js` in the built
 * dist/; under tsx (tests, dev) the `.ts` file, through a small bootstrap that registers tsx's
 * loader in the worker first (`--import tsx` in the worker's execArgv does not reach a worker on
 * Node 20).
 */
export function startWorker(entry: 'train-worker' | 'eval-worker', workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL(`./${entry}.js`, import.meta.url), { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const file = new URL(`./${entry}.ts`, import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}
