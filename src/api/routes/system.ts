import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { NodeContext } from '../../node/context.ts';
import type { Metrics } from '../metrics.ts';
import { Address } from '../schemas.ts';

const Check = Type.Object({
  ok: Type.Boolean(),
  latencyMs: Type.Optional(Type.Number()),
  detail: Type.Optional(Type.String()),
  blockNumber: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
});

const RagHealth = Type.Object(
  {
    vectors: Type.Union([Type.Literal('pgvector'), Type.Literal('usearch'), Type.Literal('exact')]),
    reason: Type.String(),
    embedder: Type.Union([
      Type.Object({ name: Type.String(), sha256: Type.String(), dimensions: Type.Integer() }),
      Type.Null(),
    ]),
    error: Type.Optional(Type.String()),
  },
  {
    description:
      'RAG: the vector backend in use (pgvector, usearch when the database has no pgvector, or exact) and the embedder once loaded (null before the first RAG request).',
  },
);

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  checks: Type.Object({ database: Check, chain: Check, engine: Check }),
  rag: Type.Optional(RagHealth),
});

export function systemRoutes(app: FastifyInstance, ctx: NodeContext, metrics: Metrics): void {
  app.get(
    '/api/status',
    {
      schema: {
        tags: ['system'],
        summary: 'What this node is: chain, contracts, database and version',
        response: {
          200: Type.Object({
            name: Type.Literal('openledger'),
            version: Type.String(),
            chainId: Type.Integer(),
            rpcUrl: Type.String(),
            local: Type.Boolean({
              description: 'True on the local development chain (dev accounts and faucet).',
            }),
            contracts: Type.Record(Type.String(), Address, {
              description:
                'Deployed contracts by name: OpenToken, DatanetRegistry, ModelRegistry, InferenceEscrow, and DevFaucet on the local chain.',
            }),
            database: Type.Object({
              kind: Type.Union([Type.Literal('pglite'), Type.Literal('postgres')]),
            }),
            uptimeSeconds: Type.Integer(),
          }),
        },
      },
    },
    async () => ({
      name: 'openledger' as const,
      version: ctx.version,
      chainId: ctx.chain.chain.id,
      rpcUrl: ctx.chain.rpcUrl,
      local: ctx.local,
      contracts: ctx.deployment.contracts,
      database: { kind: ctx.database.kind },
      uptimeSeconds: Math.floor((Date.now() - ctx.startedAt.getTime()) / 1000),
    }),
  );

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['system'],
        summary:
          'Liveness of the database, the chain and the inference engine (503 when any fails)',
        response: { 200: Health, 503: Health },
      },
    },
    async (_request, reply) => {
      const [database, chain] = await Promise.all([
        probe(async () => ({ latencyMs: round(await ctx.database.ping()) })),
        probe(async () => {
          const started = performance.now();
          const block = await ctx.chain.publicClient.getBlockNumber({ cacheTime: 0 });
          return { blockNumber: block.toString(), latencyMs: round(performance.now() - started) };
        }),
      ]);
      // The serving engine: idle (no base model loaded yet) is healthy; a failed preload is not.
      const { ok: engineOk, detail } = ctx.serving.state();
      const engine = { ok: engineOk, detail };
      const ok = database.ok && chain.ok && engine.ok;
      return reply.status(ok ? 200 : 503).send({
        status: ok ? 'ok' : 'degraded',
        checks: { database, chain, engine },
        ...(ctx.rag ? { rag: ctx.rag.status() } : {}),
      });
    },
  );

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

async function probe(run: () => Promise<Record<string, unknown>>) {
  try {
    return { ok: true, ...(await run()) };
  } catch (error) {
    return {
      ok: false,
      error: error instanceof Error ? error.message.split('\n')[0] : String(error),
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
