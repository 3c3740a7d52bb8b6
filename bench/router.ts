/**
 * Router overhead per request: the same small requests sent straight to a serving node and
 * through the router (src/router) in front of it, interleaved in one run so that both see the
 * same machine load, node state and warm adapters.
 *
 *   node --import tsx bench/router.ts [--requests 200] [--json]
 *
 * Two kinds of request: a non-streamed completion (max_tokens 4; total time) and a streamed
 * chat completion (time to its first content event). The node is the tiny random llama of the
 * serving tests with one adapter; the router and the node run in this one process (so the
 * router's CPU time is in the figures, as it would be on a shared host).
 * Markdown goes to stdout (progress to stderr); with --json, one JSON document instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startRouter } from '../src/router/index.ts';
import { startServingNode, writeTinyAdapter } from '../test/helpers/serving.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
  },
});
const requests = Number(values.requests);
const log = (line: string) => process.stderr.write(`${line}\n`);

log('starting a serving node and the router…');
const node = await startServingNode({ maxTokens: 16, maxConcurrent: 2 });
const router = await startRouter({
  nodes: [node.url],
  host: '127.0.0.1',
  port: 0,
  logLevel: 'silent',
});
const dir = await mkdtemp(path.join(tmpdir(), 'openledger-bench-router-'));
await writeTinyAdapter(path.join(dir, 'bench.gguf'), 1);
const loaded = await fetch(`${router.url}/v1/load_lora_adapter`, {
  method: 'POST',
  headers: { authorization: `Bearer ${node.operatorKey}`, 'content-type': 'application/json' },
  body: JSON.stringify({ lora_name: 'bench', lora_path: path.join(dir, 'bench.gguf') }),
});
if (loaded.status !== 200) throw new Error(`load_lora_adapter: ${await loaded.text()}`);

const headers = { authorization: `Bearer ${node.callerKey}`, 'content-type': 'application/json' };
const completion = JSON.stringify({
  model: 'bench',
  prompt: 'The router adds',
  max_tokens: 4,
  temperature: 0,
});
const chat = JSON.stringify({
  model: 'bench',
  messages: [{ role: 'user', content: 'hello' }],
  max_tokens: 4,
  stream: true,
});

/** Milliseconds to the whole answer (non-streamed) or to the first content event (streamed). */
async function timed(base: string, kind: 'completion' | 'stream'): Promise<number> {
  const started = performance.now();
  const response = await fetch(
    `${base}${kind === 'completion' ? '/v1/completions' : '/v1/chat/completions'}`,
    { method: 'POST', headers, body: kind === 'completion' ? completion : chat },
  );
  if (response.status !== 200)
    throw new Error(`${base}: ${response.status} ${await response.text()}`);
  if (kind === 'completion') {
    await response.arrayBuffer();
    return performance.now() - started;
  }
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let first: number | undefined;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    // The first event after the role chunk carries content.
    if (first === undefined && (text.match(/^data: /gm)?.length ?? 0) >= 2)
      first = performance.now();
  }
  return (first ?? performance.now()) - started;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const round = (x: number) => Math.round(x * 100) / 100;

interface Row {
  kind: string;
  requests: number;
  direct: { p50: number; p95: number; mean: number };
  router: { p50: number; p95: number; mean: number };
  added: { p50: number; p95: number };
  ratio: { p50: number; p95: number };
}

const rows: Row[] = [];
const started = performance.now();
for (const kind of ['completion', 'stream'] as const) {
  // Warm both paths: keep-alive connections, the adapter attached, a pooled context.
  for (let i = 0; i < 20; i++) {
    await timed(node.url, kind);
    await timed(router.url, kind);
  }
  const direct: number[] = [];
  const routed: number[] = [];
  for (let i = 0; i < requests; i++) {
    // Alternate which goes first, so neither path always follows the other.
    if (i % 2 === 0) {
      direct.push(await timed(node.url, kind));
      routed.push(await timed(router.url, kind));
    } else {
      routed.push(await timed(router.url, kind));
      direct.push(await timed(node.url, kind));
    }
  }
  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((x, y) => x - y);
    return {
      p50: round(percentile(sorted, 50)),
      p95: round(percentile(sorted, 95)),
      mean: round(xs.reduce((s, x) => s + x, 0) / xs.length),
    };
  };
  const d = stats(direct);
  const r = stats(routed);
  rows.push({
    kind:
      kind === 'completion'
        ? 'completion, max_tokens 4 (whole answer)'
        : 'chat stream (first content event)',
    requests,
    direct: d,
    router: r,
    added: { p50: round(r.p50 - d.p50), p95: round(r.p95 - d.p95) },
    ratio: { p50: round(r.p50 / d.p50), p95: round(r.p95 / d.p95) },
  });
  log(`${kind}: done`);
}
const seconds = round((performance.now() - started) / 1000);

await router.close();
await node.close();
await rm(dir, { recursive: true, force: true });

if (values.json) {
  process.stdout.write(`${JSON.stringify({ rows, seconds }, null, 2)}\n`);
} else {
  const lines = [
    `Router overhead, ${requests} requests per path and kind, interleaved (${seconds} s):`,
    '',
    '| request | direct p50 ms | direct p95 ms | router p50 ms | router p95 ms | added p50 ms | added p95 ms | ratio p50 | ratio p95 |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.kind} | ${r.direct.p50} | ${r.direct.p95} | ${r.router.p50} | ${r.router.p95} | ${r.added.p50} | ${r.added.p95} | ${r.ratio.p50} | ${r.ratio.p95} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
