import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { and, asc, eq, inArray, isNotNull, isNull, like, ne, or, sql } from 'drizzle-orm';
import { getAddress, type Address, type Hash, type Hex } from 'viem';
import type { ChainConnection } from '../chain/clients.ts';
import { InferenceEscrowAbi, ModelRegistryAbi } from '../chain/generated/contracts.ts';
import type { Relayer } from '../chain/relayer.ts';
import { schema, type Db } from '../db/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { inferenceFee } from './typed-data.ts';

/** How often a node posts its accumulated charges (the escrow's withdrawal delay is far longer). */
export const SETTLEMENT_INTERVAL_MS = 60_000;
/** Rows read per settlement batch; a batch also stops at the escrow's MAX_BATCH callers. */
const BATCH_ROWS = 2_000;
const MAX_BATCH_CALLERS = 256;
/** On-chain prices are re-read at most this often per model. */
const PRICE_TTL_MS = 10_000;
/** `settlement_tx` of rows posted in a batch whose transaction has not been confirmed yet. */
const PENDING = 'pending:';

export interface ModelPrice {
  pricePer1kInput: bigint;
  pricePer1kOutput: bigint;
}

export interface EscrowAccount {
  address: Address;
  /** On-chain balance (pending withdrawal included). */
  balance: bigint;
  withdrawal: { amount: bigint; unlockAt: number } | undefined;
  /** Fees this node recorded for the caller and has not settled on-chain yet. */
  unsettled: bigint;
  /** Upper bounds of the caller's calls being served now. */
  reserved: bigint;
  /** What a new call may cost: balance − pending withdrawal − unsettled − reserved (≥ 0). */
  available: bigint;
}

/** A priced call admitted by `authorize`: its price, and the release of its reservation. */
export interface Authorization {
  price: ModelPrice;
  fee(promptTokens: number, completionTokens: number): bigint;
  release(): void;
}

export interface SettlementResult {
  batches: { receiptsRoot: Hex; tx: Hash; callers: number; rows: number; total: string }[];
}

/**
 * Meters and charges paid inference against the on-chain InferenceEscrow. Before a priced call
 * it checks the caller's available balance against the call's largest possible fee (the prompt
 * plus `max_tokens` at the model's on-chain price) and reserves that bound while the call runs;
 * the exact fee goes into the usage row, and `settle` posts every unsettled fee in batches
 * (`charge(receiptsRoot, callers, amounts)`, one amount per caller), marking the rows with the
 * transaction. Rows are marked `pending:<root>` before the transaction is sent, so a node that
 * dies mid-settlement finds the batch again and either confirms it (the escrow refuses a root
 * twice) or sends it again — never charging a row twice or forgetting one.
 */
