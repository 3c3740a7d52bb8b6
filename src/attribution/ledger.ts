/**
 * The node's attribution ledger (issue #6): every paid call gets an attribution receipt and its
 * payouts; every closed fee epoch is posted to the AttributionSettlement (receipts root and
 * cumulative payouts root); accounts claim with proofs from the stored trees.
 *
 * The round (`run`, every few seconds) has three steps, each idempotent:
 * 1. attribute: paid usage rows without a receipt get one (`attributeInference` over the node's
 *    own stores; the span indexes of the model's datanet versions are built first when missing).
 * 2. assign: receipts whose charge landed on-chain learn the fee epoch of that charge and what it
 *    actually collected (a caller short of funds is charged what it held: its receipts in that
 *    batch then share the collected amount by largest remainder, and pay out of that).
 * 3. post: each closed epoch whose receipts are all attributed is posted, oldest first, with the
 *    payouts root over CUMULATIVE amounts (this epoch's added to the last posted epoch's), so a
 *    claim needs only the latest final root. Posting is checked against the chain first: a node
 *    that died after its transaction finds the epoch posted with the same roots and records it.
 */
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { and, asc, desc, eq, inArray, isNotNull, isNull, lt, notExists, sql } from 'drizzle-orm';
import { decodeEventLog, getAddress, maxUint256, type Address, type Hash, type Hex } from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import type { ChainConnection } from '../chain/clients.ts';
import {
  AttributionSettlementAbi,
  InferenceEscrowAbi,
  OpenTokenAbi,
} from '../chain/generated/contracts.ts';
import type { Relayer } from '../chain/relayer.ts';
import { schema, type Db } from '../db/index.ts';
import type { EpochStatus } from '../db/schema.ts';
import { OpenLedgerError, isOpenLedgerError } from '../errors.ts';
import type { ModelCatalog } from '../factory/models.ts';
import { formatOpen } from '../payments/escrow.ts';
import type { InferenceReceipt } from '../serving/usage.ts';
import { attributeInference, type AttributionSources } from './attribute.ts';
import { ablationSettings, type RagEvidence } from './rag.ts';
import type { SourceRef } from '../rag/answer.ts';
import { ablationWeights } from '../rag/contextcite.ts';
import { ragMessages } from '../rag/prompt.ts';
import type { Citation } from '../rag/types.ts';
import type { ChatMessage } from '../serving/index.ts';
import { apportion } from './fixed.ts';
import {
  attributionReceiptHash,
  recomputePayouts,
  type AttributionReceipt,
  type ReceiptPayout,
} from './receipt.ts';
import type { AttributionService } from './service.ts';
import { catalogueModelBySha, chainSources } from './sources.ts';

/** Attempts before a receipt that keeps failing is left for an operator (`retry`). */
const MAX_ATTEMPTS = 5;
/** Paid calls attributed per round. */
const BATCH = 50;
export const ATTRIBUTION_INTERVAL_MS = 5_000;

export interface LedgerContracts {
  ModelRegistry: Address;
  InferenceEscrow: Address;
  AttributionSettlement: Address;
  OpenToken: Address;
  ContributionBonds?: Address | undefined;
  ModelStaking?: Address | undefined;
}

export interface EpochView {
  epoch: number;
  status: EpochStatus;
  receiptsRoot: string;
  payoutsRoot: string;
  total: string;
  receipts: number;
  txHash: string;
  gasUsed: number;
  postedAt: string;
  /** When the challenge window closes (unix seconds), and whether claims may use it now. */
  challengeEndsAt: number;
  final: boolean;
}

export interface ClaimView {
  address: string;
  /** The latest final epoch paying the address, its cumulative amount there and the proof. */
  epoch: number | null;
  cumulative: string;
  claimed: string;
  claimable: string;
  proof: Hex[];
  /** Paid by epochs posted but not final yet, and by receipts not posted yet. */
  pendingPosted: string;
  pendingUnposted: string;
}

/** The payouts a receipt makes out of what its charge collected (its fee, unless short). */
export function collectedPayouts(receipt: AttributionReceipt, collected: string): ReceiptPayout[] {
  if (collected === receipt.inference.fee) return receipt.payouts;
  return recomputePayouts({ ...receipt, inference: { ...receipt.inference, fee: collected } });
}

