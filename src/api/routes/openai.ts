import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import {
  citationView,
  finishRag,
  prepareRag,
  recordRagAnswer,
  sourceView,
  type FinishedRag,
  type PreparedRag,
} from '../../rag/answer.ts';
import { AGENT_PREFIX } from '../../market/agents.ts';
import { RAG_MAX_K } from '../../rag/service.ts';
import type { GenerateRequest, GenerateResult, StartInfo } from '../../serving/index.ts';
import { requirePrincipal } from '../auth.ts';
import { sendError, toErrorBody } from '../errors.ts';

/**
 * The OpenAI-compatible API (OpenLoRA) under /v1: what the official `openai` client and tools
 * built for it expect, byte for byte where they look — the request fields, the response
 * objects, server-sent events ending in `data: [DONE]`, and errors as
 * `{ "error": { "message", "type", "param", "code" } }`. OpenLedger's additions are the
 * `adapters` and `rag` request fields, the `openledger` and `citations` response fields and the
 * `x-openledger-*` headers.
 */

const AdapterRef = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: 200,
    description:
      'An adapter name, an adapter sha256 (`adapter:<hex>`) or a Model ID (`model:<id>`).',
  }),
  weight: Type.Optional(Type.Number({ description: 'The LoRA scale (default 1).' })),
});

const Sampling = {
  model: Type.String({
    minLength: 1,
    maxLength: 200,
    description:
      'A base model name, a published Model ID (`model:<id>`), a loaded adapter name, or an adapter sha256 (`adapter:<hex>`).',
  }),
  adapters: Type.Optional(
    Type.Array(AdapterRef, {
      maxItems: 8,
      description: 'OpenLedger: more adapters composed with `model`, each with its weight.',
    }),
  ),
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
  top_p: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 1 }), Type.Null()])),
  seed: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  presence_penalty: Type.Optional(
    Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()]),
  ),
  frequency_penalty: Type.Optional(
    Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()]),
  ),
  stop: Type.Optional(
    Type.Union([
      Type.String({ maxLength: 200 }),
      // OpenAI allows 4; a node forwarding to this one adds its chat template's stops.
      Type.Array(Type.String({ maxLength: 200 }), { maxItems: 8 }),
      Type.Null(),
    ]),
  ),
  n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1 }), Type.Null()])),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(
    Type.Union([
      Type.Object({ include_usage: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])) }),
      Type.Null(),
    ]),
  ),
  logprobs: Type.Optional(Type.Union([Type.Literal(false), Type.Null()])),
  user: Type.Optional(Type.String({ maxLength: 256 })),
};

const ChatBody = Type.Object(
  {
    ...Sampling,
    messages: Type.Array(
      Type.Object({
        role: Type.String(),
        content: Type.Union([
          Type.String(),
          Type.Array(Type.Object({ type: Type.String(), text: Type.Optional(Type.String()) })),
          Type.Null(),
        ]),
      }),
      { minItems: 1, maxItems: 1000 },
    ),
    rag: Type.Optional(
      Type.Object(
        {
          datanets: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 16 }),
          k: Type.Optional(Type.Integer({ minimum: 1, maximum: RAG_MAX_K })),
          strict: Type.Optional(Type.Boolean()),
        },
        {
          description:
            'OpenLedger: answer from these datanets (docs/rag.md). The caller needs read access to each. The response carries `citations`; strict (default true) returns only the sentences the sources support (else a source sentence, else a fixed refusal).',
        },
      ),
    ),
  },
  { description: 'OpenAI chat completion request; unknown fields are ignored.' },
);

const CompletionBody = Type.Object({
  ...Sampling,
  // OpenAI's forms: text or token ids, alone or as a batch (of one here).
  prompt: Type.Union([
    Type.String(),
    Type.Array(Type.String(), { minItems: 1, maxItems: 1 }),
    Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, maxItems: 1_000_000 }),
    Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, maxItems: 1_000_000 }), {
      minItems: 1,
      maxItems: 1,
    }),
  ]),
  echo: Type.Optional(Type.Union([Type.Literal(false), Type.Null()])),
  best_of: Type.Optional(Type.Union([Type.Literal(1), Type.Null()])),
  logprobs: Type.Optional(Type.Null()),
  suffix: Type.Optional(Type.Null()),
});

const EmbeddingBody = Type.Object({
  model: Sampling.model,
  input: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 64 })]),
  encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')])),
  user: Type.Optional(Type.String({ maxLength: 256 })),
});

