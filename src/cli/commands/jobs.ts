/**
 * `openledger jobs list|show|cancel|logs` (any job of the caller: training, evaluation, …) and
 * `openledger eval <jobId>` (the evaluation of a training job, re-run on the node as a
 * `factory.eval` job and followed to its end).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';
import { followJob } from './train.ts';

interface JobView {
  id: string;
  kind: string;
  status: string;
  params: Record<string, unknown>;
  progress: Record<string, unknown> | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string; hint?: string } | null;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

interface EventView {
  id: number;
  type: string;
  data: Record<string, unknown>;
  at: string;
}

interface EvaluationView {
  heldOutRows: number;
  targets: number;
  baseLoss: number | null;
  adapterLoss: number | null;
  basePerplexity: number | null;
  adapterPerplexity: number | null;
  samples: {
    source: string;
    prompt: string;
    reference: string | null;
    base: string;
    adapter: string;
  }[];
  maxNewTokens: number;
  seconds: number;
}

const fixed = (x: unknown, digits = 4) => (typeof x === 'number' ? x.toFixed(digits) : '-');

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new OpenLedgerError('BAD_REQUEST', `--${name} ${value}: expected a whole number.`);
  return n;
}

/** One line about an event, for `jobs logs`. */
export function eventLine(event: { type: string; data: Record<string, unknown>; at?: string }) {
  const d = event.data;
  const time = event.at ? `${new Date(event.at).toISOString().slice(11, 19)}  ` : '';
  let text: string;
  switch (event.type) {
    case 'status':
      text = `status ${String(d.status)}${d.reason ? ` (${String(d.reason)})` : ''}${
        d.error
          ? `: [${(d.error as { code: string }).code}] ${(d.error as { message: string }).message}`
          : ''
      }`;
      break;
    case 'progress':
      text = `step ${String(d.step)}/${String(d.of)}  loss ${fixed(d.loss)}${
        typeof d.evalLoss === 'number' ? `  eval ${fixed(d.evalLoss)}` : ''
      }  lr ${fixed(d.learningRate, 6)}  ${String(d.tokensPerSecond)} tok/s  ETA ${Math.round(Number(d.etaSeconds ?? 0))} s`;
      break;
    case 'log':
      text = String(d.message);
      break;
    case 'checkpoint':
      text = `checkpoint ${String(d.bytes)} bytes (blob ${String(d.blobId).slice(0, 12)}…)`;
      break;
    case 'estimate': {
      const memory = d.memory as { peakBytes?: number } | undefined;
      const time = d.time as { totalSeconds?: number } | undefined;
      text = `estimate: peak ${((memory?.peakBytes ?? 0) / 2 ** 20).toFixed(1)} MiB${
        time?.totalSeconds === undefined ? '' : `, about ${Math.ceil(time.totalSeconds)} s`
      }`;
      break;
    }
    default:
      text = `${event.type} ${JSON.stringify(d)}`;
  }
  return `${time}${text}`;
}

function jobSummary(j: JobView): string {
  const lines = [
    `job      ${j.id}`,
    `kind     ${j.kind}`,
    `status   ${j.status}${j.attempts > 1 ? ` (attempt ${j.attempts})` : ''}`,
    `created  ${j.createdAt}`,
  ];
  if (j.finishedAt) lines.push(`finished ${j.finishedAt}`);
  if (j.progress) lines.push(`progress ${eventLine({ type: 'progress', data: j.progress })}`);
  if (j.error) {
    lines.push(`error    [${j.error.code}] ${j.error.message}`);
    if (j.error.hint) lines.push(`hint     ${j.error.hint}`);
  }
  const r = j.result;
  if (r && j.kind === 'factory.train')
    lines.push(
      `adapter  blob ${String(r.adapterBlobId)}`,
      `manifest ${String(r.manifestHash)}`,
      `loss     train ${fixed(r.trainLoss)}, eval ${fixed(r.evalLoss)} (base ${fixed(r.baseEvalLoss)})`,
      `tokens   ${String(r.tokens)}`,
    );
  else if (r && j.kind === 'factory.eval')
    lines.push(evaluationText(r as unknown as EvaluationView));
  else if (r) lines.push(`result   ${JSON.stringify(r)}`);
  return lines.join('\n');
}

