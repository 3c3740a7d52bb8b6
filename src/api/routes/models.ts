import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { getAddress, type Address as EvmAddress, type Hex } from 'viem';
import { OpenLedgerError } from '../../errors.ts';
import type { PublishFields, PublishRequest } from '../../models/index.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { Address, errors } from '../schemas.ts';

const Uint = Type.String({
  pattern: '^[0-9]{1,78}$',
  description: 'An unsigned integer as a decimal string.',
});
const Bps = Type.Integer({ minimum: 0, maximum: 10_000 });
const Split = Type.Object(
  { owner: Bps, stakers: Bps, contributors: Bps },
  {
    additionalProperties: false,
    description:
      'Basis points of what is left after the platform fee, adding up to 10000 (default owner 6000, stakers 1000, contributors 3000).',
  },
);
const ChannelWeightsBody = Type.Object(
  {
    span: Bps,
    influence: Bps,
    rag: Bps,
    authorization: Type.Object(
      {
        signature: Type.String({ pattern: '^0x[0-9a-fA-F]+$', maxLength: 20000 }),
        deadline: Uint,
      },
      {
        description:
          "The holder's EIP-712 SetChannelWeights signature and its deadline (unix seconds).",
      },
    ),
  },
  {
    additionalProperties: false,
    description:
      'Basis points of the contributor share by Proof of Attribution channel (span matches, training influence, retrieval citations), adding up to 10000.',
  },
);
const PublishBody = {
  jobId: Type.String({ format: 'uuid', description: 'A succeeded training job of yours.' }),
  name: Type.Optional(Type.String({ maxLength: 80 })),
  description: Type.Optional(Type.String({ maxLength: 5000 })),
  pricePer1kInput: Type.String({
    pattern: '^[0-9]{1,78}$',
    description: 'OPEN wei per 1,000 input (prompt) tokens, as a decimal string.',
  }),
  pricePer1kOutput: Type.String({
    pattern: '^[0-9]{1,78}$',
    description: 'OPEN wei per 1,000 output (generated) tokens, as a decimal string.',
  }),
  split: Type.Optional(Split),
};
const PlanBody = Type.Object(PublishBody, { additionalProperties: false });
const PublishRequestBody = Type.Object(
  {
    ...PublishBody,
    authorization: Type.Object(
      {
        signature: Type.String({ pattern: '^0x[0-9a-fA-F]+$', maxLength: 20000 }),
        deadline: Uint,
      },
      { description: "The owner's EIP-712 Publish signature and its deadline (unix seconds)." },
    ),
  },
  { additionalProperties: false },
);

function service(ctx: NodeContext) {
  if (!ctx.publishedModels) {
    throw new OpenLedgerError('NOT_FOUND', 'This node has no model registry deployed.', {
      hint: 'Redeploy the contract suite (`openledger deploy --force`).',
    });
  }
  return ctx.publishedModels;
}

function request(body: Static<typeof PlanBody>, owner: EvmAddress): PublishRequest {
  return {
    jobId: body.jobId,
    owner,
    ...(body.name === undefined ? {} : { name: body.name }),
    ...(body.description === undefined ? {} : { description: body.description }),
    pricePer1kInput: BigInt(body.pricePer1kInput),
    pricePer1kOutput: BigInt(body.pricePer1kOutput),
    ...(body.split ? { split: body.split } : {}),
  };
}

/** The Publish fields as JSON (bigints as decimal strings), as `publishFieldsFromPlan` reads them. */
function fieldsJson(f: PublishFields) {
  return {
    ...f,
    datanets: f.datanets.map((d) => ({
      datanetId: d.datanetId.toString(),
      version: d.version.toString(),
    })),
    pricePer1kInput: f.pricePer1kInput.toString(),
    pricePer1kOutput: f.pricePer1kOutput.toString(),
  };
}

