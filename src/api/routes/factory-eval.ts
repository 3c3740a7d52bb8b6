/**
 * The factory's estimate and evaluation endpoints: what a training job will cost before it is
 * launched, and base-vs-adapter evaluations of a succeeded job (stored with it, re-run on demand).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { LORA_TARGETS, readGguf } from '../../engine/index.ts';
import {
  EVAL_JOB_KIND,
  MAX_CUSTOM_PROMPTS,
  MAX_SAMPLE_TOKENS,
  estimateTraining,
  measureThroughput,
  modelShape,
  normalizeEvalParams,
  normalizeHyperparameters,
  succeededTrainingJob,
  type EvalJobResult,
  type Hyperparameters,
} from '../../factory/index.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const JobId = Type.Object({ id: Type.String({ format: 'uuid' }) });

const EstimateBody = Type.Object(
  {
    baseModel: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'A base model of the node, by name (GET /api/factory/models).',
    }),
    hyperparameters: Type.Optional(
      Type.Object(
        {
          rank: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
          targets: Type.Optional(
            Type.Array(Type.Union(LORA_TARGETS.map((t) => Type.Literal(t))), { minItems: 1 }),
          ),
          steps: Type.Optional(Type.Integer({ minimum: 1 })),
          batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 512 })),
          maxTokens: Type.Optional(Type.Integer({ minimum: 2 })),
          dropout: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1 })),
          packing: Type.Optional(Type.Boolean()),
        },
        {
          additionalProperties: true,
          description:
            'The hyperparameters of POST /api/factory/jobs (defaults filled in the same way); the others are accepted and ignored.',
        },
      ),
    ),
    tokensPerExample: Type.Optional(
      Type.Integer({
        minimum: 2,
        description:
          'Mean tokens per example, when known; the compute assumes full rows of maxTokens otherwise (an upper bound).',
      }),
    ),
  },
  { additionalProperties: false },
);

const Prompt = Type.Union([
  Type.String({ minLength: 1, maxLength: 4000 }),
  Type.Object(
    {
      prompt: Type.String({ minLength: 1, maxLength: 4000 }),
      reference: Type.Optional(Type.String({ maxLength: 4000 })),
    },
    { additionalProperties: false },
  ),
]);
const EvaluationBody = Type.Object(
  {
    prompts: Type.Optional(
      Type.Array(Prompt, {
        minItems: 1,
        maxItems: MAX_CUSTOM_PROMPTS,
        description:
          "Prompts rendered as a user turn with the job's template; absent: the first `samples` held-out rows.",
      }),
    ),
    samples: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_CUSTOM_PROMPTS, description: 'default 3' }),
    ),
    maxNewTokens: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_SAMPLE_TOKENS, description: 'default 48' }),
    ),
  },
  { additionalProperties: false },
);

export function factoryEvalRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.post(
    '/api/factory/estimate',
    {
      schema: {
        tags: ['factory'],
        summary:
          'Memory and time a training job would take: parameters (base, trainable), bytes (weights, adapter + AdamW, activations, peak), FLOPs per step, seconds from a throughput probe',
        body: EstimateBody,
        response: errors(400, 401, 422),
      },
    },
    async (request) => {
      requirePrincipal(request);
      const body = request.body as Static<typeof EstimateBody>;
      const model = await ctx.models.resolve(body.baseModel);
      const h = normalizeHyperparameters(
        (body.hyperparameters ?? {}) as Partial<Record<keyof Hyperparameters, unknown>>,
      );
      const header = await readGguf(model.path);
      const flopsPerSecond = await measureThroughput(modelShape(header), h);
      return {
        baseModel: model.name,
        ...estimateTraining(h, header, {
          flopsPerSecond,
          ...(body.tokensPerExample === undefined
            ? {}
            : { tokensPerExample: body.tokensPerExample }),
        }),
      };
    },
  );

  app.get(
    '/api/factory/jobs/:id/evaluation',
    {
      schema: {
        tags: ['factory'],
        summary:
          "A succeeded training job's evaluation (base vs adapter loss and perplexity on the held-out rows, side-by-side samples) and its on-demand re-runs",
        params: JobId,
        response: errors(401, 403, 404, 409),
      },
    },
    async (request) => {
      const caller = requirePrincipal(request).address;
      const { id } = request.params as { id: string };
      const { result } = await succeededTrainingJob(ctx.jobs, caller, id);
      const reruns = (await ctx.jobs.list({ owner: caller, kind: EVAL_JOB_KIND }))
        .filter((job) => (job.params as { jobId?: string }).jobId === id)
        .map((job) => ({
          id: job.id,
          status: job.status,
          createdAt: job.createdAt,
          params: job.params,
          result: (job.result as EvalJobResult | null) ?? null,
          error: job.error ?? null,
        }));
      return { jobId: id, evaluation: result.evaluation ?? null, reruns };
    },
  );

  app.post(
    '/api/factory/jobs/:id/evaluation',
    {
      schema: {
        tags: ['factory'],
        summary:
          'Re-run the evaluation of a succeeded training job, on its held-out prompts or on yours (202 with a factory.eval job; its result is the evaluation)',
        params: JobId,
        body: EvaluationBody,
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request, reply) => {
      const caller = requirePrincipal(request).address;
      const { id } = request.params as { id: string };
      await succeededTrainingJob(ctx.jobs, caller, id);
      const params = normalizeEvalParams(id, (request.body ?? {}) as Record<string, unknown>);
      const job = await ctx.jobs.submit(EVAL_JOB_KIND, caller, params);
      return reply.status(202).send(job);
    },
  );
}
