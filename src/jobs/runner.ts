import { EventEmitter } from 'node:events';
import { and, asc, desc, eq, gt, inArray, sql } from 'drizzle-orm';
import { getAddress, type Address } from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import type { Db } from '../db/index.ts';
import { schema } from '../db/index.ts';
import { OpenLedgerError } from '../errors.ts';

export type JobRow = typeof schema.jobs.$inferSelect;
export type JobStatus = schema.JobStatus;
export type JobEvent = typeof schema.jobEvents.$inferSelect;

export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

/** What a job's handler gets: its parameters, a way to report, to checkpoint, and to stop. */
export interface JobContext<P> {
  id: string;
  owner: Address;
  params: P;
  /** Aborted when the job is cancelled or the node shuts down: stop soon after. */
  signal: AbortSignal;
  /** The latest checkpoint when the job resumes after a restart, else undefined. */
  checkpoint: Buffer | undefined;
  /** Records a typed event (persisted, streamed); `progress` events also update the job's row. */
  emit(type: string, data: Record<string, unknown>): Promise<void>;
  /** `validating` while checking inputs, then `running`. */
  setStatus(status: 'validating' | 'running'): Promise<void>;
  saveCheckpoint(bytes: Uint8Array): Promise<void>;
}

export type JobHandler<P = unknown, R = unknown> = (context: JobContext<P>) => Promise<R>;

/** Why a handler stopped early: the runner tells cancellation from shutdown by this. */
class Interrupted extends Error {}

/**
 * Runs long work in the background of the node: jobs are rows (queued → validating → running →
 * succeeded | failed | cancelled) with an append-only event log, so progress can be streamed and
 * replayed, a cancelled job stops, and a job interrupted by a crash or a shutdown is queued again
 * and resumes from its last checkpoint at the next start.
 */
export class JobRunner {
  private readonly handlers = new Map<string, JobHandler>();
  private readonly running = new Map<string, AbortController>();
  private readonly events = new EventEmitter();
  private readonly settled = new Set<Promise<void>>();
  private started = false;
  private claiming = false;
  private stopping = false;

  constructor(
    private readonly deps: { db: Db; blobs: BlobStore; onError?: (error: unknown) => void },
    private readonly options: { concurrency: number } = { concurrency: 1 },
  ) {
    this.events.setMaxListeners(0);
  }

  register<P, R>(kind: string, handler: JobHandler<P, R>): void {
    this.handlers.set(kind, handler as JobHandler);
  }

  /** Re-queues jobs a previous process left running, then starts taking work. */
  async start(): Promise<{ resumed: number }> {
    const interrupted = await this.deps.db
      .update(schema.jobs)
      .set({ status: 'queued' })
      .where(inArray(schema.jobs.status, ['validating', 'running']))
      .returning({ id: schema.jobs.id });
    for (const job of interrupted)
      await this.record(job.id, 'status', { status: 'queued', reason: 'resumed after a restart' });
    this.started = true;
    this.pump();
    return { resumed: interrupted.length };
  }

  /** Stops taking work and interrupts running jobs; they resume at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const controller of this.running.values())
      controller.abort(new Interrupted('node shutting down'));
    await Promise.allSettled([...this.settled]);
  }

  async submit<P>(kind: string, owner: Address, params: P): Promise<JobRow> {
    if (!this.handlers.has(kind))
      throw new OpenLedgerError('BAD_REQUEST', `Unknown job kind "${kind}".`);
    const [job] = await this.deps.db
      .insert(schema.jobs)
      .values({ kind, owner: getAddress(owner), status: 'queued', params: params as object })
      .returning();
    await this.record(job!.id, 'status', { status: 'queued' });
    this.pump();
    return job!;
  }

  async get(id: string): Promise<JobRow> {
    const [job] = await this.deps.db.select().from(schema.jobs).where(eq(schema.jobs.id, id));
    if (!job) throw new OpenLedgerError('NOT_FOUND', `There is no job ${id}.`);
    return job;
  }

  async list(filter: { owner?: Address; kind?: string } = {}): Promise<JobRow[]> {
    return this.deps.db
      .select()
      .from(schema.jobs)
      .where(
        and(
          filter.owner ? eq(schema.jobs.owner, getAddress(filter.owner)) : undefined,
          filter.kind ? eq(schema.jobs.kind, filter.kind) : undefined,
        ),
      )
      .orderBy(desc(schema.jobs.createdAt))
      .limit(200);
  }

  /** The job's events after `afterId` (0: all), oldest first. */
  async eventsOf(id: string, afterId = 0): Promise<JobEvent[]> {
    return this.deps.db
      .select()
      .from(schema.jobEvents)
      .where(and(eq(schema.jobEvents.jobId, id), gt(schema.jobEvents.id, afterId)))
      .orderBy(asc(schema.jobEvents.id));
  }

  /** Live events of a job; returns the unsubscribe function. */
  subscribe(id: string, listener: (event: JobEvent) => void): () => void {
    this.events.on(id, listener);
    return () => this.events.off(id, listener);
  }