/** The evaluation as a table of losses and the samples side by side. */
export function evaluationText(e: EvaluationView): string {
  const lines = [
    `held out  ${e.heldOutRows} rows, ${e.targets} target tokens`,
    '           loss      perplexity',
    `base      ${fixed(e.baseLoss).padStart(7)}  ${fixed(e.basePerplexity, 2).padStart(10)}`,
    `adapter   ${fixed(e.adapterLoss).padStart(7)}  ${fixed(e.adapterPerplexity, 2).padStart(10)}`,
  ];
  e.samples.forEach((s, i) => {
    lines.push(
      '',
      `sample ${i + 1} (${s.source})`,
      `  prompt     ${JSON.stringify(s.prompt)}`,
      ...(s.reference === null ? [] : [`  reference  ${JSON.stringify(s.reference)}`]),
      `  base       ${JSON.stringify(s.base)}`,
      `  adapter    ${JSON.stringify(s.adapter)}`,
    );
  });
  return lines.join('\n');
}

async function jobsList(flags: AuthFlags & { kind?: string }, out: Output) {
  const client = await authenticatedClient(flags);
  const query = flags.kind ? `?kind=${encodeURIComponent(flags.kind)}` : '';
  const { jobs } = await client.request<{ jobs: JobView[] }>('GET', `/api/jobs${query}`);
  out.result({ jobs }, ({ jobs: list }) =>
    list.length === 0
      ? 'no jobs'
      : list
          .map(
            (j) =>
              `${j.id}  ${j.kind.padEnd(14)} ${j.status.padEnd(10)} ${j.createdAt}${
                j.progress && j.status === 'running'
                  ? `  step ${String(j.progress.step)}/${String(j.progress.of)}`
                  : ''
              }`,
          )
          .join('\n'),
  );
}

async function jobsShow(flags: AuthFlags & { id: string }, out: Output) {
  const client = await authenticatedClient(flags);
  out.result(await client.request<JobView>('GET', `/api/jobs/${flags.id}`), jobSummary);
}

async function jobsCancel(flags: AuthFlags & { id: string }, out: Output) {
  const client = await authenticatedClient(flags);
  const job = await client.request<JobView>('POST', `/api/jobs/${flags.id}/cancel`, {});
  out.result(job, (j) =>
    ['succeeded', 'failed', 'cancelled'].includes(j.status)
      ? `job ${j.id} ${j.status}`
      : `job ${j.id}: cancel requested (it stops at its next check; status ${j.status})`,
  );
}

/** Follows a job's events to its end; Ctrl-C stops following (answers false), not the job. */
async function follow(
  client: NodeClient,
  id: string,
  onEvent: (event: EventView) => void,
): Promise<boolean> {
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  try {
    await followJob(client, id, stop.signal, (type, data) => {
      const { at, ...rest } = data;
      onEvent({ id: 0, type, data: rest, at: String(at) });
    });
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  } finally {
    process.off('SIGINT', onSigint);
  }
  return !stop.signal.aborted;
}

async function jobsLogs(flags: AuthFlags & { id: string; follow?: boolean }, out: Output) {
  const client = await authenticatedClient(flags);
  if (!flags.follow) {
    const log = await client.request<{ events: EventView[] }>('GET', `/api/jobs/${flags.id}/log`);
    out.result({ events: log.events }, ({ events }) => events.map(eventLine).join('\n'));
    return;
  }
  const events: EventView[] = [];
  await follow(client, flags.id, (event) => {
    events.push(event);
    if (!out.json) process.stdout.write(`${eventLine(event)}\n`);
  });
  if (out.json) out.result({ events }, () => '');
}

/** A prompts file: a JSON array (texts or { prompt, reference }), else one prompt per line. */
async function readPrompts(file: string): Promise<unknown[]> {
  const text = await readFile(file, 'utf8').catch((cause: unknown) => {
    throw new OpenLedgerError('BAD_REQUEST', `Cannot read --prompts ${file}.`, { cause });
  });
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    try {
      const parsed = JSON.parse(trimmed) as unknown;
      if (Array.isArray(parsed)) return parsed;
    } catch (cause) {
      throw new OpenLedgerError('BAD_REQUEST', `--prompts ${file} is not valid JSON.`, { cause });
    }
  }
  const lines = trimmed
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (lines.length === 0) throw new OpenLedgerError('BAD_REQUEST', `--prompts ${file} is empty.`);
  return lines;
}

