/**
 * Agents, staking and governance over HTTP (docs/market.md): reads of the on-chain state, spec
 * checks and registration for agents, and the one relayed action anyone may trigger for anyone
 * (syncing an account's contribution votes). Wallet actions that move a wallet's own OPEN or
 * votes (stake, launch, deposit, propose, vote) are sent by the wallet itself: see
 * `openledger agent|stake|gov` (docs/cli.md).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { getAddress, isAddress, type Address } from 'viem';
import { ContributionVotesAbi } from '../../chain/generated/contracts.ts';
import { OpenLedgerError } from '../../errors.ts';
import {
  parseSplit,
  type AgentService,
  type GovernanceAction,
  type GovernanceService,
} from '../../market/index.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

function governance(ctx: NodeContext): GovernanceService {
  if (!ctx.governance)
    throw new OpenLedgerError(
      'GOVERNANCE_UNAVAILABLE',
      'This node names no governance contracts (its deployment predates them).',
      { hint: 'Restart the node with its deployer key: `up` adds the missing contracts.' },
    );
  return ctx.governance;
}

function agents(ctx: NodeContext): AgentService {
  if (!ctx.agents)
    throw new OpenLedgerError(
      'GOVERNANCE_UNAVAILABLE',
      'This node has no AgentStaking contract, so no agents.',
    );
  return ctx.agents;
}

function addressParam(value: string): Address {
  if (!isAddress(value, { strict: false }))
    throw new OpenLedgerError('VALIDATION_FAILED', `"${value}" is not an address.`, {
      details: { field: 'address' },
    });
  return getAddress(value);
}

const Wei = Type.String({ pattern: '^\\d{1,78}$', description: 'OPEN wei, as a decimal string' });

const ActionBody = Type.Union([
  Type.Object({ kind: Type.Literal('default-split'), split: Type.String() }),
  Type.Object({ kind: Type.Literal('min-agent-stake'), wei: Wei }),
  Type.Object({ kind: Type.Literal('penalty-threshold'), threshold: Type.Integer({ minimum: 1 }) }),
  Type.Object({ kind: Type.Literal('epoch-length'), seconds: Type.Integer({ minimum: 1 }) }),
  Type.Object({
    kind: Type.Literal('slash-agent'),
    agentId: Type.Integer({ minimum: 1 }),
    wei: Wei,
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  }),
]);

/** A proposal action as the API and CLI name it, checked. */
export function actionOf(body: Static<typeof ActionBody>): GovernanceAction {
  switch (body.kind) {
    case 'default-split':
      return { kind: 'default-split', split: parseSplit(body.split) };
    case 'min-agent-stake':
      return { kind: 'min-agent-stake', wei: BigInt(body.wei) };
    case 'penalty-threshold':
      return { kind: 'penalty-threshold', threshold: BigInt(body.threshold) };
    case 'epoch-length':
      return { kind: 'epoch-length', seconds: BigInt(body.seconds) };
    case 'slash-agent':
      return {
        kind: 'slash-agent',
        agentId: BigInt(body.agentId),
        wei: BigInt(body.wei),
        reason: body.reason,
      };
  }
}

