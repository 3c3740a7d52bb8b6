// Tests read arbitrary JSON answers and assert on their fields: `any` is the honest type here.
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { LocalAccount } from 'viem';
import { createSiweMessage } from 'viem/siwe';

export interface Answer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** JSON over HTTP against a test node; never throws on a 4xx/5xx, so tests can assert on them. */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const response = await fetch(new URL(path, base), {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body:
      options.body === undefined
        ? null
        : typeof options.body === 'string' || options.body instanceof Uint8Array
          ? (options.body as string | Uint8Array)
          : JSON.stringify(options.body),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, HTML)
  }
  return { status: response.status, body: body as T, headers: response.headers };
}

/** A signed EIP-4361 message for the node at `base`, with any field overridable for negative tests. */
export async function siwe(
  base: string,
  account: LocalAccount,
  overrides: Partial<Parameters<typeof createSiweMessage>[0]> = {},
): Promise<{ message: string; signature: `0x${string}` }> {
  const { body: status } = await call(base, 'GET', '/api/status');
  const { body: nonce } = await call(base, 'GET', '/api/auth/nonce');
  const url = new URL(base);
  const message = createSiweMessage({
    domain: url.host,
    uri: url.origin,
    address: account.address,
    chainId: status.chainId,
    nonce: nonce.nonce,
    version: '1',
    issuedAt: new Date(),
    ...overrides,
  });
  return { message, signature: await account.signMessage({ message }) };
}

export async function signIn(base: string, account: LocalAccount): Promise<string> {
  const answer = await call(base, 'POST', '/api/auth/verify', { body: await siwe(base, account) });
  if (answer.status !== 200) throw new Error(`sign-in failed: ${JSON.stringify(answer.body)}`);
  return answer.body.token as string;
}
