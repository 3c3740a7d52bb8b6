// Typed client for the node's HTTP API. Every error response has the shape
// { error: { code, message, hint?, details? } }; it is surfaced as ApiError.

export type Address = `0x${string}`;
export type Hex = `0x${string}`;

export interface NodeStatus {
  name: string;
  version: string;
  chainId: number;
  rpcUrl: string;
  local: boolean;
  contracts: { OpenToken?: Address; DevFaucet?: Address; [name: string]: Address | undefined };
  database: { kind: 'pglite' | 'postgres' | string };
  uptimeSeconds: number;
}

export interface HealthCheck {
  ok: boolean;
  latencyMs?: number;
  blockNumber?: string;
  detail?: string;
  error?: string;
  [key: string]: unknown;
}

export interface Health {
  status: 'ok' | 'degraded' | string;
  checks: Record<string, HealthCheck>;
}

export interface Session {
  address: Address;
  expiresAt: string;
}

export interface VerifyResult extends Session {
  token: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface CreatedApiKey {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  key: string;
}

export interface Balances {
  address: Address;
  open: string;
  eth: string;
  symbol: string;
  decimals: number;
}

export interface FaucetResult {
  address: Address;
  open: string;
  eth: string;
  txHash: `0x${string}`;
}

// ----- datanets -------------------------------------------------------------------------------

export type DatanetPolicy = 'open' | 'permissioned';
export type DatanetModality = 'text' | 'image' | 'audio';

export interface DatanetRules {
  acceptedTypes: string[];
  maxFileBytes: number;
  dailyQuotaPerContributor: number;
  dailyQuotaPerDatanet: number;
}

/** Metadata as normalised by the node (defaults filled); its hash is registered on-chain. */
export interface DatanetMetadata {
  name: string;
  summary: string;
  description: string;
  tags: string[];
  modality: DatanetModality;
  license: string;
  policy: DatanetPolicy;
  rules: DatanetRules;
}

export type DatanetMetadataInput = Partial<Omit<DatanetMetadata, 'rules'>> & {
  name: string;
  rules?: Partial<DatanetRules>;
};

export interface DatanetStats {
  contributions: { pending: number; approved: number; rejected: number };
  approvedRows: number;
  latestVersion: number;
}

export interface Datanet extends DatanetMetadata {
  id: number;
  owner: Address;
  metadataHash: Hex;
  txHash: Hex;
  createdAt: string;
}

export interface DatanetSummary extends Datanet {
  stats: DatanetStats;
}

export interface DatanetVersion {
  datanetId: number;
  version: number;
  root: Hex;
  rowCount: number;
  manifestId: string;
  committedBy: Address;
  txHash: Hex;
  addedRows: number;
  committedAt: string;
}

export interface DatanetDetail extends DatanetSummary {
  curators: Address[];
  versions: DatanetVersion[];
  /** Whether the caller (or an anonymous visitor) may read the content. */
  canRead: boolean;
}

export interface SigningInfo {
  chainId: number;
  registry: Address;
  nonce: string;
}

/** A wallet's EIP-712 signature of a relayed registry action, and its deadline (unix seconds). */
export interface SignedAuthorization {
  signature: Hex;
  deadline: string;
}

export type ContributionStatus = 'pending' | 'approved' | 'rejected';

export interface Contribution {
  id: string;
  datanetId: number;
  contributor: Address;
  contentHash: string;
  fileName: string | null;
  mime: string;
  blobId: string;
  bytes: number;
  license: string;
  nonce: string;
  status: ContributionStatus;
  score: number;
  reasons: string[];
  rowCount: number;
  acceptedRowCount: number;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionReason: string | null;
  version: number | null;
  createdAt: string;
}

export interface ContributionRowSummary {
  id: string;
  position: number;
  rowHash: string;
  accepted: boolean;
  score: number;
  reasons: string[];
}

export interface ContributionResult extends Contribution {
  rows: ContributionRowSummary[];
}

/** The statement a file upload carries in its query string. */
export interface ContributionStatement {
  fileName: string;
  license: string;
  consent: boolean;
  nonce: string;
  signature: Hex;
}

export interface VersionPlan {
  datanetId: number;
  version: number;
  root: Hex;
  rowCount: number;
  addedRows: number;
  manifestId: Hex;
  approve: string[];
  committer: Address;
  chainId: number;
  registry: Address;
  nonce: string;
}

export interface CommittedVersion {
  datanetId: number;
  version: number;
  root: Hex;
  rowCount: number;
  addedRows: number;
  manifestId: Hex;
  approve: string[];
  txHash: Hex;
}

export interface LeaderboardEntry {
  contributor: Address;
  rows: number;
  approvedRows: number;
  rejectedRows: number;
  meanScore: number | null;
}

/** What a version added: its rows (versions only ever add rows) and the root before it. */
export interface VersionDiff {
  version: DatanetVersion;
  previousRoot: Hex | null;
  added: { rowHash: string; contributor: Address; contributionId: string }[];
  addedByContributor: Record<string, number>;
}

export interface ContributorDatanet {
  datanetId: number;
  name: string;
  contributions: number;
  approved: number;
  rejected: number;
  pending: number;
  rows: number;
  acceptedRows: number;
  meanScore: number | null;
}

/** A contributor's record across datanets. */
export interface ContributorProfile {
  address: Address;
  contributions: number;
  approved: number;
  rows: number;
  acceptedRows: number;
  /** Approved contributions over all contributions; null without any. */
  acceptanceRatio: number | null;
  datanets: ContributorDatanet[];
}

export type AccessStatus = 'pending' | 'granted' | 'denied' | 'revoked';

export interface AccessRequest {
  id: string;
  datanetId: number;
  requester: Address;
  purpose: string;
  status: AccessStatus;
  requestTx: Hex;
  decisionTx: Hex | null;
  decisionReason: string | null;
  createdAt: string;
  decidedAt: string | null;
  active: boolean;
}

export type AccessDecision = 'grant' | 'deny' | 'revoke';

export interface AccessDecisionResult {
  id: number;
  account: Address;
  status: AccessStatus;
  txHash: Hex;
  requests: number;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint?: string;
  readonly details?: unknown;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    hint?: string;
    details?: unknown;
  }) {
    super(init.message);
    this.name = 'ApiError';
    this.status = init.status;
    this.code = init.code;
    this.hint = init.hint;
    this.details = init.details;
  }
}

