import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { sendError } from '../api/errors.ts';
import { openAiErrorBody } from '../api/routes/openai.ts';
import { OpenLedgerError } from '../errors.ts';
import { describeFailure, failedToConnect, NodePool, type NodeState } from './pool.ts';

/**
 * The router: one OpenAI-compatible endpoint in front of several OpenLedger nodes (or any
 * OpenAI-compatible servers). Generation and embedding calls go to a node chosen by adapter
 * affinity (src/serving/affinity.ts), so an adapter set keeps landing where it is already
 * attached and its contexts pooled; the body and the caller's Authorization go through
 * unchanged (each node authenticates and meters its own callers) and the answer, streamed or
 * not, is piped back as it comes.
 */

export interface RouterOptions {
  /** Base URLs of the nodes, normalised (`normalizeNodeUrl`). */
  nodes: string[];
  /** pino log level; logs are JSON lines on stderr. */
  logLevel: string;
  loadFactor?: number;
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
}

/** The same limit as a node's: a body the node would refuse is refused here. */
const BODY_LIMIT = 1024 * 1024;

/** Connection-level headers: they describe one hop, not the request or the answer. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  // fetch decompresses what it receives, so the length and encoding no longer apply.
  'content-encoding',
  'accept-encoding',
]);

interface JsonBody {
  raw: Buffer;
  json: unknown;
}

export interface Router {
  app: FastifyInstance;
  pool: NodePool;
}

export async function buildRouter(options: RouterOptions): Promise<Router> {
  if (options.nodes.length === 0) {
    throw new OpenLedgerError('CONFIG_INVALID', 'The router needs at least one node.', {
      hint: 'Name each node with --node <url>.',
    });
  }
  const pool = new NodePool(options.nodes, {
    loadFactor: options.loadFactor ?? 1.25,
    healthIntervalMs: options.healthIntervalMs ?? 5000,
    healthTimeoutMs: options.healthTimeoutMs ?? 2000,
  });
  const app = Fastify({
    logger: { level: options.logLevel, stream: process.stderr },
    bodyLimit: BODY_LIMIT,
  });
  const startedAt = Date.now();

  // The body is forwarded as the caller's bytes; it is parsed only to read the routing key.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    (_request, raw: Buffer, done) => {
      try {
        done(null, { raw, json: JSON.parse(raw.toString('utf8')) } satisfies JsonBody);
      } catch (error) {
        done(
          new OpenLedgerError(
            'BAD_REQUEST',
            `The body is not valid JSON: ${(error as Error).message}`,
          ),
          undefined,
        );
      }
    },
  );

  app.setErrorHandler((error, request, reply) => sendRouterError(request, reply, error));
  app.setNotFoundHandler((request, reply) =>
    sendRouterError(
      request,
      reply,
      new OpenLedgerError(
        'ROUTE_NOT_FOUND',
        `No route ${request.method} ${request.url.split('?')[0]}.`,
        {
          hint: request.url.startsWith('/api')
            ? 'The router serves the OpenAI-compatible /v1 API only; call a node directly for /api.'
            : 'The router serves /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/load_lora_adapter, /v1/unload_lora_adapter, /router/status and /healthz.',
        },
      ),
    ),
  );
  app.addHook('onClose', async () => pool.stop());

  app.get('/healthz', async (_request, reply) => {
    const healthy = pool.nodes.filter((n) => n.healthy).length;
    return reply.status(healthy > 0 ? 200 : 503).send({
      status: healthy > 0 ? 'ok' : 'degraded',
      nodes: { healthy, total: pool.nodes.length },
    });
  });

  app.get('/router/status', async () => ({
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    loadFactor: pool.options.loadFactor,
    healthIntervalMs: pool.options.healthIntervalMs,
    nodes: pool.nodes.map((n) => ({
      url: n.id,
      healthy: n.healthy,
      inFlight: n.inFlight,
      served: n.served,
      errors: n.errors,
      lastError: n.lastError,
      lastCheckAt: n.lastCheckAt,
      lastCheckMs: n.lastCheckMs,
    })),
  }));

  for (const endpoint of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']) {
    app.post(endpoint, async (request, reply) => {
      const body = request.body as JsonBody | undefined;
      return forward(pool, request, reply, routingKey(readRoute(body?.json)), body!.raw);
    });
  }

  app.get('/v1/models', async (request, reply) => listModels(pool, request, reply));

  for (const endpoint of ['/v1/load_lora_adapter', '/v1/unload_lora_adapter']) {
    app.post(endpoint, async (request, reply) => {
      const body = request.body as JsonBody | undefined;
      if (!body || typeof body.json !== 'object' || body.json === null) {
        throw new OpenLedgerError('VALIDATION_FAILED', 'The body must be a JSON object.');
      }
      return broadcast(pool, request, reply, body.raw);
    });
  }

  await pool.start();
  await app.ready();
  return { app, pool };
}

/** What routing reads from a body: `model` and the adapters composed with it. */
export interface Route {
  model: string;
  adapters: { id: string; weight?: number }[];
}

