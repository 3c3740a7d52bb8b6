import { Option, type Command } from 'commander';
import { formatUnits } from 'viem';
import { OpenLedgerError } from '../../errors.ts';
import type { MarketList, MarketModel, MarketModelPage } from '../../market/index.ts';
import { DEFAULT_NODE_URL, NodeClient } from '../client.ts';
import type { Output } from '../output.ts';

const SORTS = ['revenue', 'usage', 'newest', 'price'] as const;

/** OPEN with up to 6 decimals, from wei. */
function open(wei: string): string {
  const [whole, fraction = ''] = formatUnits(BigInt(wei), 18).split('.');
  const cut = fraction.slice(0, 6).replace(/0+$/, '');
  return cut ? `${whole}.${cut}` : whole!;
}

function pct(share: number | null): string {
  return share === null ? '-' : `${(share * 100).toFixed(1)}%`;
}

/** A table: columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function evalText(m: MarketModel): string {
  const e = m.evaluation;
  if (!e || e.adapterLoss === null) return '-';
  return e.baseLoss === null
    ? `loss ${e.adapterLoss.toFixed(3)}`
    : `loss ${e.baseLoss.toFixed(3)}→${e.adapterLoss.toFixed(3)}`;
}

function listText(list: MarketList): string {
  if (list.models.length === 0)
    return list.total === 0 ? 'no published models match' : `no models past offset ${list.offset}`;
  const rows = list.models.map((m) => [
    String(m.id),
    m.name,
    m.baseModel.name,
    m.datanets.map((d) => `${d.name ?? `#${d.id}`}@v${d.version}`).join(','),
    `${open(m.price.pricePer1kInput)}/${open(m.price.pricePer1kOutput)}`,
    String(m.usage.paidCalls),
    String(m.usage.promptTokens + m.usage.completionTokens),
    open(m.revenue.fees),
    evalText(m),
    String(m.attribution.contributors),
    m.active ? '' : 'inactive',
  ]);
  const header = [
    'ID',
    'NAME',
    'BASE',
    'DATANETS',
    'PRICE IN/OUT (OPEN/1k)',
    'PAID CALLS',
    'TOKENS',
    'REVENUE (OPEN)',
    'EVAL',
    'CONTRIBUTORS',
    '',
  ];
  const shown = `${list.offset + 1}-${list.offset + list.models.length} of ${list.total}, by ${list.sort}`;
  return `${table(header, rows)}\n${shown}`;
}

/** The model page as an indented tree: statistics, then lineage, then the on-chain record. */
function showText(m: MarketModelPage): string {
  const out: string[] = [];
  out.push(`model ${m.id}  ${m.name}${m.active ? '' : '  (inactive)'}`);
  if (m.description) out.push(`  ${m.description}`);
  out.push(`  base model   ${m.baseModel.name} (sha256 ${m.baseModel.sha256.slice(0, 16)}…)`);
  out.push(
    `  price        ${open(m.price.pricePer1kInput)} OPEN / 1k in, ${open(m.price.pricePer1kOutput)} OPEN / 1k out`,
  );
  out.push(
    `  split        owner ${m.split.owner / 100}%, stakers ${m.split.stakers / 100}%, contributors ${m.split.contributors / 100}%`,
  );
  out.push(
    `  usage        ${m.usage.paidCalls} paid of ${m.usage.calls} calls, ${m.usage.promptTokens} tokens in, ${m.usage.completionTokens} out${m.usage.lastCallAt ? `, last ${m.usage.lastCallAt}` : ''}`,
  );
  out.push(
    `  revenue      ${open(m.revenue.fees)} OPEN in fees; owner ${open(m.revenue.owner)}, stakers ${open(m.revenue.stakers)}, contributors ${open(m.revenue.contributors)}, platform ${open(m.revenue.platform)}`,
  );
  const e = m.evaluation;
  out.push(
    e
      ? `  evaluation   ${evalText(m)}${e.adapterPerplexity === null ? '' : `, perplexity ${e.basePerplexity?.toFixed(2) ?? '-'}→${e.adapterPerplexity.toFixed(2)}`} (${e.source} ${e.jobId})`
      : '  evaluation   none',
  );
  const ch = m.attribution.channels;
  out.push(
    `  attribution  ${m.attribution.receipts} receipts, ${m.attribution.contributors} contributors credited; span ${pct(ch.span.share)}, influence ${pct(ch.influence.share)}, rag ${pct(ch.rag.share)}`,
  );
  out.push('lineage');
  for (const d of m.lineage.datanets) {
    out.push(`  datanet ${d.id} ${d.name ?? '(not on this node)'}`);
    out.push(
      d.committed
        ? `    version ${d.version}  root ${d.committed.root}  ${d.committed.rowCount} rows  tx ${d.committed.txHash}`
        : `    version ${d.version}  (commit not on this node)`,
    );
    for (const c of d.contributors)
      out.push(
        `      contributor ${c.address}  ${c.rows} rows, ${c.tokens} tokens${c.heldOutRows ? `, ${c.heldOutRows} held out` : ''}`,
      );
  }
  const man = m.lineage.manifest;
  if (man) {
    const h = man.hyperparameters as unknown as Record<string, unknown>;
    out.push(`  training manifest ${man.hash}`);
    out.push(`    job ${man.jobId}  template ${man.template}`);
    out.push(
      `    rows ${man.totals.rows} (${man.totals.trainRows} train, ${man.totals.evalRows} held out), ${man.totals.tokens} tokens`,
    );
    out.push(
      `    hyperparameters ${Object.entries(h)
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
        .join(' ')}`,
    );
    for (const c of man.contributors)
      out.push(`    contributor ${c.address}  ${c.rows} rows, ${c.tokens} tokens`);
  } else out.push(`  training manifest: ${m.lineage.manifestError ?? 'none'}`);
  const chain = m.onChain;
  if (chain) {
    out.push(`on-chain (ModelRegistry ${chain.registry})`);
    out.push(`  holder      ${chain.owner}`);
    out.push(`  publisher   ${chain.publisher}`);
    out.push(
      `  published   ${chain.publishedAt}${chain.publishTx ? `  tx ${chain.publishTx}` : ''}`,
    );
    out.push(`  adapter     ${chain.adapterHash}`);
    out.push(`  manifest    ${chain.manifestHash}`);
    out.push(
      `  weights     span ${chain.channelWeights.span / 100}%, influence ${chain.channelWeights.influence / 100}%, rag ${chain.channelWeights.rag / 100}%`,
    );
    const mismatched = Object.entries(chain.matches)
      .filter(([, ok]) => !ok)
      .map(([k]) => k);
    out.push(
      mismatched.length === 0
        ? '  matches this node’s record'
        : `  differs from this node’s record: ${mismatched.join(', ')}`,
    );
  } else out.push(`on-chain: ${m.onChainError ?? 'no registry on this node'}`);
  return out.join('\n');
}

