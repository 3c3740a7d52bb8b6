export { JobRunner, TERMINAL_STATUSES } from './runner.ts';
export type { JobContext, JobEvent, JobHandler, JobRow, JobStatus } from './runner.ts';
