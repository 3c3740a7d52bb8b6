import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { NodeContext } from '../../node/context.ts';
import {
  AdapterMergeService,
  MAX_MERGE_RANK,
  MAX_MERGE_SOURCES,
  MAX_MERGE_WEIGHT,
  MERGE_METHODS,
  type LineageNode,
  type MergeResult,
} from '../../serving/merge.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const MergeBody = Type.Object(
  {
    method: Type.Union(
      MERGE_METHODS.map((m) => Type.Literal(m)),
      { description: 'linear (exact), ties, dare or dare_ties' },
    ),
    adapters: Type.Array(
      Type.Object(
        {
          id: Type.String({
            minLength: 1,
            maxLength: 200,
            description: 'an adapter name, adapter:<sha256> or model:<id>',
          }),
          weight: Type.Optional(
            Type.Number({ minimum: -MAX_MERGE_WEIGHT, maximum: MAX_MERGE_WEIGHT, default: 1 }),
          ),
        },
        { additionalProperties: false },
      ),
      // 2..8 is checked by the service, so that one adapter gets the same error as from the CLI.
      { maxItems: MAX_MERGE_SOURCES },
    ),
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: 'register the merge under this adapter name (operators only)',
      }),
    ),
    baseModel: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: "default: the first adapter's" }),
    ),
    density: Type.Optional(
      Type.Number({
        description: 'ties, dare, dare_ties: fraction of each delta kept, in (0, 1]',
      }),
    ),
    rank: Type.Optional(
      Type.Integer({
        description: `rank of the merged adapter, 1..${MAX_MERGE_RANK} (default: the largest source rank; linear: exact, the sum of the ranks)`,
      }),
    ),
    seed: Type.Optional(Type.Integer({ description: 'dare, dare_ties: seed of the random drop' })),
  },
  { additionalProperties: false },
);

const Params = Type.Object({
  density: Type.Optional(Type.Number()),
  rank: Type.Optional(Type.Integer()),
  seed: Type.Optional(Type.Integer()),
});

const Source = Type.Object({
  id: Type.String(),
  weight: Type.Number(),
  ref: Type.String(),
  publishedModelId: Type.Optional(Type.Integer()),
});

const MergeAnswer = Type.Object({
  id: Type.String({ description: 'sha256 of the merged GGUF: call it as adapter:<id>' }),
  name: Type.Union([Type.String(), Type.Null()]),
  cached: Type.Boolean({ description: 'true when the recipe had been merged before' }),
  lineage: Type.Object({
    recipeHash: Type.String(),
    method: Type.String(),
    params: Params,
    baseModel: Type.String(),
    sources: Type.Array(Source),
    rank: Type.Integer(),
    bytes: Type.Integer(),
    createdBy: Type.String(),
    createdAt: Type.String(),
  }),
  truncationError: Type.Optional(
    Type.Number({ description: 'relative Frobenius error of the SVD truncation' }),
  ),
});

/** A node of the lineage tree (sources are nodes again: merges of merges). */
const LineageAnswer = Type.Object({
  id: Type.String(),
  merge: Type.Object({
    recipeHash: Type.String(),
    method: Type.String(),
    params: Params,
    baseModel: Type.String(),
    truncationError: Type.Optional(Type.Number()),
    rank: Type.Integer(),
    createdBy: Type.String(),
    createdAt: Type.String(),
  }),
  sources: Type.Array(Type.Unknown(), {
    description:
      'each {id, weight, ref} and, for a source that is itself a merge, its merge and sources',
  }),
});

function answer(result: MergeResult) {
  return {
    id: result.id,
    name: result.name ?? null,
    cached: result.cached,
    lineage: {
      recipeHash: result.recipeHash,
      method: result.method,
      params: result.params,
      baseModel: result.baseModel,
      sources: result.sources,
      rank: result.rank,
      bytes: result.bytes,
      createdBy: result.createdBy,
      createdAt: result.createdAt,
    },
    ...(result.truncationError === undefined ? {} : { truncationError: result.truncationError }),
  };
}

function lineageView(node: LineageNode): unknown {
  return {
    ...node,
    ...(node.sources ? { sources: node.sources.map(lineageView) } : {}),
  };
}

/**
 * Cached adapter merges (docs/serving.md, "Merging adapters"). Any signed-in caller may merge:
 * a merge reads only adapters the caller could already call, and its result is one more adapter
 * called by hash. Two limits keep that true: a published model (priced) is a source only of its
 * owner's or an operator's merges, and only operators may give the merge a node-wide name.
 */
export function adapterMergeRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const merges = new AdapterMergeService({
    engine: ctx.serving,
    blobs: ctx.blobs,
    db: ctx.database.db,
  });

  app.post(
    '/api/adapters/merge',
    {
      schema: {
        tags: ['serving'],
        summary:
          'Merge 2-8 LoRA adapters of one base (linear, ties, dare, dare_ties) into a new adapter, cached by recipe',
        body: MergeBody,
        response: { 200: MergeAnswer, ...errors(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const body = request.body as Static<typeof MergeBody>;
      return answer(
        await merges.merge(body, {
          address: principal.address,
          operator: ctx.serving.isOperator(principal),
        }),
      );
    },
  );

  app.get(
    '/api/adapters/:id/lineage',
    {
      schema: {
        tags: ['serving'],
        summary: "A merged adapter's recipe and its sources, recursively",
        params: Type.Object({
          id: Type.String({
            minLength: 1,
            maxLength: 200,
            description: 'sha256, adapter:<sha256> or an adapter name',
          }),
        }),
        response: { 200: LineageAnswer, ...errors(401, 404) },
      },
    },
    async (request) => {
      requirePrincipal(request);
      const { id } = request.params as { id: string };
      return lineageView(await merges.lineage(id));
    },
  );
}
