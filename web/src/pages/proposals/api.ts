// Model proposals over the node's API (src/api/routes/proposals.ts, docs/api.md "Model
// proposals"): the chain's proposals with the specifications this node holds, spec checks and
// registration, the node's evaluator (a `proposal.evaluate` job) and its reports. Creating,
// funding, challenging, claiming, refunding and cancelling are sent by the wallet (lib/chain.ts).
import { request, type Address, type Hex, type Job } from '../../lib/api';

/** On-chain scores and bars are the metric's value × 10^6, rounded (src/market/proposals.ts). */
export const SCORE_SCALE = 1_000_000;

export type ProposalMetric = 'perplexity';

export const METRICS: Record<ProposalMetric, { higherIsBetter: boolean; label: string }> = {
  perplexity: { higherIsBetter: false, label: 'perplexity (lower is better)' },
};

export interface ProposalSpec {
  title: string;
  goal: string;
  /** The training datanet: a winning model must cite a version of it on-chain. */
  datanetId: number;
  evaluation: { datanetId: number; version: number; maxRows?: number; maxTokens?: number };
  metric: ProposalMetric;
}

export type ModelProposalStatus = 'open' | 'submitted' | 'challenged' | 'paid' | 'cancelled';

export interface ModelProposal {
  id: number;
  creator: Address;
  specHash: string;
  datanetId: number;
  bar: string;
  barValue: number;
  higherIsBetter: boolean;
  deadline: number;
  minFunding: string;
  funded: string;
  status: ModelProposalStatus;
  submission: {
    modelId: number;
    score: string;
    scoreValue: number;
    reportHash: Hex;
    challengeEndsAt: number;
    challenger: Address | null;
    challengerBond: string;
  } | null;
  refundable: boolean;
  claimable: boolean;
  registered: boolean;
  spec: ProposalSpec | null;
  title: string | null;
  metric: ProposalMetric | null;
}

export interface ProposalSettings {
  address: Address;
  token: Address;
  challengeWindowSeconds: number;
  challengeBond: string;
  count: number;
}

export interface ProposalEvaluation {
  proposalId: number;
  modelId: number;
  metric: ProposalMetric;
  value: number;
  score: string;
  bar: string;
  barValue: number;
  higherIsBetter: boolean;
  meetsBar: boolean;
  baseValue: number | null;
  rows: number;
  targets: number;
  reportHash: Hex;
  reportId: number;
  txHash: Hex | null;
  challengeEndsAt: number | null;
  message: string;
}

export interface ProposalReport {
  id: number;
  proposalId: number;
  modelId: number;
  metric: string;
  value: number;
  score: string;
  meetsBar: boolean;
  rows: number;
  targets: number;
  reportHash: Hex;
  reportBlobId: string;
  txHash: string | null;
  jobId: string | null;
  requestedBy: string;
  createdAt: string;
  report: Record<string, unknown>;
}

export type EvaluationJob = Job<{ proposalId: number; modelId: number }, ProposalEvaluation>;

const one = (id: number) => `/api/proposals/${id}`;

export const proposalsApi = {
  list: (signal?: AbortSignal) =>
    request<{ proposals: ModelProposal[]; settings: ProposalSettings }>('/api/proposals', {
      signal,
    }),
  get: (id: number, signal?: AbortSignal) => request<ModelProposal>(one(id), { signal }),
  validate: (spec: ProposalSpec) =>
    request<{ spec: ProposalSpec; specHash: string; settings: ProposalSettings }>(
      '/api/proposals/validate',
      { method: 'POST', body: { spec } },
    ),
  register: (id: number, spec: ProposalSpec) =>
    request<ModelProposal>('/api/proposals', { method: 'POST', body: { id, spec } }),
  evaluate: (id: number, modelId: number) =>
    request<EvaluationJob>(`${one(id)}/evaluate`, { method: 'POST', body: { modelId } }),
  reports: (id: number, signal?: AbortSignal) =>
    request<{ reports: ProposalReport[] }>(`${one(id)}/reports`, { signal }),
};

/** A metric value in on-chain units (× 10^6, rounded). */
export function toScore(value: number): bigint {
  return BigInt(Math.round(value * SCORE_SCALE));
}

/** A metric value as shown: six significant digits at most. */
export const metricText = (n: number) => Number(n.toPrecision(6)).toString();

/** `perplexity ≤ 12.5` (the bar as the metric's value, not × 10^6). */
export function barText(p: Pick<ModelProposal, 'metric' | 'higherIsBetter' | 'barValue'>): string {
  return `${p.metric ?? 'score'} ${p.higherIsBetter ? '≥' : '≤'} ${metricText(p.barValue)}`;
}

/**
 * What a proposal's state is, in the page's words: the contract's status, with `refundable` for
 * an open proposal whose deadline passed with no submission standing.
 */
export type ShownStatus = ModelProposalStatus | 'refundable';

export function shownStatus(p: ModelProposal): ShownStatus {
  return p.status === 'open' && p.refundable ? 'refundable' : p.status;
}

export const statusTone: Record<ShownStatus, 'ok' | 'fail' | 'neutral' | 'info' | 'warn'> = {
  open: 'info',
  submitted: 'warn',
  challenged: 'fail',
  paid: 'ok',
  cancelled: 'neutral',
  refundable: 'neutral',
};
