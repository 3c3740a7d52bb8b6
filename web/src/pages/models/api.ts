// The node's published-models endpoints (/api/models). The Publish message is built by the
// node's own module (src/models/typed-data.ts, no Node.js dependencies), so the web app signs
// exactly what the CLI signs and what the ModelRegistry checks.
import { request, type Address, type Hex, type SignedAuthorization } from '../../lib/api';

export {
  modelTypedData,
  publishFieldsFromPlan,
  type ModelSigningContext,
  type RevenueSplit,
} from '../../../../src/models/typed-data.ts';
import {
  type publishFieldsFromPlan,
  type RevenueSplit,
} from '../../../../src/models/typed-data.ts';

export interface PublishedModel {
  id: number;
  owner: Address;
  jobId: string;
  name: string;
  description: string;
  baseModelName: string;
  baseModelSha256: string;
  adapterBlobId: string;
  adapterHash: Hex;
  manifestHash: Hex;
  manifestBlobId: string;
  metadataHash: Hex;
  datanets: { id: number; version: number }[];
  /** OPEN wei per 1,000 tokens, as decimal strings. */
  pricePer1kInput: string;
  pricePer1kOutput: string;
  split: RevenueSplit;
  active: boolean;
  txHash: Hex;
  createdAt: string;
  /** Only from POST /api/models: false when the job was published already. */
  created?: boolean;
  /** Only from GET /api/models/:id: the token's current holder. */
  holder?: Address;
}

export interface PublishInput {
  jobId: string;
  name?: string;
  description?: string;
  pricePer1kInput: string;
  pricePer1kOutput: string;
  split?: RevenueSplit;
}

export type PublishPlanAnswer =
  | { existing: PublishedModel }
  | {
      existing: null;
      publish: Parameters<typeof publishFieldsFromPlan>[0];
      metadata: Record<string, unknown>;
      signing: { chainId: number; registry: Address; nonce: string };
    };

export const modelsApi = {
  list: (query: { owner?: string; all?: boolean } = {}, signal?: AbortSignal) => {
    const params = new URLSearchParams();
    if (query.owner) params.set('owner', query.owner);
    if (query.all) params.set('all', 'true');
    const qs = params.toString();
    return request<{ models: PublishedModel[] }>(`/api/models${qs ? `?${qs}` : ''}`, { signal });
  },
  get: (id: number, signal?: AbortSignal) =>
    request<PublishedModel>(`/api/models/${id}`, { signal }),
  plan: (input: PublishInput) =>
    request<PublishPlanAnswer>('/api/models/plan', { method: 'POST', body: input }),
  publish: (input: PublishInput, authorization: SignedAuthorization) =>
    request<PublishedModel>('/api/models', {
      method: 'POST',
      body: { ...input, authorization },
    }),
};