/** Reads `model` and `adapters`, refusing a body that cannot be routed with a clear 400. */
export function readRoute(json: unknown): Route {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new OpenLedgerError('VALIDATION_FAILED', 'The body must be a JSON object.', {
      details: { field: 'body' },
    });
  }
  const { model, adapters } = json as { model?: unknown; adapters?: unknown };
  if (typeof model !== 'string' || model.length === 0) {
    throw new OpenLedgerError('VALIDATION_FAILED', '`model` must be a non-empty string.', {
      hint: 'Name a base model, a Model ID (model:<id>) or an adapter; GET /v1/models lists them.',
      details: { field: 'model' },
    });
  }
  if (adapters === undefined || adapters === null) return { model, adapters: [] };
  const valid =
    Array.isArray(adapters) &&
    adapters.every(
      (a: unknown) =>
        typeof a === 'object' &&
        a !== null &&
        typeof (a as { id?: unknown }).id === 'string' &&
        ['number', 'undefined'].includes(typeof (a as { weight?: unknown }).weight),
    );
  if (!valid) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      '`adapters` must be an array of { "id": string, "weight"?: number }.',
      { details: { field: 'adapters' } },
    );
  }
  return { model, adapters: adapters as Route['adapters'] };
}

/**
 * The routing key of a request: the model and its adapter set, as the runtime pools contexts
 * (`setKey` in src/serving/runtime.ts): an adapter named twice counts once at the summed weight,
 * and the order they are written in does not matter.
 */
export function routingKey(route: Route): string {
  const weights = new Map<string, number>();
  for (const a of route.adapters) weights.set(a.id, (weights.get(a.id) ?? 0) + (a.weight ?? 1));
  const set = [...weights]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, weight]) => `${id}*${weight}`)
    .join('+');
  return set ? `${route.model}|${set}` : route.model;
}

function forwardHeaders(request: FastifyRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name.startsWith('x-forwarded-')) continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const forwardedFor = request.headers['x-forwarded-for'];
  headers.set('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${request.ip}` : request.ip);
  headers.set('x-forwarded-host', request.headers.host ?? '');
  headers.set('x-forwarded-proto', request.protocol);
  return headers;
}

/**
 * Sends the request to the key's node and pipes the answer back. One retry, on the next node
 * in affinity order, when the first could not be connected to or answered 429 — both before
 * any byte went to the client and before the node generated anything, so nothing is metered
 * twice. Any other failure is the caller's answer.
 */
async function forward(
  pool: NodePool,
  request: FastifyRequest,
  reply: FastifyReply,
  key: string,
  raw: Buffer,
): Promise<FastifyReply> {
  const candidates = pool.candidates(key).slice(0, 2);
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('the client disconnected'));
  });
  const failures: string[] = [];
  for (const [i, node] of candidates.entries()) {
    const last = i === candidates.length - 1;
    node.inFlight++;
    let response: Response;
    try {
      response = await fetch(`${node.id}${request.url}`, {
        method: request.method,
        headers: forwardHeaders(request),
        body: raw,
        signal: controller.signal,
      });
    } catch (error) {
      node.inFlight--;
      if (controller.signal.aborted) {
        // Nobody reads this answer; it only ends the request in the log.
        throw new OpenLedgerError('BAD_REQUEST', 'The client closed the request.');
      }
      failures.push(`${node.id}: ${describeFailure(error)}`);
      if (failedToConnect(error)) {
        pool.unreachable(node, error);
        request.log.warn({ node: node.id, err: describeFailure(error) }, 'node unreachable');
        continue;
      }
      pool.failed(node, describeFailure(error));
      throw new OpenLedgerError(
        'NODE_FAILED',
        `Node ${node.id} failed: ${describeFailure(error)}.`,
      );
    }
    if (response.status === 429 && !last) {
      request.log.info({ node: node.id }, 'node answered 429; trying the next node');
      await response.body?.cancel();
      node.inFlight--;
      node.served++;
      continue;
    }
    return pipeAnswer(pool, node, response, reply);
  }
  throw new OpenLedgerError('NO_NODE_AVAILABLE', 'No node behind the router could be reached.', {
    hint: 'GET /router/status shows each node and its last error.',
    details: { failures },
  });
}

/** Status, headers and body of the node's answer, as they arrive (no buffering). */
async function pipeAnswer(
  pool: NodePool,
  node: NodeState,
  response: Response,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  });
  headers['x-openledger-node'] = node.id;
  if (response.status >= 500) pool.failed(node, `answered ${response.status}`);
  reply.hijack();
  reply.raw.writeHead(response.status, headers);
  // A stream's status line and headers go out now, before its first event.
  reply.raw.flushHeaders();
  try {
    if (response.body) await pipeline(Readable.fromWeb(response.body), reply.raw);
    else reply.raw.end();
  } catch (error) {
    // The client left (the upstream request is aborted with it) or the node broke off mid-answer.
    if (!reply.raw.destroyed) {
      pool.failed(node, `the answer broke off: ${describeFailure(error)}`);
      reply.raw.destroy();
    }
    reply.log.info({ node: node.id, err: describeFailure(error) }, 'answer not completed');
  } finally {
    node.inFlight--;
    node.served++;
  }
  return reply;
}

