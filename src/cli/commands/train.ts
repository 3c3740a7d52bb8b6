import { OpenLedgerError } from '../../errors.ts';
import type { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';

interface JobView {
  id: string;
  status: string;
  result?: Record<string, unknown> | null;
  error?: { code: string; message: string } | null;
}

/** `name@version` (version a number or "latest"; absent: latest). */
export function parseDatanetRef(text: string): { id: number; version: number | 'latest' } {
  const match = /^(\d+)(?:@(\d+|latest))?$/.exec(text.trim());
  if (!match)
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `--datanet ${text}: expected <id>@<version>, e.g. 3@2.`,
    );
  const version = match[2] === undefined || match[2] === 'latest' ? 'latest' : Number(match[2]);
  return { id: Number(match[1]), version };
}

function positive(name: string, value: string | undefined, integer = true): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `--${name} ${value}: expected a positive ${integer ? 'integer' : 'number'}.`,
    );
  return n;
}

function progressLine(data: Record<string, unknown>): string {
  const num = (key: string) => (typeof data[key] === 'number' ? (data[key] as number) : undefined);
  const evalLoss = num('evalLoss');
  return [
    `step ${num('step')}/${num('of')}`,
    `loss ${num('loss')?.toFixed(4)}`,
    ...(evalLoss === undefined ? [] : [`eval ${evalLoss.toFixed(4)}`]),
    `${num('tokensPerSecond')} tok/s`,
    `ETA ${Math.round(num('etaSeconds') ?? 0)} s`,
  ].join('  ');
}

/**
 * Follows a job's server-sent events until it ends (or `signal` aborts), calling `onEvent` for
 * each. Answers the last status seen.
 */
export async function followJob(
  client: NodeClient,
  id: string,
  signal: AbortSignal,
  onEvent: (event: string, data: Record<string, unknown>) => void,
): Promise<void> {
  const response = await fetch(new URL(`/api/jobs/${id}/events`, client.url), {
    headers: client.authorization(),
    signal,
  });
  if (!response.ok || !response.body)
    throw new OpenLedgerError('INTERNAL', `Cannot follow job ${id}: HTTP ${response.status}.`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(event, JSON.parse(data) as Record<string, unknown>);
    }
  }
}

export async function train(
  flags: AuthFlags & {
    base?: string;
    datanet: string[];
    template?: string;
    steps?: string;
    rank?: string;
    lr?: string;
    batchSize?: string;
    seed?: string;
    quantizeBase?: string;
  },
  out: Output,
): Promise<void> {
  const hyperparameters = Object.fromEntries(
    Object.entries({
      steps: positive('steps', flags.steps),
      rank: positive('rank', flags.rank),
      learningRate: positive('lr', flags.lr, false),
      batchSize: positive('batch-size', flags.batchSize),
      seed: flags.seed === undefined ? undefined : Number(flags.seed),
      quantizeBase: flags.quantizeBase,
    }).filter(([, v]) => v !== undefined),
  );
  const body = {
    ...(flags.base === undefined ? {} : { baseModel: flags.base }),
    datanets: flags.datanet.map(parseDatanetRef),
    ...(flags.template ? { template: flags.template } : {}),
    hyperparameters,
  };
  const client = await authenticatedClient(flags);
  const job = await client.request<JobView>('POST', '/api/factory/jobs', body);
  const tty = !out.json && process.stderr.isTTY === true;
  if (!out.json) process.stderr.write(`job ${job.id} queued\n`);

  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  let live = false;
  try {
    await followJob(client, job.id, stop.signal, (event, data) => {
      if (out.json) return;
      if (event === 'progress') {
        const line = progressLine(data);
        if (tty) {
          process.stderr.write(`\r\x1b[2K${line}`);
          live = true;
        } else process.stderr.write(`${line}\n`);
        return;
      }
      if (live) process.stderr.write('\n');
      live = false;
      if (event === 'status') process.stderr.write(`status ${String(data.status)}\n`);
      else if (event === 'log') process.stderr.write(`${String(data.message)}\n`);
    });
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  } finally {
    process.off('SIGINT', onSigint);
    if (live) process.stderr.write('\n');
  }
  if (stop.signal.aborted) {
    process.stderr.write(
      `stopped following; job ${job.id} goes on.\n` +
        `  follow again: GET ${flags.url}/api/jobs/${job.id}/events\n` +
        `  cancel it:    POST ${flags.url}/api/jobs/${job.id}/cancel\n`,
    );
    if (out.json) out.result(await client.request<JobView>('GET', `/api/jobs/${job.id}`), () => '');
    return;
  }
  const final = await client.request<JobView>('GET', `/api/jobs/${job.id}`);
  if (final.status === 'failed') {
    process.exitCode = 1;
    if (!out.json)
      throw new OpenLedgerError(
        'INTERNAL',
        `training failed [${final.error?.code}]: ${final.error?.message ?? 'unknown error'}`,
      );
  }
  out.result(final, (j) => {
    if (j.status !== 'succeeded') return `job ${j.id} ${j.status}`;
    const r = j.result as {
      adapterBlobId: string;
      manifestHash: string;
      trainLoss: number;
      evalLoss: number | null;
      baseEvalLoss: number | null;
      tokens: number;
      contributors: Record<string, number>;
    };
    return [
      `job ${j.id} succeeded`,
      `adapter   blob ${r.adapterBlobId} (GGUF LoRA)`,
      `manifest  ${r.manifestHash}`,
      `loss      train ${r.trainLoss.toFixed(4)}, eval ${r.evalLoss?.toFixed(4) ?? '-'} (base ${r.baseEvalLoss?.toFixed(4) ?? '-'})`,
      `tokens    ${r.tokens} from ${Object.keys(r.contributors).length} contributor(s)`,
      ...Object.entries(r.contributors).map(([a, n]) => `  ${a}  ${n}`),
    ].join('\n');
  });
}
