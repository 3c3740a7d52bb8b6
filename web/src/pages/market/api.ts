// The model market (GET /api/market/models[/{id}], docs/api.md "Model market") and who is staked
// on a model (GET /api/staking/models/{id}). Amounts are OPEN wei as decimal strings.
import { request, type Address, type Hex } from '../../lib/api';
import { formatToken } from '../../lib/format';

export const MARKET_SORTS = ['newest', 'revenue', 'usage', 'price'] as const;
export type MarketSort = (typeof MARKET_SORTS)[number];

export interface Split {
  owner: number;
  stakers: number;
  contributors: number;
}

export interface ChannelStat {
  receipts: number;
  share: number | null;
}

export interface MarketEvaluation {
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
  price: { pricePer1kInput: string; pricePer1kOutput: string };
  split: Split;
  usage: {
    calls: number;
    paidCalls: number;
    promptTokens: number;
    completionTokens: number;
    lastCallAt: string | null;
  };
  revenue: {
    fees: string;
    collected: string;
    owner: string;
    stakers: string;
    contributors: string;
    platform: string;
  };
  evaluation: MarketEvaluation | null;
  attribution: {
    receipts: number;
    contributors: number;
    channels: { span: ChannelStat; influence: ChannelStat; rag: ChannelStat };
  };
  active: boolean;
  owner: Address;
  publishedAt: string;
  jobId: string;
  adapterHash: Hex;
  txHash: string;
}

export interface MarketList {
  models: MarketModel[];
  total: number;
  limit: number;
  offset: number;
  sort: MarketSort;
}

export interface LineageDatanet {
  id: number;
  name: string | null;
  owner: string | null;
  version: number;
  committed: {
    root: string;
    rowCount: number;
    addedRows: number;
    manifestId: string;
    committedBy: string;
    txHash: string;
    committedAt: string;
  } | null;
  contributors: { address: string; rows: number; tokens: number; heldOutRows: number }[];
}

export interface LineageManifest {
  hash: string;
  blobId: string;
  jobId: string;
  owner: string;
  baseModel: { name: string; sha256: string; bytes?: number };
  template: string;
  hyperparameters: Record<string, unknown>;
  split: { method: string; evalPercent: number } & Record<string, unknown>;
  totals: { rows: number; trainRows: number; evalRows: number; tokens: number };
  contributors: { address: string; rows: number; tokens: number }[];
  gradientSketches: Record<string, unknown> | null;
}

export interface OnChainRecord {
  registry: Address;
  modelId: number;
  owner: Address;
  publisher: Address;
  baseModel: Hex;
  adapterHash: Hex;
  manifestHash: Hex;
  metadataHash: Hex;
  pricePer1kInput: string;
  pricePer1kOutput: string;
  split: Split;
  active: boolean;
  publishedAt: string;
  channelWeights: { span: number; influence: number; rag: number };
  datanets: { id: number; version: number }[];
  publishTx: string | null;
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
  onChain: OnChainRecord | null;
  onChainError: string | null;
}

export interface ModelStakes {
  modelId: number;
  total: string;
  stakers: { address: Address; stake: string }[];
}

export interface MarketQuery {
  q?: string;
  base?: string;
  datanet?: number;
  sort?: MarketSort;
  limit?: number;
  offset?: number;
  all?: boolean;
}

export const marketApi = {
  list: (query: MarketQuery, signal?: AbortSignal) => {
    const params = new URLSearchParams();
    if (query.q) params.set('q', query.q);
    if (query.base) params.set('base', query.base);
    if (query.datanet) params.set('datanet', String(query.datanet));
    if (query.sort) params.set('sort', query.sort);
    if (query.limit) params.set('limit', String(query.limit));
    if (query.offset) params.set('offset', String(query.offset));
    if (query.all) params.set('all', 'true');
    const qs = params.toString();
    return request<MarketList>(`/api/market/models${qs ? `?${qs}` : ''}`, { signal });
  },
  model: (id: number, signal?: AbortSignal) =>
    request<MarketModelPage>(`/api/market/models/${id}`, { signal }),
  stakes: (id: number, signal?: AbortSignal) =>
    request<ModelStakes>(`/api/staking/models/${id}`, { signal }),
};

/** A split in basis points as "60% / 10% / 30%". */
export function splitText(split: Split): string {
  return `${split.owner / 100}% / ${split.stakers / 100}% / ${split.contributors / 100}%`;
}

export const openText = (wei: string, digits = 4) => `${formatToken(wei, 18, digits)} OPEN`;

/** The adapter's held-out perplexity against its base's, or a dash. */
export function evaluationText(model: MarketModel): string {
  const e = model.evaluation;
  if (!e || e.adapterPerplexity === null) return '—';
  const base = e.basePerplexity === null ? '' : ` (base ${e.basePerplexity.toFixed(1)})`;
  return `ppl ${e.adapterPerplexity.toFixed(1)}${base}`;
}