/**
 * A contributor's amount by datanet, in proportion to the evidence naming them there (span
 * occurrences, influence rows and cited RAG sources): what the earnings views group by.
 */
export function contributorDatanets(
  receipt: AttributionReceipt,
  address: string,
  amount: bigint,
): Record<string, string> {
  const counts = new Map<string, bigint>();
  const add = (datanetId: number) =>
    counts.set(String(datanetId), (counts.get(String(datanetId)) ?? 0n) + 1n);
  for (const span of receipt.channels.span?.evidence ?? [])
    for (const o of span.occurrences) if (o.contributor === address) add(o.datanetId);
  for (const e of receipt.channels.influence?.evidence ?? [])
    if (e.contributor === address) add(e.datanetId);
  for (const s of receipt.channels.rag?.sources ?? [])
    if (s.cited && s.contributor === address) add(s.datanetId);
  if (counts.size === 0 || amount === 0n) return {};
  const shares = apportion(amount, new Map([...counts].map(([k, n]) => [k, { num: n, den: 1n }])));
  return Object.fromEntries([...shares].map(([k, v]) => [k, v.toString()]));
}

/** Usage rows that were charged for a published model: the calls that get receipts. */
function paidCall() {
  const u = schema.inferenceUsage;
  return and(isNotNull(u.feeWei), isNotNull(u.publishedModelId), sql`${u.feeWei} <> '0'`);
}

export type RagScorer = (input: {
  model: string;
  adapters: { id: string; weight: number }[];
  messages: ChatMessage[];
  continuation: string;
}) => Promise<number>;

