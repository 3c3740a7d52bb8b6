/**
 * Attribution receipts (issue #6, item 4): per paid inference, a versioned canonical-JSON
 * (RFC 8785) document naming what was served (by the v1 inference receipt and its hash), the
 * model's on-chain terms, the datanet versions and index shards behind the attribution, each
 * channel's per-contributor weights with their evidence, and the payouts. Its sha256 is the
 * attribution receipt hash. Nothing in it depends on when or where it was built — no clock, no
 * order of a hash map, no floating-point arithmetic of its own — so that `verify` can rebuild it
 * from public data bit for bit.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../datanets/ingest/hash.ts';
import { OpenLedgerError } from '../errors.ts';
import { inferenceFee } from '../payments/typed-data.ts';
import { receiptHash, type InferenceReceipt } from '../serving/usage.ts';
import { normalisePpb } from './fixed.ts';
import type { RagChannel } from './rag.ts';
import { TRACE_DEFAULTS, type TraceOptions, type TraceResult } from './span-index.ts';
import {
  DEFAULT_CHANNEL_WEIGHTS,
  DEFAULT_PLATFORM_BPS,
  channelCredits,
  splitFee,
  type ChannelWeights,
  type ContributorWeight,
  type RevenueSplitBps,
  type Role,
} from './split.ts';

export const ATTRIBUTION_RECEIPT_KIND = 'openledger.attribution-receipt';
export const ATTRIBUTION_RECEIPT_VERSION = 1;

/** A contributor's weight in a channel, in parts per billion (decimal); a channel's sum to 10^9. */
export interface ReceiptWeight {
  contributor: string;
  weight: string;
}

export interface ReceiptOccurrence {
  datanetId: number;
  version: number;
  rowHash: string;
  contributor: string;
  /** Token offset of the match in its row. */
  offset: number;
}

export interface ReceiptSpan {
  /** [start, end) in the output's tokens. */
  start: number;
  end: number;
  /** The output's text of the span, when the builder was given the output. */
  text?: string;
  /** Distinct rows it occurs in (all of them count for credit; `occurrences` lists a few). */
  count: number;
  /** Its credit, −Σ log2 p(token), in bits (a multiple of 2^-16, so exact in JSON). */
  bits: number;
  occurrences: ReceiptOccurrence[];
}

export interface SpanChannel {
  /** sha256 of the tokenizer the index and the trace used. */
  tokenizer: string;
  options: Required<Pick<TraceOptions, 'minTokens' | 'maxOccurrences' | 'listOccurrences'>>;
  weights: ReceiptWeight[];
  evidence: ReceiptSpan[];
}

export interface InfluenceEvidence {
  datanetId: number;
  version: number;
  rowHash: string;
  contributor: string;
  /** The row's influence score (may be negative: only positive weights pay). */
  score: number;
}

export interface InfluenceChannel {
  /** e.g. "datainf" or "tracin". */
  method: string;
  weights: ReceiptWeight[];
  evidence: InfluenceEvidence[];
}

export interface ReceiptPayout {
  address: string;
  amount: string;
  role: Role;
  detail: Partial<Record<Role, string>>;
}

export interface AttributionReceipt {
  kind: typeof ATTRIBUTION_RECEIPT_KIND;
  version: typeof ATTRIBUTION_RECEIPT_VERSION;
  inference: {
    receiptHash: string;
    id: string;
    chainId: number;
    caller: string;
    model: string;
    publishedModelId: number;
    baseModel: { name: string; sha256: string };
    adapters: { id: string; weight: number }[];
    inputSha256: string;
    outputSha256: string;
    promptTokens: number;
    completionTokens: number;
    fee: string;
    /** The inference receipt's own time: the only timestamp here. */
    createdAt: string;
  };
  model: {
    id: number;
    owner: string;
    /** sha256 of the model's training manifest (ModelRegistry `manifestHash`). */
    manifestHash: string;
    price: { pricePer1kInput: string; pricePer1kOutput: string };
    platformBps: number;
    split: RevenueSplitBps;
    channelWeights: ChannelWeights;
  };
  platform: string;
  /** The block whose chain state gave the model's terms, the stakes and the penalties. */
  block: number;
  stakers: { address: string; stake: string }[];
  /**
   * Contributors whose rewards are cut (ContributionBonds `rewardsCut` at `block`): their
   * evidence stays in the channels, but they are left out of the payouts, whose contributors'
   * part goes to the others.
   */
  penalized: string[];
  /** The datanet versions attributed against, with the span index shards (blob ids) read. */
  datanets: { id: number; version: number; shards: string[] }[];
  channels: {
    span: SpanChannel | null;
    influence: InfluenceChannel | null;
    /** Sources a RAG answer cited, weighted by ContextCite (rag.ts); null for other calls. */
    rag: RagChannel | null;
  };
  payouts: ReceiptPayout[];
}

