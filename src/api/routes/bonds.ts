import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { getAddress, type Address as EvmAddress, type Hex } from 'viem';
import { BondService, type BondParameters } from '../../datanets/bonds.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { Address, TxHash, Wei, errors } from '../schemas.ts';

const Signature = Type.String({ pattern: '^0x[0-9a-fA-F]{130}$' });
const Deadline = Type.String({ pattern: '^[0-9]{1,20}$', description: 'Unix seconds.' });
const Uint = Type.String({ pattern: '^[0-9]{1,78}$' });
const Cid = Type.Object({ cid: Type.String({ format: 'uuid' }) });
const RowHash = Type.String({ pattern: '^[0-9a-f]{64}$' });

const Parameters = Type.Object({
  penaltyPerSlash: Uint,
  penaltyThreshold: Uint,
  reporterShareBps: Type.Integer(),
  unbondDelaySeconds: Uint,
  treasury: Address,
});
const BondView = Type.Object({
  datanetId: Type.Integer(),
  contributionId: Type.String(),
  contributionIdBytes32: TxHash,
  contributor: Address,
  amount: Wei,
  unlockAt: Type.Union([Type.Integer(), Type.Null()]),
  slashed: Type.Boolean(),
  chainTime: Type.Integer(),
});

const parametersView = (p: BondParameters) => ({
  penaltyPerSlash: p.penaltyPerSlash.toString(),
  penaltyThreshold: p.penaltyThreshold.toString(),
  reporterShareBps: p.reporterShareBps,
  unbondDelaySeconds: p.unbondDelaySeconds.toString(),
  treasury: p.treasury,
});

/**
 * Contribution bonds and data-quality penalties (ContributionBonds): bond state, relayed bonds
 * (ERC-2612 permit), unbond requests and curator slashes (EIP-712), unbonds (anyone), duplicate
 * slashes the node proves itself, and penalty scores. Wallets sign; the node pays the gas.
 */
