import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { schema } from '../src/db/index.ts';
import { call } from './helpers/http.ts';
import { startServingNode, writeTinyAdapter, type ServingNode } from './helpers/serving.ts';

/**
 * Scheduling: one request generating at a time and three waiting (a tiny node, so the limits
 * are reached), 429 with Retry-After beyond that, round-robin across adapters in the queue, and
 * a client that goes away stops its generation or leaves the queue.
 */
describe('OpenLoRA: scheduling, backpressure and cancellation', () => {
  let node: ServingNode;
  /** A prompt whose greedy completion runs to max_tokens (no end-of-sequence on the way). */
  let longPrompt: string;
  const LONG = 240;
  before(async () => {
    node = await startServingNode({ maxConcurrent: 1, maxQueue: 3, maxTokens: LONG });
    for (const name of ['x', 'y']) {
      const file = path.join(node.dataDir, `${name}.gguf`);
      await writeTinyAdapter(file, name === 'x' ? 1 : 2);
      await call(node.url, 'POST', '/v1/load_lora_adapter', {
        token: node.operatorKey,
        body: { lora_name: name, lora_path: file },
      });
    }

    for (const candidate of ['a', 'the', 'once upon', 'hello', 'sea and sky', 'zz', 'q']) {
      const answer = await complete(candidate, LONG);

      if (answer.body.usage.completion_tokens === LONG) {
        longPrompt = candidate;
        break;
      }
    }
    assert.ok(longPrompt, 'a prompt the random model completes at length');
  });
  after(async () => {
    await node?.close();
  });

  const complete = (prompt: string, maxTokens: number, model = 'tiny') =>
    call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: { model, prompt, max_tokens: maxTokens, temperature: 0 },
    });
  const scheduler = async () =>
    (await call(node.url, 'GET', '/v1/lora_adapters', { token: node.callerKey })).body.engine
      .scheduler as { running: number; queued: number };
  const until = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 400; i++) {
      if (await check()) return;
      await sleep(5);
    }
    assert.fail('timed out waiting');
  };

  it('refuses with 429 and Retry-After when the queue is full, then serves again', async () => {
    const running = complete(longPrompt, LONG);
    await until(async () => (await scheduler()).running === 1);
    const queued = [complete('a', 2), complete('b', 2), complete('c', 2)];
    await until(async () => (await scheduler()).queued === 3);
    const refused = await complete('c', 2);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.type, 'rate_limit_error');
    assert.equal(refused.body.error.code, 'rate_limit_exceeded');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    const answers = await Promise.all([running, ...queued]);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200],
    );
    assert.equal((await complete('d', 2)).status, 200);
  });

  it('serves the queue round-robin across adapters', async () => {
    const finished: string[] = [];
    const track = (label: string, model: string) =>
      complete(longPrompt, 4, model).then((answer) => {
        assert.equal(answer.status, 200);
        finished.push(label);
      });
    const first = complete(longPrompt, LONG);
    await until(async () => (await scheduler()).running === 1);
    const x1 = track('x1', 'x');
    await until(async () => (await scheduler()).queued === 1);
    const x2 = track('x2', 'x');
    await until(async () => (await scheduler()).queued === 2);
    await first;
    // x1 runs now; while it does, y arrives behind x2 and still goes before the next x
    await until(async () => (await scheduler()).queued === 1);
    const y1 = track('y1', 'y');
    const x3 = track('x3', 'x');
    await Promise.all([x1, x2, y1, x3]);
    assert.deepEqual(finished.slice(0, 1), ['x1']);
    assert.ok(
      finished.indexOf('y1') < finished.indexOf('x3'),
      `y1 was served before the third x: ${finished.join(', ')}`,
    );
  });

  it("attaches a queued request's adapter while it waits, so its turn starts warm", async () => {
    const file = path.join(node.dataDir, 'z.gguf');
    await writeTinyAdapter(file, 3);
    const loaded = await call(node.url, 'POST', '/v1/load_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name: 'z', lora_path: file },
    });
    assert.equal(loaded.status, 200);
    const prefetches = async () =>
      (await call(node.url, 'GET', '/v1/lora_adapters', { token: node.callerKey })).body.engine
        .bases[0].prefetches as number;
    const before = await prefetches();
    const running = complete(longPrompt, LONG);
    await until(async () => (await scheduler()).running === 1);
    const waiting = complete(longPrompt, 4, 'z');
    await until(async () => (await prefetches()) === before + 1);
    assert.equal((await scheduler()).queued, 1, 'attached while still queued');
    const [first, answer] = await Promise.all([running, waiting]);
    assert.equal(first.status, 200);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.openledger.timings.cold_adapters, false);
  });

  it('stops generating when a streaming client disconnects, and records what it used', async () => {
    const controller = new AbortController();
    const response = await fetch(`${node.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.callerKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        prompt: longPrompt,
        max_tokens: LONG,
        temperature: 0,
        stream: true,
      }),
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/event-stream/);
    const receiptId = response.headers.get('x-openledger-receipt-id')!;
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^data: \{/);
    controller.abort();

    const db = node.node.context.database.db;
    let row: typeof schema.inferenceUsage.$inferSelect | undefined;
    await until(async () => {
      [row] = await db
        .select()
        .from(schema.inferenceUsage)
        .where(eq(schema.inferenceUsage.id, receiptId));
      return row !== undefined;
    });
    assert.equal(row!.status, 'cancelled');
    assert.ok(row!.completionTokens < LONG, `${row!.completionTokens} tokens`);
    assert.equal((await scheduler()).running, 0);
  });

  it('drops a waiting request whose client went away', async () => {
    const running = complete(longPrompt, LONG);
    await until(async () => (await scheduler()).running === 1);
    const controller = new AbortController();
    const waiting = fetch(`${node.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.callerKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'abandoned', max_tokens: 4 }),
      signal: controller.signal,
    }).catch((error: unknown) => error);
    await until(async () => (await scheduler()).queued === 1);
    const before = await db().select().from(schema.inferenceUsage);
    controller.abort();
    await until(async () => (await scheduler()).queued === 0);
    assert.ok((await waiting) instanceof Error);
    assert.equal((await running).status, 200);
    const afterRows = await db().select().from(schema.inferenceUsage);
    assert.equal(afterRows.length, before.length + 1, 'only the running request was recorded');
  });

  const db = () => node.node.context.database.db;
});
