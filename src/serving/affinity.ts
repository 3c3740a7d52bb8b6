import { createHash } from 'node:crypto';

/** A place generation can be sent: a node behind the router, or a remote LoRA server. */
export interface BackendLoad {
  id: string;
  /** Requests sent to it and not yet answered. */
  inFlight: number;
  /** False while its health check fails: it is skipped unless every backend is down. */
  healthy: boolean;
}

/**
 * Backends in rendezvous (highest random weight) order for a key: each backend scores
 * sha256(key, backend) and the highest wins. The same adapter set therefore lands on the same
 * backend while the list is stable — where its adapter is already attached and its contexts
 * pooled — and adding or removing a backend moves only the keys that scored highest on it
 * (1/n of them), unlike `hash mod n`. (A dozen lines: the npm rendezvous-hash packages are
 * unmaintained and hash with non-cryptographic functions of their own.)
 */
export function rankByAffinity(key: string, backends: readonly string[]): string[] {
  return backends
    .map((id) => ({ id, score: createHash('sha256').update(key).update('\0').update(id).digest() }))
    .sort((a, b) => Buffer.compare(b.score, a.score) || a.id.localeCompare(b.id))
    .map((b) => b.id);
}

export interface ChooseOptions {
  /**
   * Bounded load: a backend takes a key's traffic while its in-flight count stays within
   * `loadFactor` × the mean (+1), else the key spills to its next backend in rendezvous order.
   * This is "consistent hashing with bounded loads" (Mirrokni et al., 2018): one hot adapter
   * cannot pin a whole backend while the others idle.
   */
  loadFactor?: number;
}

/** The backend for a key: its affinity order, skipping unhealthy and overloaded backends. */
export function chooseBackend(
  key: string,
  backends: readonly BackendLoad[],
  options: ChooseOptions = {},
): BackendLoad | undefined {
  if (backends.length === 0) return undefined;
  const healthy = backends.filter((b) => b.healthy);
  const pool = healthy.length > 0 ? healthy : backends;
  const total = pool.reduce((sum, b) => sum + b.inFlight, 0);
  const cap = Math.ceil(((total + 1) / pool.length) * (options.loadFactor ?? 1.25));
  const byId = new Map(pool.map((b) => [b.id, b]));
  const order = rankByAffinity(
    key,
    pool.map((b) => b.id),
  ).map((id) => byId.get(id)!);
  return order.find((b) => b.inFlight < cap) ?? order[0];
}
