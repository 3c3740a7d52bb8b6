import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import {
  INDEX_JOB_KIND,
  TRACE_DEFAULTS,
  attributionOf,
  type IndexJobParams,
  type TokenizerInfo,
} from '../../attribution/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const Model = Type.String({
  minLength: 1,
  maxLength: 4096,
  description:
    'The base model (by name) whose tokenizer the index uses; default: the built-in openledger-base-1m.',
});
const VersionParam = Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('latest')]);
const IndexParams = Type.Object({
  datanetId: Type.Integer({ minimum: 1 }),
  version: VersionParam,
});

const MAX_TOKENS = 20_000;
const QueryFields = {
  datanets: Type.Array(
    Type.Object(
      {
        id: Type.Integer({ minimum: 1 }),
        version: Type.Optional(VersionParam),
      },
      { additionalProperties: false },
    ),
    { minItems: 1, maxItems: 32, description: 'The datanet versions to search (default: latest).' },
  ),
  model: Type.Optional(Model),
  text: Type.Optional(
    Type.String({ maxLength: 200_000, description: "Tokenized with the model's tokenizer." }),
  ),
  tokens: Type.Optional(
    Type.Array(Type.Integer({ minimum: 0 }), {
      maxItems: MAX_TOKENS,
      description: 'Token ids instead of text.',
    }),
  ),
};
const CountBody = Type.Object(QueryFields, { additionalProperties: false });
const FindBody = Type.Object(
  { ...QueryFields, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) },
  { additionalProperties: false },
);
const NgramBody = Type.Object(
  {
    ...QueryFields,
    mode: Type.Optional(
      Type.Union([Type.Literal('prob'), Type.Literal('next')], {
        description:
          'prob (default): P(last token | the ones before it); next: the next-token distribution after all of them.',
      }),
    ),
    top: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);
const TraceBody = Type.Object(
  {
    ...QueryFields,
    maxOccurrences: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, description: 'default 10' }),
    ),
    minTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'default 8' })),
    listOccurrences: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 100, description: 'default 10' }),
    ),
  },
  { additionalProperties: false },
);
type Query = Static<typeof CountBody>;

/** The query's token ids: `tokens` as given, or `text` tokenized (no BOS/EOS). */
function tokensOf(body: Query, tok: TokenizerInfo): number[] {
  if ((body.text === undefined) === (body.tokens === undefined))
    throw new OpenLedgerError('VALIDATION_FAILED', 'Give either text or tokens.');
  const tokens = body.tokens ?? tok.tokenizer.encode(body.text!, { addBos: false, addEos: false });
  if (tokens.length > MAX_TOKENS)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `The query has ${tokens.length} tokens; at most ${MAX_TOKENS}.`,
    );
  return tokens;
}