export function bondRoutes(app: FastifyInstance, ctx: NodeContext): void {
  let bonds: BondService | undefined;
  // Built on first use: the service needs the datanet registry and a deployed bonds contract.
  const service = (): BondService => {
    const address = ctx.deployment.contracts.ContributionBonds;
    if (!address || !ctx.datanets)
      throw new OpenLedgerError('NOT_FOUND', 'This node has no ContributionBonds deployed.', {
        hint: 'Restart the node with its deployer key, so that it adds the contract to its deployment.',
      });
    bonds ??= new BondService({
      db: ctx.database.db,
      chain: ctx.chain,
      bonds: address,
      token: ctx.deployment.contracts.OpenToken,
      datanets: ctx.datanets,
      relayer: ctx.relayer,
      local: ctx.local,
    });
    return bonds;
  };
  const cidOf = (request: FastifyRequest) => (request.params as { cid: string }).cid;

  app.get(
    '/api/bonds/signing-info',
    {
      schema: {
        tags: ['bonds'],
        summary:
          "What signing bond actions needs: chain id, the bonds contract (EIP-712 domain 'OpenLedger ContributionBonds' v1 and the permit's spender), the token, the address's nonces on both, and the penalty parameters",
        querystring: Type.Object({ address: Address }),
        response: {
          200: Type.Object({
            chainId: Type.Integer(),
            bonds: Address,
            token: Address,
            nonce: Uint,
            tokenNonce: Uint,
            parameters: Parameters,
          }),
          ...errors(400, 404),
        },
      },
    },
    async (request) => {
      const info = await service().signingInfo(
        getAddress((request.query as { address: string }).address),
      );
      return {
        ...info,
        nonce: info.nonce.toString(),
        tokenNonce: info.tokenNonce.toString(),
        parameters: parametersView(info.parameters),
      };
    },
  );

  app.get(
    '/api/contributions/:cid/bond',
    {
      schema: {
        tags: ['bonds'],
        summary: "A contribution's bond: amount, unbond unlock time, whether it was slashed",
        params: Cid,
        response: { 200: BondView, ...errors(400, 404) },
      },
    },
    async (request) => {
      const state = await service().bond(cidOf(request));
      return { ...state, amount: state.amount.toString() };
    },
  );

  app.post(
    '/api/contributions/:cid/bond',
    {
      schema: {
        tags: ['bonds'],
        summary:
          "Relay a bond: the contribution's contributor signs an ERC-2612 Permit of `amount` OPEN wei to the bonds contract (spender) with its token nonce; the node submits bondWithPermit and pays the gas",
        params: Cid,
        body: Type.Object(
          { amount: Wei, deadline: Deadline, signature: Signature },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ txHash: TxHash }), ...errors(400, 401, 402, 404, 409, 503) },
      },
    },
    async (request) => {
      requirePrincipal(request);
      const body = request.body as { amount: string; deadline: string; signature: Hex };
      const txHash = await service().bondWithPermit({
        contributionId: cidOf(request),
        amount: BigInt(body.amount),
        deadline: BigInt(body.deadline),
        signature: body.signature,
      });
      return { txHash };
    },
  );

  app.post(
    '/api/contributions/:cid/unbond-request',
    {
      schema: {
        tags: ['bonds'],
        summary:
          'Relay an unbond request: the contributor signs RequestUnbond with its bonds nonce; the bond unlocks after the unbond delay',
        params: Cid,
        body: Type.Object(
          { deadline: Deadline, signature: Signature },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ txHash: TxHash }), ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (request) => {
      requirePrincipal(request);
      const body = request.body as { deadline: string; signature: Hex };
      const txHash = await service().requestUnbond({
        contributionId: cidOf(request),
        deadline: BigInt(body.deadline),
        signature: body.signature,
      });
      return { txHash };
    },
  );

  app.post(
    '/api/contributions/:cid/unbond',
    {
      schema: {
        tags: ['bonds'],
        summary:
          'Pay an unlocked bond back to its contributor (any signed-in caller: the OPEN only goes to the contributor)',
        params: Cid,
        response: { 200: Type.Object({ txHash: TxHash }), ...errors(401, 404, 409, 503) },
      },
    },
    async (request) => {
      requirePrincipal(request);
      return { txHash: await service().unbond(cidOf(request)) };
    },
  );

  app.post(
    '/api/datanets/:id/contributions/:cid/slash',
    {
      schema: {
        tags: ['bonds'],
        summary:
          "Slash a bonded contribution as malicious (the datanet's owner or a curator, signed in, signs SlashMalicious with reasonHash = sha256(reason)): the whole bond goes to the treasury and the contributor's penalty score grows",
        params: Type.Object({
          id: Type.Integer({ minimum: 1 }),
          cid: Type.String({ format: 'uuid' }),
        }),
        body: Type.Object(
          {
            contributor: Type.Optional(Address),
            reason: Type.String({ minLength: 1, maxLength: 2000 }),
            deadline: Deadline,
            signature: Signature,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            txHash: TxHash,
            reasonHash: TxHash,
            slashed: Wei,
            penaltyScore: Uint,
          }),
          ...errors(400, 401, 403, 404, 409, 503),
        },
      },
    },
    async (request) => {
      const curator = requirePrincipal(request).address;
      const { id, cid } = request.params as { id: number; cid: string };
      const body = request.body as {
        contributor?: string;
        reason: string;
        deadline: string;
        signature: Hex;
      };
      const result = await service().slashMalicious({
        datanetId: id,
        contributionId: cid,
        curator,
        contributor: body.contributor ? getAddress(body.contributor) : undefined,
        reason: body.reason,
        deadline: BigInt(body.deadline),
        signature: body.signature,
      });
      return {
        ...result,
        slashed: result.slashed.toString(),
        penaltyScore: result.penaltyScore.toString(),
      };
    },
  );

  app.post(
    '/api/datanets/:id/slash-duplicate',
    {
      schema: {
        tags: ['bonds'],
        summary:
          "Prove a re-upload (read access): the node finds `rowHash` in an earlier version under one contribution and in a later version under another, builds both row proofs and submits slashDuplicate (the node reports, pays the gas and takes the reporter's share)",
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        body: Type.Object({ rowHash: RowHash }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            txHash: TxHash,
            rowHash: RowHash,
            later: Type.Object({
              version: Type.Integer(),
              contributionId: Type.String(),
              contributor: Address,
            }),
            earlier: Type.Object({
              version: Type.Integer(),
              contributionId: Type.String(),
              contributor: Address,
            }),
            slashed: Wei,
            toReporter: Wei,
            penaltyScore: Uint,
          }),
          ...errors(400, 401, 403, 404, 409, 503),
        },
      },
    },
    async (request) => {
      const reader = requirePrincipal(request).address;
      const { id } = request.params as { id: number };
      const bondService = service();
      await ctx.datanets!.assertCanRead(id, reader);
      const result = await bondService.slashDuplicate(
        id,
        (request.body as { rowHash: string }).rowHash,
      );
      return {
        ...result,
        slashed: result.slashed.toString(),
        toReporter: result.toReporter.toString(),
        penaltyScore: result.penaltyScore.toString(),
      };
    },
  );

  app.get(
    '/api/contributors/:address/penalty',
    {
      schema: {
        tags: ['bonds'],
        summary:
          "A contributor's penalty score, the threshold, and whether its contributor share of fees is cut (score ≥ threshold)",
        params: Type.Object({ address: Address }),
        response: {
          200: Type.Object({
            address: Address,
            score: Uint,
            threshold: Uint,
            rewardsCut: Type.Boolean(),
          }),
          ...errors(400, 404),
        },
      },
    },
    async (request) => {
      const p = await service().penalty(
        getAddress((request.params as { address: string }).address) as EvmAddress,
      );
      return { ...p, score: p.score.toString(), threshold: p.threshold.toString() };
    },
  );
}
