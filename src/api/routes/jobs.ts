import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { OpenLedgerError } from '../../errors.ts';
import { TERMINAL_STATUSES, type JobEvent, type JobRow } from '../../jobs/index.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const HEARTBEAT_MS = 15_000;
const JobId = Type.Object({ id: Type.String({ format: 'uuid' }) });

/** A job is visible to the wallet that started it. */
async function ownJob(ctx: NodeContext, request: FastifyRequest, id: string): Promise<JobRow> {
  const caller = requirePrincipal(request).address;
  const job = await ctx.jobs.get(id);
  if (job.owner !== caller) throw new OpenLedgerError('NOT_FOUND', `You have no job ${id}.`);
  return job;
}

export function jobRoutes(app: FastifyInstance, ctx: NodeContext): void {
  // Event streams never finish by themselves: end them when the node shuts down, so that the
  // server's close does not wait on them.
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  app.get(
    '/api/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: "The caller's jobs, newest first: status, latest progress, result or error",
        querystring: Type.Object({ kind: Type.Optional(Type.String({ maxLength: 64 })) }),
        response: errors(401),
      },
    },
    async (request) => {
      const { kind } = request.query as { kind?: string };
      return {
        jobs: await ctx.jobs.list({
          owner: requirePrincipal(request).address,
          ...(kind ? { kind } : {}),
        }),
      };
    },
  );

  app.get(
    '/api/jobs/:id',
    { schema: { tags: ['jobs'], summary: 'One job', params: JobId, response: errors(401, 404) } },
    async (request) => ownJob(ctx, request, (request.params as { id: string }).id),
  );

  app.get(
    '/api/jobs/:id/log',
    {
      schema: {
        tags: ['jobs'],
        summary:
          'The events a job has recorded so far, oldest first, as JSON (the history /events streams); `after` skips those up to an event id',
        params: JobId,
        querystring: Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })) }),
        response: errors(401, 404),
      },
    },
    async (request) => {
      const job = await ownJob(ctx, request, (request.params as { id: string }).id);
      const { after } = request.query as { after?: number };
      return { jobId: job.id, status: job.status, events: await ctx.jobs.eventsOf(job.id, after) };
    },
  );

  app.post(
    '/api/jobs/:id/cancel',
    {
      schema: {
        tags: ['jobs'],
        summary:
          'Cancel a job: at once when queued, as soon as its work notices when running (idempotent)',
        params: JobId,
        response: errors(401, 404),
      },
    },
    async (request) => {
      const job = await ownJob(ctx, request, (request.params as { id: string }).id);
      return ctx.jobs.cancel(job.id);
    },
  );

  app.get(
    '/api/jobs/:id/events',
    {
      schema: {
        tags: ['jobs'],
        summary:
          'Server-sent events of a job: its history (after Last-Event-ID), then live events until it ends. Event names are the event types (status, progress, metrics, log, checkpoint, …).',
        params: JobId,
        response: errors(401, 404),
      },
    },
    async (request, reply) => {
      const job = await ownJob(ctx, request, (request.params as { id: string }).id);
      const lastEventId = Number(request.headers['last-event-id'] ?? 0) || 0;
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let sentUpTo = lastEventId;
      let replaying = true;
      const pending: JobEvent[] = [];
      const deliver = (event: JobEvent) => {
        if (event.id <= sentUpTo || raw.writableEnded) return;
        sentUpTo = event.id;
        raw.write(
          `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify({ ...(event.data as object), at: event.at })}\n\n`,
        );
        if (
          event.type === 'status' &&
          TERMINAL_STATUSES.includes((event.data as { status: JobRow['status'] }).status)
        )
          end();
      };
      // Subscribe before reading the history, so no event falls between the two.
      const unsubscribe = ctx.jobs.subscribe(job.id, (event) =>
        replaying ? pending.push(event) : deliver(event),
      );
      const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
      const end = () => {
        unsubscribe();
        clearInterval(heartbeat);
        streams.delete(end);
        if (!raw.writableEnded) raw.end();
      };
      streams.add(end);
      request.raw.once('close', end);
      for (const event of await ctx.jobs.eventsOf(job.id, lastEventId)) deliver(event);
      replaying = false;
      for (const event of pending) deliver(event);
      if (
        TERMINAL_STATUSES.includes((await ctx.jobs.get(job.id)).status) &&
        pending.length === 0 &&
        !raw.writableEnded
      ) {
        // Already over and its last event delivered (or skipped by Last-Event-ID).
        end();
      }
    },
  );
}