export function attributionRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const service = () => attributionOf(ctx);

  const open = async (request: FastifyRequest) => {
    const body = request.body as Query;
    const opened = await service().open(
      body.datanets.map((d) => ({ id: d.id, version: d.version ?? 'latest' })),
      request.principal?.address,
      body.model,
    );
    return { ...opened, tokens: tokensOf(body, opened.tokenizer) };
  };
  const header = (o: Awaited<ReturnType<typeof open>>) => ({
    datanets: o.datanets,
    model: o.tokenizer.model,
    tokenizer: o.tokenizer.sha256,
    tokens: o.tokens,
  });

  app.get(
    '/api/attribution/index/:datanetId/:version',
    {
      schema: {
        tags: ['attribution'],
        summary:
          'The span index of a datanet version: status (ready when every version up to it is indexed), shards and tokens',
        params: IndexParams,
        querystring: Type.Object({ model: Type.Optional(Model) }),
        response: errors(401, 403, 404),
      },
    },
    async (request) => {
      const { datanetId, version } = request.params as Static<typeof IndexParams>;
      await ctx.datanets?.assertCanRead(datanetId, request.principal?.address);
      return service().status(datanetId, version, (request.query as { model?: string }).model);
    },
  );

  app.post(
    '/api/attribution/index/:datanetId/:version',
    {
      schema: {
        tags: ['attribution'],
        summary:
          'Build the span index of a datanet version (each version up to it that is not indexed): 202 with the job',
        params: IndexParams,
        body: Type.Optional(
          Type.Object(
            {
              model: Type.Optional(Model),
              force: Type.Optional(
                Type.Boolean({ description: 'Rebuild versions already indexed.' }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: errors(400, 401, 403, 404),
      },
    },
    async (request, reply) => {
      const owner = requirePrincipal(request).address;
      const { datanetId, version } = request.params as Static<typeof IndexParams>;
      const body = (request.body ?? {}) as { model?: string; force?: boolean };
      await ctx.datanets?.assertCanRead(datanetId, owner);
      const resolved = await service().resolveVersion(datanetId, version);
      const tok = await service().tokenizer(body.model);
      const params: IndexJobParams = {
        datanetId,
        version: resolved,
        model: tok.model,
        ...(body.force ? { force: true } : {}),
      };
      const job = await ctx.jobs.submit(INDEX_JOB_KIND, owner, params);
      return reply
        .status(202)
        .send({ job, index: await service().status(datanetId, resolved, tok.model) });
    },
  );

  const queryRoute = { config: { public: true } };

  app.post(
    '/api/attribution/count',
    {
      ...queryRoute,
      schema: {
        tags: ['attribution'],
        summary: 'How often an n-gram occurs in datanet versions you may read',
        body: CountBody,
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request) => {
      const o = await open(request);
      return { ...header(o), count: o.index.count(o.tokens) };
    },
  );

  app.post(
    '/api/attribution/find',
    {
      ...queryRoute,
      schema: {
        tags: ['attribution'],
        summary: 'Where an n-gram occurs: rows, contributors and offsets',
        body: FindBody,
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request) => {
      const o = await open(request);
      const found = o.index.find(o.tokens, (request.body as { limit?: number }).limit ?? 100);
      return { ...header(o), ...found };
    },
  );

  app.post(
    '/api/attribution/ngram',
    {
      ...queryRoute,
      schema: {
        tags: ['attribution'],
        summary:
          '∞-gram probability (longest context suffix that occurs): P(last | before), or the next-token distribution',
        body: NgramBody,
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request) => {
      const o = await open(request);
      const body = request.body as Static<typeof NgramBody>;
      const piece = (t: number) => o.tokenizer.tokenizer.decode([t]);
      if (body.mode === 'next') {
        const result = o.index.nextTokens(o.tokens, body.top ?? 10);
        return {
          ...header(o),
          mode: 'next',
          ...result,
          next: result.next.map((n) => ({ ...n, text: piece(n.token) })),
        };
      }
      return { ...header(o), mode: 'prob', ...o.index.probability(o.tokens) };
    },
  );

  app.post(
    '/api/attribution/trace',
    {
      ...queryRoute,
      schema: {
        tags: ['attribution'],
        summary:
          'Trace an output to the rows it reproduces: rare maximal spans, and per-contributor weights (sum 1)',
        body: TraceBody,
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request) => {
      const o = await open(request);
      const body = request.body as Static<typeof TraceBody>;
      const options = {
        maxOccurrences: body.maxOccurrences ?? TRACE_DEFAULTS.maxOccurrences,
        minTokens: body.minTokens ?? TRACE_DEFAULTS.minTokens,
        listOccurrences: body.listOccurrences ?? TRACE_DEFAULTS.listOccurrences,
      };
      const result = o.index.trace(o.tokens, options);
      return {
        ...header(o),
        options,
        ...result,
        spans: result.spans.map((s) => ({
          ...s,
          text: o.tokenizer.tokenizer.decode(o.tokens.slice(s.start, s.end)),
        })),
      };
    },
  );
}
