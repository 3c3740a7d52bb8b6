export { startNode } from './start.ts';
export type { Progress, RunningNode } from './start.ts';
export type { NodeContext } from './context.ts';
