/**
 * Model proposals over HTTP (docs/api.md, "Model proposals"): the chain's proposals with the
 * specifications this node holds, spec checks and registration, and the node's evaluator (a
 * `proposal.evaluate` job that scores a published model and, when it meets the bar, submits the
 * score on-chain). Creating, funding, challenging, claiming and refunding move a wallet's own OPEN
 * and are sent by the wallet itself: see `openledger proposal` (docs/cli.md).
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { OpenLedgerError } from '../../errors.ts';
import type { ProposalService } from '../../market/proposals.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

function proposals(ctx: NodeContext): ProposalService {
  const service = ctx.proposals;
  if (!service)
    throw new OpenLedgerError(
      'GOVERNANCE_UNAVAILABLE',
      'This node names no ModelProposals contract (its deployment predates it).',
      { hint: 'Restart the node with its deployer key: `up` adds the missing contracts.' },
    );
  return service;
}

const Id = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export function proposalRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/proposals',
    {
      schema: {
        tags: ['proposals'],
        summary:
          "Model proposals, newest first: the chain's state (status, funding, bar, deadline, submission, challenge window, refundable) and the specification where this node has it; with the contract's settings",
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
        }),
        response: { ...errors(503) },
      },
    },
    async (request) => {
      const p = proposals(ctx);
      const { limit } = request.query as { limit?: number };
      const [list, settings] = await Promise.all([
        p.list(limit === undefined ? {} : { limit }),
        p.settings(),
      ]);
      return { proposals: list, settings };
    },
  );

  app.get(
    '/api/proposals/:id',
    {
      schema: {
        tags: ['proposals'],
        summary: 'One model proposal',
        params: Id,
        response: { ...errors(404, 503) },
      },
    },
    async (request) => proposals(ctx).get((request.params as { id: number }).id),
  );

  app.post(
    '/api/proposals/validate',
    {
      // A check, not a change: anyone may ask.
      config: { public: true },
      schema: {
        tags: ['proposals'],
        summary:
          'Checks a proposal specification (shape, training datanet, evaluation set) and gives the sha256 to create it with',
        body: Type.Object({ spec: Type.Unknown() }, { additionalProperties: false }),
        response: { ...errors(400, 404, 503) },
      },
    },
    async (request) => {
      const p = proposals(ctx);
      const { spec, specHash } = await p.validate((request.body as { spec: unknown }).spec);
      return { spec, specHash, settings: await p.settings() };
    },
  );

  app.post(
    '/api/proposals',
    {
      schema: {
        tags: ['proposals'],
        summary:
          'Registers a created proposal: its specification must hash to what ModelProposals records for that id',
        body: Type.Object(
          { id: Type.Integer({ minimum: 1 }), spec: Type.Unknown() },
          { additionalProperties: false },
        ),
        response: { ...errors(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      requirePrincipal(request);
      const body = request.body as { id: number; spec: unknown };
      return reply.code(201).send(await proposals(ctx).register(body.id, body.spec));
    },
  );

  app.post(
    '/api/proposals/:id/evaluate',
    {
      schema: {
        tags: ['proposals'],
        summary:
          "Runs the node's evaluator on a published model (202 with a proposal.evaluate job; its result has the score, whether it meets the bar, the report hash and the submit transaction when it does)",
        params: Id,
        body: Type.Object(
          { modelId: Type.Integer({ minimum: 1 }) },
          { additionalProperties: false },
        ),
        response: { ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const caller = requirePrincipal(request).address;
      const { id } = request.params as { id: number };
      const { modelId } = request.body as { modelId: number };
      const job = await proposals(ctx).evaluate(id, modelId, caller);
      return reply.code(202).send(job);
    },
  );

  app.get(
    '/api/proposals/:id/reports',
    {
      schema: {
        tags: ['proposals'],
        summary:
          "The evaluator's reports for a proposal, newest first, each with its report (the canonical JSON whose sha256 is the on-chain reportHash)",
        params: Id,
        response: { ...errors(503) },
      },
    },
    async (request) => ({
      reports: await proposals(ctx).reports((request.params as { id: number }).id),
    }),
  );
}
