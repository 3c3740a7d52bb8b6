import { OpenLedgerError } from '../errors.ts';

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export interface SchedulerStats {
  running: number;
  queued: number;
  maxConcurrent: number;
  maxQueue: number;
  /** Requests refused with 429 since start. */
  rejected: number;
}

/**
 * Admission for generation: at most `maxConcurrent` requests run (one sequence each), at most
 * `maxQueue` wait, and the rest are refused at once with a 429 and a Retry-After estimate, so
 * that a burst costs callers a retry instead of costing the node unbounded memory and latency.
 *
 * Waiting requests are queued per key (the adapter set) and served round-robin across keys: a
 * caller hammering one adapter delays the others by at most one turn per request, not by its
 * whole backlog. Within a key the order is first come, first served. (A small hand-written
 * queue: p-queue and friends have priorities but no per-key fairness.)
 */
export class FairScheduler {
  private running = 0;
  private queued = 0;
  private rejected = 0;
  private readonly queues = new Map<string, Waiter[]>();
  /** Keys with waiters, in turn order. */
  private ring: string[] = [];
  /** Exponentially weighted mean time a slot is held, for Retry-After. */
  private meanHoldMs = 1000;

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueue: number,
  ) {}

  stats(): SchedulerStats {
    return {
      running: this.running,
      queued: this.queued,
      maxConcurrent: this.maxConcurrent,
      maxQueue: this.maxQueue,
      rejected: this.rejected,
    };
  }

  /** Whether a request arriving now would have to wait. */
  get saturated(): boolean {
    return this.running >= this.maxConcurrent || this.queued > 0;
  }

  /** Waits for a slot; resolves with its release function. */
  acquire(key: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.maxConcurrent && this.queued === 0) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.queued >= this.maxQueue) {
      this.rejected++;
      const seconds = Math.max(
        1,
        Math.ceil(((this.queued / this.maxConcurrent + 1) * this.meanHoldMs) / 1000),
      );
      return Promise.reject(
        new OpenLedgerError(
          'SERVING_OVERLOADED',
          `The node is busy: ${this.running} requests running and ${this.queued} waiting.`,
          {
            hint: `Retry after ${seconds} s.`,
            details: { retryAfterSeconds: seconds },
          },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const queue = this.queues.get(key);
          const at = queue?.indexOf(waiter) ?? -1;
          if (at >= 0) {
            queue!.splice(at, 1);
            this.queued--;
            if (queue!.length === 0) this.dropKey(key);
            reject(signal!.reason);
          }
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      let queue = this.queues.get(key);
      if (!queue) {
        queue = [];
        this.queues.set(key, queue);
        this.ring.push(key);
      }
      queue.push(waiter);
      this.queued++;
    });
  }

  private releaser(): () => void {
    const started = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.meanHoldMs = 0.8 * this.meanHoldMs + 0.2 * (performance.now() - started);
      this.running--;
      this.dispatch();
    };
  }

  private dispatch(): void {
    while (this.running < this.maxConcurrent && this.ring.length > 0) {
      const key = this.ring.shift()!;
      const queue = this.queues.get(key)!;
      const waiter = queue.shift()!;
      this.queued--;
      if (queue.length > 0) this.ring.push(key);
      else this.queues.delete(key);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.running++;
      waiter.resolve(this.releaser());
    }
  }

  private dropKey(key: string): void {
    this.queues.delete(key);
    this.ring = this.ring.filter((k) => k !== key);
  }

  /** Refuses everyone still waiting (shutdown). */
  close(error: unknown): void {
    for (const queue of this.queues.values()) {
      for (const waiter of queue) {
        waiter.signal?.removeEventListener('abort', waiter.onAbort);
        waiter.reject(error);
      }
    }
    this.queues.clear();
    this.ring = [];
    this.queued = 0;
  }
}