/** `openledger market list`: published models, searched, filtered and sorted. */
export async function marketList(
  flags: {
    url: string;
    q?: string;
    base?: string;
    datanet?: string;
    sort?: string;
    limit?: string;
    offset?: string;
    all?: boolean;
  },
  out: Output,
): Promise<void> {
  const params = new URLSearchParams();
  if (flags.q !== undefined) params.set('q', flags.q);
  if (flags.base !== undefined) params.set('base', flags.base);
  for (const [name, value] of [
    ['datanet', flags.datanet],
    ['limit', flags.limit],
    ['offset', flags.offset],
  ] as const) {
    if (value === undefined) continue;
    if (!/^\d+$/.test(value.trim()))
      throw new OpenLedgerError('BAD_REQUEST', `--${name} ${value}: expected a whole number.`);
    params.set(name, value.trim());
  }
  if (flags.sort !== undefined) params.set('sort', flags.sort);
  if (flags.all) params.set('all', 'true');
  const query = params.toString();
  const list = await new NodeClient(flags.url).request<MarketList>(
    'GET',
    `/api/market/models${query ? `?${query}` : ''}`,
  );
  out.result(list, listText);
}

/** `openledger market show <modelId>`: a model's page, lineage and on-chain record. */
export async function marketShow(flags: { url: string; id: string }, out: Output): Promise<void> {
  const id = Number(flags.id);
  if (!Number.isSafeInteger(id) || id < 1)
    throw new OpenLedgerError('BAD_REQUEST', `${flags.id}: expected a Model ID (1, 2, ...).`);
  const page = await new NodeClient(flags.url).request<MarketModelPage>(
    'GET',
    `/api/market/models/${id}`,
  );
  out.result(page, showText);
}

/** Registers `market list` and `market show`. */
export function registerMarketCommands(
  program: Command,
  out: Output,
  signerOptions: (command: Command) => Command,
): void {
  // Public reads: only the node's URL of the shared options is needed; `signerOptions` is taken
  // for the same shape as the other command groups.
  void signerOptions;
  const url = () =>
    new Option('--url <url>', 'URL of a running node')
      .env('OPENLEDGER_URL')
      .default(DEFAULT_NODE_URL);
  const market = program
    .command('market')
    .description('the model market: browse published models, their lineage and on-chain record');
  market
    .command('list')
    .description(
      'published models with price, usage, revenue, evaluation and attribution statistics',
    )
    .addOption(url())
    .option('--q <text>', 'search the name, description, base model and datanet names')
    .option('--base <name>', 'only models on this base model')
    .option('--datanet <id>', 'only models trained on this datanet')
    .addOption(new Option('--sort <order>', 'order (default newest)').choices([...SORTS]))
    .option('--limit <n>', 'models per page (1-100, default 20)')
    .option('--offset <n>', 'models to skip')
    .option('--all', 'include deactivated models')
    .action((options: Parameters<typeof marketList>[0]) => marketList(options, out));
  market
    .command('show')
    .description(
      "a model's page: statistics, lineage (datanets → versions → contributors → training manifest) and on-chain record",
    )
    .argument('<modelId>', 'the Model ID')
    .addOption(url())
    .action((modelId: string, options: { url: string }) =>
      marketShow({ ...options, id: modelId }, out),
    );
}