const jsonSafe = <T>(value: T): T =>
  JSON.parse(
    JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as T;

export function governanceRoutes(app: FastifyInstance, ctx: NodeContext): void {
  // ----- governance ----------------------------------------------------------------------------

  app.get(
    '/api/governance',
    {
      schema: {
        tags: ['governance'],
        summary:
          'Governance: contracts, Governor settings (delays in seconds, threshold, quorum), vote supplies and the protocol parameters it controls',
        response: { ...errors(503) },
      },
    },
    async () => {
      const g = governance(ctx);
      const [settings, parameters] = await Promise.all([g.settings(), g.parameters()]);
      return { contracts: g.contracts, settings, parameters };
    },
  );

  app.get(
    '/api/governance/proposals',
    {
      schema: {
        tags: ['governance'],
        summary: 'Every governance proposal, newest first, with its state, votes and decoded calls',
        response: { ...errors(503) },
      },
    },
    async () => ({ proposals: jsonSafe(await governance(ctx).proposals()) }),
  );

  app.get(
    '/api/governance/proposals/:id',
    {
      schema: {
        tags: ['governance'],
        summary: 'One governance proposal',
        params: Type.Object({ id: Type.String({ pattern: '^\\d{1,78}$' }) }),
        response: { ...errors(404, 503) },
      },
    },
    async (request) =>
      jsonSafe(await governance(ctx).proposal((request.params as { id: string }).id)),
  );

  app.get(
    '/api/governance/accounts/:address',
    {
      schema: {
        tags: ['governance'],
        summary:
          "An account's voting power: gOPEN staked and delegated, contribution votes (and what a sync would add), OPEN in the wallet",
        response: { ...errors(400, 503) },
      },
    },
    async (request) =>
      governance(ctx).votingPower(addressParam((request.params as { address: string }).address)),
  );

  app.post(
    '/api/governance/encode',
    {
      schema: {
        tags: ['governance'],
        summary:
          'The Timelock call a proposal needs for a named change (default split, minimum agent stake, penalty threshold, epoch length, slashing an agent)',
        body: ActionBody,
        response: { ...errors(400, 503) },
      },
      config: { public: true },
    },
    async (request) => {
      const g = governance(ctx);
      const call = await g.encode(actionOf(request.body as Static<typeof ActionBody>));
      return { target: call.target, value: call.value.toString(), calldata: call.calldata };
    },
  );

  app.post(
    '/api/governance/sync',
    {
      schema: {
        tags: ['governance'],
        summary:
          "Mints an account's contribution votes for the rewards it has claimed (ContributionVotes.sync; the node pays the gas)",
        body: Type.Object(
          { address: Type.Optional(Type.String()) },
          { additionalProperties: false },
        ),
        response: { ...errors(400, 401, 503) },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const g = governance(ctx);
      const body = request.body as { address?: string };
      const address = body.address ? addressParam(body.address) : getAddress(principal.address);
      if (!ctx.relayer)
        throw new OpenLedgerError('RELAYER_UNAVAILABLE', 'This node has no signer to pay gas.');
      const before = await g.votingPower(address);
      if (BigInt(before.contribution.pending) === 0n)
        return { address, minted: '0', txHash: null, votes: before };
      const receipt = await ctx.relayer.write({
        address: g.contracts.ContributionVotes,
        abi: ContributionVotesAbi,
        functionName: 'sync',
        args: [address],
      });
      return {
        address,
        minted: before.contribution.pending,
        txHash: receipt.transactionHash,
        votes: await g.votingPower(address),
      };
    },
  );

  app.get(
    '/api/staking/models/:id',
    {
      schema: {
        tags: ['governance'],
        summary:
          "Who is staked on a model and how much (the stakers share the model's stakers part of every paid call by stake)",
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: { ...errors(503) },
      },
    },
    async (request) => governance(ctx).modelStakes((request.params as { id: number }).id),
  );

  // ----- agents --------------------------------------------------------------------------------

  app.get(
    '/api/agents',
    {
      schema: {
        tags: ['agents'],
        summary:
          'Agents this node serves (as `agent:<name>`), with their on-chain stake and state, and the launch parameters',
        response: { ...errors(503) },
      },
    },
    async () => {
      const a = agents(ctx);
      const [list, parameters] = await Promise.all([a.list(), a.parameters()]);
      return { agents: list, parameters };
    },
  );

  app.get(
    '/api/agents/:ref',
    {
      schema: {
        tags: ['agents'],
        summary: 'One agent, by id or name',
        params: Type.Object({ ref: Type.String({ minLength: 1, maxLength: 60 }) }),
        response: { ...errors(404, 503) },
      },
    },
    async (request) => {
      const ref = (request.params as { ref: string }).ref;
      const found = await agents(ctx).get(ref);
      if (!found)
        throw new OpenLedgerError('NOT_FOUND', `This node has no agent "${ref}".`, {
          hint: 'GET /api/agents lists them; a launched agent is served once registered (POST /api/agents).',
        });
      return found;
    },
  );

  app.post(
    '/api/agents/validate',
    {
      schema: {
        tags: ['agents'],
        summary:
          'Checks an agent specification (shape, models and adapters this node can run) and gives the sha256 to launch it with',
        body: Type.Object({ spec: Type.Unknown() }, { additionalProperties: false }),
        response: { ...errors(400, 404, 503) },
      },
      config: { public: true },
    },
    async (request) => {
      const a = agents(ctx);
      const { spec, specHash } = await a.validate((request.body as { spec: unknown }).spec);
      return { spec, specHash, parameters: await a.parameters() };
    },
  );

  app.post(
    '/api/agents',
    {
      schema: {
        tags: ['agents'],
        summary:
          'Registers a launched agent: its specification must hash to what AgentStaking records for that id and name',
        body: Type.Object(
          { id: Type.Integer({ minimum: 1 }), spec: Type.Unknown() },
          { additionalProperties: false },
        ),
        response: { ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      requirePrincipal(request);
      const body = request.body as { id: number; spec: unknown };
      const view = await agents(ctx).register(body.id, body.spec);
      return reply.code(201).send(view);
    },
  );
}
