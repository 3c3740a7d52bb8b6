import type { FastifyInstance } from 'fastify';
import { and, eq } from 'drizzle-orm';
import { Type, type Static } from 'typebox';
import * as schema from '../../db/schema.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import { RAG_DEFAULT_K, RAG_MAX_K, sourceView, type RagService } from '../../rag/index.ts';
import { errors } from '../schemas.ts';

/**
 * RAG beside the chat completions' `rag` field (src/api/routes/openai.ts): the backend in use,
 * retrieval alone, an index build on demand, and the rows citations link to. Every datanet is
 * checked against the caller's grants first.
 */

const SearchBody = Type.Object(
  {
    datanets: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 16 }),
    query: Type.String({ minLength: 1, maxLength: 4000 }),
    k: Type.Optional(Type.Integer({ minimum: 1, maximum: RAG_MAX_K })),
  },
  { additionalProperties: false },
);

function rag(ctx: NodeContext): RagService {
  if (!ctx.rag)
    throw new OpenLedgerError(
      'RAG_UNAVAILABLE',
      'This node has no datanets (no DatanetRegistry deployed), so no RAG.',
    );
  return ctx.rag;
}

export function ragRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/rag',
    {
      schema: {
        tags: ['rag'],
        summary: 'The RAG backend: vector index in use (and why) and the embedder',
        response: errors(503),
      },
    },
    async () => rag(ctx).status(),
  );

  app.post(
    '/api/rag/search',
    {
      schema: {
        tags: ['rag'],
        summary: `Retrieval only: the k (default ${RAG_DEFAULT_K}) best chunks for a query, full text and vectors fused by reciprocal rank`,
        body: SearchBody,
        response: errors(400, 401, 403, 404, 503),
      },
    },
    async (request) => {
      const body = request.body as Static<typeof SearchBody>;
      const sources = await rag(ctx).retrieve({
        caller: request.principal?.address,
        datanets: body.datanets,
        query: body.query,
        ...(body.k === undefined ? {} : { k: body.k }),
      });
      return { sources: sources.map(sourceView) };
    },
  );

  app.post(
    '/api/datanets/:id/rag-index',
    {
      schema: {
        tags: ['rag'],
        summary:
          "Bring the datanet's RAG index up to its latest version now (readers; only new rows are embedded)",
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: errors(401, 403, 404, 503),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const service = rag(ctx);
      await service.readable([id], request.principal?.address);
      const added = await service.ensureIndexed(id);
      const index = await service.indexOf(id);
      return {
        datanetId: id,
        version: index?.version ?? 0,
        chunks: index?.chunks ?? 0,
        added: added ? { rows: added.rows, chunks: added.chunks } : { rows: 0, chunks: 0 },
      };
    },
  );

  app.get(
    '/api/datanets/:id/rows/:rowId',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'One row of a datanet (what a citation links to), for its readers; rows not in a version only for curators',
        params: Type.Object({
          id: Type.Integer({ minimum: 1 }),
          rowId: Type.String({ format: 'uuid' }),
        }),
        response: errors(401, 403, 404),
      },
    },
    async (request) => {
      const { id, rowId } = request.params as { id: number; rowId: string };
      if (!ctx.datanets)
        throw new OpenLedgerError('NOT_FOUND', 'This node has no datanet registry deployed.');
      await ctx.datanets.assertCanRead(id, request.principal?.address);
      const rows = await ctx.database.db
        .select({
          id: schema.datanetRows.id,
          datanetId: schema.datanetRows.datanetId,
          contributionId: schema.datanetRows.contributionId,
          contributor: schema.datanetRows.contributor,
          rowHash: schema.datanetRows.rowHash,
          text: schema.datanetRows.text,
          content: schema.datanetRows.content,
          status: schema.datanetRows.status,
          version: schema.datanetRows.version,
          createdAt: schema.datanetRows.createdAt,
        })
        .from(schema.datanetRows)
        .where(and(eq(schema.datanetRows.datanetId, id), eq(schema.datanetRows.id, rowId)));
      const row = rows[0];
      // Rows not (yet) in a version are for the datanet's curators, as contributions are.
      const caller = request.principal?.address;
      const visible =
        row?.status === 'approved' ||
        (caller !== undefined && (await ctx.datanets.isCurator(id, caller)));
      if (!row || !visible)
        throw new OpenLedgerError('NOT_FOUND', `Datanet ${id} has no row ${rowId}.`);
      return { ...row, createdAt: row.createdAt.toISOString() };
    },
  );
}