/** Normalises anything thrown (ApiError, network failure, wallet rejection) into an ApiError. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; shortMessage?: unknown };
    // EIP-1193 provider errors: { code: 4001, message: 'User rejected the request.' }
    if (e.code === 4001) {
      return new ApiError({
        status: 0,
        code: 'WALLET_REJECTED',
        message: 'The request was rejected in the wallet.',
      });
    }
    if (err instanceof TypeError) {
      return new ApiError({
        status: 0,
        code: 'NETWORK_ERROR',
        message: 'Could not reach the node.',
        hint: 'Check that the node is running (openledger up), then reload the page.',
      });
    }
    const message =
      typeof e.shortMessage === 'string'
        ? e.shortMessage
        : typeof e.message === 'string'
          ? e.message
          : 'Unexpected error';
    return new ApiError({
      status: 0,
      code: typeof e.code === 'string' ? e.code : 'CLIENT_ERROR',
      message,
    });
  }
  return new ApiError({ status: 0, code: 'CLIENT_ERROR', message: String(err) });
}

async function parseBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function errorFrom(res: { status: number; statusText: string }, body: unknown): ApiError {
  if (body && typeof body === 'object' && 'error' in body) {
    const e = (body as { error: unknown }).error;
    if (e && typeof e === 'object') {
      const { code, message, hint, details } = e as Record<string, unknown>;
      return new ApiError({
        status: res.status,
        code: typeof code === 'string' ? code : `HTTP_${res.status}`,
        message:
          typeof message === 'string'
            ? message
            : res.statusText || `Request failed (${res.status})`,
        hint: typeof hint === 'string' ? hint : undefined,
        details,
      });
    }
  }
  // Never show raw bodies (could be an HTML error page or a stack trace).
  return new ApiError({
    status: res.status,
    code: `HTTP_${res.status}`,
    message: `The node answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`,
  });
}

interface RequestOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  body?: unknown;
  signal?: AbortSignal;
  /** HTTP statuses whose body is still returned as data (e.g. 503 from /healthz). */
  acceptStatus?: number[];
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body,
      credentials: 'same-origin',
      signal: opts.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw toApiError(new TypeError(String(err)));
  }
  const data = await parseBody(res);
  if (res.ok || opts.acceptStatus?.includes(res.status)) return data as T;
  throw errorFrom(res, data);
}

