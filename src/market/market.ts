/**
 * The model market (issue #8, item 1): published models to browse and search, with what a buyer
 * weighs — base model, datanets, price, usage, revenue, evaluation scores and attribution
 * statistics — and a model's page with its lineage (datanets → versions → contributors → the
 * training manifest) and its on-chain record in the ModelRegistry.
 *
 * Listing is one SQL query: usage, revenue and attribution are GROUP BY aggregates over the
 * usage, receipt and payout tables joined to the models, filtered, sorted and paged by the
 * database. The model page adds the manifest (a blob whose sha256 is registered on-chain) and a
 * few registry reads.
 */
import { sql, type SQL } from 'drizzle-orm';
import { getAddress, sha256, type Address, type Hex } from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import { ModelRegistryAbi, type ChainConnection, type Deployment } from '../chain/index.ts';
import { queryRows, type Db } from '../db/index.ts';
import type { ModelSplit } from '../db/schema.ts';
import { OpenLedgerError } from '../errors.ts';
import type { Evaluation, TrainingManifest, TrainResult } from '../factory/index.ts';

export const MARKET_SORTS = ['revenue', 'usage', 'newest', 'price'] as const;
export type MarketSort = (typeof MARKET_SORTS)[number];
export const MARKET_DEFAULT_LIMIT = 20;
export const MARKET_MAX_LIMIT = 100;
const MAX_QUERY_LENGTH = 200;

export interface MarketQuery {
  /** Case-insensitive text over name, description, base model name and datanet names. */
  q?: string | undefined;
  /** The base model's catalogue name, exactly. */
  base?: string | undefined;
  /** Models trained on this datanet (any version). */
  datanet?: number | undefined;
  /** Default `newest`. */
  sort?: MarketSort | undefined;
  /** 1 to 100, default 20. */
  limit?: number | undefined;
  offset?: number | undefined;
  /** Include deactivated models. */
  all?: boolean | undefined;
}

/** How the contributors' part of a model's fees went through one attribution channel. */
export interface ChannelStat {
  /** Attributed receipts in which the channel credited someone (and weighed more than 0). */
  receipts: number;
  /**
   * Its fraction of what the receipts paid contributors (0 to 1; the channel weights of each
   * receipt renormalised over its active channels, weighted by that receipt's contributor
   * payouts); null while no receipt paid contributors.
   */
  share: number | null;
}

export interface MarketEvaluation {
  /** `eval-job`: the latest succeeded `factory.eval` job; `training`: the end of training. */
  source: 'eval-job' | 'training';
  jobId: string;
  at: string | null;
  heldOutRows: number | null;
  targets: number | null;
  baseLoss: number | null;
  adapterLoss: number | null;
  basePerplexity: number | null;
  adapterPerplexity: number | null;
}

export interface MarketModel {
  id: number;
  name: string;
  description: string;
  baseModel: { name: string; sha256: string };
  datanets: { id: number; name: string | null; version: number }[];
  /** OPEN wei per 1,000 tokens, decimal strings. */
  price: { pricePer1kInput: string; pricePer1kOutput: string };
  split: ModelSplit;
  usage: {
    /** Calls served for `model:<id>`, paid or not. */
    calls: number;
    /** Calls charged a fee above zero. */
    paidCalls: number;
    promptTokens: number;
    completionTokens: number;
    lastCallAt: string | null;
  };
  /** OPEN wei, decimal strings. */
  revenue: {
    /** Σ the fees charged for the model's calls. */
    fees: string;
    /** Σ what the charges actually collected (attributed receipts whose epoch is known). */
    collected: string;
    /** Paid per role by the attributed receipts: owner (the holder at the call), stakers, contributors, platform. */
    owner: string;
    stakers: string;
    contributors: string;
    platform: string;
  };
  evaluation: MarketEvaluation | null;
  attribution: {
    /** Attributed receipts. */
    receipts: number;
    /** Distinct addresses those receipts paid as contributors. */
    contributors: number;
    channels: { span: ChannelStat; influence: ChannelStat; rag: ChannelStat };
  };
  active: boolean;
  /** The publishing wallet (the token's holder may differ: see the model page's `onChain.owner`). */
  owner: Address;
  publishedAt: string;
  jobId: string;
  adapterHash: Hex;
  txHash: string;
}

