/**
 * Proof of Attribution over HTTP (docs/attribution.md, "Receipts, epochs and claims"): the
 * attribution receipt of a paid call (with what verifying it needs), earnings per address and
 * revenue per model, the epochs this node posted, claims with their proofs, the public artifacts
 * a verifier downloads, and a server-side verify.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { and, desc, eq, sql } from 'drizzle-orm';
import { getAddress, isAddress } from 'viem';
import {
  attributeInference,
  catalogueModelBySha,
  verifyAttributionReceipt,
  type AttributionLedger,
  type AttributionReceipt,
} from '../../attribution/index.ts';
import { schema } from '../../db/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import type { InferenceReceipt } from '../../serving/usage.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const Address = Type.String({ pattern: '^0x[0-9a-fA-F]{40}$' });
const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });

const VerifyBody = Type.Object(
  {
    receipt: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'The attribution receipt to check (as GET /api/attribution/receipts/{id} gives it).',
    }),
    inferenceReceipt: Type.Record(Type.String(), Type.Unknown(), {
      description:
        "The inference receipt it attributes (its hash is the receipt's inference.receiptHash).",
    }),
    promptTokens: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 1_000_000 }),
    output: Type.String({ maxLength: 4_000_000 }),
  },
  { additionalProperties: false },
);

function need(ctx: NodeContext): AttributionLedger {
  if (!ctx.ledger)
    throw new OpenLedgerError(
      'SETTLEMENT_UNAVAILABLE',
      'This node has no attribution settlement deployed (paid calls are not attributed).',
      { hint: 'Redeploy the contracts (`openledger deploy`) on a chain with the settlement.' },
    );
  return ctx.ledger;
}

function addressParam(value: string): string {
  if (!isAddress(value, { strict: false }))
    throw new OpenLedgerError('VALIDATION_FAILED', `"${value}" is not an address.`);
  return getAddress(value).toLowerCase();
}

export function rewardsRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/attribution/receipts/:id',
    {
      schema: {
        tags: ['attribution'],
        summary:
          "A paid call's attribution receipt (attributed now if it is not yet), its epoch and what its charge collected; to its caller also the prompt tokens and output that verifying it needs",
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: errors(401, 403, 404, 422, 503),
      },
    },
    async (request) => {
      const ledger = need(ctx);
      const principal = requirePrincipal(request);
      const who = principal.address.toLowerCase();
      const { id } = request.params as { id: string };
      const [usage] = await ctx.database.db
        .select({
          caller: schema.inferenceUsage.caller,
          fee: schema.inferenceUsage.feeWei,
          receipt: schema.inferenceUsage.receipt,
        })
        .from(schema.inferenceUsage)
        .where(eq(schema.inferenceUsage.id, id));
      if (!usage) throw new OpenLedgerError('NOT_FOUND', `There is no inference ${id}.`);
      const operator = ctx.serving.isOperator(principal);
      const isCaller = usage.caller === who;
      let row = await ledger.receiptRow(id);
      if (row?.status !== 'attributed' && (isCaller || operator)) {
        await ledger.attribute(id); // ATTRIBUTION_FAILED (422) says why
        row = await ledger.receiptRow(id);
      }
      const receipt = row?.receipt as AttributionReceipt | null | undefined;
      const involved =
        receipt !== null &&
        receipt !== undefined &&
        (receipt.model.owner === who || receipt.payouts.some((p) => p.address === who));
      if (!isCaller && !operator && !involved)
        throw new OpenLedgerError(
          'NOT_FOUND',
          `There is no attribution receipt of inference ${id} that you may read.`,
          { hint: 'A receipt is shown to the caller, the model owner and everyone it pays.' },
        );
      const [payload] =
        isCaller || operator
          ? await ctx.database.db
              .select()
              .from(schema.inferencePayloads)
              .where(eq(schema.inferencePayloads.usageId, id))
          : [];
      return {
        id,
        status: row?.status ?? 'pending',
        hash: row?.hash ?? null,
        receipt: receipt ?? null,
        inferenceReceipt: usage.receipt as InferenceReceipt,
        epoch: row?.epoch ?? null,
        collected: row?.collected ?? null,
        error: row?.error ?? null,
        ...(payload ? { promptTokens: payload.promptTokens, output: payload.output } : {}),
      };
    },
  );

  app.post(
    '/api/attribution/verify',
    {
      schema: {
        tags: ['attribution'],
        summary:
          "Recomputes an attribution receipt from public data (the chain at the receipt's block, the blobs it names, the base model) and compares it bit for bit",
        body: VerifyBody,
        response: errors(400, 401, 422, 503),
      },
    },
    async (request) => {
      const ledger = need(ctx);
      requirePrincipal(request);
      const body = request.body as Static<typeof VerifyBody>;
      const claimed = body.receipt as unknown as AttributionReceipt;
      const recomputed = await recompute(
        ledger,
        claimed,
        body.inferenceReceipt as unknown as InferenceReceipt,
        body.promptTokens,
        body.output,
      );
      return verifyAttributionReceipt(body.receipt, recomputed);
    },
  );

  app.get(
    '/api/attribution/blobs/:id',
    {
      schema: {
        tags: ['attribution'],
        summary:
          "A file a verifier needs, by its sha256: a span index shard (to readers of its datanet), or a published model's adapter, training manifest, gradient sketches or base model",
        params: Type.Object({ id: Hex64 }),
        response: errors(401, 403, 404),
      },
    },
    async (request, reply) => {
      const ledger = need(ctx);
      const { id } = request.params as { id: string };
      let allowed = await ledger.isPublicArtifact(id);
      if (!allowed) {
        const [shard] = await ctx.database.db
          .select({ datanetId: schema.attributionIndexes.datanetId })
          .from(schema.attributionIndexes)
          .where(
            sql`${schema.attributionIndexes.shards} @> ${JSON.stringify([{ blobId: id }])}::jsonb`,
          )
          .limit(1);
        if (shard) {
          await ctx.datanets?.assertCanRead(shard.datanetId, request.principal?.address);
          allowed = true;
        }
      }
      if (!allowed) {
        // The base model of a published model, so that a verifier whose own build of it differs
        // (the built-in model is trained at install) can check receipts of calls it served.
        const [base] = await ctx.database.db
          .select({ name: schema.models.baseModelName })
          .from(schema.models)
          .where(eq(schema.models.baseModelSha256, id))
          .limit(1);
        if (base) {
          const file = await catalogueModelBySha(ctx.models, base.name, id);
          return reply
            .header('x-openledger-sha256', id)
            .header('content-length', (await stat(file)).size)
            .type('application/octet-stream')
            .send(createReadStream(file));
        }
      }
      if (!allowed) throw new OpenLedgerError('NOT_FOUND', `There is no public artifact ${id}.`);
      const bytes = await ctx.blobs.get(id);
      return reply.header('x-openledger-sha256', id).type('application/octet-stream').send(bytes);
    },
  );

  app.get(
    '/api/attribution/earnings/:address',
    {
      schema: {
        tags: ['attribution'],
        summary:
          "An address's attributed earnings: totals by role, by datanet and by model, its latest paying inferences, and its claim",
        params: Type.Object({ address: Address }),
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
        }),
        response: errors(400, 503),
      },
    },
    async (request) => {
      const ledger = need(ctx);
      const address = addressParam((request.params as { address: string }).address);
      const limit = (request.query as { limit?: number }).limit ?? 50;
      return earnings(ctx, ledger, address, limit);
    },
  );

  app.get(
    '/api/attribution/models/:id/revenue',
    {
      schema: {
        tags: ['attribution'],
        summary:
          "A published model's attributed revenue: paid calls, fees collected, paid per role, and its top contributors",
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: errors(400, 503),
      },
    },
    async (request) => {
      need(ctx);
      const { id } = request.params as { id: number };
      return modelRevenue(ctx, id);
    },
  );

  app.get(
    '/api/attribution/epochs',
    {
      schema: {
        tags: ['attribution'],
        summary:
          'The fee epochs this node posted (newest first): roots, totals, gas, challenge window and status on-chain',
        response: errors(503),
      },
    },
    async () => ({ epochs: await need(ctx).epochs() }),
  );

  app.get(
    '/api/attribution/claims/:address',
    {
      schema: {
        tags: ['attribution'],
        summary:
          'What an address may claim now: the latest final epoch paying it, its cumulative amount, the Merkle proof, what it claimed, and what is still on its way',
        params: Type.Object({ address: Address }),
        response: errors(400, 503),
      },
    },
    async (request) =>
      need(ctx).claimInfo(addressParam((request.params as { address: string }).address)),
  );

  app.post(
    '/api/attribution/claims',
    {
      schema: {
        tags: ['attribution'],
        summary:
          "Claims an address's (default: the caller's) rewards on-chain; the node pays the gas and the OPEN goes to the address",
        body: Type.Object({ address: Type.Optional(Address) }, { additionalProperties: false }),
        response: errors(400, 401, 409, 503),
      },
    },
    async (request) => {
      const ledger = need(ctx);
      const principal = requirePrincipal(request);
      const address = (request.body as { address?: string } | undefined)?.address;
      return ledger.claim(address ? addressParam(address) : principal.address);
    },
  );

  app.post(
    '/api/attribution/run',
    {
      schema: {
        tags: ['attribution'],
        summary:
          'Operators: attribute pending paid calls (retrying failed ones), assign their epochs and post every closed epoch now (also runs every few seconds)',
        response: errors(401, 403, 503),
      },
    },
    async (request) => {
      const ledger = need(ctx);
      if (!ctx.serving.isOperator(requirePrincipal(request)))
        throw new OpenLedgerError(
          'FORBIDDEN',
          'Only the node operator may run attribution rounds.',
        );
      return ledger.run({ post: true, retryFailed: true });
    },
  );
}

/** The receipt recomputed with the node's own sources from what the receipt names. */
async function recompute(
  ledger: AttributionLedger,
  claimed: AttributionReceipt,
  inference: InferenceReceipt,
  promptTokens: number[],
  output: string,
): Promise<AttributionReceipt> {
  if (claimed?.kind !== 'openledger.attribution-receipt' || typeof claimed.inference !== 'object')
    throw new OpenLedgerError('VALIDATION_FAILED', 'That is not an attribution receipt.');
  return attributeInference(
    {
      inference,
      inferenceHash: claimed.inference.receiptHash,
      promptTokens,
      output,
      block: BigInt(claimed.block),
      shards: claimed.datanets,
      traceOptions: claimed.channels.span?.options ?? {},
    },
    ledger.sources(),
  );
}