export const api = {
  status: (signal?: AbortSignal) => request<NodeStatus>('/api/status', { signal }),
  health: (signal?: AbortSignal) => request<Health>('/healthz', { signal, acceptStatus: [503] }),
  nonce: () => request<{ nonce: string }>('/api/auth/nonce'),
  verify: (message: string, signature: `0x${string}`) =>
    request<VerifyResult>('/api/auth/verify', { method: 'POST', body: { message, signature } }),
  session: () => request<Session>('/api/auth/session'),
  logout: () => request<{ ok: true }>('/api/auth/logout', { method: 'POST', body: {} }),
  listKeys: (signal?: AbortSignal) => request<{ keys: ApiKey[] }>('/api/keys', { signal }),
  createKey: (name: string) =>
    request<CreatedApiKey>('/api/keys', { method: 'POST', body: { name } }),
  revokeKey: (id: string) =>
    request<{ id: string; revokedAt: string }>(`/api/keys/${encodeURIComponent(id)}`, {
      method: 'DELETE',
    }),
  balances: (address: string, signal?: AbortSignal) =>
    request<Balances>(`/api/token/balances/${encodeURIComponent(address)}`, { signal }),
  faucet: (address?: string) =>
    request<FaucetResult>('/api/faucet', { method: 'POST', body: address ? { address } : {} }),
};

const dn = (id: number) => `/api/datanets/${encodeURIComponent(String(id))}`;

/**
 * Uploads a file contribution as raw bytes (the signed statement in the query) with
 * XMLHttpRequest, which, unlike fetch, reports upload progress (0..1).
 */
export function uploadContribution(
  datanetId: number,
  body: Blob | ArrayBuffer,
  statement: ContributionStatement,
  onProgress: (fraction: number) => void = () => {},
  signal?: AbortSignal,
): Promise<ContributionResult> {
  const query = new URLSearchParams({
    fileName: statement.fileName,
    license: statement.license,
    consent: String(statement.consent),
    nonce: statement.nonce,
    signature: statement.signature,
  });
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${dn(datanetId)}/contributions?${query}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let data: unknown;
      try {
        data = xhr.responseText ? (JSON.parse(xhr.responseText) as unknown) : undefined;
      } catch {
        data = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(data as ContributionResult);
      } else {
        reject(errorFrom({ status: xhr.status, statusText: xhr.statusText }, data));
      }
    };
    xhr.onerror = () => reject(toApiError(new TypeError('upload failed')));
    xhr.onabort = () => reject(new DOMException('The upload was aborted.', 'AbortError'));
    if (signal) {
      if (signal.aborted) return reject(new DOMException('The upload was aborted.', 'AbortError'));
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    xhr.send(body);
  });
}

