// Typed client for the node's HTTP API. Every error response has the shape
// { error: { code, message, hint?, details? } }; it is surfaced as ApiError.

export type Address = `0x${string}`;

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

function errorFrom(res: Response, body: unknown): ApiError {
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
