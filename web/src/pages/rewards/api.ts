// The node's Proof of Attribution endpoints (/api/attribution, docs/attribution.md "Receipts,
// epochs and claims"). Amounts are OPEN wei as decimal strings. The receipt types mirror
// src/attribution/receipt.ts by hand: that module hashes with node:crypto, which the web bundle
// cannot import, and the page reads only the fields below.
import { request, type Address, type Hex } from '../../lib/api';

export type Role = 'owner' | 'contributor' | 'staker' | 'platform';

export interface ClaimView {
  address: Address;
  /** The latest final epoch paying the address, or null when none is final yet. */
  epoch: number | null;
  cumulative: string;
  claimed: string;
  claimable: string;
  proof: Hex[];
  /** Paid by epochs posted but still in their challenge window. */
  pendingPosted: string;
  /** Paid by receipts not posted in an epoch yet. */
  pendingUnposted: string;
}

export interface EarningsView {
  address: Address;
  total: string;
  inferences: number;
  byRole: Partial<Record<Role, string>>;
  byDatanet: { datanetId: number; amount: string }[];
  byModel: { modelId: number; amount: string; inferences: number }[];
  recent: {
    id: string;
    modelId: number;
    amount: string;
    role: Role;
    detail: Partial<Record<Role, string>>;
    epoch: number | null;
    createdAt: string;
  }[];
  claim: ClaimView;
}

export interface EpochView {
  epoch: number;
  status: 'posted' | 'challenged' | 'voided' | 'finalized';
  total: string;
  receipts: number;
  final: boolean;
  /** Unix seconds, by the chain's clock. */
  challengeEndsAt: number;
  gasUsed: number;
  txHash: Hex;
  receiptsRoot: Hex;
  payoutsRoot: Hex;
  postedAt: string;
}

export interface ReceiptOccurrence {
  datanetId: number;
  version: number;
  rowHash: string;
  contributor: string;
  offset: number;
}

export interface ReceiptSpan {
  /** [start, end) in the output's tokens (not characters). */
  start: number;
  end: number;
  text?: string;
  count: number;
  bits: number;
  occurrences: ReceiptOccurrence[];
}

export interface ReceiptPayout {
  address: string;
  amount: string;
  role: Role;
  detail: Partial<Record<Role, string>>;
}

export interface ReceiptWeight {
  contributor: string;
  weight: string;
}

export interface AttributionReceipt {
  inference: { id: string; fee: string; publishedModelId: number; completionTokens: number };
  model: { id: number; owner: string };
  channels: {
    span: { weights: ReceiptWeight[]; evidence: ReceiptSpan[] } | null;
    influence: {
      method: string;
      weights: ReceiptWeight[];
      evidence: {
        datanetId: number;
        version: number;
        rowHash: string;
        contributor: string;
        score: number;
      }[];
    } | null;
  };
  payouts: ReceiptPayout[];
}

export interface ReceiptView {
  id: string;
  status: 'pending' | 'attributed' | 'failed';
  hash: string | null;
  receipt: AttributionReceipt | null;
  epoch: number | null;
  collected: string | null;
  error: { code: string; message: string } | null;
  /** Only to the caller. */
  output?: string;
}

export interface ModelRevenueView {
  modelId: number;
  inferences: number;
  fees: string;
  collected: string;
  byRole: Partial<Record<Role, string>>;
  topContributors: { address: string; amount: string }[];
}

export const rewardsApi = {
  revenue: (modelId: number, signal?: AbortSignal) =>
    request<ModelRevenueView>(`/api/attribution/models/${modelId}/revenue`, { signal }),
  earnings: (address: string, signal?: AbortSignal) =>
    request<EarningsView>(`/api/attribution/earnings/${address}`, { signal }),
  epochs: (signal?: AbortSignal) =>
    request<{ epochs: EpochView[] }>('/api/attribution/epochs', { signal }),
  receipt: (id: string, signal?: AbortSignal) =>
    request<ReceiptView>(`/api/attribution/receipts/${encodeURIComponent(id)}`, { signal }),
  claim: () =>
    request<{ tx: Hex; amount: string; epoch: number }>('/api/attribution/claims', {
      method: 'POST',
      body: {},
    }),
};

export const ROLES: Role[] = ['owner', 'contributor', 'staker', 'platform'];