  /** Cancels a queued job at once, a running one as soon as its handler notices. Idempotent. */
  async cancel(id: string): Promise<JobRow> {
    const job = await this.get(id);
    if (TERMINAL_STATUSES.includes(job.status)) return job;
    const [queued] = await this.deps.db
      .update(schema.jobs)
      .set({ status: 'cancelled', cancelRequested: true, finishedAt: new Date() })
      .where(and(eq(schema.jobs.id, id), eq(schema.jobs.status, 'queued')))
      .returning();
    if (queued) {
      await this.record(id, 'status', { status: 'cancelled' });
      return queued;
    }
    await this.deps.db
      .update(schema.jobs)
      .set({ cancelRequested: true })
      .where(eq(schema.jobs.id, id));
    this.running.get(id)?.abort(new Error('cancelled'));
    return this.get(id);
  }

  /** Claims queued jobs one at a time while there is capacity; called whenever that may change. */
  private pump(): void {
    if (
      !this.started ||
      this.stopping ||
      this.claiming ||
      this.running.size >= this.options.concurrency
    )
      return;
    this.claiming = true;
    this.claimNext().then(
      (job) => {
        this.claiming = false;
        if (!job) return;
        const run: Promise<void> = this.execute(job)
          .catch((error: unknown) => this.deps.onError?.(error))
          .finally(() => {
            this.settled.delete(run);
            this.pump();
          });
        this.settled.add(run);
        this.pump();
      },
      (error: unknown) => {
        this.claiming = false;
        this.deps.onError?.(error);
      },
    );
  }

  /** Takes the oldest queued job whose kind this node can run. */
  private async claimNext(): Promise<JobRow | undefined> {
    const kinds = [...this.handlers.keys()];
    if (kinds.length === 0) return undefined;
    const [next] = await this.deps.db
      .select({ id: schema.jobs.id })
      .from(schema.jobs)
      .where(and(eq(schema.jobs.status, 'queued'), inArray(schema.jobs.kind, kinds)))
      .orderBy(asc(schema.jobs.createdAt))
      .limit(1);
    if (!next) return undefined;
    const [claimed] = await this.deps.db
      .update(schema.jobs)
      .set({
        status: 'validating',
        startedAt: new Date(),
        attempts: sql`${schema.jobs.attempts} + 1`,
      })
      .where(and(eq(schema.jobs.id, next.id), eq(schema.jobs.status, 'queued')))
      .returning();
    return claimed;
  }

  private async execute(job: JobRow): Promise<void> {
    const controller = new AbortController();
    this.running.set(job.id, controller);
    await this.record(job.id, 'status', { status: 'validating', attempt: job.attempts });
    const checkpoint = job.checkpoint
      ? await this.deps.blobs.get(job.checkpoint).catch(() => undefined)
      : undefined;
    const context: JobContext<unknown> = {
      id: job.id,
      owner: getAddress(job.owner),
      params: job.params,
      signal: controller.signal,
      checkpoint,
      emit: async (type, data) => {
        if (type === 'progress')
          await this.deps.db
            .update(schema.jobs)
            .set({ progress: data })
            .where(eq(schema.jobs.id, job.id));
        await this.record(job.id, type, data);
      },
      setStatus: async (status) => {
        await this.deps.db.update(schema.jobs).set({ status }).where(eq(schema.jobs.id, job.id));
        await this.record(job.id, 'status', { status });
      },
      saveCheckpoint: async (bytes) => {
        const blob = await this.deps.blobs.put(bytes);
        await this.deps.db
          .update(schema.jobs)
          .set({ checkpoint: blob.id })
          .where(eq(schema.jobs.id, job.id));
        await this.record(job.id, 'checkpoint', { blobId: blob.id, bytes: blob.size });
      },
    };
    try {
      const handler = this.handlers.get(job.kind)!;
      const result = await handler(context);
      controller.signal.throwIfAborted();
      await this.finish(job.id, 'succeeded', { result: (result ?? null) as object });
    } catch (error) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof Interrupted) {
        // Shutdown: back to the queue, to resume from the last checkpoint at the next start.
        await this.deps.db
          .update(schema.jobs)
          .set({ status: 'queued' })
          .where(eq(schema.jobs.id, job.id));
        await this.record(job.id, 'status', {
          status: 'queued',
          reason: 'interrupted by shutdown',
        });
      } else if (controller.signal.aborted) {
        await this.finish(job.id, 'cancelled', {});
      } else {
        const body =
          error instanceof OpenLedgerError
            ? {
                code: error.code,
                message: error.message,
                ...(error.hint ? { hint: error.hint } : {}),
              }
            : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
        await this.finish(job.id, 'failed', { error: body });
      }
    } finally {
      this.running.delete(job.id);
    }
  }

  private async finish(
    id: string,
    status: JobStatus,
    fields: { result?: object; error?: { code: string; message: string; hint?: string } },
  ) {
    await this.deps.db
      .update(schema.jobs)
      .set({ status, finishedAt: new Date(), ...fields })
      .where(eq(schema.jobs.id, id));
    await this.record(id, 'status', { status, ...(fields.error ? { error: fields.error } : {}) });
  }

  private async record(jobId: string, type: string, data: Record<string, unknown>): Promise<void> {
    const [event] = await this.deps.db
      .insert(schema.jobEvents)
      .values({ jobId, type, data })
      .returning();
    this.events.emit(jobId, event);
  }
}