const LoadBody = Type.Object({
  lora_name: Type.String({ minLength: 1, maxLength: 128 }),
  lora_path: Type.String({
    minLength: 1,
    maxLength: 4096,
    description:
      'On the node: a llama.cpp LoRA GGUF file, a folder holding one `.gguf`, or a PEFT folder (adapter_config.json + adapter_model.safetensors, imported to GGUF); a blob hash (`sha256:<hex>`); or `hf:owner/name[@revision][/subfolder|/file.gguf]`, downloaded from Hugging Face when online.',
  }),
  base_model: Type.Optional(
    Type.String({
      description:
        'OpenLedger: the base model it is for (default: as its file says, else the default base).',
    }),
  ),
  pinned: Type.Optional(
    Type.Boolean({ description: 'OpenLedger: keep it in memory through model recycles.' }),
  ),
});

const UnloadBody = Type.Object({ lora_name: Type.String({ minLength: 1, maxLength: 128 }) });

type SamplingBody = Static<typeof ChatBody> | Static<typeof CompletionBody>;

export function openAiRoutes(app: FastifyInstance, ctx: NodeContext): void {
  void app.register(
    async (v1) => {
      v1.setErrorHandler((error, request, reply) =>
        sendError(request, reply, error, openAiErrorBody),
      );
      v1.setNotFoundHandler((request, reply) =>
        sendError(
          request,
          reply,
          new OpenLedgerError(
            'ROUTE_NOT_FOUND',
            `No route ${request.method} ${request.url.split('?')[0]}.`,
          ),
          openAiErrorBody,
        ),
      );
      // Every /v1 call needs a caller: an API key (Bearer olk_…) or a signed-in session.
      v1.addHook('preHandler', async (request) => {
        requirePrincipal(request);
      });

      v1.get(
        '/models',
        {
          schema: {
            tags: ['openai'],
            summary: 'Base models, adapters and published models to call',
          },
        },
        async () => ({
          object: 'list',
          data: [
            ...(await ctx.serving.listModels()).map((m) => ({
              id: m.id,
              object: 'model',
              created: m.created,
              owned_by: m.kind === 'base' ? 'openledger' : m.kind,
              // vLLM's fields for LoRA models: the base they run on.
              root: m.adapter ?? m.id,
              parent: m.parent ?? null,
              openledger: { kind: m.kind, adapter: m.adapter ?? null, loaded: m.loaded },
            })),
            ...((await ctx.agents?.list()) ?? [])
              .filter((a) => a.active && a.specCurrent)
              .map((a) => ({
                id: a.model,
                object: 'model',
                created: a.launchedAt,
                owned_by: a.owner,
                root: a.model,
                parent: null,
                openledger: { kind: 'agent', adapter: null, loaded: true, agent_id: a.id },
              })),
          ],
        }),
      );

      v1.post(
        '/chat/completions',
        {
          schema: { tags: ['openai'], summary: 'Chat completion (stream or not)', body: ChatBody },
        },
        async (request, reply) => {
          const body = request.body as Static<typeof ChatBody>;
          if (body.model.startsWith(AGENT_PREFIX)) return serveAgent(ctx, request, reply, body);
          return serveGeneration(
            ctx,
            request,
            reply,
            body,
            { endpoint: 'chat.completions', messages: body.messages },
            body.rag,
          );
        },
      );

      v1.post(
        '/completions',
        {
          schema: {
            tags: ['openai'],
            summary: 'Text completion (stream or not)',
            body: CompletionBody,
          },
        },
        async (request, reply) => {
          const body = request.body as Static<typeof CompletionBody>;
          if (body.model.startsWith(AGENT_PREFIX))
            throw new OpenLedgerError(
              'VALIDATION_FAILED',
              'Agents answer chat completions only (POST /v1/chat/completions).',
              { details: { field: 'model' } },
            );
          return serveGeneration(ctx, request, reply, body, {
            endpoint: 'completions',
            prompt: typeof body.prompt === 'string' ? body.prompt : promptOf(body.prompt),
          });
        },
      );

      v1.post(
        '/embeddings',
        {
          schema: {
            tags: ['openai'],
            summary: 'Embeddings from a base model',
            body: EmbeddingBody,
          },
        },
        async (request, reply) => {
          const body = request.body as Static<typeof EmbeddingBody>;
          const controller = abortOnDisconnect(reply);
          const result = await ctx.serving.embed({
            model: body.model,
            texts: typeof body.input === 'string' ? [body.input] : body.input,
            caller: requirePrincipal(request),
            signal: controller.signal,
          });
          receiptHeaders(reply, result.receipt.id, result.receiptHash);
          return {
            object: 'list',
            data: result.vectors.map((vector, index) => ({
              object: 'embedding',
              index,
              embedding:
                body.encoding_format === 'base64'
                  ? Buffer.from(Float32Array.from(vector).buffer).toString('base64')
                  : Array.from(vector),
            })),
            model: body.model,
            usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
            openledger: {
              receipt: { id: result.receipt.id, hash: result.receiptHash },
              base_model: result.baseModel,
            },
          };
        },
      );

      v1.get(
        '/lora_adapters',
        {
          schema: {
            tags: ['openai'],
            summary: 'OpenLedger: adapters known to the engine, and its state',
          },
        },
        async () => ({
          object: 'list',
          data: ctx.serving.listAdapters().map(adapterView),
          engine: ctx.serving.state(),
        }),
      );

      v1.post(
        '/load_lora_adapter',
        {
          schema: {
            tags: ['openai'],
            summary: "vLLM's: name an adapter (operators only)",
            body: LoadBody,
          },
        },
        async (request) => {
          requireOperator(ctx, request);
          const body = request.body as Static<typeof LoadBody>;
          const record = await ctx.serving.loadAdapter({
            name: body.lora_name,
            path: body.lora_path,
            ...(body.base_model === undefined ? {} : { baseModel: body.base_model }),
            ...(body.pinned === undefined ? {} : { pinned: body.pinned }),
          });
          return {
            ...adapterView({ ...record, names: [...record.names], resident: false }),
            name: body.lora_name,
          };
        },
      );

      v1.post(
        '/unload_lora_adapter',
        {
          schema: {
            tags: ['openai'],
            summary: "vLLM's: forget an adapter name (operators only)",
            body: UnloadBody,
          },
        },
        async (request) => {
          requireOperator(ctx, request);
          const body = request.body as Static<typeof UnloadBody>;
          const record = ctx.serving.unloadAdapter(body.lora_name);
          return { object: 'lora_adapter', name: body.lora_name, id: record.id, deleted: true };
        },
      );
    },
    { prefix: '/v1' },
  );
}

