import type { AddressInfo } from 'node:net';
import { OpenLedgerError } from '../errors.ts';
import { buildRouter, type RouterOptions } from './server.ts';
import type { NodePool } from './pool.ts';

export { buildRouter, readRoute, routingKey, type Route, type RouterOptions } from './server.ts';
export { NodePool, type NodeState, type PoolOptions } from './pool.ts';

export interface RunningRouter {
  url: string;
  pool: NodePool;
  /** Stops taking requests, lets those in progress finish, stops the health checks. */
  close(): Promise<void>;
}

/** A node's base URL as the router names it: http(s), no trailing slash, query or fragment. */
export function normalizeNodeUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OpenLedgerError('CONFIG_INVALID', `--node ${value} is not a URL.`, {
      hint: 'Give each node as http://host:port (the address `openledger up` prints).',
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OpenLedgerError('CONFIG_INVALID', `--node ${value} must be an http or https URL.`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new OpenLedgerError(
      'CONFIG_INVALID',
      `--node ${value} must be a base URL, without query, fragment or credentials.`,
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Builds the router over `nodes` and listens on host:port (0: any free port). */
export async function startRouter(
  options: Omit<RouterOptions, 'nodes'> & { nodes: string[]; host: string; port: number },
): Promise<RunningRouter> {
  const nodes = [...new Set(options.nodes.map(normalizeNodeUrl))];
  const { app, pool } = await buildRouter({ ...options, nodes });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await app.close();
    throw new OpenLedgerError(
      'CONFIG_INVALID',
      `The router cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${host}:${address.port}`, pool, close: () => app.close() };
}
