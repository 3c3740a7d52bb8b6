import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { LORA_TARGETS } from '../../engine/index.ts';
import {
  DEFAULT_MAX_TOKENS,
  TEMPLATES,
  TRAIN_JOB_KIND,
  checkTrainRequest,
  loadTokenizer,
  previewTemplate,
  type TemplateName,
} from '../../factory/index.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const Template = Type.Union(
  TEMPLATES.map((t) => Type.Literal(t)),
  { description: 'llama2, chatml or plain (default llama2).' },
);
const Hyperparameters = Type.Object(
  {
    rank: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, description: 'default 8' })),
    alpha: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'default 2 × rank' })),
    dropout: Type.Optional(
      Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'default 0.05' }),
    ),
    targets: Type.Optional(
      Type.Array(Type.Union(LORA_TARGETS.map((t) => Type.Literal(t))), {
        minItems: 1,
        maxItems: LORA_TARGETS.length,
        description: "default ['attn_q', 'attn_v']",
      }),
    ),
    learningRate: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'default 1e-3' }),
    ),
    steps: Type.Optional(Type.Integer({ minimum: 1, description: 'default 100' })),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 512, description: 'default 8' })),
    warmupSteps: Type.Optional(
      Type.Integer({ minimum: 0, description: 'default min(10, steps / 10)' }),
    ),
    seed: Type.Optional(Type.Integer({ minimum: 0 })),
    maxTokens: Type.Optional(
      Type.Integer({
        minimum: 2,
        description: `default ${DEFAULT_MAX_TOKENS}, at most the model's context`,
      }),
    ),
    checkpointEvery: Type.Optional(Type.Integer({ minimum: 1 })),
    evalPercent: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 50, description: 'default 10' }),
    ),
    packing: Type.Optional(
      Type.Boolean({
        description: 'default true: examples packed into rows of maxTokens (docs/api.md)',
      }),
    ),
    quantizeBase: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('q8_0'), Type.Literal('q4_0')], {
        description: "QLoRA: the frozen base in 8-bit or 4-bit blocks (default 'none')",
      }),
    ),
  },
  { additionalProperties: false },
);
const TrainBody = Type.Object(
  {
    baseModel: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          'A base model of the node, by name (GET /api/factory/models); default: the built-in openledger-base-1m.',
      }),
    ),
    datanets: Type.Array(
      Type.Object(
        {
          id: Type.Integer({ minimum: 1 }),
          version: Type.Optional(
            Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('latest')]),
          ),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 32 },
    ),
    template: Type.Optional(Template),
    hyperparameters: Type.Optional(Hyperparameters),
  },
  { additionalProperties: false },
);

const PreviewBody = Type.Object(
  {
    template: Template,
    baseModel: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'The base model (by name) whose tokenizer renders the row.',
    }),
    row: Type.Object(
      {
        messages: Type.Optional(
          Type.Array(
            Type.Object({ role: Type.String({ maxLength: 32 }), content: Type.String() }),
            {
              maxItems: 200,
            },
          ),
        ),
        content: Type.Optional(Type.Unknown()),
      },
      {
        description:
          'A row as exported: { messages } for chat/instruction rows, { content: { type: "document", text } } for documents.',
      },
    ),
    maxTokens: Type.Optional(Type.Integer({ minimum: 2, maximum: 32768 })),
  },
  { additionalProperties: false },
);

export function factoryRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.post(
    '/api/factory/jobs',
    {
      schema: {
        tags: ['factory'],
        summary:
          'Start a LoRA training job on datanet versions you may read (202 with the job; follow it at /api/jobs/:id/events)',
        body: TrainBody,
        response: errors(400, 401, 403, 404),
      },
    },
    async (request, reply) => {
      const owner = requirePrincipal(request).address;
      const params = await checkTrainRequest(ctx, owner, request.body as Static<typeof TrainBody>);
      const job = await ctx.jobs.submit(TRAIN_JOB_KIND, owner, params);
      return reply.status(202).send(job);
    },
  );

  app.get(
    '/api/factory/models',
    {
      schema: {
        tags: ['factory'],
        summary: 'The base models this node offers (GGUF files in its model folders)',
      },
    },
    async () => ({
      models: (await ctx.models.list()).map(({ path: _, ...model }) => model),
    }),
  );

  app.post(
    '/api/factory/templates/preview',
    {
      schema: {
        tags: ['factory'],
        summary:
          "How a template renders a row into the base model's tokens, each piece flagged masked (context) or trained",
        body: PreviewBody,
        response: errors(400, 401),
      },
    },
    async (request) => {
      requirePrincipal(request);
      const body = request.body as Static<typeof PreviewBody>;
      const tokenizer = await loadTokenizer((await ctx.models.resolve(body.baseModel)).path);
      return previewTemplate(
        body.template as TemplateName,
        body.row as { messages?: { role: string; content: string }[]; content?: unknown },
        tokenizer,
        body.maxTokens ?? DEFAULT_MAX_TOKENS,
      );
    },
  );
}