async function earnings(
  ctx: NodeContext,
  ledger: AttributionLedger,
  address: string,
  limit: number,
) {
  const p = schema.attributionPayouts;
  const r = schema.attributionReceipts;
  const db = ctx.database.db;
  const rows = await db
    .select({
      usageId: p.usageId,
      amount: p.amount,
      role: p.role,
      detail: p.detail,
      datanets: p.datanets,
      modelId: r.publishedModelId,
      epoch: r.epoch,
      createdAt: r.createdAt,
    })
    .from(p)
    .innerJoin(r, eq(r.usageId, p.usageId))
    .where(and(eq(p.address, address), eq(r.status, 'attributed')))
    .orderBy(desc(r.createdAt));
  let total = 0n;
  const byRole: Record<string, bigint> = {};
  const byDatanet = new Map<string, bigint>();
  const byModel = new Map<number, { amount: bigint; inferences: number }>();
  for (const row of rows) {
    const amount = BigInt(row.amount);
    total += amount;
    for (const [role, value] of Object.entries(row.detail))
      byRole[role] = (byRole[role] ?? 0n) + BigInt(value);
    for (const [id, value] of Object.entries(row.datanets))
      byDatanet.set(id, (byDatanet.get(id) ?? 0n) + BigInt(value));
    const m = byModel.get(row.modelId) ?? { amount: 0n, inferences: 0 };
    m.amount += amount;
    m.inferences += 1;
    byModel.set(row.modelId, m);
  }
  return {
    address: getAddress(address),
    total: total.toString(),
    inferences: rows.length,
    byRole: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, v.toString()])),
    byDatanet: [...byDatanet]
      .sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : Number(a[0]) - Number(b[0])))
      .map(([id, amount]) => ({ datanetId: Number(id), amount: amount.toString() })),
    byModel: [...byModel]
      .sort((a, b) =>
        b[1].amount > a[1].amount ? 1 : b[1].amount < a[1].amount ? -1 : a[0] - b[0],
      )
      .map(([modelId, m]) => ({ modelId, amount: m.amount.toString(), inferences: m.inferences })),
    recent: rows.slice(0, limit).map((row) => ({
      id: row.usageId,
      modelId: row.modelId,
      amount: row.amount,
      role: row.role,
      detail: row.detail,
      epoch: row.epoch,
      createdAt: row.createdAt.toISOString(),
    })),
    claim: await ledger.claimInfo(address),
  };
}

