import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { OpenLedgerError } from '../../errors.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';
import { registerRewardCommands } from './rewards.ts';
import { parseDatanetRef } from './train.ts';

type SignerOptions = (command: Command) => Command;

interface QueryFlags extends AuthFlags {
  datanet: string[];
  model?: string;
  text?: string;
  tokens?: string;
  file?: string;
}

interface IndexView {
  datanetId: number;
  version: number;
  model: string;
  tokenizer: string;
  status: string;
  tokens: number;
  rows: number;
  versions: {
    version: number;
    status: string;
    tokens: number;
    rows: number;
    shards: unknown[];
    buildSeconds: number | null;
  }[];
}

/** Signed in when a signer is named (or an API key is set); anonymous otherwise (open datanets). */
async function clientFor(flags: AuthFlags): Promise<NodeClient> {
  const named =
    flags.account !== undefined ||
    flags.keystore !== undefined ||
    Boolean(process.env.OPENLEDGER_API_KEY) ||
    Boolean(process.env.OPENLEDGER_PRIVATE_KEY);
  return named ? authenticatedClient(flags) : new NodeClient(flags.url);
}

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new OpenLedgerError('BAD_REQUEST', `--${name} ${value}: expected an integer ≥ 0.`);
  return n;
}

async function queryBody(flags: QueryFlags): Promise<Record<string, unknown>> {
  const given = [flags.text, flags.tokens, flags.file].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new OpenLedgerError('BAD_REQUEST', 'Give exactly one of --text, --tokens or --file.');
  const tokens =
    flags.tokens === undefined
      ? undefined
      : flags.tokens.split(',').map((t) => integer('tokens', t.trim())!);
  const text = flags.file !== undefined ? await readFile(flags.file, 'utf8') : flags.text;
  return {
    datanets: flags.datanet.map(parseDatanetRef),
    ...(flags.model ? { model: flags.model } : {}),
    ...(tokens ? { tokens } : { text }),
  };
}

function indexLine(v: IndexView): string {
  return [
    `datanet ${v.datanetId} v${v.version}  ${v.status}  ${v.tokens} tokens  ${v.rows} rows  (${v.model}, tokenizer ${v.tokenizer.slice(0, 12)}…)`,
    ...v.versions.map(
      (x) =>
        `  v${x.version}  ${x.status}  ${x.tokens} tokens  ${x.rows} rows  ${x.shards.length} shard(s)${x.buildSeconds === null ? '' : `  ${x.buildSeconds.toFixed(2)} s`}`,
    ),
  ].join('\n');
}

