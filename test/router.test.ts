import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { schema } from '../src/db/index.ts';
import { routingKey, startRouter, type RunningRouter } from '../src/router/index.ts';
import { rankByAffinity } from '../src/serving/affinity.ts';
import { call } from './helpers/http.ts';
import { startServingNode, writeTinyAdapter, type ServingNode } from './helpers/serving.ts';

/**
 * The router in front of two real serving nodes: adapter names broadcast to both, each adapter
 * set served by the same node every time and the sets spread over both, a stream through the
 * official `openai` client, a node answering 429 retried on the other, a stopped node routed
 * around, and bad bodies refused with a clear 400.
 */
describe('router: several nodes behind adapter-affinity routing', () => {
  let a: ServingNode;
  let b: ServingNode;
  let bClosed = false;
  let router: RunningRouter;
  let adapterDir: string;
  const ADAPTERS = ['style-0', 'style-1', 'style-2', 'style-3'];
  const others: { close(): Promise<void> }[] = [];

  before(async () => {
    [a, b] = await Promise.all([
      startServingNode({ maxTokens: 32 }),
      startServingNode({ maxTokens: 32 }),
    ]);
    await shareApiKeys(a, b);
    router = await startRouter({
      nodes: [a.url, b.url],
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      healthIntervalMs: 60_000,
    });
    adapterDir = await mkdtemp(path.join(tmpdir(), 'openledger-router-'));
    await Promise.all(
      ADAPTERS.map((name, i) => writeTinyAdapter(path.join(adapterDir, `${name}.gguf`), i + 1)),
    );
  });
  after(async () => {
    for (const o of others) await o.close();
    await router?.close();
    await a?.close();
    if (!bClosed) await b?.close();
    if (adapterDir) await rm(adapterDir, { recursive: true, force: true });
  });

  it('broadcasts load_lora_adapter to every node and merges /v1/models', async () => {
    for (const name of ADAPTERS) {
      const loaded = await call(router.url, 'POST', '/v1/load_lora_adapter', {
        token: a.operatorKey,
        body: { lora_name: name, lora_path: path.join(adapterDir, `${name}.gguf`) },
      });
      assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
      assert.equal(loaded.body.name, name);
      assert.deepEqual(
        loaded.body.nodes.map((n: { node: string; status: number }) => [n.node, n.status]),
        [
          [a.url, 200],
          [b.url, 200],
        ],
      );
    }
    // A caller is no operator: each node refuses, and the router passes the refusal on.
    const refused = await call(router.url, 'POST', '/v1/load_lora_adapter', {
      token: a.callerKey,
      body: { lora_name: 'x', lora_path: path.join(adapterDir, 'style-0.gguf') },
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.type, 'permission_error');

    const models = await call(router.url, 'GET', '/v1/models', { token: a.callerKey });
    assert.equal(models.status, 200);
    const ids: string[] = models.body.data.map((m: { id: string }) => m.id);
    assert.equal(ids.filter((id) => id === 'tiny').length, 1, 'deduplicated by id');
    for (const name of ADAPTERS) assert.ok(ids.includes(name), ids.join());
    const anonymous = await call(router.url, 'GET', '/v1/models');
    assert.equal(anonymous.status, 401, 'the nodes authenticate; the router passes that on');
  });

  it('serves an adapter set on the same node every time and spreads sets over both', async () => {
    const nodes = [a.url, b.url];
    const served = new Map<string, Set<string>>();
    for (const name of ADAPTERS) {
      for (const weight of [0.5, 0.75, 1, 1.5]) {
        const body = {
          model: 'tiny',
          adapters: [{ id: name, weight }],
          prompt: 'hello',
          max_tokens: 2,
        };
        const key = routingKey({ model: 'tiny', adapters: body.adapters });
        for (let i = 0; i < 2; i++) {
          const answer = await call(router.url, 'POST', '/v1/completions', {
            token: a.callerKey,
            body,
          });
          assert.equal(answer.status, 200, JSON.stringify(answer.body));
          assert.equal(answer.body.openledger.adapters[0].name, name);
          const node = answer.headers.get('x-openledger-node')!;
          assert.equal(node, rankByAffinity(key, nodes)[0], 'the rendezvous winner serves it');
          served.set(key, (served.get(key) ?? new Set()).add(node));
          assert.ok(answer.headers.get('x-openledger-receipt-id'), 'node headers pass through');
        }
      }
    }
    for (const [key, set] of served) assert.equal(set.size, 1, `${key} went to ${[...set]}`);
    const used = new Set([...served.values()].map((s) => [...s][0]));
    assert.equal(used.size, 2, '16 adapter sets over 2 nodes use both');

    const status = await call(router.url, 'GET', '/router/status');
    assert.equal(status.status, 200);
    const total = status.body.nodes.reduce(
      (sum: number, n: { served: number }) => sum + n.served,
      0,
    );
    assert.equal(total, 32);
    for (const n of status.body.nodes) {
      assert.equal(n.healthy, true);
      assert.equal(n.inFlight, 0);
    }
    const health = await call(router.url, 'GET', '/healthz');
    assert.deepEqual(health.body, { status: 'ok', nodes: { healthy: 2, total: 2 } });
  });

  it('streams a chat completion through the official openai client, with usage', async () => {
    const client = new OpenAI({ apiKey: a.callerKey, baseURL: `${router.url}/v1`, maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions
      .create({
        model: 'style-1',
        messages: [{ role: 'user', content: 'tell me a story' }],
        max_tokens: 12,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    assert.match(response.headers.get('content-type')!, /^text\/event-stream/);
    assert.equal(
      response.headers.get('x-openledger-node'),
      rankByAffinity(routingKey({ model: 'style-1', adapters: [] }), [a.url, b.url])[0],
    );
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(chunks >= 3, `${chunks} chunks`);
    assert.ok(text.length > 0);
    assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 12);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  });

  it('refuses bodies it cannot route with a clear 400, and other paths with a 404', async () => {
    const noModel = await call(router.url, 'POST', '/v1/chat/completions', {
      token: a.callerKey,
      body: { messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal(noModel.status, 400);
    assert.equal(noModel.body.error.code, 'validation_failed');
    assert.equal(noModel.body.error.param, 'model');
    assert.match(noModel.body.error.message, /`model` must be a non-empty string/);

    const badAdapters = await call(router.url, 'POST', '/v1/completions', {
      token: a.callerKey,
      body: { model: 'tiny', prompt: 'x', adapters: [{ weight: 1 }] },
    });
    assert.equal(badAdapters.status, 400);
    assert.equal(badAdapters.body.error.param, 'adapters');

    const notJson = await call(router.url, 'POST', '/v1/completions', {
      token: a.callerKey,
      body: '{"model": "tiny",',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.type, 'invalid_request_error');
    assert.match(notJson.body.error.message, /not valid JSON/);

    // What only the node can judge is the node's answer, passed through.
    const unknown = await call(router.url, 'POST', '/v1/completions', {
      token: a.callerKey,
      body: { model: 'no-such-model', prompt: 'x' },
    });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'model_not_found');
    assert.ok(unknown.headers.get('x-openledger-node'));

    const api = await call(router.url, 'GET', '/api/status');
    assert.equal(api.status, 404);
    assert.equal(api.body.error.code, 'ROUTE_NOT_FOUND');
    assert.match(api.body.error.hint, /call a node directly/);
  });

  it('retries a 429 on the next node, with the same body; a lone 429 passes through', async () => {
    const received: string[] = [];
    const busy = createServer((request, response) => {
      let body = '';
      request.on('data', (c: Buffer) => (body += c.toString()));
      request.on('end', () => {
        if (request.url === '/healthz') return response.end('{"status":"ok"}');
        received.push(body);
        response.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
        response.end(
          JSON.stringify({
            error: { message: 'busy', type: 'rate_limit_error', param: null, code: 'x' },
          }),
        );
      });
    });
    const busyUrl = await listen(busy);
    others.push({ close: () => closeServer(busy) });
    const pair = await startRouter({
      nodes: [busyUrl, a.url],
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
    });
    others.push(pair);
    // A weight whose key ranks the busy server first.
    const weight = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.2, 1.3].find(
      (w) =>
        rankByAffinity(routingKey({ model: 'tiny', adapters: [{ id: 'style-2', weight: w }] }), [
          busyUrl,
          a.url,
        ])[0] === busyUrl,
    )!;
    const raw = JSON.stringify({
      model: 'tiny',
      adapters: [{ id: 'style-2', weight }],
      prompt: 'retry me',
      max_tokens: 2,
    });
    const answer = await call(pair.url, 'POST', '/v1/completions', {
      token: a.callerKey,
      body: raw,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.headers.get('x-openledger-node'), a.url);
    assert.deepEqual(received, [raw], 'the busy node saw the same bytes once');

    const alone = await startRouter({
      nodes: [busyUrl],
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
    });
    others.push(alone);
    const limited = await call(alone.url, 'POST', '/v1/completions', {
      token: a.callerKey,
      body: { model: 'tiny', prompt: 'x' },
    });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    assert.equal(limited.body.error.type, 'rate_limit_error');
  });

  it('pipes a stream as it comes and aborts the upstream request when the client leaves', async () => {
    // An upstream that sends one event and then holds the stream open until its client goes.
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const slow = createServer((request, response) => {
      if (request.url === '/healthz') return response.end('{"status":"ok"}');
      request.resume();
      response.writeHead(200, { 'content-type': 'text/event-stream', 'x-upstream': 'slow' });
      response.write('data: {"first":true}\n\n');
      response.on('close', () => upstreamClosed());
    });
    const slowUrl = await listen(slow);
    others.push({ close: () => closeServer(slow) });
    const alone = await startRouter({
      nodes: [slowUrl],
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
    });
    others.push(alone);
    const controller = new AbortController();
    const response = await fetch(`${alone.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [], stream: true }),
      signal: controller.signal,
    });
    assert.equal(response.headers.get('x-upstream'), 'slow');
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /"first":true/);
    controller.abort();
    await closed;
    const status = await call(alone.url, 'GET', '/router/status');
    assert.equal(status.body.nodes[0].served + status.body.nodes[0].inFlight, 1);
  });

  it('routes around a stopped node, and says so in /router/status', async () => {
    // Adapter sets node B served: after it stops, each goes to A.
    const setsOnB = ADAPTERS.flatMap((id) =>
      [0.5, 0.75, 1, 1.5].map((weight) => ({ model: 'tiny', adapters: [{ id, weight }] })),
    ).filter((route) => rankByAffinity(routingKey(route), [a.url, b.url])[0] === b.url);
    assert.ok(setsOnB.length > 0);
    await b.close();
    bClosed = true;
    for (const route of setsOnB.slice(0, 4)) {
      const answer = await call(router.url, 'POST', '/v1/completions', {
        token: a.callerKey,
        body: { ...route, prompt: 'still there?', max_tokens: 2 },
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.headers.get('x-openledger-node'), a.url);
    }
    const status = await call(router.url, 'GET', '/router/status');
    const nodeB = status.body.nodes.find((n: { url: string }) => n.url === b.url);
    assert.equal(nodeB.healthy, false);
    assert.match(nodeB.lastError.message, /ECONNREFUSED/);

    // A broadcast that reaches only some nodes says which, as an error.
    const unloaded = await call(router.url, 'POST', '/v1/unload_lora_adapter', {
      token: a.operatorKey,
      body: { lora_name: 'style-3' },
    });
    assert.equal(unloaded.status, 502);
    assert.equal(unloaded.body.error.code, 'broadcast_incomplete');
    assert.match(unloaded.body.error.message, /Done on 1 of 2 nodes/);
  });
});

/**
 * Makes node A's API keys valid on node B, as nodes sharing one user database (or one key
 * provisioning) would: the router passes Authorization through and each node checks it.
 */
async function shareApiKeys(from: ServingNode, to: ServingNode): Promise<void> {
  const source = from.node.context.database.db;
  const target = to.node.context.database.db;
  const keys = await source.select().from(schema.apiKeys);
  for (const key of keys) {
    await target.insert(schema.accounts).values({ address: key.address }).onConflictDoNothing();
    await target.insert(schema.apiKeys).values(key);
  }
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