async function modelRevenue(ctx: NodeContext, modelId: number) {
  const p = schema.attributionPayouts;
  const r = schema.attributionReceipts;
  const db = ctx.database.db;
  const receipts = await db
    .select({ receipt: r.receipt, collected: r.collected })
    .from(r)
    .where(and(eq(r.publishedModelId, modelId), eq(r.status, 'attributed')));
  let fees = 0n;
  let collected = 0n;
  for (const row of receipts) {
    const fee = BigInt((row.receipt as AttributionReceipt).inference.fee);
    fees += fee;
    collected += row.collected === null ? 0n : BigInt(row.collected);
  }
  const payees = await db
    .select({
      address: p.address,
      detail: p.detail,
    })
    .from(p)
    .innerJoin(r, eq(r.usageId, p.usageId))
    .where(and(eq(r.publishedModelId, modelId), eq(r.status, 'attributed')));
  const byRole: Record<string, bigint> = {};
  const contributors = new Map<string, bigint>();
  for (const row of payees)
    for (const [role, value] of Object.entries(row.detail)) {
      byRole[role] = (byRole[role] ?? 0n) + BigInt(value);
      if (role === 'contributor')
        contributors.set(row.address, (contributors.get(row.address) ?? 0n) + BigInt(value));
    }
  return {
    modelId,
    inferences: receipts.length,
    fees: fees.toString(),
    collected: collected.toString(),
    byRole: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, v.toString()])),
    topContributors: [...contributors]
      .sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : a[0] < b[0] ? -1 : 1))
      .slice(0, 20)
      .map(([address, amount]) => ({ address: getAddress(address), amount: amount.toString() })),
  };
}