export interface BuildReceiptInput {
  inferenceReceipt: InferenceReceipt;
  inferenceReceiptHash: string;
  model: {
    id: number;
    owner: string;
    manifestHash: string;
    price: { pricePer1kInput: bigint; pricePer1kOutput: bigint };
    /** ModelRegistry `platformFeeBps`; default PLATFORM_FEE_BPS. */
    platformBps?: number;
    split: RevenueSplitBps;
    channelWeights?: Readonly<ChannelWeights>;
  };
  datanets: readonly { id: number; version: number; shards: readonly string[] }[];
  /** The span channel's trace of the output tokens (SpanIndex.trace) and how it was run. */
  span?: {
    tokenizer: string;
    trace: TraceResult;
    options?: TraceOptions;
    /** The text of output tokens [start, end), to show in the evidence. */
    text?: (start: number, end: number) => string;
  } | null;
  influence?: {
    method: string;
    /** Scores or weights per contributor, or influence.ts `influenceWeights(…).weightsPpb`. */
    weights: readonly ContributorWeight[] | ReadonlyMap<string, bigint>;
    evidence?: readonly InfluenceEvidence[];
  } | null;
  /** The RAG channel (rag.ts `ragChannel`), for an answer over datanets. */
  rag?: RagChannel | null;
  stakers?: readonly { address: string; stake: bigint }[];
  platform: string;
  block: number | bigint;
  penalized?: readonly string[];
}

const HEX64 = /^[0-9a-f]{64}$/;