export const datanetsApi = {
  list: (filter: { q?: string; owner?: Address } = {}, signal?: AbortSignal) => {
    const query = new URLSearchParams({
      ...(filter.q ? { q: filter.q } : {}),
      ...(filter.owner ? { owner: filter.owner } : {}),
    }).toString();
    return request<{ datanets: DatanetSummary[] }>(`/api/datanets${query ? `?${query}` : ''}`, {
      signal,
    });
  },
  get: (id: number, signal?: AbortSignal) => request<DatanetDetail>(dn(id), { signal }),
  normalizeMetadata: (metadata: DatanetMetadataInput) =>
    request<{ metadata: DatanetMetadata; metadataHash: Hex }>('/api/datanets/metadata', {
      method: 'POST',
      body: { metadata },
    }),
  signingInfo: (address: Address) =>
    request<SigningInfo>(`/api/datanets/signing-info?${new URLSearchParams({ address })}`),
  create: (metadata: DatanetMetadata, authorization: SignedAuthorization) =>
    request<Datanet>('/api/datanets', { method: 'POST', body: { metadata, authorization } }),
  contributions: (id: number, status?: ContributionStatus, signal?: AbortSignal) =>
    request<{ contributions: Contribution[]; curator: boolean }>(
      `${dn(id)}/contributions${status ? `?status=${status}` : ''}`,
      { signal },
    ),
  planVersion: (id: number, approve: string[]) =>
    request<VersionPlan>(`${dn(id)}/versions/plan`, { method: 'POST', body: { approve } }),
  commitVersion: (id: number, approve: string[], authorization: SignedAuthorization) =>
    request<CommittedVersion>(`${dn(id)}/versions`, {
      method: 'POST',
      body: { approve, authorization },
    }),
  reject: (id: number, contributions: string[], reason: string) =>
    request<{ rejected: string[]; reason: string }>(`${dn(id)}/reject`, {
      method: 'POST',
      body: { contributions, reason },
    }),
  versions: (id: number, signal?: AbortSignal) =>
    request<{ versions: DatanetVersion[] }>(`${dn(id)}/versions`, { signal }),
  exportUrl: (id: number, version: number | 'latest') => `${dn(id)}/versions/${version}/export`,
  versionDiff: (id: number, version: number, signal?: AbortSignal) =>
    request<VersionDiff>(`${dn(id)}/versions/${encodeURIComponent(String(version))}/diff`, {
      signal,
    }),
  contributor: (address: string, signal?: AbortSignal) =>
    request<ContributorProfile>(`/api/contributors/${encodeURIComponent(address)}`, { signal }),
  leaderboard: (id: number, signal?: AbortSignal) =>
    request<{ contributors: LeaderboardEntry[] }>(`${dn(id)}/leaderboard`, { signal }),
  requestAccess: (id: number, purpose: string, authorization: SignedAuthorization) =>
    request<AccessRequest>(`${dn(id)}/access-requests`, {
      method: 'POST',
      body: { purpose, authorization },
    }),
  accessRequests: (id: number, signal?: AbortSignal) =>
    // All requests for the owner and curators (curator: true), the caller's own otherwise.
    request<{ requests: AccessRequest[]; curator: boolean }>(`${dn(id)}/access-requests`, {
      signal,
    }),
  decideAccess: (
    id: number,
    body: {
      account: Address;
      decision: AccessDecision;
      reason?: string;
      authorization: SignedAuthorization;
    },
  ) => request<AccessDecisionResult>(`${dn(id)}/access`, { method: 'POST', body }),
  setCurator: (
    id: number,
    body: { curator: Address; enabled: boolean; authorization: SignedAuthorization },
  ) =>
    request<{ id: number; curator: Address; enabled: boolean; txHash: Hex }>(`${dn(id)}/curators`, {
      method: 'POST',
      body,
    }),
  access: (id: number, address: Address, signal?: AbortSignal) =>
    request<{ id: number; address: Address; canRead: boolean }>(
      `${dn(id)}/access/${encodeURIComponent(address)}`,
      { signal },
    ),
  upload: uploadContribution,
};

// ----- jobs and the Model Factory -------------------------------------------------------------

export type JobStatus = 'queued' | 'validating' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

/** A training job's latest `progress` event. */
export interface TrainProgress {
  step: number;
  of: number;
  loss: number;
  /** Present on the steps where the held-out rows were evaluated. */
  evalLoss?: number;
  learningRate: number;
  tokensPerSecond: number;
  etaSeconds: number;
  at?: string;
}

