import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';

interface Status {
  version: string;
  chainId: number;
  rpcUrl: string;
  local: boolean;
  contracts: Record<string, string>;
  database: { kind: string };
  uptimeSeconds: number;
}
interface Health {
  status: string;
  checks: Record<
    string,
    { ok: boolean; latencyMs?: number; detail?: string; error?: string; blockNumber?: string }
  >;
}

/** `openledger status`: what a running node is and whether its parts are healthy. */
export async function status(url: string, out: Output): Promise<void> {
  const client = new NodeClient(url);
  const info = await client.request<Status>('GET', '/api/status');
  // /healthz answers 503 with the same body when a part is down: report it rather than fail.
  const health = await client.request<Health>('GET', '/healthz').catch((error: unknown) => {
    const body = (error as { body?: unknown }).body;
    return { status: 'unreachable', checks: {}, error: body } as Health;
  });
  out.result({ url, ...info, health }, (s) =>
    [
      `node      ${s.url} (openledger ${s.version}, up ${s.uptimeSeconds} s)`,
      `chain     ${s.chainId} at ${s.rpcUrl}${s.local ? ' (local dev chain)' : ''}`,
      ...Object.entries(s.contracts).map(
        ([name, address]) => `contract  ${name.padEnd(10)} ${address}`,
      ),
      `database  ${s.database.kind}`,
      `health    ${s.health.status}`,
      ...Object.entries(s.health.checks).map(
        ([name, check]) =>
          `  ${check.ok ? 'ok  ' : 'FAIL'} ${name.padEnd(9)} ${check.error ?? check.detail ?? (check.blockNumber ? `block ${check.blockNumber}` : '')}${check.latencyMs === undefined ? '' : ` (${check.latencyMs} ms)`}`,
      ),
    ].join('\n'),
  );
}
