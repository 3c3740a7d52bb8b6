import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { OpenLedgerError } from '../errors.ts';
import type { NodeContext } from '../node/context.ts';
import { authenticationHook } from './auth.ts';
import { errorSchema, sendError } from './errors.ts';
import { createMetrics } from './metrics.ts';
import { adapterMergeRoutes } from './routes/adapter-merges.ts';
import { attributionRoutes } from './routes/attribution.ts';
import { rewardsRoutes } from './routes/rewards.ts';
import { authRoutes } from './routes/auth.ts';
import { datanetRoutes } from './routes/datanets.ts';
import { bondRoutes } from './routes/bonds.ts';
import { escrowRoutes } from './routes/escrow.ts';
import { factoryRoutes } from './routes/factory.ts';
import { factoryEvalRoutes } from './routes/factory-eval.ts';
import { factoryExportRoutes } from './routes/factory-exports.ts';
import { factorySketchRoutes } from './routes/factory-sketches.ts';
import { governanceRoutes } from './routes/governance.ts';
import { marketRoutes } from './routes/market.ts';
import { proposalRoutes } from './routes/proposals.ts';
import { jobRoutes } from './routes/jobs.ts';
import { keyRoutes } from './routes/keys.ts';
import { modelRoutes } from './routes/models.ts';
import { openAiRoutes } from './routes/openai.ts';
import { ragRoutes } from './routes/rag.ts';
import { systemRoutes } from './routes/system.ts';
import { tokenRoutes } from './routes/token.ts';

export interface ServerOptions {
  /** pino log level; logs are JSON lines on stderr. */
  logLevel: string;
  /** The built web app to serve at `/`; absent: API only. */
  webDir: string | undefined;
  trustProxy: boolean;
}

/**
 * Composes the HTTP surface of the node: the JSON API under /api (every route with a schema, which
 * also makes the OpenAPI document), /healthz, /metrics and the web app with a single-page fallback.
 */
export async function buildServer(
  ctx: NodeContext,
  options: ServerOptions,
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: options.logLevel, stream: process.stderr },
    bodyLimit: 1024 * 1024,
    trustProxy: options.trustProxy,
    // Requests must finish cleanly at shutdown; give slow clients this long.
    pluginTimeout: 30_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // The API speaks JSON only; anything else is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  const metrics = createMetrics();
  app.addSchema(errorSchema);
  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'OpenLedger node API',
        version: ctx.version,
        description:
          'Every error answer is `{ "error": { "code", "message", "hint"?, "details"? } }` with a stable code. ' +
          'Requests that change state need a session (cookie or `Bearer ols_…`) or an API key (`Bearer olk_…`).',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key (olk_…) or a session token (ols_…).',
          },
          session: { type: 'apiKey', in: 'cookie', name: 'ol_session' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (json.$id as string) ?? `def-${i}`,
    },
  });

  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.addHook('onRequest', authenticationHook(ctx));
  app.addHook('onResponse', async (request, reply) => {
    metrics.observe(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });

  systemRoutes(app, ctx, metrics);
  authRoutes(app, ctx);
  keyRoutes(app, ctx);
  tokenRoutes(app, ctx);
  escrowRoutes(app, ctx);
  bondRoutes(app, ctx);
  datanetRoutes(app, ctx);
  jobRoutes(app, ctx);
  factoryRoutes(app, ctx);
  modelRoutes(app, ctx);
  factoryExportRoutes(app, ctx);
  factoryEvalRoutes(app, ctx);
  openAiRoutes(app, ctx);
  ragRoutes(app, ctx);
  factorySketchRoutes(app, ctx);
  attributionRoutes(app, ctx);
  rewardsRoutes(app, ctx);
  adapterMergeRoutes(app, ctx);
  governanceRoutes(app, ctx);
  marketRoutes(app, ctx);
  proposalRoutes(app, ctx);

  const webDir = options.webDir;
  const hasWeb = webDir !== undefined && existsSync(path.join(webDir, 'index.html'));
  if (hasWeb) {
    await app.register(fastifyStatic, { root: webDir, wildcard: false, index: ['index.html'] });
  }
  app.setNotFoundHandler((request, reply) => {
    const isApi = request.url.startsWith('/api/') || request.url === '/api';
    if (hasWeb && !isApi && (request.method === 'GET' || request.method === 'HEAD')) {
      return reply.type('text/html').sendFile('index.html');
    }
    return sendError(
      request,
      reply,
      new OpenLedgerError(
        'ROUTE_NOT_FOUND',
        `No route ${request.method} ${request.url.split('?')[0]}.`,
        {
          hint: 'The API is described at /api/openapi.json.',
        },
      ),
    );
  });

  await app.ready();
  return app;
}
