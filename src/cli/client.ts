import type { LocalAccount } from 'viem';
import { createSiweMessage } from 'viem/siwe';
import { OpenLedgerError } from '../errors.ts';
import { RemoteError } from './output.ts';

export const DEFAULT_NODE_URL = 'http://127.0.0.1:7070';

/** A small client for a running node's JSON API, used by the CLI commands. */
export class NodeClient {
  private bearer: string | undefined;

  constructor(
    readonly url: string,
    options: { apiKey?: string | undefined } = {},
  ) {
    this.bearer = options.apiKey;
  }

  /** The Authorization header of this client's session or key (for streaming requests). */
  authorization(): Record<string, string> {
    return this.bearer ? { authorization: `Bearer ${this.bearer}` } : {};
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await this.send(
      method,
      path,
      body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) },
    );
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Sends raw bytes (a file upload); answers the JSON result. */
  async requestBytes<T>(
    method: string,
    path: string,
    bytes: Uint8Array,
    onProgress?: (sent: number, total: number) => void,
  ): Promise<T> {
    const data = onProgress ? streamWithProgress(bytes, onProgress) : bytes;
    const text = await this.send(method, path, { type: 'application/octet-stream', data });
    return JSON.parse(text) as T;
  }

  /** For answers that are not JSON (JSONL exports). */
  async requestText(method: string, path: string): Promise<string> {
    return this.send(method, path, undefined);
  }

  private async send(
    method: string,
    path: string,
    body: { type: string; data: string | Uint8Array | ReadableStream<Uint8Array> } | undefined,
  ): Promise<string> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.url), {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': body.type }),
          ...(this.bearer ? { authorization: `Bearer ${this.bearer}` } : {}),
        },
        body: body === undefined ? null : body.data,
        // Required by Node's fetch for a streamed request body.
        ...(body?.data instanceof ReadableStream ? { duplex: 'half' } : {}),
        signal: AbortSignal.timeout(300_000),
      });
    } catch (cause) {
      throw new OpenLedgerError('NODE_UNREACHABLE', `No OpenLedger node answers at ${this.url}.`, {
        hint: 'Start one with `openledger up`, or point to it with --url or OPENLEDGER_URL.',
        cause,
      });
    }
    const text = await response.text();
    if (!response.ok) {
      let error: { code: string; message: string } | undefined;
      try {
        error = (JSON.parse(text) as { error?: { code: string; message: string } }).error;
      } catch {
        // not a JSON error body
      }
      throw new RemoteError(
        response.status,
        error ?? { code: 'INTERNAL', message: `HTTP ${response.status}` },
      );
    }
    return text;
  }

  /** Signs in with Ethereum as `account` and uses the session for the following requests. */
  async signIn(account: LocalAccount): Promise<{ address: string; token: string }> {
    const [{ chainId }, { nonce }] = await Promise.all([
      this.request<{ chainId: number }>('GET', '/api/status'),
      this.request<{ nonce: string }>('GET', '/api/auth/nonce'),
    ]);
    const url = new URL(this.url);
    const message = createSiweMessage({
      domain: url.host,
      uri: url.origin,
      address: account.address,
      chainId,
      nonce,
      version: '1',
      statement: 'Sign in to this OpenLedger node from the command line.',
      issuedAt: new Date(),
    });
    const signature = await account.signMessage({ message });
    const session = await this.request<{ address: string; token: string }>(
      'POST',
      '/api/auth/verify',
      { message, signature },
    );
    this.bearer = session.token;
    return session;
  }
}

/** The bytes as a stream of 256 KiB chunks, reporting how much has been handed to the socket. */
function streamWithProgress(
  bytes: Uint8Array,
  onProgress: (sent: number, total: number) => void,
): ReadableStream<Uint8Array> {
  const chunk = 256 * 1024;
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes.byteLength) {
        controller.close();
        return;
      }
      const next = bytes.subarray(sent, sent + chunk);
      sent += next.byteLength;
      controller.enqueue(next);
      onProgress(sent, bytes.byteLength);
    },
  });
}