/** `GET /v1/models` of every healthy node, merged: the first node to list an id describes it. */
async function listModels(
  pool: NodePool,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const answers = await Promise.all(
    pool.usable().map((node) => ask(pool, node, request, 'GET', undefined)),
  );
  const ok = answers.filter((a) => a.status === 200);
  if (ok.length === 0) return sendFirstFailure(answers, reply);
  const seen = new Set<string>();
  const data: unknown[] = [];
  for (const answer of ok) {
    for (const model of (answer.body as { data?: { id?: unknown }[] }).data ?? []) {
      const id = String(model.id);
      if (seen.has(id)) continue;
      seen.add(id);
      data.push(model);
    }
  }
  return { object: 'list', data };
}

/**
 * Load or unload an adapter name on every node: a name must mean the same adapter wherever
 * its requests land. The answer is the first node's, with each node's status in `nodes`.
 */
async function broadcast(
  pool: NodePool,
  request: FastifyRequest,
  reply: FastifyReply,
  raw: Buffer,
): Promise<unknown> {
  const answers = await Promise.all(
    pool.nodes.map((node) => ask(pool, node, request, 'POST', raw)),
  );
  const nodes = answers.map((a) => ({
    node: a.node.id,
    status: a.status,
    ...(a.status === 200 ? {} : { error: errorMessage(a) }),
  }));
  const ok = answers.filter((a) => a.status === 200);
  if (ok.length === answers.length) return { ...(ok[0]!.body as object), nodes };
  if (ok.length === 0) return sendFirstFailure(answers, reply, nodes);
  const failed = nodes.filter((n) => n.status !== 200);
  throw new OpenLedgerError(
    'BROADCAST_INCOMPLETE',
    `Done on ${ok.length} of ${answers.length} nodes; ${failed
      .map((n) => `${n.node} answered ${n.status || 'nothing'}: ${n.error}`)
      .join('; ')}.`,
    {
      hint: 'Fix or restart those nodes and send the same request again (loading a name twice is harmless).',
      details: { nodes },
    },
  );
}

interface Answer {
  node: NodeState;
  /** 0 when the node could not be reached. */
  status: number;
  body: unknown;
  headers: Headers | undefined;
}

/** One small JSON call to a node with the caller's credentials; never throws. */
async function ask(
  pool: NodePool,
  node: NodeState,
  request: FastifyRequest,
  method: string,
  raw: Buffer | undefined,
): Promise<Answer> {
  try {
    const response = await fetch(`${node.id}${request.url}`, {
      method,
      headers: forwardHeaders(request),
      ...(raw ? { body: raw } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text for the error message
    }
    if (response.status >= 500) pool.failed(node, `${request.url} answered ${response.status}`);
    return { node, status: response.status, body, headers: response.headers };
  } catch (error) {
    if (failedToConnect(error)) pool.unreachable(node, error);
    else pool.failed(node, describeFailure(error));
    return { node, status: 0, body: describeFailure(error), headers: undefined };
  }
}

function errorMessage(answer: Answer): string {
  const error = (answer.body as { error?: { message?: unknown } } | undefined)?.error;
  if (typeof error?.message === 'string') return error.message;
  return typeof answer.body === 'string' ? answer.body.slice(0, 200) : 'no answer';
}

/** Every node refused: the first node's own error answer (its status, Retry-After and body). */
function sendFirstFailure(answers: Answer[], reply: FastifyReply, nodes?: unknown): FastifyReply {
  const answered = answers.find((a) => a.status !== 0);
  if (!answered) {
    throw new OpenLedgerError('NO_NODE_AVAILABLE', 'No node behind the router could be reached.', {
      hint: 'GET /router/status shows each node and its last error.',
      details: { failures: answers.map((a) => `${a.node.id}: ${String(a.body)}`) },
    });
  }
  const retryAfter = answered.headers?.get('retry-after');
  if (retryAfter) reply.header('retry-after', retryAfter);
  reply.header('x-openledger-node', answered.node.id);
  const body =
    typeof answered.body === 'object' && answered.body !== null
      ? { ...answered.body, ...(nodes ? { nodes } : {}) }
      : {
          error: { message: String(answered.body), type: 'server_error', param: null, code: null },
        };
  return reply.status(answered.status).send(body);
}

/** Errors in OpenAI's shape under /v1 (as a node answers them), the node's shape elsewhere. */
function sendRouterError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
): FastifyReply {
  return sendError(
    request,
    reply,
    error,
    request.url.startsWith('/v1/') ? openAiErrorBody : undefined,
  );
}