export interface MarketList {
  models: MarketModel[];
  /** Models matching the query, all pages together. */
  total: number;
  limit: number;
  offset: number;
  sort: MarketSort;
}

export interface LineageContributor {
  address: string;
  /** Training rows of this contributor in the manifest, and their loss tokens. */
  rows: number;
  tokens: number;
  /** Rows held out for evaluation (not trained on). */
  heldOutRows: number;
}

export interface LineageDatanet {
  id: number;
  name: string | null;
  owner: string | null;
  version: number;
  /** The version as committed (mirrored from the DatanetRegistry); null when this node lacks it. */
  committed: {
    root: string;
    rowCount: number;
    addedRows: number;
    manifestId: string;
    committedBy: string;
    txHash: string;
    committedAt: string;
  } | null;
  contributors: LineageContributor[];
}

export interface LineageManifest {
  /** sha256 of the manifest's canonical JSON: the ModelRegistry's `manifestHash`. */
  hash: string;
  blobId: string;
  jobId: string;
  owner: string;
  baseModel: TrainingManifest['baseModel'];
  template: string;
  hyperparameters: TrainingManifest['hyperparameters'];
  split: TrainingManifest['split'];
  totals: TrainingManifest['totals'];
  /** Per contributor, over every datanet: training rows and loss tokens (the manifest's own). */
  contributors: { address: string; rows: number; tokens: number }[];
  gradientSketches: TrainingManifest['gradientSketches'] | null;
}

export interface OnChainRecord {
  registry: Address;
  modelId: number;
  /** `ownerOf(id)`: the token's current holder. */
  owner: Address;
  publisher: Address;
  baseModel: Hex;
  adapterHash: Hex;
  manifestHash: Hex;
  metadataHash: Hex;
  pricePer1kInput: string;
  pricePer1kOutput: string;
  split: ModelSplit;
  active: boolean;
  publishedAt: string;
  channelWeights: { span: number; influence: number; rag: number };
  datanets: { id: number; version: number }[];
  /** The transaction that published it, as this node recorded it. */
  publishTx: string | null;
  /** Whether this node's mirror agrees with the registry. */
  matches: {
    adapterHash: boolean;
    manifestHash: boolean;
    metadataHash: boolean;
    datanets: boolean;
  };
}

export interface MarketModelPage extends MarketModel {
  lineage: {
    datanets: LineageDatanet[];
    /** null when the manifest blob is not on this node (published through another one). */
    manifest: LineageManifest | null;
    manifestError: string | null;
    training: {
      jobId: string;
      status: string | null;
      createdAt: string | null;
      finishedAt: string | null;
      trainLoss: number | null;
      evalLoss: number | null;
      seconds: number | null;
    };
  };
  /** null when the registry could not be read (`onChainError` says why). */
  onChain: OnChainRecord | null;
  onChainError: string | null;
}

interface ChainModel {
  baseModel: Hex;
  adapterHash: Hex;
  manifestHash: Hex;
  metadataHash: Hex;
  pricePer1kInput: bigint;
  pricePer1kOutput: bigint;
  split: ModelSplit;
  active: boolean;
  publishedAt: bigint;
  publisher: Address;
}

/** One row of the listing query (numbers and sums as the driver gives them). */
interface Row {
  id: number;
  owner: string;
  job_id: string;
  name: string;
  description: string;
  base_model_name: string;
  base_model_sha256: string;
  adapter_blob_id: string;
  manifest_hash: string;
  manifest_blob_id: string;
  metadata_hash: string;
  model_datanets: { id: number; name: string | null; version: number }[];
  price_per_1k_input: string;
  price_per_1k_output: string;
  split: ModelSplit;
  active: boolean;
  tx_hash: string;
  created_at: Date | string;
  calls: number | string | null;
  paid_calls: number | string | null;
  prompt_tokens: number | string | null;
  completion_tokens: number | string | null;
  last_call_at: Date | string | null;
  fees: string | null;
  collected: string | null;
  receipts: number | string | null;
  owner_wei: string | null;
  staker_wei: string | null;
  contributor_wei: string | null;
  platform_wei: string | null;
  credited: number | string | null;
  span_receipts: number | string | null;
  influence_receipts: number | string | null;
  rag_receipts: number | string | null;
  span_share: number | string | null;
  influence_share: number | string | null;
  rag_share: number | string | null;
  eval_job_id: string | null;
  eval_result: (Evaluation & { trainingJobId?: string }) | null;
  eval_at: Date | string | null;
  train_status: string | null;
  train_result: TrainResult | null;
  train_created_at: Date | string | null;
  train_finished_at: Date | string | null;
  total: number | string;
}