/** The one prompt of a batch form, or the token ids themselves. */
function promptOf(prompt: string[] | number[] | number[][]): string | number[] {
  const first = prompt[0]!;
  return typeof first === 'number' ? (prompt as number[]) : first;
}

function adapterView(a: {
  id: string;
  names: string[];
  baseModel: string;
  bytes: number;
  pinned: boolean;
  resident: boolean;
  uses: number;
  lastUsedAt: number;
}) {
  return {
    object: 'lora_adapter',
    id: a.id,
    names: a.names,
    base_model: a.baseModel,
    bytes: a.bytes,
    pinned: a.pinned,
    resident: a.resident,
    uses: a.uses,
    last_used_at: a.lastUsedAt ? Math.floor(a.lastUsedAt / 1000) : null,
  };
}

function requireOperator(ctx: NodeContext, request: FastifyRequest): void {
  if (!ctx.serving.isOperator(requirePrincipal(request))) {
    throw new OpenLedgerError(
      'FORBIDDEN',
      'Only the operators of this node may load or unload adapters.',
      {
        hint: "Use an API key of the node's own wallet or of a wallet named by `up --operator`.",
      },
    );
  }
}

/** Aborts when the client goes away before the answer is complete. */
function abortOnDisconnect(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('the client disconnected'));
  });
  return controller;
}

function receiptHeaders(reply: FastifyReply, id: string, hash: string | undefined): void {
  reply.header('x-openledger-receipt-id', id);
  if (hash) reply.header('x-openledger-receipt-hash', hash);
}

/**
 * An agent (`agent:<name>`): its earlier steps run here, each an ordinary paid call; its last
 * step is served like any chat completion (streamed when asked), over the conversation the
 * earlier steps built, with the caller's sampling where the step sets none. The response names
 * the agent and lists the earlier steps' receipts in `openledger.agent`.
 */