export interface Job<P = unknown, R = unknown> {
  id: string;
  kind: string;
  owner: Address;
  status: JobStatus;
  params: P;
  progress: TrainProgress | null;
  result: R | null;
  error: { code: string; message: string; hint?: string } | null;
  checkpoint: string | null;
  attempts: number;
  cancelRequested: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export const LORA_TARGETS = [
  'attn_q',
  'attn_k',
  'attn_v',
  'attn_output',
  'ffn_gate',
  'ffn_up',
  'ffn_down',
] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export const TEMPLATES = ['llama2', 'chatml', 'plain'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

export interface Hyperparameters {
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
  learningRate: number;
  steps: number;
  batchSize: number;
  warmupSteps: number;
  seed: number;
  maxTokens: number;
  checkpointEvery: number;
  evalPercent: number;
  packing: boolean;
  /** QLoRA: the frozen base as 8-bit or 4-bit blocks. */
  quantizeBase: 'none' | 'q8_0' | 'q4_0';
}

export interface DatanetRef {
  id: number;
  version: number | 'latest';
}

/** A `factory.train` job's parameters as the node normalised them. */
export interface TrainParams {
  /** The base model's file on the node (the catalogue name is its file name without `.gguf`). */
  baseModel: string;
  datanets: DatanetRef[];
  template: TemplateName;
  hyperparameters: Hyperparameters;
}

export interface TrainResult {
  adapterBlobId: string;
  manifestBlobId: string;
  manifestHash: Hex;
  trainLoss: number;
  evalLoss: number | null;
  baseEvalLoss: number | null;
  /** Loss tokens of the training rows, each row counted once (the sum over contributors). */
  tokens: number;
  /** Loss tokens over all steps. */
  tokensSeen: number;
  contributors: Record<string, number>;
  rows: { train: number; eval: number };
  seconds: number;
}

export type TrainJob = Job<TrainParams, TrainResult>;

export interface BaseModel {
  name: string;
  bytes: number;
  architecture: string;
  contextLength?: number;
  title?: string;
  /** The built-in base model (the default). */
  builtin?: boolean;
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** A row as exported ({ messages } for chat and instruction rows) or a document row. */
export interface TemplateRow {
  messages?: ChatMessage[];
  content?: unknown;
}

export interface TemplatePreview {
  pieces: { id: number; piece: string; masked: boolean }[];
  trainedTokens: number;
  truncated: boolean;
  text: string;
}

export interface TrainRequest {
  baseModel: string;
  datanets: DatanetRef[];
  template?: TemplateName;
  hyperparameters?: Partial<Hyperparameters>;
}

export const TRAIN_JOB_KIND = 'factory.train';

const job = (id: string) => `/api/jobs/${encodeURIComponent(id)}`;

export const jobsApi = {
  list: (kind?: string, signal?: AbortSignal) =>
    request<{ jobs: Job[] }>(`/api/jobs${kind ? `?${new URLSearchParams({ kind })}` : ''}`, {
      signal,
    }),
  get: (id: string, signal?: AbortSignal) => request<Job>(job(id), { signal }),
  cancel: (id: string) => request<Job>(`${job(id)}/cancel`, { method: 'POST', body: {} }),
  /** Server-sent events of a job (same-origin: the session cookie authenticates them). */
  eventsUrl: (id: string) => `${job(id)}/events`,
};

export const factoryApi = {
  models: (signal?: AbortSignal) =>
    request<{ models: BaseModel[] }>('/api/factory/models', { signal }),
  train: (body: TrainRequest) => request<TrainJob>('/api/factory/jobs', { method: 'POST', body }),
  previewTemplate: (
    body: { template: TemplateName; baseModel: string; row: TemplateRow; maxTokens?: number },
    signal?: AbortSignal,
  ) => request<TemplatePreview>('/api/factory/templates/preview', { method: 'POST', body, signal }),
  trainJobs: (signal?: AbortSignal) =>
    request<{ jobs: TrainJob[] }>(`/api/jobs?${new URLSearchParams({ kind: TRAIN_JOB_KIND })}`, {
      signal,
    }),
};

/**
 * The first row of a datanet version's JSONL export, reading no further than its first line
 * (an export can be large). Undefined when the version has no rows.
 */
export async function firstExportedRow(
  datanetId: number,
  version: number | 'latest',
  signal?: AbortSignal,
): Promise<TemplateRow | undefined> {
  let res: Response;
  try {
    res = await fetch(datanetsApi.exportUrl(datanetId, version), {
      headers: { accept: 'application/x-ndjson, application/json' },
      credentials: 'same-origin',
      signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw toApiError(new TypeError(String(err)));
  }
  if (!res.ok) throw errorFrom(res, await parseBody(res));
  let text = '';
  if (res.body) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (value) text += decoder.decode(value, { stream: true });
      if (done || text.includes('\n')) break;
    }
    void reader.cancel().catch(() => {});
  } else {
    text = await res.text();
  }
  const line = text.split('\n').find((l) => l.trim());
  if (!line) return undefined;
  const row = JSON.parse(line) as { messages?: ChatMessage[]; content?: unknown };
  return row.messages?.length ? { messages: row.messages } : { content: row.content };
}
