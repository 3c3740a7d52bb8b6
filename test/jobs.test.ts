import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { devAccount } from '../src/chain/index.ts';
import { OpenLedgerError } from '../src/errors.ts';
import { JobRunner, type JobContext } from '../src/jobs/index.ts';
import { call, signIn } from './helpers/http.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';

interface SseEvent {
  id: number;
  event: string;
  data: Record<string, unknown>;
}

/** Reads a server-sent event stream to its end (the server closes it when the job ends). */
async function readEvents(url: string, token: string, lastEventId?: number): Promise<SseEvent[]> {
  const response = await fetch(url, {
    headers: {
      authorization: `Bearer ${token}`,
      ...(lastEventId ? { 'last-event-id': String(lastEventId) } : {}),
    },
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('id:'))
    .map((block) => {
      const field = (name: string) =>
        block
          .split('\n')
          .find((l) => l.startsWith(`${name}: `))!
          .slice(name.length + 2);
      return {
        id: Number(field('id')),
        event: field('event'),
        data: JSON.parse(field('data')) as Record<string, unknown>,
      };
    });
}

/** A job that counts to `steps`, checkpointing each step, and stops when asked to. */
async function counter(context: JobContext<{ steps: number; failAt?: number; delayMs?: number }>) {
  await context.setStatus('running');
  let step = context.checkpoint
    ? (JSON.parse(context.checkpoint.toString()) as { step: number }).step
    : 0;
  const resumedFrom = step;
  while (step < context.params.steps) {
    context.signal.throwIfAborted();
    await sleep(context.params.delayMs ?? 5);
    step += 1;
    if (step === context.params.failAt)
      throw new OpenLedgerError('VALIDATION_FAILED', `step ${step} failed`);
    await context.emit('progress', { step, of: context.params.steps });
    await context.saveCheckpoint(Buffer.from(JSON.stringify({ step })));
  }
  return { counted: step, resumedFrom };
}

describe('jobs', () => {
  let node: TestNode;
  let token: string;
  let runner: JobRunner;
  const owner = devAccount(1).address;

  before(async () => {
    node = await startTestNode();
    runner = node.node.context.jobs;
    runner.register('test.counter', counter);
    token = await signIn(node.url, devAccount(1));
  });
  after(() => node?.close());

  it('runs a job to the end and streams its typed events over SSE', async () => {
    const job = await runner.submit('test.counter', owner, { steps: 3 });
    const events = await readEvents(`${node.url}/api/jobs/${job.id}/events`, token);
    const statuses = events.filter((e) => e.event === 'status').map((e) => e.data.status);
    assert.deepEqual(statuses, ['queued', 'validating', 'running', 'succeeded']);
    assert.deepEqual(
      events.filter((e) => e.event === 'progress').map((e) => e.data.step),
      [1, 2, 3],
    );
    assert.equal(events.filter((e) => e.event === 'checkpoint').length, 3);
    const done = (await call(node.url, 'GET', `/api/jobs/${job.id}`, { token })).body;
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.result, { counted: 3, resumedFrom: 0 });
    assert.deepEqual(done.progress, { step: 3, of: 3 });

    // Replay after a given event: only what came after it.
    const third = events[2]!.id;
    const rest = await readEvents(`${node.url}/api/jobs/${job.id}/events`, token, third);
    assert.deepEqual(
      rest.map((e) => e.id),
      events.slice(3).map((e) => e.id),
    );
    const listed = (await call(node.url, 'GET', '/api/jobs', { token })).body.jobs;
    assert.ok(listed.some((j: { id: string }) => j.id === job.id));
  });

  it('cancels a running job and a queued one, and records failures with their code', async () => {
    const long = await runner.submit('test.counter', owner, { steps: 10_000, delayMs: 10 });
    const queued = await runner.submit('test.counter', owner, { steps: 1 });
    while ((await runner.get(long.id)).status !== 'running') await sleep(10);
    const cancelledQueued = await call(node.url, 'POST', `/api/jobs/${queued.id}/cancel`, {
      token,
      body: {},
    });
    assert.equal(cancelledQueued.body.status, 'cancelled');
    await call(node.url, 'POST', `/api/jobs/${long.id}/cancel`, { token, body: {} });
    const events = await readEvents(`${node.url}/api/jobs/${long.id}/events`, token);
    assert.equal(events.at(-1)!.data.status, 'cancelled');
    assert.equal((await runner.get(long.id)).status, 'cancelled');
    const again = await call(node.url, 'POST', `/api/jobs/${long.id}/cancel`, { token, body: {} });
    assert.equal(again.body.status, 'cancelled', 'cancelling twice is harmless');

    const failing = await runner.submit('test.counter', owner, { steps: 5, failAt: 2 });
    const failed = await readEvents(`${node.url}/api/jobs/${failing.id}/events`, token);
    assert.deepEqual(failed.at(-1)!.data.error, {
      code: 'VALIDATION_FAILED',
      message: 'step 2 failed',
    });
    assert.equal((await runner.get(failing.id)).status, 'failed');
  });

  it("keeps a wallet's jobs to itself", async () => {
    const job = await runner.submit('test.counter', owner, { steps: 1 });
    const other = await signIn(node.url, devAccount(2));
    const answer = await call(node.url, 'GET', `/api/jobs/${job.id}`, { token: other });
    assert.equal(answer.status, 404);
    assert.equal(
      (await call(node.url, 'POST', `/api/jobs/${job.id}/cancel`, { token: other, body: {} }))
        .status,
      404,
    );
    assert.equal((await call(node.url, 'GET', `/api/jobs/${job.id}`)).status, 401);
  });

  it('resumes an interrupted job from its last checkpoint after a restart', async () => {
    const job = await runner.submit('test.counter', owner, { steps: 40, delayMs: 15 });
    while (((await runner.get(job.id)).progress as { step?: number } | null)?.step === undefined)
      await sleep(10);
    await sleep(60);
    await runner.stop(); // as at shutdown: the job goes back to the queue
    const interrupted = await runner.get(job.id);
    assert.equal(interrupted.status, 'queued');
    const reached = (interrupted.progress as { step: number }).step;
    assert.ok(reached > 0 && reached < 40);

    // A new runner over the same database, as a restarted node would have.
    const restarted = new JobRunner({
      db: node.node.context.database.db,
      blobs: node.node.context.blobs,
    });
    restarted.register('test.counter', counter);
    await restarted.start();
    while (!['succeeded', 'failed'].includes((await restarted.get(job.id)).status)) await sleep(20);
    const finished = await restarted.get(job.id);
    assert.equal(finished.status, 'succeeded');
    const result = finished.result as { counted: number; resumedFrom: number };
    assert.equal(result.counted, 40);
    assert.ok(
      result.resumedFrom >= reached,
      `resumed from ${result.resumedFrom}, had reached ${reached}`,
    );
    assert.equal(finished.attempts, 2);
    await restarted.stop();
  });
});