const ORDER: Record<MarketSort, SQL> = {
  revenue: sql`coalesce(u.fees, 0) desc, m.id desc`,
  usage: sql`coalesce(u.paid_calls, 0) desc, coalesce(u.calls, 0) desc, coalesce(u.prompt_tokens + u.completion_tokens, 0) desc, m.id desc`,
  newest: sql`m.created_at desc, m.id desc`,
  price: sql`(m.price_per_1k_input::numeric + m.price_per_1k_output::numeric) asc, m.id asc`,
};

/**
 * Reads the market from the node's mirror tables (models, usage, attribution receipts and
 * payouts, jobs, datanets) and, for a model's page, the training manifest blob and the
 * ModelRegistry.
 */
export class MarketService {
  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      /** Absent: model pages carry no on-chain record. */
      chain?: ChainConnection | undefined;
      deployment?: Pick<Deployment, 'contracts'> | undefined;
    },
  ) {}

  /** Published models matching `query`, with their statistics, one page of them. */
  async listModels(query: MarketQuery = {}): Promise<MarketList> {
    const q = checkQuery(query);
    const where: SQL[] = [];
    if (!q.all) where.push(sql`m.active = true`);
    if (q.base !== undefined) where.push(sql`m.base_model_name = ${q.base}`);
    if (q.datanet !== undefined)
      where.push(sql`m.datanets @> ${JSON.stringify([{ id: q.datanet }])}::jsonb`);
    if (q.q !== undefined && q.q !== '') {
      const pattern = `%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push(sql`(m.name ilike ${pattern} or m.description ilike ${pattern}
        or m.base_model_name ilike ${pattern}
        or exists (select 1 from jsonb_array_elements(m.datanets) d
                   join datanets dn on dn.id = (d->>'id')::int
                   where dn.name ilike ${pattern}))`);
    }
    const rows = await this.query(where, ORDER[q.sort], q.limit, q.offset);
    return {
      models: rows.map(marketModel),
      total: rows.length > 0 ? Number(rows[0]!.total) : await this.count(where),
      limit: q.limit,
      offset: q.offset,
      sort: q.sort,
    };
  }

  /** Model `id` (active or not) with its statistics, lineage and on-chain record. */
  async model(id: number): Promise<MarketModelPage> {
    if (!Number.isSafeInteger(id) || id < 1)
      throw new OpenLedgerError('VALIDATION_FAILED', `${id} is not a Model ID (1, 2, ...).`);
    const [row] = await this.query([sql`m.id = ${id}`], sql`m.id`, 1, 0);
    if (!row)
      throw new OpenLedgerError('NOT_FOUND', `There is no published model ${id}.`, {
        hint: 'List the market with GET /api/market/models (or `openledger market list`).',
      });
    const base = marketModel(row);
    const [manifest, onChain] = await Promise.all([
      this.manifest(row),
      this.onChain(row).then(
        (record) => ({ record, error: null }),
        (error: unknown) => ({
          record: null,
          error: error instanceof Error ? error.message : String(error),
        }),
      ),
    ]);
    const datanets = await this.lineageDatanets(row, manifest.manifest);
    const train = row.train_result;
    return {
      ...base,
      lineage: {
        datanets,
        manifest: manifest.manifest ? manifestView(row, manifest.manifest) : null,
        manifestError: manifest.error,
        training: {
          jobId: row.job_id,
          status: row.train_status,
          createdAt: iso(row.train_created_at),
          finishedAt: iso(row.train_finished_at),
          trainLoss: train?.trainLoss ?? null,
          evalLoss: train?.evalLoss ?? null,
          seconds: train?.seconds ?? null,
        },
      },
      onChain: onChain.record,
      onChainError: onChain.error,
    };
  }

  // ----- internals ------------------------------------------------------------------------------

  private async query(where: SQL[], order: SQL, limit: number, offset: number): Promise<Row[]> {
    const filter = where.length > 0 ? sql`where ${sql.join(where, sql` and `)}` : sql``;
    return queryRows<Row>(
      this.deps.db,
      sql`
      with u as (
        select published_model_id as model_id,
               count(*)::int as calls,
               (count(*) filter (where fee_wei is not null and fee_wei <> '0'))::int as paid_calls,
               coalesce(sum(prompt_tokens), 0)::float8 as prompt_tokens,
               coalesce(sum(completion_tokens), 0)::float8 as completion_tokens,
               max(created_at) as last_call_at,
               coalesce(sum(fee_wei::numeric) filter (where fee_wei is not null), 0) as fees
        from inference_usage
        where published_model_id is not null
        group by published_model_id
      ),
      r as (
        select published_model_id as model_id,
               count(*)::int as receipts,
               coalesce(sum(collected::numeric) filter (where collected is not null), 0) as collected
        from attribution_receipts
        where status = 'attributed'
        group by published_model_id
      ),
      p as (
        select ar.published_model_id as model_id,
               coalesce(sum((ap.detail->>'owner')::numeric), 0) as owner_wei,
               coalesce(sum((ap.detail->>'staker')::numeric), 0) as staker_wei,
               coalesce(sum((ap.detail->>'contributor')::numeric), 0) as contributor_wei,
               coalesce(sum((ap.detail->>'platform')::numeric), 0) as platform_wei,
               (count(distinct ap.address) filter (where ap.detail->>'contributor' is not null))::int as credited
        from attribution_payouts ap
        join attribution_receipts ar on ar.usage_id = ap.usage_id
        where ar.status = 'attributed'
        group by ar.published_model_id
      ),
      rc as (
        select ar.published_model_id as model_id,
               coalesce((select sum((pp.detail->>'contributor')::numeric)
                         from attribution_payouts pp where pp.usage_id = ar.usage_id), 0) as c,
               case when jsonb_array_length(coalesce(ar.receipt->'channels'->'span'->'weights', '[]'::jsonb)) > 0
                    then coalesce((ar.receipt->'model'->'channelWeights'->>'span')::numeric, 0) else 0 end as ws,
               case when jsonb_array_length(coalesce(ar.receipt->'channels'->'influence'->'weights', '[]'::jsonb)) > 0
                    then coalesce((ar.receipt->'model'->'channelWeights'->>'influence')::numeric, 0) else 0 end as wi,
               case when jsonb_array_length(coalesce(ar.receipt->'channels'->'rag'->'weights', '[]'::jsonb)) > 0
                    then coalesce((ar.receipt->'model'->'channelWeights'->>'rag')::numeric, 0) else 0 end as wr
        from attribution_receipts ar
        where ar.status = 'attributed'
      ),
      ch as (
        select model_id,
               (count(*) filter (where ws > 0))::int as span_receipts,
               (count(*) filter (where wi > 0))::int as influence_receipts,
               (count(*) filter (where wr > 0))::int as rag_receipts,
               (sum(c * ws / (ws + wi + wr)) filter (where ws + wi + wr > 0)
                 / nullif(sum(c) filter (where ws + wi + wr > 0), 0))::float8 as span_share,
               (sum(c * wi / (ws + wi + wr)) filter (where ws + wi + wr > 0)
                 / nullif(sum(c) filter (where ws + wi + wr > 0), 0))::float8 as influence_share,
               (sum(c * wr / (ws + wi + wr)) filter (where ws + wi + wr > 0)
                 / nullif(sum(c) filter (where ws + wi + wr > 0), 0))::float8 as rag_share
        from rc
        group by model_id
      )
      select m.id, m.owner, m.job_id::text as job_id, m.name, m.description, m.base_model_name,
             m.base_model_sha256, m.adapter_blob_id, m.manifest_hash, m.manifest_blob_id,
             m.metadata_hash, m.price_per_1k_input, m.price_per_1k_output, m.split, m.active,
             m.tx_hash, m.created_at,
             dl.model_datanets,
             u.calls, u.paid_calls, u.prompt_tokens, u.completion_tokens, u.last_call_at,
             u.fees::text as fees,
             r.receipts, r.collected::text as collected,
             p.owner_wei::text as owner_wei, p.staker_wei::text as staker_wei,
             p.contributor_wei::text as contributor_wei, p.platform_wei::text as platform_wei,
             p.credited,
             ch.span_receipts, ch.influence_receipts, ch.rag_receipts,
             ch.span_share, ch.influence_share, ch.rag_share,
             ev.id::text as eval_job_id, ev.result as eval_result, ev.finished_at as eval_at,
             tj.status as train_status, tj.result as train_result,
             tj.created_at as train_created_at, tj.finished_at as train_finished_at,
             count(*) over () as total
      from models m
      left join u on u.model_id = m.id
      left join r on r.model_id = m.id
      left join p on p.model_id = m.id
      left join ch on ch.model_id = m.id
      left join jobs tj on tj.id = m.job_id
      left join lateral (
        select j.id, j.result, j.finished_at
        from jobs j
        where j.kind = 'factory.eval' and j.status = 'succeeded'
          and j.params->>'jobId' = m.job_id::text
        order by j.finished_at desc nulls last, j.created_at desc
        limit 1
      ) ev on true
      cross join lateral (
        select coalesce(jsonb_agg(jsonb_build_object(
                 'id', (e.d->>'id')::int, 'name', dn.name, 'version', (e.d->>'version')::int)
                 order by e.ord), '[]'::jsonb) as model_datanets
        from jsonb_array_elements(m.datanets) with ordinality as e(d, ord)
        left join datanets dn on dn.id = (e.d->>'id')::int
      ) dl
      ${filter}
      order by ${order}
      limit ${limit} offset ${offset}`,
    );
  }

  private async count(where: SQL[]): Promise<number> {
    const filter = where.length > 0 ? sql`where ${sql.join(where, sql` and `)}` : sql``;
    const [row] = await queryRows<{ n: number | string }>(
      this.deps.db,
      sql`select count(*)::int as n from models m ${filter}`,
    );
    return Number(row?.n ?? 0);
  }

  /** The training manifest from its blob, checked against the hash registered on-chain. */
  private async manifest(
    row: Row,
  ): Promise<{ manifest: TrainingManifest | null; error: string | null }> {
    let bytes: Buffer;
    try {
      bytes = await this.deps.blobs.get(row.manifest_blob_id);
    } catch {
      return {
        manifest: null,
        error: `The training manifest (blob ${row.manifest_blob_id}) is not on this node.`,
      };
    }
    if (sha256(bytes).toLowerCase() !== row.manifest_hash.toLowerCase())
      return {
        manifest: null,
        error: `The manifest blob does not hash to the registered manifestHash ${row.manifest_hash}.`,
      };
    try {
      return { manifest: JSON.parse(bytes.toString('utf8')) as TrainingManifest, error: null };
    } catch {
      return { manifest: null, error: 'The manifest blob is not JSON.' };
    }
  }

  /** Datanets → versions (as committed) → contributors (from the manifest's rows). */
  private async lineageDatanets(
    row: Row,
    manifest: TrainingManifest | null,
  ): Promise<LineageDatanet[]> {
    const refs = row.model_datanets;
    if (refs.length === 0) return [];
    const pairs = sql.join(
      refs.map((d) => sql`(${d.id}::int, ${d.version}::int)`),
      sql`, `,
    );
    const found = await queryRows<{
      id: number;
      version: number;
      name: string | null;
      owner: string | null;
      root: string | null;
      row_count: number | null;
      added_rows: number | null;
      manifest_id: string | null;
      committed_by: string | null;
      tx_hash: string | null;
      committed_at: Date | string | null;
    }>(
      this.deps.db,
      sql`select ref.id, ref.version, dn.name, dn.owner, v.root, v.row_count, v.added_rows,
                 v.manifest_id, v.committed_by, v.tx_hash, v.committed_at
          from (values ${pairs}) as ref(id, version)
          left join datanets dn on dn.id = ref.id
          left join datanet_versions v on v.datanet_id = ref.id and v.version = ref.version`,
    );
    const byKey = new Map(found.map((f) => [`${f.id}@${f.version}`, f]));
    const contributors = new Map<string, Map<string, LineageContributor>>();
    for (const r of manifest?.rows ?? []) {
      const key = `${r.datanetId}@${r.version}`;
      const perDatanet = contributors.get(key) ?? new Map<string, LineageContributor>();
      contributors.set(key, perDatanet);
      const entry = perDatanet.get(r.contributor) ?? {
        address: r.contributor,
        rows: 0,
        tokens: 0,
        heldOutRows: 0,
      };
      perDatanet.set(r.contributor, entry);
      if (r.split === 'train') {
        entry.rows += 1;
        entry.tokens += r.tokens;
      } else entry.heldOutRows += 1;
    }
    return refs.map((ref) => {
      const key = `${ref.id}@${ref.version}`;
      const f = byKey.get(key);
      return {
        id: ref.id,
        name: f?.name ?? null,
        owner: f?.owner ?? null,
        version: ref.version,
        committed:
          f && f.root !== null
            ? {
                root: f.root,
                rowCount: Number(f.row_count),
                addedRows: Number(f.added_rows),
                manifestId: f.manifest_id!,
                committedBy: f.committed_by!,
                txHash: f.tx_hash!,
                committedAt: iso(f.committed_at)!,
              }
            : null,
        contributors: [...(contributors.get(key)?.values() ?? [])].sort(byRowsThenAddress),
      };
    });
  }

  /** The ModelRegistry's record of the model, its holder and channel weights. */
  private async onChain(row: Row): Promise<OnChainRecord | null> {
    const { chain, deployment } = this.deps;
    const registry = deployment?.contracts.ModelRegistry;
    if (!chain || !registry) return null;
    const read = (functionName: string) =>
      chain.publicClient.readContract({
        address: registry,
        abi: ModelRegistryAbi,
        functionName,
        args: [BigInt(row.id)],
      } as never) as Promise<unknown>;
    const [record, owner, weights, datanets] = (await Promise.all([
      read('model'),
      read('ownerOf'),
      read('channelWeightsOf'),
      read('datanetVersionsOf'),
    ])) as [
      ChainModel,
      Address,
      { span: number; influence: number; rag: number },
      { datanetId: bigint; version: bigint }[],
    ];
    const onChainDatanets = datanets.map((d) => ({
      id: Number(d.datanetId),
      version: Number(d.version),
    }));
    const mirrored = row.model_datanets.map((d) => `${d.id}@${d.version}`).join(',');
    return {
      registry: getAddress(registry),
      modelId: row.id,
      owner: getAddress(owner),
      publisher: getAddress(record.publisher),
      baseModel: record.baseModel,
      adapterHash: record.adapterHash,
      manifestHash: record.manifestHash,
      metadataHash: record.metadataHash,
      pricePer1kInput: record.pricePer1kInput.toString(),
      pricePer1kOutput: record.pricePer1kOutput.toString(),
      split: {
        owner: record.split.owner,
        stakers: record.split.stakers,
        contributors: record.split.contributors,
      },
      active: record.active,
      publishedAt: new Date(Number(record.publishedAt) * 1000).toISOString(),
      channelWeights: { span: weights.span, influence: weights.influence, rag: weights.rag },
      datanets: onChainDatanets,
      publishTx: /^0x[0-9a-fA-F]{64}$/.test(row.tx_hash) ? row.tx_hash : null,
      matches: {
        adapterHash: record.adapterHash.toLowerCase() === `0x${row.adapter_blob_id}`.toLowerCase(),
        manifestHash: record.manifestHash.toLowerCase() === row.manifest_hash.toLowerCase(),
        metadataHash: record.metadataHash.toLowerCase() === row.metadata_hash.toLowerCase(),
        datanets: onChainDatanets.map((d) => `${d.id}@${d.version}`).join(',') === mirrored,
      },
    };
  }
}

function checkQuery(
  query: MarketQuery,
): Required<Omit<MarketQuery, 'q' | 'base' | 'datanet'>> &
  Pick<MarketQuery, 'q' | 'base' | 'datanet'> {
  const invalid = (field: string, message: string): never => {
    throw new OpenLedgerError('VALIDATION_FAILED', message, { details: { field } });
  };
  const sort = query.sort ?? 'newest';
  if (!MARKET_SORTS.includes(sort))
    invalid('sort', `sort must be one of ${MARKET_SORTS.join(', ')}; got "${String(sort)}".`);
  const limit = query.limit ?? MARKET_DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MARKET_MAX_LIMIT)
    invalid('limit', `limit must be an integer from 1 to ${MARKET_MAX_LIMIT}; got ${limit}.`);
  const offset = query.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0)
    invalid('offset', `offset must be a non-negative integer; got ${offset}.`);
  if (query.datanet !== undefined && (!Number.isSafeInteger(query.datanet) || query.datanet < 1))
    invalid('datanet', `datanet must be a datanet id (1, 2, ...); got ${query.datanet}.`);
  const q = query.q?.trim();
  if (q !== undefined && q.length > MAX_QUERY_LENGTH)
    invalid('q', `q is at most ${MAX_QUERY_LENGTH} characters.`);
  return {
    q,
    base: query.base,
    datanet: query.datanet,
    sort,
    limit,
    offset,
    all: query.all === true,
  };
}

function marketModel(row: Row): MarketModel {
  const num = (v: number | string | null) => (v === null ? 0 : Number(v));
  const wei = (v: string | null) => (v === null ? '0' : v);
  const share = (v: number | string | null) =>
    v === null ? null : Math.round(Number(v) * 10_000) / 10_000;
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    baseModel: { name: row.base_model_name, sha256: row.base_model_sha256 },
    datanets: row.model_datanets,
    price: { pricePer1kInput: row.price_per_1k_input, pricePer1kOutput: row.price_per_1k_output },
    split: row.split,
    usage: {
      calls: num(row.calls),
      paidCalls: num(row.paid_calls),
      promptTokens: num(row.prompt_tokens),
      completionTokens: num(row.completion_tokens),
      lastCallAt: iso(row.last_call_at),
    },
    revenue: {
      fees: wei(row.fees),
      collected: wei(row.collected),
      owner: wei(row.owner_wei),
      stakers: wei(row.staker_wei),
      contributors: wei(row.contributor_wei),
      platform: wei(row.platform_wei),
    },
    evaluation: evaluationOf(row),
    attribution: {
      receipts: num(row.receipts),
      contributors: num(row.credited),
      channels: {
        span: { receipts: num(row.span_receipts), share: share(row.span_share) },
        influence: { receipts: num(row.influence_receipts), share: share(row.influence_share) },
        rag: { receipts: num(row.rag_receipts), share: share(row.rag_share) },
      },
    },
    active: row.active,
    owner: getAddress(row.owner),
    publishedAt: iso(row.created_at)!,
    jobId: row.job_id,
    adapterHash: `0x${row.adapter_blob_id}`,
    txHash: row.tx_hash,
  };
}

/** The latest evaluation job's result, else the one made at the end of training. */
function evaluationOf(row: Row): MarketEvaluation | null {
  const fromEvaluation = (
    source: MarketEvaluation['source'],
    jobId: string,
    at: string | null,
    e: Evaluation,
  ): MarketEvaluation => ({
    source,
    jobId,
    at,
    heldOutRows: e.heldOutRows,
    targets: e.targets,
    baseLoss: e.baseLoss,
    adapterLoss: e.adapterLoss,
    basePerplexity: e.basePerplexity,
    adapterPerplexity: e.adapterPerplexity,
  });
  if (row.eval_job_id && row.eval_result)
    return fromEvaluation('eval-job', row.eval_job_id, iso(row.eval_at), row.eval_result);
  const train = row.train_result;
  if (!train) return null;
  const at = iso(row.train_finished_at);
  if (train.evaluation) return fromEvaluation('training', row.job_id, at, train.evaluation);
  if (train.evalLoss === null || train.evalLoss === undefined) return null;
  const exp = (loss: number | null | undefined) =>
    loss === null || loss === undefined ? null : Math.exp(loss);
  return {
    source: 'training',
    jobId: row.job_id,
    at,
    heldOutRows: train.rows?.eval ?? null,
    targets: null,
    baseLoss: train.baseEvalLoss ?? null,
    adapterLoss: train.evalLoss,
    basePerplexity: exp(train.baseEvalLoss),
    adapterPerplexity: exp(train.evalLoss),
  };
}

function manifestView(row: Row, m: TrainingManifest): LineageManifest {
  return {
    hash: row.manifest_hash,
    blobId: row.manifest_blob_id,
    jobId: m.jobId,
    owner: m.owner,
    baseModel: m.baseModel,
    template: m.template,
    hyperparameters: m.hyperparameters,
    split: m.split,
    totals: m.totals,
    contributors: Object.entries(m.contributors)
      .map(([address, c]) => ({ address, rows: c.rows, tokens: c.tokens }))
      .sort(byRowsThenAddress),
    gradientSketches: m.gradientSketches ?? null,
  };
}

function byRowsThenAddress(
  a: { address: string; rows: number },
  b: { address: string; rows: number },
): number {
  return b.rows - a.rows || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);
}

function iso(value: Date | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}
