/**
 * The model market over HTTP (issue #8, item 1): published models to browse and search with
 * their usage, revenue, evaluation and attribution statistics, and a model's page with its
 * lineage and on-chain record. Public reads, like GET /api/models.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { OpenLedgerError } from '../../errors.ts';
import {
  MARKET_MAX_LIMIT,
  MARKET_SORTS,
  type MarketQuery,
  type MarketService,
  type MarketSort,
} from '../../market/index.ts';
import { errors } from '../schemas.ts';

/** What the market routes need of the node's context (NodeContext has it). */
export interface MarketRoutesContext {
  market?: MarketService | undefined;
}

const ListQuery = Type.Object(
  {
    q: Type.Optional(
      Type.String({
        maxLength: 200,
        description:
          'Case-insensitive text searched in the name, description, base model and datanet names.',
      }),
    ),
    base: Type.Optional(
      Type.String({ maxLength: 200, description: "The base model's catalogue name, exactly." }),
    ),
    datanet: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Only models trained on this datanet (by id).' }),
    ),
    sort: Type.Optional(
      Type.Union(
        MARKET_SORTS.map((s) => Type.Literal(s)),
        {
          description:
            'revenue (fees, highest first), usage (paid calls, most first), newest (the default) or price (input + output per 1k, cheapest first).',
        },
      ),
    ),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MARKET_MAX_LIMIT, description: 'Default 20.' }),
    ),
    offset: Type.Optional(Type.Integer({ minimum: 0, description: 'Default 0.' })),
    all: Type.Optional(Type.Boolean({ description: 'Include deactivated models.' })),
  },
  { additionalProperties: false },
);

function market(ctx: MarketRoutesContext): MarketService {
  if (!ctx.market)
    throw new OpenLedgerError('NOT_FOUND', 'This node has no model market.', {
      hint: 'The market lists models of the ModelRegistry: redeploy the contract suite (`openledger deploy --force`).',
    });
  return ctx.market;
}

export function marketRoutes(app: FastifyInstance, ctx: MarketRoutesContext): void {
  app.get(
    '/api/market/models',
    {
      schema: {
        tags: ['market'],
        summary:
          'Browse and search published models: base model, datanets, price, usage, revenue, evaluation scores and attribution statistics (q, base, datanet, sort=revenue|usage|newest|price, limit, offset)',
        querystring: ListQuery,
        response: errors(400, 404),
      },
    },
    async (req) => {
      const query = req.query as {
        q?: string;
        base?: string;
        datanet?: number;
        sort?: MarketSort;
        limit?: number;
        offset?: number;
        all?: boolean;
      };
      const input: MarketQuery = {
        ...(query.q === undefined ? {} : { q: query.q }),
        ...(query.base === undefined ? {} : { base: query.base }),
        ...(query.datanet === undefined ? {} : { datanet: query.datanet }),
        ...(query.sort === undefined ? {} : { sort: query.sort }),
        ...(query.limit === undefined ? {} : { limit: query.limit }),
        ...(query.offset === undefined ? {} : { offset: query.offset }),
        all: query.all === true,
      };
      return market(ctx).listModels(input);
    },
  );

  app.get(
    '/api/market/models/:id',
    {
      schema: {
        tags: ['market'],
        summary:
          "A model's market page: its statistics, its lineage (datanets → versions → contributors → training manifest) and its on-chain ModelRegistry record (holder, terms, channel weights, publish transaction)",
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: errors(400, 404),
      },
    },
    async (req) => market(ctx).model((req.params as { id: number }).id),
  );
}