/** `openledger attribution index <datanet> [version]`: status, or --build (and --wait). */
async function indexCommand(
  flags: AuthFlags & {
    datanetId: string;
    version?: string;
    model?: string;
    build?: boolean;
    force?: boolean;
    wait?: boolean;
  },
  out: Output,
): Promise<void> {
  const id = integer('datanet', flags.datanetId)!;
  const version = flags.version ?? 'latest';
  const query = flags.model ? `?model=${encodeURIComponent(flags.model)}` : '';
  const path = `/api/attribution/index/${id}/${version}`;
  if (!flags.build) {
    const client = await clientFor(flags);
    out.result(await client.request<IndexView>('GET', `${path}${query}`), indexLine);
    return;
  }
  const client = await authenticatedClient(flags);
  const started = await client.request<{ job: { id: string }; index: IndexView }>('POST', path, {
    ...(flags.model ? { model: flags.model } : {}),
    ...(flags.force ? { force: true } : {}),
  });
  if (!flags.wait) {
    out.result(started, (s) => `queued job ${s.job.id}\n${indexLine(s.index)}`);
    return;
  }
  out.progress(`indexing (job ${started.job.id})`);
  for (;;) {
    const job = await client.request<{
      status: string;
      error?: { code: string; message: string } | null;
    }>('GET', `/api/jobs/${started.job.id}`);
    if (job.status === 'failed' && job.error)
      throw new OpenLedgerError(
        'INTERNAL',
        `Indexing failed: [${job.error.code}] ${job.error.message}`,
      );
    if (job.status === 'cancelled')
      throw new OpenLedgerError('CONFLICT', 'The index job was cancelled.');
    if (job.status === 'succeeded') break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  out.progressDone('indexed');
  const index = await client.request<IndexView>('GET', `${path}${query}`);
  out.result(index, indexLine);
}

export function registerAttributionCommands(
  program: Command,
  out: Output,
  signer: SignerOptions,
): void {
  const attribution = program
    .command('attribution')
    .description(
      'proof of attribution: receipts of paid calls, verify, earnings, claims, epochs; span indexes, n-gram queries, traces',
    );
  registerRewardCommands(attribution, out, signer);

  signer(
    attribution
      .command('index')
      .description("a datanet version's span index: its status, or build it with --build")
      .argument('<datanet>', 'datanet id')
      .argument('[version]', 'version number or latest (default latest)'),
  )
    .option('--model <name>', 'base model whose tokenizer to use (default openledger-base-1m)')
    .option('--build', 'build the index (each version up to it not yet indexed)')
    .option('--force', 'with --build: rebuild versions already indexed')
    .option('--wait', 'with --build: wait until the job ends and print the index')
    .action((datanetId: string, version: string | undefined, options) =>
      indexCommand({ ...options, datanetId, ...(version ? { version } : {}) }, out),
    );

  const query = (name: string, description: string) =>
    signer(attribution.command(name).description(description))
      .requiredOption(
        '--datanet <id@version>',
        'a datanet version to search (repeatable; no version: latest)',
        (value: string, previous: string[] = []) => [...previous, value],
      )
      .option('--text <text>', 'the text (tokenized by the node)')
      .option('--tokens <ids>', 'token ids, comma-separated')
      .option('--file <file>', 'read the text from a file')
      .option('--model <name>', 'base model whose tokenizer to use (default openledger-base-1m)');

  query('count', 'how often an n-gram occurs').action(async (options: QueryFlags) => {
    const client = await clientFor(options);
    const result = await client.request<{ count: number; tokens: number[] }>(
      'POST',
      '/api/attribution/count',
      await queryBody(options),
    );
    out.result(result, (r) => `${r.count} occurrence(s) of ${r.tokens.length} token(s)`);
  });

  query('find', 'where an n-gram occurs: rows and contributors')
    .option('--limit <n>', 'occurrences to list (default 100)')
    .action(async (options: QueryFlags & { limit?: string }) => {
      const client = await clientFor(options);
      const limit = integer('limit', options.limit);
      const result = await client.request<{
        count: number;
        occurrences: {
          datanetId: number;
          version: number;
          rowHash: string;
          contributor: string;
          offset: number;
        }[];
      }>('POST', '/api/attribution/find', {
        ...(await queryBody(options)),
        ...(limit ? { limit } : {}),
      });
      out.result(result, (r) =>
        [
          `${r.count} occurrence(s)`,
          ...r.occurrences.map(
            (o) =>
              `  datanet ${o.datanetId} v${o.version}  row ${o.rowHash.slice(0, 16)}…  +${o.offset}  ${o.contributor}`,
          ),
        ].join('\n'),
      );
    });

  query('trace', 'trace an output to the rows it reproduces, with per-contributor weights')
    .option('--max-occurrences <n>', 'keep spans found in at most this many places (default 10)')
    .option('--min-tokens <n>', 'shortest span kept (default 8)')
    .action(async (options: QueryFlags & { maxOccurrences?: string; minTokens?: string }) => {
      const client = await clientFor(options);
      const maxOccurrences = integer('max-occurrences', options.maxOccurrences);
      const minTokens = integer('min-tokens', options.minTokens);
      const result = await client.request<{
        length: number;
        spans: { start: number; end: number; occurrences: number; credit: number; text: string }[];
        weights: Record<string, number>;
      }>('POST', '/api/attribution/trace', {
        ...(await queryBody(options)),
        ...(maxOccurrences ? { maxOccurrences } : {}),
        ...(minTokens ? { minTokens } : {}),
      });
      out.result(result, (r) =>
        [
          `${r.spans.length} span(s) in ${r.length} tokens`,
          ...r.spans.map(
            (s) =>
              `  [${s.start}, ${s.end})  ${s.occurrences}×  ${s.credit.toFixed(1)} bits  ${JSON.stringify(s.text)}`,
          ),
          Object.keys(r.weights).length === 0 ? 'no contributor credited' : 'weights:',
          ...Object.entries(r.weights).map(([who, w]) => `  ${who}  ${w.toFixed(6)}`),
        ].join('\n'),
      );
    });
}
