import { chooseBackend, rankByAffinity, type BackendLoad } from '../serving/affinity.ts';

/** One node behind the router, as `/router/status` shows it. */
export interface NodeState extends BackendLoad {
  /** The node's base URL, also its id: what `x-openledger-node` names. */
  id: string;
  /** Requests answered (any status), streams counted when they end. */
  served: number;
  /** Connection failures and 5xx answers. */
  errors: number;
  lastError: { message: string; at: string } | null;
  /** When `/healthz` was last asked, and how long it took. */
  lastCheckAt: string | null;
  lastCheckMs: number | null;
}

export interface PoolOptions {
  /** See `chooseBackend`: how far above the mean in-flight count a node takes its keys. */
  loadFactor: number;
  /** How often each node's `/healthz` is polled. */
  healthIntervalMs: number;
  /** A health check slower than this counts as failed. */
  healthTimeoutMs: number;
}

/**
 * The nodes behind the router: their health (polled from each node's `/healthz`, and marked down
 * at once when a connection fails), their in-flight counts, and the order in which a routing key
 * tries them.
 */
export class NodePool {
  readonly nodes: NodeState[];
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(
    urls: readonly string[],
    readonly options: PoolOptions,
  ) {
    this.nodes = urls.map((id) => ({
      id,
      inFlight: 0,
      // Optimistic until the first check answers: a node is tried before it is distrusted.
      healthy: true,
      served: 0,
      errors: 0,
      lastError: null,
      lastCheckAt: null,
      lastCheckMs: null,
    }));
  }

  /** Checks every node now, then every `healthIntervalMs` until `stop`. */
  async start(): Promise<void> {
    await this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.options.healthIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
  }

  /** One round of health checks; a round still running is joined, not doubled. */
  checkAll(): Promise<void> {
    this.checking ??= Promise.all(this.nodes.map((n) => this.check(n))).then(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async check(node: NodeState): Promise<void> {
    const started = performance.now();
    try {
      const response = await fetch(`${node.id}/healthz`, {
        signal: AbortSignal.timeout(this.options.healthTimeoutMs),
      });
      // The body must be read for the keep-alive connection to be reused.
      await response.arrayBuffer();
      node.healthy = response.ok;
      if (!response.ok) this.failed(node, `/healthz answered ${response.status}`);
    } catch (error) {
      node.healthy = false;
      this.failed(node, `/healthz: ${describeFailure(error)}`);
    } finally {
      node.lastCheckAt = new Date().toISOString();
      node.lastCheckMs = Math.round((performance.now() - started) * 10) / 10;
    }
  }

  /**
   * The nodes to try for a key, best first: the one `chooseBackend` picks (affinity, skipping
   * unhealthy and overloaded nodes), then the other healthy ones in the key's rendezvous order.
   */
  candidates(key: string): NodeState[] {
    const first = chooseBackend(key, this.nodes, { loadFactor: this.options.loadFactor });
    if (!first) return [];
    // The second choice comes from the same pool chooseBackend drew from: the healthy nodes,
    // or every node when none is healthy.
    const pool = new Set(this.usable().map((n) => n.id));
    const rest = rankByAffinity(
      key,
      this.nodes.map((n) => n.id),
    ).filter((id) => id !== first.id && pool.has(id));
    return [first as NodeState, ...rest.map((id) => this.byId(id))];
  }

  /** The healthy nodes in the order they were given (all of them when none is healthy). */
  usable(): NodeState[] {
    const healthy = this.nodes.filter((n) => n.healthy);
    return healthy.length > 0 ? healthy : [...this.nodes];
  }

  failed(node: NodeState, message: string): void {
    node.errors++;
    node.lastError = { message, at: new Date().toISOString() };
  }

  /** A connection to the node failed: skip it until its next health check says otherwise. */
  unreachable(node: NodeState, error: unknown): void {
    node.healthy = false;
    this.failed(node, describeFailure(error));
  }

  private byId(id: string): NodeState {
    return this.nodes.find((n) => n.id === id)!;
  }
}

/** The useful part of a fetch failure: undici hides the system error in `cause`. */
export function describeFailure(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  if (cause?.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether a fetch failed before the node could have read the request: only then is it safe to
 * send the same (metered, non-idempotent) request to another node.
 */
export function failedToConnect(error: unknown): boolean {
  const code = (error as { cause?: { code?: string } }).cause?.code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'EAI_AGAIN' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  );
}