async function evaluate(
  flags: AuthFlags & {
    id: string;
    prompts?: string;
    maxTokens?: string;
    samples?: string;
    stored?: boolean;
  },
  out: Output,
) {
  const client = await authenticatedClient(flags);
  if (flags.stored) {
    const stored = await client.request<{ evaluation: EvaluationView | null }>(
      'GET',
      `/api/factory/jobs/${flags.id}/evaluation`,
    );
    if (!stored.evaluation)
      throw new OpenLedgerError('NOT_FOUND', `Job ${flags.id} has no stored evaluation.`, {
        hint: `Run one: openledger eval ${flags.id}`,
      });
    out.result(stored.evaluation, evaluationText);
    return;
  }
  const maxNewTokens = positiveInteger('max-tokens', flags.maxTokens);
  const samples = positiveInteger('samples', flags.samples);
  const body = {
    ...(flags.prompts ? { prompts: await readPrompts(flags.prompts) } : {}),
    ...(maxNewTokens === undefined ? {} : { maxNewTokens }),
    ...(samples === undefined ? {} : { samples }),
  };
  const job = await client.request<JobView>(
    'POST',
    `/api/factory/jobs/${flags.id}/evaluation`,
    body,
  );
  if (!out.json) process.stderr.write(`evaluation job ${job.id} queued\n`);
  const finished = await follow(client, job.id, (event) => {
    if (!out.json && (event.type === 'status' || event.type === 'log'))
      process.stderr.write(`${eventLine({ type: event.type, data: event.data })}\n`);
  });
  const final = await client.request<JobView>('GET', `/api/jobs/${job.id}`);
  if (!finished) {
    process.stderr.write(`stopped following; evaluation job ${job.id} goes on.\n`);
    if (out.json) out.result(final, () => '');
    return;
  }
  if (final.status !== 'succeeded') {
    process.exitCode = 1;
    throw new OpenLedgerError(
      (final.error?.code as 'INTERNAL' | undefined) ?? 'INTERNAL',
      `evaluation ${final.status}${final.error ? `: ${final.error.message}` : ''}`,
      final.error?.hint ? { hint: final.error.hint } : {},
    );
  }
  out.result(final.result as unknown as EvaluationView & { trainingJobId: string }, evaluationText);
}

type SignerOptions = (command: Command) => Command;

/** Registers `jobs …` and `eval` on the program. */
export function registerJobsCommands(program: Command, out: Output, signer: SignerOptions) {
  const jobs = program
    .command('jobs')
    .description('your background jobs on a node (training, evaluation): list, show, cancel, logs');
  signer(jobs.command('list').description('your jobs, newest first'))
    .option('--kind <kind>', 'only jobs of this kind (factory.train, factory.eval, …)')
    .action((options) => jobsList(options, out));
  signer(
    jobs.command('show').description('one job: status, progress, result or error').argument('<id>'),
  ).action((id: string, options) => jobsShow({ ...options, id }, out));
  signer(
    jobs
      .command('cancel')
      .description('cancel a job (at once when queued, at its next check when running)')
      .argument('<id>'),
  ).action((id: string, options) => jobsCancel({ ...options, id }, out));
  signer(jobs.command('logs').description("a job's events so far").argument('<id>'))
    .option('--follow', 'stream new events until the job ends (Ctrl-C stops following)')
    .action((id: string, options) => jobsLogs({ ...options, id }, out));

  signer(
    program
      .command('eval')
      .description(
        'evaluate a trained adapter against its base model: held-out loss and perplexity, and greedy samples side by side',
      )
      .argument('<jobId>', 'the training job'),
  )
    .option('--prompts <file>', 'your prompts: a JSON array, or one prompt per line')
    .option('--max-tokens <n>', 'tokens to generate per sample (default 48, at most 256)')
    .option('--samples <n>', 'held-out prompts to sample when no --prompts (default 3)')
    .option('--stored', 'print the evaluation stored with the job instead of running one')
    .action((id: string, options) => evaluate({ ...options, id }, out));
}