async function serveAgent(
  ctx: NodeContext,
  request: FastifyRequest,
  reply: FastifyReply,
  body: Static<typeof ChatBody>,
): Promise<unknown> {
  if (!ctx.agents)
    throw new OpenLedgerError(
      'GOVERNANCE_UNAVAILABLE',
      'This node has no AgentStaking contract, so no agents.',
      { details: { field: 'model' } },
    );
  if (body.rag || body.adapters)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'An agent brings its own adapters and datanets: leave `adapters` and `rag` out.',
      { details: { field: body.rag ? 'rag' : 'adapters' } },
    );
  const controller = abortOnDisconnect(reply);
  const plan = await ctx.agents.plan({
    model: body.model,
    messages: body.messages,
    caller: requirePrincipal(request),
    signal: controller.signal,
  });
  const final = plan.final;
  return serveGeneration(
    ctx,
    request,
    reply,
    {
      ...body,
      model: final.model,
      ...(final.adapters ? { adapters: final.adapters } : {}),
      ...(final.max_tokens === undefined ? {} : { max_tokens: final.max_tokens }),
      ...(final.temperature === undefined ? {} : { temperature: final.temperature }),
    },
    { endpoint: 'chat.completions', messages: plan.messages },
    final.rag,
    {
      model: body.model,
      info: {
        agent: {
          id: plan.agent.id,
          name: plan.agent.name,
          final_model: final.model,
          steps: plan.steps.map((s) => ({
            step: s.step,
            model: s.model,
            receipt: s.receipt,
            published_model_id: s.publishedModelId ?? null,
            usage: {
              prompt_tokens: s.promptTokens,
              completion_tokens: s.completionTokens,
              total_tokens: s.promptTokens + s.completionTokens,
            },
            rag: s.rag,
          })),
        },
      },
    },
  );
}