export function modelRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/models',
    {
      schema: {
        tags: ['models'],
        summary:
          'Published models (active ones unless all=true): Model ID, base model, adapter blob, datanet versions, prices, split',
        querystring: Type.Object({
          owner: Type.Optional(Address),
          baseModel: Type.Optional(Type.String({ maxLength: 200 })),
          all: Type.Optional(Type.Boolean({ description: 'include deactivated models' })),
        }),
      },
    },
    async (req) => {
      const query = req.query as { owner?: string; baseModel?: string; all?: boolean };
      return {
        models: await service(ctx).list({
          ...(query.owner ? { owner: query.owner as EvmAddress } : {}),
          ...(query.baseModel ? { baseModel: query.baseModel } : {}),
          includeInactive: query.all === true,
        }),
      };
    },
  );

  app.get(
    '/api/models/signing-info',
    {
      schema: {
        tags: ['models'],
        summary: 'Chain id, ModelRegistry address and the registry nonce of an address',
        querystring: Type.Object({ address: Address }),
        response: { 200: Type.Object({ chainId: Type.Integer(), registry: Address, nonce: Uint }) },
      },
    },
    async (req) => {
      const info = await service(ctx).signingInfo(
        getAddress((req.query as { address: string }).address),
      );
      return { ...info, nonce: info.nonce.toString() };
    },
  );

  app.post(
    '/api/models/plan',
    {
      schema: {
        tags: ['models'],
        summary:
          'What publishing a training job registers: the Publish fields to sign, the metadata they commit to, and the signing context (or the existing model when the job is published already)',
        body: PlanBody,
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (req) => {
      const owner = requirePrincipal(req).address;
      const models = service(ctx);
      const plan = await models.plan(request(req.body as Static<typeof PlanBody>, owner));
      if ('existing' in plan) return { existing: plan.existing };
      const info = await models.signingInfo(owner);
      return {
        existing: null,
        publish: fieldsJson(plan.fields),
        metadata: plan.metadata,
        signing: { ...info, nonce: info.nonce.toString() },
      };
    },
  );

  app.post(
    '/api/models',
    {
      schema: {
        tags: ['models'],
        summary:
          'Publish a succeeded training job: the owner signs Publish (see /api/models/plan); the node relays it to the ModelRegistry and lists the model (201; 200 with the same model when the job is already published)',
        body: PublishRequestBody,
        response: errors(400, 401, 403, 404, 409, 503),
      },
    },
    async (req, reply) => {
      const body = req.body as Static<typeof PublishRequestBody>;
      const { model, created } = await service(ctx).publish({
        ...request(body, requirePrincipal(req).address),
        authorization: {
          signature: body.authorization.signature as Hex,
          deadline: BigInt(body.authorization.deadline),
        },
      });
      return reply.status(created ? 201 : 200).send({ ...model, created });
    },
  );

  app.get(
    '/api/models/:id',
    {
      schema: {
        tags: ['models'],
        summary:
          'A published model, refreshed from the chain, with its current holder and its attribution channel weights',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: errors(404),
      },
    },
    async (req) => service(ctx).get((req.params as { id: number }).id),
  );
  app.put(
    '/api/models/:id/channel-weights',
    {
      schema: {
        tags: ['models'],
        summary:
          "Set a model's Proof of Attribution channel weights: its holder signs SetChannelWeights (nonce from /api/models/signing-info); the node relays it to the ModelRegistry",
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        body: ChannelWeightsBody,
        response: errors(400, 401, 403, 404, 503),
      },
    },
    async (req) => {
      const body = req.body as Static<typeof ChannelWeightsBody>;
      return service(ctx).setChannelWeights({
        id: (req.params as { id: number }).id,
        owner: requirePrincipal(req).address,
        weights: { span: body.span, influence: body.influence, rag: body.rag },
        authorization: {
          signature: body.authorization.signature as Hex,
          deadline: BigInt(body.authorization.deadline),
        },
      });
    },
  );
}