export class EscrowService {
  private readonly prices = new Map<number, { price: ModelPrice; at: number }>();
  private readonly reservations = new Map<string, bigint>();
  /** Per-caller queue, so two concurrent calls cannot both spend the same balance. */
  private readonly admitting = new Map<string, Promise<unknown>>();
  private settling: Promise<SettlementResult> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      db: Db;
      chain: ChainConnection;
      escrow: Address;
      registry: Address | undefined;
      relayer: Relayer | undefined;
    },
  ) {}

  get address(): Address {
    return this.deps.escrow;
  }

  /** The price of a call: published models at their on-chain price; anything else is free. */
  async priceOf(publishedModelId: number | undefined): Promise<ModelPrice | undefined> {
    if (publishedModelId === undefined || !this.deps.registry) return undefined;
    const cached = this.prices.get(publishedModelId);
    if (cached && Date.now() - cached.at < PRICE_TTL_MS) return cached.price;
    const model = await this.read(() =>
      this.deps.chain.publicClient.readContract({
        address: this.deps.registry!,
        abi: ModelRegistryAbi,
        functionName: 'model',
        args: [BigInt(publishedModelId)],
      }),
    );
    const price = {
      pricePer1kInput: model.pricePer1kInput,
      pricePer1kOutput: model.pricePer1kOutput,
    };
    this.prices.set(publishedModelId, { price, at: Date.now() });
    return price;
  }

  async account(address: string): Promise<EscrowAccount> {
    const caller = getAddress(address);
    const [balance, withdrawal] = await this.read(() =>
      Promise.all([
        this.deps.chain.publicClient.readContract({
          address: this.deps.escrow,
          abi: InferenceEscrowAbi,
          functionName: 'balanceOf',
          args: [caller],
        }),
        this.deps.chain.publicClient.readContract({
          address: this.deps.escrow,
          abi: InferenceEscrowAbi,
          functionName: 'withdrawalOf',
          args: [caller],
        }),
      ]),
    );
    const [leaving, unlockAt] = withdrawal;
    const unsettled = await this.unsettled(caller);
    const reserved = this.reservations.get(caller.toLowerCase()) ?? 0n;
    const spendable = balance - (leaving > balance ? balance : leaving) - unsettled - reserved;
    return {
      address: caller,
      balance,
      withdrawal: leaving === 0n ? undefined : { amount: leaving, unlockAt: Number(unlockAt) },
      unsettled,
      reserved,
      available: spendable > 0n ? spendable : 0n,
    };
  }

  /**
   * Admits a call: undefined when it is free; otherwise reserves its largest possible fee, or
   * throws INSUFFICIENT_BALANCE (402) when the caller's available balance is short of it.
   */
  async authorize(input: {
    caller: string;
    publishedModelId: number | undefined;
    promptTokens: number;
    maxTokens: number;
  }): Promise<Authorization | undefined> {
    const price = await this.priceOf(input.publishedModelId);
    if (!price || (price.pricePer1kInput === 0n && price.pricePer1kOutput === 0n)) return undefined;
    const key = input.caller.toLowerCase();
    const bound = inferenceFee(price, input.promptTokens, input.maxTokens);
    const admit = async (): Promise<Authorization> => {
      const account = await this.account(input.caller);
      if (account.available < bound) {
        throw new OpenLedgerError(
          'INSUFFICIENT_BALANCE',
          `This call may cost up to ${formatOpen(bound)} OPEN (${input.promptTokens} prompt tokens + up to ${input.maxTokens} output tokens at model ${input.publishedModelId}'s price); your available escrow balance is ${formatOpen(account.available)} OPEN.`,
          {
            hint: 'Deposit OPEN into the inference escrow (`openledger escrow deposit <OPEN>`, POST /api/escrow/deposit, or the Escrow card in the web app), or lower max_tokens.',
            details: {
              required: bound.toString(),
              available: account.available.toString(),
              escrow: this.deps.escrow,
            },
          },
        );
      }
      this.reservations.set(key, (this.reservations.get(key) ?? 0n) + bound);
      let released = false;
      return {
        price,
        fee: (promptTokens, completionTokens) =>
          inferenceFee(price, promptTokens, completionTokens),
        release: () => {
          if (released) return;
          released = true;
          const left = (this.reservations.get(key) ?? 0n) - bound;
          if (left > 0n) this.reservations.set(key, left);
          else this.reservations.delete(key);
        },
      };
    };
    const previous = this.admitting.get(key) ?? Promise.resolve();
    const next = previous.then(admit, admit);
    const tail = next.catch(() => undefined);
    this.admitting.set(key, tail);
    void tail.then(() => {
      if (this.admitting.get(key) === tail) this.admitting.delete(key);
    });
    return next;
  }

  /** Posts every unsettled fee on-chain (one run at a time; a second call joins the first). */
  settle(): Promise<SettlementResult> {
    this.settling ??= this.settleOnce().finally(() => {
      this.settling = undefined;
    });
    return this.settling;
  }

  /** Settles every `intervalMs` until `stop()`; failures wait for the next round. */
  start(intervalMs = SETTLEMENT_INTERVAL_MS, onError?: (error: unknown) => void): void {
    if (!this.deps.relayer) return;
    this.timer = setInterval(() => {
      this.settle().catch((error: unknown) => onError?.(error));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.settling?.catch(() => undefined);
  }

  // ----- internals ------------------------------------------------------------------------------

  private async unsettled(caller: Address): Promise<bigint> {
    const u = schema.inferenceUsage;
    const [row] = await this.deps.db
      .select({ total: sql<string>`coalesce(sum(cast(${u.feeWei} as numeric)), 0)::text` })
      .from(u)
      .where(
        and(
          eq(u.caller, caller.toLowerCase()),
          isNotNull(u.feeWei),
          or(isNull(u.settlementTx), like(u.settlementTx, `${PENDING}%`)),
        ),
      );
    return BigInt(row?.total ?? '0');
  }

  private async settleOnce(): Promise<SettlementResult> {
    const relayer = this.deps.relayer;
    if (!relayer) {
      throw new OpenLedgerError('RELAYER_UNAVAILABLE', 'This node has no signer to settle with.', {
        hint: 'Start the node with OPENLEDGER_PRIVATE_KEY set to an account holding the escrow settler role.',
      });
    }
    const u = schema.inferenceUsage;
    const result: SettlementResult = { batches: [] };

    // Batches a previous run marked but may not have confirmed.
    const pending = await this.deps.db
      .selectDistinct({ tag: u.settlementTx })
      .from(u)
      .where(like(u.settlementTx, `${PENDING}%`));
    for (const { tag } of pending) {
      const rows = await this.deps.db
        .select({ id: u.id, caller: u.caller, fee: u.feeWei, hash: u.receiptHash })
        .from(u)
        .where(eq(u.settlementTx, tag!));
      result.batches.push(await this.post(tag!.slice(PENDING.length) as Hex, rows));
    }

    for (;;) {
      const rows = await this.deps.db
        .select({ id: u.id, caller: u.caller, fee: u.feeWei, hash: u.receiptHash })
        .from(u)
        .where(and(isNull(u.settlementTx), isNotNull(u.feeWei), ne(u.feeWei, '0')))
        .orderBy(asc(u.createdAt), asc(u.id))
        .limit(BATCH_ROWS);
      if (rows.length === 0) break;
      const callers = new Set<string>();
      const batch = rows.filter((row) => {
        if (!callers.has(row.caller) && callers.size >= MAX_BATCH_CALLERS) return false;
        callers.add(row.caller);
        return true;
      });
      const root = receiptsRoot(batch);
      await this.deps.db
        .update(u)
        .set({ settlementTx: `${PENDING}${root}` })
        .where(
          and(
            inArray(
              u.id,
              batch.map((r) => r.id),
            ),
            isNull(u.settlementTx),
          ),
        );
      result.batches.push(await this.post(root, batch));
    }
    return result;
  }

  /** Charges one batch (or finds it already charged) and marks its rows with the transaction. */
  private async post(
    root: Hex,
    rows: { id: string; caller: string; fee: string | null }[],
  ): Promise<SettlementResult['batches'][number]> {
    const owed = new Map<string, bigint>();
    for (const row of rows) owed.set(row.caller, (owed.get(row.caller) ?? 0n) + BigInt(row.fee!));
    const callers = [...owed.keys()].map((c) => getAddress(c));
    const amounts = [...owed.values()];
    const done = await this.deps.chain.publicClient.readContract({
      address: this.deps.escrow,
      abi: InferenceEscrowAbi,
      functionName: 'settled',
      args: [root],
    });
    let tx: Hash;
    if (done) {
      const [log] = await this.deps.chain.publicClient.getContractEvents({
        address: this.deps.escrow,
        abi: InferenceEscrowAbi,
        eventName: 'BatchSettled',
        args: { receiptsRoot: root },
        fromBlock: 0n,
      });
      tx = log!.transactionHash;
    } else {
      const receipt = await this.deps.relayer!.write({
        address: this.deps.escrow,
        abi: InferenceEscrowAbi,
        functionName: 'charge',
        args: [root, callers, amounts],
      });
      tx = receipt.transactionHash;
    }
    const u = schema.inferenceUsage;
    await this.deps.db
      .update(u)
      .set({ settlementTx: tx })
      .where(eq(u.settlementTx, `${PENDING}${root}`));
    return {
      receiptsRoot: root,
      tx,
      callers: callers.length,
      rows: rows.length,
      total: amounts.reduce((a, b) => a + b, 0n).toString(),
    };
  }

  private async read<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (cause) {
      throw new OpenLedgerError(
        'ESCROW_UNAVAILABLE',
        'Could not read the inference escrow on-chain.',
        {
          cause,
        },
      );
    }
  }
}

/**
 * The root a batch is charged under: OpenZeppelin's standard Merkle tree over (receipt hash,
 * caller, fee) of its rows, so the batch is unique (receipt ids are) and attribution can prove a
 * receipt's inclusion in a charge with `MerkleProof`.
 */
export function receiptsRoot(
  rows: readonly { hash: string; caller: string; fee: string | null }[],
): Hex {
  const leaves = rows.map(
    (r) => [`0x${r.hash}`, getAddress(r.caller), BigInt(r.fee!)] as [Hex, Address, bigint],
  );
  return StandardMerkleTree.of(leaves, ['bytes32', 'address', 'uint256']).root as Hex;
}

/** OPEN wei as a decimal OPEN amount, trailing zeros dropped. */
export function formatOpen(wei: bigint): string {
  const whole = wei / 10n ** 18n;
  const fraction = (wei % 10n ** 18n).toString().padStart(18, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : whole.toString();
}