async function serveGeneration(
  ctx: NodeContext,
  request: FastifyRequest,
  reply: FastifyReply,
  body: SamplingBody,
  what: Pick<GenerateRequest, 'endpoint' | 'messages' | 'prompt'>,
  rag?: Static<typeof ChatBody>['rag'],
  /** For an agent: the name the caller used, and what the response adds about it. */
  as?: { model: string; info: Record<string, unknown> },
): Promise<unknown> {
  const controller = abortOnDisconnect(reply);
  const chat = what.endpoint === 'chat.completions';
  const stream = body.stream === true;
  const includeUsage = body.stream_options?.include_usage === true;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const stop =
    body.stop === undefined || body.stop === null
      ? []
      : typeof body.stop === 'string'
        ? [body.stop]
        : body.stop;
  let started: StartInfo | undefined;
  const objectId = (id: string) => `${chat ? 'chatcmpl' : 'cmpl'}-${id}`;
  const chunkObject = chat ? 'chat.completion.chunk' : 'text_completion';
  const write = (data: unknown) => {
    if (!reply.raw.destroyed) reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  };
  const chunk = (delta: string | undefined, finish: string | null, first = false) => ({
    id: objectId(started!.id),
    object: chunkObject,
    created: started!.created,
    model: as?.model ?? started!.model,
    choices: [
      chat
        ? {
            index: 0,
            delta: first
              ? { role: 'assistant', content: '' }
              : delta === undefined
                ? {}
                : { content: delta },
            logprobs: null,
            finish_reason: finish,
          }
        : { index: 0, text: delta ?? '', logprobs: null, finish_reason: finish },
    ],
    ...(includeUsage ? { usage: null } : {}),
  });

  // RAG: the sources go into the prompt before anything is generated (or charged); in strict
  // mode the answer is checked before it is sent, so a stream carries it in one piece.
  let prepared: PreparedRag | undefined;
  if (rag) {
    if (!ctx.rag)
      throw new OpenLedgerError(
        'RAG_UNAVAILABLE',
        'This node has no datanets (no DatanetRegistry deployed), so no RAG.',
        {
          details: { field: 'rag' },
        },
      );
    prepared = await prepareRag(
      { rag: ctx.rag, serving: ctx.serving },
      {
        caller: requirePrincipal(request).address,
        model: body.model,
        ...(body.adapters ? { adapters: body.adapters } : {}),
        messages: what.messages ?? [],
        options: rag,
        ...(maxTokens === undefined ? {} : { maxTokens }),
        signal: controller.signal,
      },
    );
    what = { ...what, messages: prepared.messages };
  }
  const streamTokens = stream && !(prepared?.strict ?? false);

  let result: GenerateResult;
  try {
    result = await ctx.serving.generate({
      ...what,
      model: body.model,
      ...(body.adapters ? { adapters: body.adapters } : {}),
      sampling: {
        ...(maxTokens === undefined ? {} : { maxTokens }),
        ...(body.temperature == null ? {} : { temperature: body.temperature }),
        topP: body.top_p ?? undefined,
        seed: body.seed ?? undefined,
        presencePenalty: body.presence_penalty ?? undefined,
        frequencyPenalty: body.frequency_penalty ?? undefined,
        stop,
      },
      caller: requirePrincipal(request),
      signal: controller.signal,
      onStart: (info) => {
        started = info;
        if (!stream) return;
        // The status and headers go out now: errors found before this point (unknown model,
        // oversize prompt, a full queue) are still ordinary JSON error answers.
        reply.hijack();
        reply.raw.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
          'x-openledger-receipt-id': info.id,
        });
        if (chat) write(chunk(undefined, null, true));
      },
      onText: (delta) => {
        if (streamTokens) write(chunk(delta, null));
      },
    });
  } catch (error) {
    if (controller.signal.aborted && !started) {
      // The client left while waiting: nobody reads this answer, but it ends the request.
      throw new OpenLedgerError('BAD_REQUEST', 'The client closed the request.');
    }
    if (!stream || !started) throw error;
    // The stream has begun: the error goes in it, as OpenAI's servers do.
    const { status, body: errorBody } = toErrorBody(error);
    if (status >= 500) request.log.error({ err: error }, 'generation failed');
    write(openAiErrorBody(status, errorBody.error));
    reply.raw.end();
    return reply;
  }

  let finished: FinishedRag | undefined;
  if (prepared) {
    finished = finishRag(prepared, result.text);
    await recordRagAnswer(ctx.database.db, {
      usageId: result.receipt.id,
      prepared,
      datanets: [...new Set(rag!.datanets)].sort((a, b) => a - b),
      finished,
    });
  }
  const text = finished?.text ?? result.text;
  const citations = prepared
    ? { citations: finished!.citations.map((c) => citationView(c, prepared.sources)) }
    : {};

  const usage = {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
  };
  const openledger = {
    receipt: { id: result.receipt.id, hash: result.receiptHash },
    base_model: result.baseModel,
    adapters: result.adapters,
    ...(result.backend === undefined ? {} : { backend: result.backend }),
    published_model_id: result.receipt.publishedModelId,
    timings: {
      queue_ms: result.timings.queueMs,
      first_token_ms: result.timings.firstTokenMs ?? null,
      total_ms: result.timings.totalMs,
      tokens_per_second: result.timings.tokensPerSecond,
      cold_adapters: result.timings.coldAdapters,
      ended: result.timings.ended,
    },
    ...(prepared
      ? {
          rag: {
            strict: prepared.strict,
            answer: finished!.kind,
            sources: prepared.sources.map(sourceView),
            dropped_sources: prepared.dropped,
          },
        }
      : {}),
    ...as?.info,
  };
  if (stream) {
    if (reply.raw.destroyed) return reply;
    if (!streamTokens && text !== '') write(chunk(text, null));
    write({ ...chunk(undefined, result.finishReason), ...citations, openledger });
    if (includeUsage) write({ ...chunk(undefined, null), choices: [], usage });
    reply.raw.end('data: [DONE]\n\n');
    return reply;
  }
  receiptHeaders(reply, result.receipt.id, result.receiptHash);
  return {
    id: objectId(result.id),
    object: chat ? 'chat.completion' : 'text_completion',
    created: result.created,
    model: as?.model ?? result.model,
    choices: [
      chat
        ? {
            index: 0,
            message: { role: 'assistant', content: text, refusal: null },
            logprobs: null,
            finish_reason: result.finishReason,
          }
        : { index: 0, text, logprobs: null, finish_reason: result.finishReason },
    ],
    ...citations,
    usage,
    openledger,
  };
}

// ----- errors in OpenAI's shape ----------------------------------------------------------------

const OPENAI_CODES: Record<string, string> = {
  MODEL_NOT_FOUND: 'model_not_found',
  INVALID_API_KEY: 'invalid_api_key',
  UNAUTHENTICATED: 'invalid_api_key',
  SESSION_EXPIRED: 'invalid_api_key',
  CONTEXT_LENGTH_EXCEEDED: 'context_length_exceeded',
  SERVING_OVERLOADED: 'rate_limit_exceeded',
  INSUFFICIENT_BALANCE: 'INSUFFICIENT_BALANCE',
};

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'insufficient_quota';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function openAiErrorBody(
  status: number,
  error: { code: string; message: string; hint?: string; details?: unknown },
) {
  const details = error.details as
    { field?: string; issues?: { path: string }[]; retryAfterSeconds?: number } | undefined;
  const param =
    details?.field ??
    details?.issues?.[0]?.path.replace(/^body\/?/, '').replaceAll('/', '.') ??
    null;
  return {
    error: {
      message: error.hint ? `${error.message} ${error.hint}` : error.message,
      type: errorType(status),
      param: param || null,
      code: OPENAI_CODES[error.code] ?? error.code.toLowerCase(),
    },
  };
}