function bad(message: string): OpenLedgerError {
  return new OpenLedgerError('VALIDATION_FAILED', message);
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function listed(
  weights: readonly ContributorWeight[] | ReadonlyMap<string, bigint>,
): readonly ContributorWeight[] {
  return weights instanceof Map
    ? [...(weights as ReadonlyMap<string, bigint>)].map(([contributor, weight]) => ({
        contributor,
        weight,
      }))
    : (weights as readonly ContributorWeight[]);
}

function ppbWeights(ppb: ReadonlyMap<string, bigint>): ReceiptWeight[] {
  return [...ppb]
    .map(([contributor, w]) => ({ contributor: contributor.toLowerCase(), weight: w.toString() }))
    .sort((a, b) => byString(a.contributor, b.contributor));
}

/**
 * Builds the attribution receipt of a paid inference. The payouts are `splitFee` over the
 * receipt's own per-channel weights (parts per billion), so that anyone can recompute them from
 * the receipt alone (`recomputePayouts`).
 */
export function buildAttributionReceipt(input: BuildReceiptInput): AttributionReceipt {
  const inf = input.inferenceReceipt;
  if (receiptHash(inf) !== input.inferenceReceiptHash)
    throw bad('The inference receipt does not match its hash.');
  if (inf.fee === null) throw bad('A free inference has no attribution receipt.');
  if (inf.publishedModelId === null || inf.publishedModelId !== input.model.id)
    throw bad(
      `The inference served published model ${String(inf.publishedModelId)}, not model ${input.model.id}.`,
    );
  const fee = inferenceFee(input.model.price, inf.promptTokens, inf.completionTokens);
  if (fee.toString() !== inf.fee)
    throw bad(
      `The inference receipt charged ${inf.fee} wei, but the model's price gives ${fee} wei.`,
    );
  if (!HEX64.test(input.model.manifestHash.replace(/^0x/, '').toLowerCase()))
    throw bad('The manifest hash must be a sha256 (64 hex digits).');

  const seen = new Set<number>();
  const datanets = input.datanets
    .map((d) => {
      if (seen.has(d.id)) throw bad(`Datanet ${d.id} is named twice.`);
      seen.add(d.id);
      for (const blob of d.shards)
        if (!HEX64.test(blob)) throw bad(`"${blob}" is not a blob id (64 hex digits).`);
      // Shards stay in the order the index reads them (by version).
      return { id: d.id, version: d.version, shards: [...d.shards] };
    })
    .sort((a, b) => a.id - b.id);

  let span: SpanChannel | null = null;
  if (input.span) {
    const { trace, text } = input.span;
    const weights = new Map(
      Object.entries(trace.weightsPpb).map(([who, w]) => [who.toLowerCase(), BigInt(w)] as const),
    );
    const evidence = trace.spans
      .map((s): ReceiptSpan => {
        const occurrences = s.rows
          .map((o) => ({
            datanetId: o.datanetId,
            version: o.version,
            rowHash: o.rowHash,
            contributor: o.contributor.toLowerCase(),
            offset: o.offset,
          }))
          .sort(
            (a, b) =>
              a.datanetId - b.datanetId ||
              a.version - b.version ||
              byString(a.rowHash, b.rowHash) ||
              a.offset - b.offset,
          );
        return {
          start: s.start,
          end: s.end,
          ...(text ? { text: text(s.start, s.end) } : {}),
          count: s.occurrences,
          bits: s.credit,
          occurrences,
        };
      })
      .sort((a, b) => a.start - b.start || a.end - b.end);
    const o = input.span.options ?? {};
    span = {
      tokenizer: input.span.tokenizer,
      options: {
        minTokens: Math.max(1, o.minTokens ?? TRACE_DEFAULTS.minTokens),
        maxOccurrences: o.maxOccurrences ?? TRACE_DEFAULTS.maxOccurrences,
        listOccurrences: o.listOccurrences ?? TRACE_DEFAULTS.listOccurrences,
      },
      weights: ppbWeights(weights),
      evidence,
    };
  }

  let influence: InfluenceChannel | null = null;
  if (input.influence) {
    const evidence = (input.influence.evidence ?? [])
      .map((e) => ({ ...e, contributor: e.contributor.toLowerCase() }))
      .sort(
        (a, b) =>
          a.datanetId - b.datanetId ||
          a.version - b.version ||
          byString(a.rowHash, b.rowHash) ||
          byString(a.contributor, b.contributor),
      );
    influence = {
      method: input.influence.method,
      // Exact fractions normalised to parts per billion: the payouts follow these integers.
      weights: ppbWeights(normalisePpb(channelCredits(listed(input.influence.weights)))),
      evidence,
    };
  }

  const split = input.model.split;
  const channelWeights = input.model.channelWeights ?? DEFAULT_CHANNEL_WEIGHTS;
  const stakers = (input.stakers ?? [])
    .map((s) => ({ address: s.address.toLowerCase(), stake: s.stake.toString() }))
    .sort((a, b) => byString(a.address, b.address) || byString(a.stake, b.stake));

  const receipt: AttributionReceipt = {
    kind: ATTRIBUTION_RECEIPT_KIND,
    version: ATTRIBUTION_RECEIPT_VERSION,
    inference: {
      receiptHash: input.inferenceReceiptHash,
      id: inf.id,
      chainId: inf.chainId,
      caller: inf.caller,
      model: inf.model,
      publishedModelId: inf.publishedModelId,
      baseModel: { name: inf.baseModel.name, sha256: inf.baseModel.sha256 },
      adapters: inf.adapters.map((a) => ({ id: a.id, weight: a.weight })),
      inputSha256: inf.inputSha256,
      outputSha256: inf.outputSha256,
      promptTokens: inf.promptTokens,
      completionTokens: inf.completionTokens,
      fee: inf.fee,
      createdAt: inf.createdAt,
    },
    model: {
      id: input.model.id,
      owner: input.model.owner.toLowerCase(),
      manifestHash: input.model.manifestHash.replace(/^0x/, '').toLowerCase(),
      price: {
        pricePer1kInput: input.model.price.pricePer1kInput.toString(),
        pricePer1kOutput: input.model.price.pricePer1kOutput.toString(),
      },
      platformBps: input.model.platformBps ?? DEFAULT_PLATFORM_BPS,
      split: { owner: split.owner, stakers: split.stakers, contributors: split.contributors },
      channelWeights: {
        span: channelWeights.span,
        influence: channelWeights.influence,
        rag: channelWeights.rag,
      },
    },
    platform: input.platform.toLowerCase(),
    block: Number(input.block),
    stakers,
    penalized: [...new Set((input.penalized ?? []).map((a) => a.toLowerCase()))].sort(byString),
    datanets,
    channels: { span, influence, rag: input.rag ?? null },
    payouts: [],
  };
  receipt.payouts = recomputePayouts(receipt);
  return receipt;
}

/** The payouts a receipt's own terms and weights give (splitFee), as they appear in it. */
export function recomputePayouts(receipt: AttributionReceipt): ReceiptPayout[] {
  const cut = new Set(receipt.penalized);
  const weights = (list: readonly ReceiptWeight[] | undefined) =>
    list
      ?.filter((w) => !cut.has(w.contributor))
      .map((w) => ({ contributor: w.contributor, weight: BigInt(w.weight) })) ?? null;
  const { payouts } = splitFee({
    fee: BigInt(receipt.inference.fee),
    platformBps: receipt.model.platformBps,
    platform: receipt.platform,
    owner: receipt.model.owner,
    split: receipt.model.split,
    stakers: receipt.stakers.map((s) => ({ address: s.address, stake: BigInt(s.stake) })),
    channels: {
      span: weights(receipt.channels.span?.weights),
      influence: weights(receipt.channels.influence?.weights),
      rag: weights(receipt.channels.rag?.weights),
    },
    channelWeights: receipt.model.channelWeights,
  });
  return payouts.map((p) => ({
    address: p.address,
    amount: p.amount.toString(),
    role: p.role,
    detail: Object.fromEntries(
      Object.entries(p.detail).map(([role, amount]) => [role, amount.toString()]),
    ),
  }));
}

/** The canonical JSON (RFC 8785) of a receipt: the bytes its hash is taken over. */
export function attributionReceiptJson(receipt: AttributionReceipt): string {
  return canonicalJson(receipt);
}

/** sha256 (64 lower-case hex digits) of the receipt's canonical JSON. */
export function attributionReceiptHash(receipt: AttributionReceipt): string {
  return createHash('sha256').update(attributionReceiptJson(receipt), 'utf8').digest('hex');
}

export type ReceiptVerification =
  | { ok: true; hash: string }
  | {
      ok: false;
      /** The first differing JSON path, e.g. `payouts[1].amount` (`` for the whole document). */
      path: string;
      /** The receipt's value there and the recomputed one (undefined: absent). */
      actual: unknown;
      expected: unknown;
      hash: string;
      expectedHash: string;
    };

/**
 * Compares a receipt with one recomputed from public data: equal hashes, or the first path
 * (keys in canonical order, array items in order) where their canonical forms differ.
 */
export function verifyAttributionReceipt(
  receipt: unknown,
  recomputed: AttributionReceipt,
): ReceiptVerification {
  const actualJson = canonicalJson(receipt);
  const expectedJson = attributionReceiptJson(recomputed);
  const hash = createHash('sha256').update(actualJson, 'utf8').digest('hex');
  const expectedHash = attributionReceiptHash(recomputed);
  if (actualJson === expectedJson) return { ok: true, hash };
  const diff = firstDifference(JSON.parse(actualJson), JSON.parse(expectedJson), '') ?? {
    path: '',
    actual: receipt,
    expected: recomputed,
  };
  return { ok: false, ...diff, hash, expectedHash };
}

function firstDifference(
  a: unknown,
  b: unknown,
  path: string,
): { path: string; actual: unknown; expected: unknown } | null {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(a) !== kind(b)) return { path, actual: a, expected: b };
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    for (let i = 0; i < Math.max(a.length, bb.length); i++) {
      const d = firstDifference(a[i], bb[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (kind(a) === 'object') {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    // Canonical key order (UTF-16 code units), as RFC 8785 sorts them.
    const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort(byString);
    for (const k of keys) {
      const sub = /^[A-Za-z_$][\w$]*$/.test(k)
        ? path
          ? `${path}.${k}`
          : k
        : `${path}[${JSON.stringify(k)}]`;
      if (!(k in ao) || !(k in bo)) return { path: sub, actual: ao[k], expected: bo[k] };
      const d = firstDifference(ao[k], bo[k], sub);
      if (d) return d;
    }
    return null;
  }
  return Object.is(a, b) ? null : { path, actual: a, expected: b };
}