export class AttributionLedger {
  private readonly chain: Pick<AttributionSources, 'terms' | 'penalized' | 'platform'>;
  private running: Promise<unknown> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private rounds = 0;
  /** One attribution at a time per receipt (a request may ask while the round runs). */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      chain: ChainConnection;
      catalog: ModelCatalog;
      attribution: AttributionService;
      contracts: LedgerContracts;
      relayer: Relayer | undefined;
      /**
       * log p(continuation | chat) under a model and adapters (the serving engine's scoreChat):
       * ContextCite's scorer for RAG answers. Without it RAG answers are weighted by citations.
       */
      ragScorer?: RagScorer;
    },
  ) {
    this.chain = chainSources(deps.chain.publicClient, deps.contracts);
  }

  get contracts(): LedgerContracts {
    return this.deps.contracts;
  }

  /** The public data as the node reads it (its own blob store and catalogue). */
  sources(): AttributionSources {
    return {
      ...this.chain,
      blob: async (id) => new Uint8Array(await this.deps.blobs.get(id)),
      baseModel: (name, sha256) => catalogueModelBySha(this.deps.catalog, name, sha256),
      spanIndex: (blobIds, tokenizer) => this.deps.attribution.indexOf(blobIds, tokenizer),
    };
  }

  // ----- the round ------------------------------------------------------------------------------

  /**
   * One round: attribute, assign epochs, post closed epochs (one round at a time). The timer's
   * rounds post every sixth time (30 s); `post: true` (an operator asking) always does.
   */
  run(
    options: { post?: boolean; retryFailed?: boolean } = {},
  ): Promise<{ attributed: number; failed: number; assigned: number; posted: number[] }> {
    const round = async () => {
      const { attributed, failed } = await this.attributePending(options.retryFailed);
      const assigned = await this.assignEpochs();
      const post = options.post ?? this.rounds++ % 6 === 0;
      const posted = this.deps.relayer && post ? await this.postClosedEpochs() : [];
      return { attributed, failed, assigned, posted };
    };
    const next = (this.running ?? Promise.resolve()).then(round, round);
    this.running = next.catch(() => undefined);
    return next;
  }

  /** Runs every `intervalMs` until `stop()`; failures wait for the next round. */
  start(intervalMs = ATTRIBUTION_INTERVAL_MS, onError?: (error: unknown) => void): void {
    this.timer = setInterval(() => {
      this.run().catch((error: unknown) => onError?.(error));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  // ----- 1. attribution -------------------------------------------------------------------------

  /**
   * A RAG answer's evidence: its stored sources and citations and, for an answer in the model's
   * own words that cites something, ContextCite scores of the model's output with the sources
   * ablated (masks seeded by the inference receipt's hash). Null for other calls.
   */
  private async ragEvidence(
    usageId: string,
    inference: InferenceReceipt,
    inferenceHash: string,
    output: string,
  ): Promise<RagEvidence | null> {
    const [answer] = await this.deps.db
      .select()
      .from(schema.ragAnswers)
      .where(eq(schema.ragAnswers.usageId, usageId));
    if (!answer) return null;
    const sources = answer.sources as SourceRef[];
    const citations = answer.citations as Citation[];
    const scorer = this.deps.ragScorer;
    if (
      !scorer ||
      answer.kind !== 'model' ||
      sources.length === 0 ||
      !citations.some((c) => c.supported)
    )
      return { sources, citations, ablation: null };
    const chunks = await this.deps.db
      .select({ id: schema.ragChunks.id, text: schema.ragChunks.text })
      .from(schema.ragChunks)
      .where(
        inArray(
          schema.ragChunks.id,
          sources.map((s) => s.chunkId),
        ),
      );
    const text = new Map(chunks.map((c) => [c.id, c.text]));
    const settings = ablationSettings(inferenceHash);
    const messages = answer.messages as ChatMessage[];
    try {
      const run = await ablationWeights({
        sources: sources.length,
        seed: settings.seed,
        m: settings.masks,
        holdout: settings.holdout,
        alpha: settings.alpha,
        score: (mask) =>
          scorer({
            model: inference.baseModel.name,
            adapters: inference.adapters.map((a) => ({ id: `adapter:${a.id}`, weight: a.weight })),
            messages: ragMessages(
              messages,
              sources
                .filter((_, j) => mask[j])
                .map((s) => ({ n: s.n, text: text.get(s.chunkId) ?? '' })),
            ),
            continuation: output,
          }),
      });
      return { sources, citations, ablation: { ...settings, y: run.y } };
    } catch {
      // A model that cannot score (a remote backend, a context too small): citations only.
      return { sources, citations, ablation: null };
    }
  }

  /** Attributes paid calls without a receipt (and failed ones: all of them with `retryFailed`). */
  async attributePending(retryFailed = false): Promise<{ attributed: number; failed: number }> {
    const attempts = retryFailed ? 2 ** 31 - 1 : MAX_ATTEMPTS;
    const u = schema.inferenceUsage;
    const r = schema.attributionReceipts;
    const rows = await this.deps.db
      .select({ id: u.id })
      .from(u)
      .leftJoin(r, eq(r.usageId, u.id))
      .where(
        and(
          paidCall(),
          sql`(${r.usageId} is null or (${r.status} = 'failed' and ${r.attempts} < ${attempts}))`,
          // A RAG answer records its sources just after its usage row: give it time to land.
          sql`${u.createdAt} < now() - interval '2 seconds'`,
        ),
      )
      .orderBy(asc(u.createdAt))
      .limit(BATCH);
    let attributed = 0;
    let failed = 0;
    for (const { id } of rows) {
      const ok = await this.attribute(id).then(
        () => true,
        () => false,
      );
      if (ok) attributed += 1;
      else failed += 1;
    }
    return { attributed, failed };
  }

  /**
   * Attributes one paid call now (if it is not yet): the receipt, or ATTRIBUTION_FAILED with
   * why (recorded, and retried by later rounds up to MAX_ATTEMPTS).
   */
  attribute(usageId: string): Promise<AttributionReceipt> {
    let pending = this.inFlight.get(usageId) as Promise<AttributionReceipt> | undefined;
    if (!pending) {
      pending = this.attributeOnce(usageId).finally(() => this.inFlight.delete(usageId));
      this.inFlight.set(usageId, pending);
    }
    return pending;
  }

  private async attributeOnce(usageId: string): Promise<AttributionReceipt> {
    const r = schema.attributionReceipts;
    const [existing] = await this.deps.db.select().from(r).where(eq(r.usageId, usageId));
    if (existing?.status === 'attributed') return existing.receipt as AttributionReceipt;
    const [row] = await this.deps.db
      .select({
        receipt: schema.inferenceUsage.receipt,
        hash: schema.inferenceUsage.receiptHash,
        modelId: schema.inferenceUsage.publishedModelId,
        fee: schema.inferenceUsage.feeWei,
        promptTokens: schema.inferencePayloads.promptTokens,
        output: schema.inferencePayloads.output,
      })
      .from(schema.inferenceUsage)
      .leftJoin(
        schema.inferencePayloads,
        eq(schema.inferencePayloads.usageId, schema.inferenceUsage.id),
      )
      .where(eq(schema.inferenceUsage.id, usageId));
    if (!row) throw new OpenLedgerError('NOT_FOUND', `There is no inference ${usageId}.`);
    if (row.fee === null || row.modelId === null)
      throw new OpenLedgerError(
        'NOT_FOUND',
        `Inference ${usageId} was free: only paid calls have attribution receipts.`,
      );
    try {
      if (row.promptTokens === null || row.output === null)
        throw new OpenLedgerError(
          'ATTRIBUTION_FAILED',
          `Inference ${usageId} was served before this node kept paid calls' outputs.`,
        );
      const inference = row.receipt as InferenceReceipt;
      // Not viem's cached block number (up to its polling interval old): the terms, stakes and
      // penalties are those of the chain as it is now.
      const block = await this.deps.chain.publicClient.getBlockNumber({ cacheTime: 0 });
      const terms = await this.chain.terms(row.modelId, block);
      const shards = [];
      for (const d of terms.datanets) {
        const status = await this.deps.attribution.build(d.id, d.version, {
          model: inference.baseModel.name,
        });
        shards.push({
          id: d.id,
          version: d.version,
          shards: status.versions.flatMap((v) => v.shards.map((s) => s.blobId)),
        });
      }
      const rag = await this.ragEvidence(usageId, inference, row.hash, row.output);
      const receipt = await attributeInference(
        {
          inference,
          inferenceHash: row.hash,
          promptTokens: row.promptTokens,
          output: row.output,
          block,
          shards,
          rag,
        },
        this.sources(),
      );
      const hash = attributionReceiptHash(receipt);
      await this.deps.db.transaction(async (tx) => {
        await tx
          .insert(r)
          .values({
            usageId,
            publishedModelId: row.modelId!,
            status: 'attributed',
            receipt,
            hash,
            block: Number(block),
            attempts: (existing?.attempts ?? 0) + 1,
          })
          .onConflictDoUpdate({
            target: r.usageId,
            set: {
              status: 'attributed',
              receipt,
              hash,
              block: Number(block),
              error: null,
              attempts: (existing?.attempts ?? 0) + 1,
              updatedAt: new Date(),
            },
          });
        await this.writePayouts(tx, usageId, receipt, receipt.payouts);
      });
      return receipt;
    } catch (error) {
      const body = isOpenLedgerError(error)
        ? { code: error.code, message: error.message }
        : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
      await this.deps.db
        .insert(r)
        .values({
          usageId,
          publishedModelId: row.modelId,
          status: 'failed',
          error: body,
          attempts: (existing?.attempts ?? 0) + 1,
        })
        .onConflictDoUpdate({
          target: r.usageId,
          set: {
            status: 'failed',
            error: body,
            attempts: sql`${r.attempts} + 1`,
            updatedAt: new Date(),
          },
        });
      throw new OpenLedgerError(
        'ATTRIBUTION_FAILED',
        `Attributing inference ${usageId} failed: ${body.message}`,
        { details: { cause: body }, cause: error },
      );
    }
  }

  private async writePayouts(
    tx: Pick<Db, 'insert' | 'delete'>,
    usageId: string,
    receipt: AttributionReceipt,
    payouts: readonly ReceiptPayout[],
  ): Promise<void> {
    const p = schema.attributionPayouts;
    await tx.delete(p).where(eq(p.usageId, usageId));
    if (payouts.length === 0) return;
    await tx.insert(p).values(
      payouts.map((payout) => ({
        usageId,
        address: payout.address,
        amount: payout.amount,
        role: payout.role,
        detail: payout.detail as Record<string, string>,
        datanets: contributorDatanets(
          receipt,
          payout.address,
          BigInt(payout.detail.contributor ?? '0'),
        ),
      })),
    );
  }

  // ----- 2. epochs of charges -------------------------------------------------------------------

  /** Receipts whose charge is on-chain learn its epoch and what it collected. */
  async assignEpochs(): Promise<number> {
    const u = schema.inferenceUsage;
    const r = schema.attributionReceipts;
    const rows = await this.deps.db
      .selectDistinct({ tx: u.settlementTx })
      .from(r)
      .innerJoin(u, eq(u.id, r.usageId))
      .where(
        and(
          isNull(r.epoch),
          isNotNull(u.settlementTx),
          sql`${u.settlementTx} not like 'pending:%'`,
        ),
      );
    let assigned = 0;
    for (const { tx } of rows) assigned += await this.assignBatch(tx as Hash);
    return assigned;
  }

  private async assignBatch(tx: Hash): Promise<number> {
    const receipt = await this.deps.chain.publicClient.getTransactionReceipt({ hash: tx });
    let epoch: number | undefined;
    const charged = new Map<string, bigint>();
    for (const log of receipt.logs) {
      if (getAddress(log.address) !== getAddress(this.deps.contracts.InferenceEscrow)) continue;
      try {
        const event = decodeEventLog({
          abi: InferenceEscrowAbi,
          data: log.data,
          topics: log.topics,
        });
        if (event.eventName === 'BatchSettled') epoch = Number(event.args.epoch);
        if (event.eventName === 'Charged')
          charged.set(event.args.caller.toLowerCase(), event.args.amount);
      } catch {
        // another event
      }
    }
    if (epoch === undefined)
      throw new OpenLedgerError('CHAIN_UNAVAILABLE', `Transaction ${tx} settled no batch.`);
    const u = schema.inferenceUsage;
    const rows = await this.deps.db
      .select({ id: u.id, caller: u.caller, fee: u.feeWei })
      .from(u)
      .where(eq(u.settlementTx, tx))
      .orderBy(asc(u.id));
    // Per caller: what its rows owed, and what the charge took (all of it unless short).
    const byCaller = new Map<string, { id: string; fee: bigint }[]>();
    for (const row of rows) {
      const list = byCaller.get(row.caller) ?? [];
      list.push({ id: row.id, fee: BigInt(row.fee ?? '0') });
      byCaller.set(row.caller, list);
    }
    const collected = new Map<string, bigint>();
    for (const [caller, list] of byCaller) {
      const owed = list.reduce((n, x) => n + x.fee, 0n);
      const took = charged.get(caller) ?? 0n;
      if (took >= owed) for (const x of list) collected.set(x.id, x.fee);
      else {
        // Ties go to the earlier id (the list is in id order).
        const shares = apportion(
          took,
          new Map(list.map((x) => [x.id, { num: x.fee, den: 1n }])),
          list.map((x) => x.id),
        );
        for (const x of list) collected.set(x.id, shares.get(x.id) ?? 0n);
      }
    }
    const r = schema.attributionReceipts;
    let assigned = 0;
    await this.deps.db.transaction(async (txn) => {
      for (const [id, amount] of collected) {
        const updated = await txn
          .update(r)
          .set({ epoch, collected: amount.toString(), updatedAt: new Date() })
          .where(and(eq(r.usageId, id), isNull(r.epoch)))
          .returning({ receipt: r.receipt, status: r.status });
        const row = updated[0];
        if (!row) continue;
        assigned += 1;
        const receipt = row.receipt as AttributionReceipt | null;
        if (row.status === 'attributed' && receipt && amount.toString() !== receipt.inference.fee)
          await this.writePayouts(txn, id, receipt, collectedPayouts(receipt, amount.toString()));
      }
    });
    return assigned;
  }

  // ----- 3. posting -----------------------------------------------------------------------------

  private settlement() {
    return {
      address: this.deps.contracts.AttributionSettlement,
      abi: AttributionSettlementAbi,
    } as const;
  }

  private async currentEpoch(): Promise<number> {
    return Number(
      await this.deps.chain.publicClient.readContract({
        address: this.deps.contracts.InferenceEscrow,
        abi: InferenceEscrowAbi,
        functionName: 'currentEpoch',
      }),
    );
  }

  /**
   * Posts every closed epoch that is ready, oldest first; stops at the first that is not (its
   * receipts still attributing or settling), since payouts roots are cumulative.
   */
  async postClosedEpochs(): Promise<number[]> {
    const relayer = this.deps.relayer;
    if (!relayer)
      throw new OpenLedgerError(
        'RELAYER_UNAVAILABLE',
        'This node has no signer to post epochs with.',
      );
    const current = await this.currentEpoch();
    const r = schema.attributionReceipts;
    const e = schema.attributionEpochs;
    const epochs = await this.deps.db
      .selectDistinct({ epoch: r.epoch })
      .from(r)
      .where(
        and(
          isNotNull(r.epoch),
          lt(r.epoch, current),
          notExists(this.deps.db.select().from(e).where(eq(e.epoch, r.epoch))),
        ),
      )
      .orderBy(asc(r.epoch));
    const posted: number[] = [];
    for (const { epoch } of epochs) {
      if (!(await this.epochReady(epoch!))) break;
      await this.postEpoch(epoch!);
      posted.push(epoch!);
    }
    return posted;
  }

  /** All of the epoch's receipts attributed, and no paid call still unattributed or settling. */
  private async epochReady(epoch: number): Promise<boolean> {
    const r = schema.attributionReceipts;
    const u = schema.inferenceUsage;
    const [failed] = await this.deps.db
      .select({ n: sql<number>`count(*)::int` })
      .from(r)
      .where(and(eq(r.epoch, epoch), eq(r.status, 'failed')));
    if ((failed?.n ?? 0) > 0) return false;
    // A paid call settled on-chain but not yet given a receipt or an epoch may belong here.
    const [unassigned] = await this.deps.db
      .select({ n: sql<number>`count(*)::int` })
      .from(u)
      .leftJoin(r, eq(r.usageId, u.id))
      .where(
        and(
          paidCall(),
          isNotNull(u.settlementTx),
          sql`(${r.usageId} is null or ${r.epoch} is null)`,
        ),
      );
    return (unassigned?.n ?? 0) === 0;
  }

  private async postEpoch(epoch: number): Promise<void> {
    const relayer = this.deps.relayer!;
    const r = schema.attributionReceipts;
    const p = schema.attributionPayouts;
    const receipts = await this.deps.db
      .select({ id: r.usageId, hash: r.hash })
      .from(r)
      .where(eq(r.epoch, epoch))
      .orderBy(asc(r.usageId));
    const amounts = await this.deps.db
      .select({ address: p.address, amount: sql<string>`sum(cast(${p.amount} as numeric))::text` })
      .from(p)
      .innerJoin(r, eq(r.usageId, p.usageId))
      .where(eq(r.epoch, epoch))
      .groupBy(p.address);
    const cumulative = await this.cumulativeBefore(epoch);
    let total = 0n;
    for (const { address, amount } of amounts) {
      const value = BigInt(amount);
      total += value;
      cumulative.set(address, (cumulative.get(address) ?? 0n) + value);
    }
    if (total === 0n) return;
    const receiptsTree = StandardMerkleTree.of(
      receipts.map((x) => [`0x${x.hash!}`] as [Hex]),
      ['bytes32'],
    );
    const payoutsTree = StandardMerkleTree.of(
      [...cumulative]
        .sort((a, b) => (a[0] < b[0] ? -1 : 1))
        .map(([address, amount]) => [getAddress(address), amount.toString()] as [Address, string]),
      ['address', 'uint256'],
    );
    const receiptsRoot = receiptsTree.root as Hex;
    const payoutsRoot = payoutsTree.root as Hex;

    const onChain = await this.deps.chain.publicClient.readContract({
      ...this.settlement(),
      functionName: 'epochOf',
      args: [BigInt(epoch)],
    });
    let txHash: Hash;
    let gasUsed = 0n;
    if (onChain.status !== 0) {
      // Posted already (a previous run died before recording it): record it if it is ours.
      if (onChain.receiptsRoot !== receiptsRoot || onChain.payoutsRoot !== payoutsRoot)
        throw new OpenLedgerError(
          'CONFLICT',
          `Epoch ${epoch} is posted on-chain with other roots than this node computes.`,
          { details: { epoch, onChain: onChain.payoutsRoot, computed: payoutsRoot } },
        );
      const [log] = await this.deps.chain.publicClient.getContractEvents({
        ...this.settlement(),
        eventName: 'EpochPosted',
        args: { epoch: BigInt(epoch) },
        fromBlock: 0n,
      });
      txHash = log!.transactionHash;
    } else {
      await this.ensureBond();
      const receipt = await relayer.write({
        ...this.settlement(),
        functionName: 'postEpoch',
        args: [BigInt(epoch), receiptsRoot, payoutsRoot, total],
      });
      txHash = receipt.transactionHash;
      gasUsed = receipt.gasUsed;
    }
    await this.deps.db.insert(schema.attributionEpochs).values({
      epoch,
      status: 'posted',
      receiptsRoot,
      payoutsRoot,
      total: total.toString(),
      receipts: receipts.length,
      receiptsTree: receiptsTree.dump(),
      payoutsTree: payoutsTree.dump(),
      txHash,
      gasUsed: Number(gasUsed),
    });
  }

  /** The cumulative payouts of the latest epoch posted before `epoch` (empty when none). */
  private async cumulativeBefore(epoch: number): Promise<Map<string, bigint>> {
    const e = schema.attributionEpochs;
    const [last] = await this.deps.db
      .select({ tree: e.payoutsTree })
      .from(e)
      .where(lt(e.epoch, epoch))
      .orderBy(desc(e.epoch))
      .limit(1);
    const out = new Map<string, bigint>();
    if (!last) return out;
    const tree = StandardMerkleTree.load(last.tree as never) as StandardMerkleTree<
      [string, string]
    >;
    for (const [, [address, amount]] of tree.entries())
      out.set(address.toLowerCase(), BigInt(amount));
    return out;
  }

  /** Bonds what the poster lacks of `minBond` from its own OPEN (approving it first). */
  private async ensureBond(): Promise<void> {
    const relayer = this.deps.relayer!;
    const me = relayer.account.address;
    const client = this.deps.chain.publicClient;
    const [bond, minBond] = await Promise.all([
      client.readContract({ ...this.settlement(), functionName: 'bondOf', args: [me] }),
      client.readContract({ ...this.settlement(), functionName: 'minBond' }),
    ]);
    if (bond >= minBond) return;
    const need = minBond - bond;
    const balance = await client.readContract({
      address: this.deps.contracts.OpenToken,
      abi: OpenTokenAbi,
      functionName: 'balanceOf',
      args: [me],
    });
    if (balance < need)
      throw new OpenLedgerError(
        'POSTER_UNBONDED',
        `Posting an epoch needs a bond of ${formatOpen(minBond)} OPEN; the node's signer ${me} has ${formatOpen(bond)} bonded and ${formatOpen(balance)} OPEN to add.`,
        { hint: `Send at least ${formatOpen(need - balance)} OPEN to ${me}.` },
      );
    await relayer.write({
      address: this.deps.contracts.OpenToken,
      abi: OpenTokenAbi,
      functionName: 'approve',
      args: [this.deps.contracts.AttributionSettlement, maxUint256],
    });
    await relayer.write({ ...this.settlement(), functionName: 'bond', args: [need] });
  }

  // ----- views and claims -----------------------------------------------------------------------

  /** Posted epochs, newest first, with their status on-chain. */
  async epochs(limit = 50): Promise<EpochView[]> {
    const e = schema.attributionEpochs;
    const rows = await this.deps.db.select().from(e).orderBy(desc(e.epoch)).limit(limit);
    const client = this.deps.chain.publicClient;
    const window = Number(
      await client.readContract({ ...this.settlement(), functionName: 'challengeWindow' }),
    );
    const out: EpochView[] = [];
    for (const row of rows) {
      const [onChain, final] = await Promise.all([
        client.readContract({
          ...this.settlement(),
          functionName: 'epochOf',
          args: [BigInt(row.epoch)],
        }),
        client.readContract({
          ...this.settlement(),
          functionName: 'isFinal',
          args: [BigInt(row.epoch)],
        }),
      ]);
      const status = (['posted', 'posted', 'challenged', 'voided', 'finalized'] as const)[
        onChain.status
      ]!;
      if (status !== row.status)
        await this.deps.db.update(e).set({ status }).where(eq(e.epoch, row.epoch));
      out.push({
        epoch: row.epoch,
        status,
        receiptsRoot: row.receiptsRoot,
        payoutsRoot: row.payoutsRoot,
        total: row.total,
        receipts: row.receipts,
        txHash: row.txHash,
        gasUsed: row.gasUsed,
        postedAt: row.postedAt.toISOString(),
        challengeEndsAt: Number(onChain.postedAt) + window,
        final: final || status === 'finalized',
      });
    }
    return out;
  }

  /** What `address` may claim now, with the proof, and what is on its way. */
  async claimInfo(address: string): Promise<ClaimView> {
    const account = getAddress(address);
    const key = account.toLowerCase();
    const client = this.deps.chain.publicClient;
    const claimed = await client.readContract({
      ...this.settlement(),
      functionName: 'claimed',
      args: [account],
    });
    const e = schema.attributionEpochs;
    const rows = await this.deps.db.select().from(e).orderBy(desc(e.epoch));
    let best: { epoch: number; cumulative: bigint; proof: Hex[] } | null = null;
    let latestPosted: bigint | null = null;
    for (const row of rows) {
      if (row.status === 'voided') continue;
      const tree = StandardMerkleTree.load(row.payoutsTree as never) as StandardMerkleTree<
        [string, string]
      >;
      let found: { cumulative: bigint; proof: Hex[] } | null = null;
      for (const [i, [who, amount]] of tree.entries())
        if (who.toLowerCase() === key)
          found = { cumulative: BigInt(amount), proof: tree.getProof(i) as Hex[] };
      if (!found) continue;
      latestPosted ??= found.cumulative;
      const final = await client.readContract({
        ...this.settlement(),
        functionName: 'isFinal',
        args: [BigInt(row.epoch)],
      });
      if (final || row.status === 'finalized') {
        best = { epoch: row.epoch, ...found };
        break;
      }
    }
    const cumulative = best?.cumulative ?? 0n;
    const claimable = cumulative > claimed ? cumulative - claimed : 0n;
    const p = schema.attributionPayouts;
    const r = schema.attributionReceipts;
    const [unposted] = await this.deps.db
      .select({ total: sql<string>`coalesce(sum(cast(${p.amount} as numeric)), 0)::text` })
      .from(p)
      .innerJoin(r, eq(r.usageId, p.usageId))
      .where(
        and(
          eq(p.address, key),
          sql`(${r.epoch} is null or not exists (select 1 from ${e} where ${e.epoch} = ${r.epoch}))`,
        ),
      );
    const pendingPosted =
      latestPosted !== null && latestPosted > cumulative ? latestPosted - cumulative : 0n;
    return {
      address: account,
      epoch: best?.epoch ?? null,
      cumulative: cumulative.toString(),
      claimed: claimed.toString(),
      claimable: claimable.toString(),
      proof: best?.proof ?? [],
      pendingPosted: pendingPosted.toString(),
      pendingUnposted: unposted?.total ?? '0',
    };
  }

  /** Submits `address`'s claim (anyone may: the tokens only go to `address`). */
  async claim(address: string): Promise<{ tx: Hash; amount: string; epoch: number }> {
    const relayer = this.deps.relayer;
    if (!relayer)
      throw new OpenLedgerError(
        'RELAYER_UNAVAILABLE',
        'This node has no signer to submit claims with.',
        {
          hint: 'Submit `claim(epoch, account, cumulativeAmount, proof)` from your wallet with the proof from GET /api/attribution/claims/{address}.',
        },
      );
    const info = await this.claimInfo(address);
    if (info.epoch === null || info.claimable === '0')
      throw new OpenLedgerError(
        'NOTHING_TO_CLAIM',
        `${info.address} has nothing to claim yet (claimed ${formatOpen(BigInt(info.claimed))} OPEN; ${formatOpen(BigInt(info.pendingPosted))} OPEN in epochs still in their challenge window, ${formatOpen(BigInt(info.pendingUnposted))} OPEN not posted yet).`,
        { details: info as unknown as Record<string, unknown> },
      );
    const receipt = await relayer.write({
      ...this.settlement(),
      functionName: 'claim',
      args: [BigInt(info.epoch), getAddress(info.address), BigInt(info.cumulative), info.proof],
    });
    return { tx: receipt.transactionHash, amount: info.claimable, epoch: info.epoch };
  }

  /** A stored receipt row (attributed or failed), or undefined. */
  async receiptRow(usageId: string) {
    const r = schema.attributionReceipts;
    const [row] = await this.deps.db.select().from(r).where(eq(r.usageId, usageId));
    return row;
  }

  /** Blob ids referenced by some attribution receipt or published model: what verify fetches. */
  async isPublicArtifact(blobId: string): Promise<boolean> {
    const m = schema.models;
    const [model] = await this.deps.db
      .select({ id: m.id })
      .from(m)
      .where(sql`${m.adapterBlobId} = ${blobId} or ${m.manifestBlobId} = ${blobId}`)
      .limit(1);
    if (model) return true;
    const [sketch] = await this.deps.db
      .select({ id: m.id })
      .from(m)
      .innerJoin(schema.jobs, eq(schema.jobs.id, m.jobId))
      .where(sql`${schema.jobs.result}->'sketches'->>'sha256' = ${blobId}`)
      .limit(1);
    return sketch !== undefined;
  }
}
