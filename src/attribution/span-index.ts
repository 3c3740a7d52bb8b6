/**
 * Queries over the shards of one or more datanet versions (one tokenizer): n-gram counts and
 * occurrences, ∞-gram probabilities (infini-gram, Liu et al. 2024), and the trace of an output to
 * the rows it reproduces, with per-contributor credit (in the manner of OLMoTrace, Liu et al.
 * 2025). Every result depends only on the token ids and the shards, never on timing or on the
 * order of a hash map, and the weights are computed in exact arithmetic (fixed.ts).
 */
import { OpenLedgerError } from '../errors.ts';
import { Q, addFraction, fraction, log2Fixed, normalisePpb, type Fraction } from './fixed.ts';
import { firstRow, type ShardRow, type SpanShard } from './shard.ts';

export interface Occurrence {
  datanetId: number;
  version: number;
  rowHash: string;
  contributor: string;
  contributionId: string;
  /** Token offset of the match in its row. */
  offset: number;
}

export interface TraceOptions {
  /** A span is kept only when it occurs in at most this many places (default 10). */
  maxOccurrences?: number;
  /** Shortest span kept, in tokens (default 8): shorter matches are common phrasing. */
  minTokens?: number;
  /** Occurrences listed per span (default 10; credit always counts all of them). */
  listOccurrences?: number;
}

export const TRACE_DEFAULTS = { maxOccurrences: 10, minTokens: 8, listOccurrences: 10 } as const;

export interface TraceSpan {
  /** [start, end) in the output's tokens. */
  start: number;
  end: number;
  /** Distinct places (rows deduplicated across datanets) it occurs in. */
  occurrences: number;
  /** Σ log2 p(token) of its tokens under the index's unigram distribution (≤ 0), in bits. */
  logProb: number;
  /** Its credit −Σ log2 p (= length × mean rarity), in bits, split over its occurrences. */
  credit: number;
  rows: Occurrence[];
}

export interface TraceResult {
  /** Tokens in the output. */
  length: number;
  spans: TraceSpan[];
  /** Per contributor, normalised to sum 1 (empty when no span qualifies). */
  weights: Record<string, number>;
  /** The same in integer parts per billion, summing to exactly 10^9 (largest remainder). */
  weightsPpb: Record<string, string>;
}

export class SpanIndex {
  readonly shards: readonly SpanShard[];
  readonly separator: number;
  /** Unigram counts over all shards, and their total (separators excluded). */
  private readonly unigrams: Float64Array;
  readonly totalTokens: number;

  /**
   * `delimiters[id]` is 1 for tokens that end a sentence or a line: trace spans never run past
   * one (a span may end with it).
   */
  constructor(
    shards: readonly SpanShard[],
    private readonly delimiters: Uint8Array = new Uint8Array(0),
  ) {
    const separators = new Set(shards.map((s) => s.meta.separator));
    if (separators.size > 1)
      throw new OpenLedgerError('CONFLICT', 'The shards come from different tokenizers.');
    this.shards = shards;
    this.separator = shards[0]?.meta.separator ?? 0;
    this.unigrams = new Float64Array(this.separator);
    let total = 0;
    for (const shard of shards) {
      for (let c = 0; c < this.separator; c++) this.unigrams[c]! += shard.unigram(c);
      total += shard.tokenCount;
    }
    // A row that several datanets hold counts once in the statistics too (for the first
    // contributed, as in the trace): otherwise copying rows into another datanet would shift
    // every token's rarity, and with it the shares of contributors.
    const first = new Map<string, { shard: SpanShard; row: number }>();
    for (const shard of shards)
      shard.rows.forEach((row, r) => {
        const seen = first.get(row.rowHash);
        if (!seen || firstRow(row, seen.shard.rows[seen.row]!) < 0)
          first.set(row.rowHash, { shard, row: r });
      });
    for (const shard of shards)
      shard.rows.forEach((row, r) => {
        const kept = first.get(row.rowHash)!;
        if (kept.shard === shard && kept.row === r) return;
        const end = shard.rowStarts[r + 1]! - 1; // the row's separator
        for (let p = shard.rowStarts[r]!; p < end; p++) this.unigrams[shard.tokens[p]!]! -= 1;
        total -= end - shard.rowStarts[r]!;
      });
    this.totalTokens = total;
  }

  private check(tokens: ArrayLike<number>): void {
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= this.separator)
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `Token id ${t} is outside the vocabulary of ${this.separator} tokens.`,
        );
    }
  }

  unigram(token: number): number {
    return this.unigrams[token] ?? 0;
  }

  /** How often `ngram` occurs across the shards (0 for the empty n-gram's …: total tokens). */
  count(ngram: ArrayLike<number>): number {
    this.check(ngram);
    if (ngram.length === 0) return this.totalTokens;
    let n = 0;
    for (const shard of this.shards) n += shard.count(ngram);
    return n;
  }

  /** Where `ngram` occurs: the count and up to `limit` occurrences, in shard and suffix order. */
  find(ngram: ArrayLike<number>, limit = 100): { count: number; occurrences: Occurrence[] } {
    this.check(ngram);
    if (ngram.length === 0)
      throw new OpenLedgerError('VALIDATION_FAILED', 'find needs at least one token.');
    let count = 0;
    const occurrences: Occurrence[] = [];
    for (const shard of this.shards) {
      const [lo, hi] = shard.range(ngram);
      count += hi - lo;
      for (let x = lo; x < hi && occurrences.length < limit; x++)
        occurrences.push(occurrenceAt(shard, shard.sa[x]!));
    }
    return { count, occurrences };
  }

  /**
   * Occurrences of `context` followed by a token (not by the end of a row), summed over shards.
   */
  private continued(context: ArrayLike<number>, start: number): number {
    let n = 0;
    for (const shard of this.shards) {
      const [lo, hi] = shard.range(context, start);
      if (lo >= hi) continue;
      const [a, b] = shard.narrow(lo, hi, context.length - start, this.separator);
      n += hi - lo - (b - a);
    }
    return n;
  }

  /**
   * The ∞-gram context of `context`: its longest suffix that occurs followed by a token (by
   * binary search on the length: a suffix that occurs makes every shorter one occur), and how
   * often. Length 0 falls back to the unigram distribution.
   */
  private backoff(context: ArrayLike<number>): { start: number; count: number } {
    let lo = 0; // the suffix of length lo is known to occur (length 0 always "does")
    let hi = context.length;
    let found = this.totalTokens;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      const c = this.continued(context, context.length - mid);
      if (c > 0) {
        lo = mid;
        found = c;
      } else hi = mid - 1;
    }
    return { start: context.length - lo, count: lo === 0 ? this.totalTokens : found };
  }

  /**
   * P(last token | the tokens before it) under the ∞-gram: the longest suffix of the context that
   * occurs (followed by a token) is the effective context; 0 when the token never follows it.
   */
  probability(tokens: ArrayLike<number>): {
    contextLength: number;
    contextCount: number;
    count: number;
    probability: number;
  } {
    this.check(tokens);
    if (tokens.length === 0)
      throw new OpenLedgerError('VALIDATION_FAILED', 'A probability query needs a token.');
    const context = Array.from(tokens).slice(0, -1);
    const next = tokens[tokens.length - 1]!;
    const { start, count: contextCount } = this.backoff(context);
    if (contextCount === 0) return { contextLength: 0, contextCount: 0, count: 0, probability: 0 };
    const count =
      start === context.length ? this.unigram(next) : this.count([...context.slice(start), next]);
    return {
      contextLength: context.length - start,
      contextCount,
      count,
      probability: count / contextCount,
    };
  }

  /** The ∞-gram next-token distribution after `context`: the `top` likeliest tokens. */
  nextTokens(
    context: ArrayLike<number>,
    top = 10,
  ): {
    contextLength: number;
    contextCount: number;
    next: { token: number; count: number; probability: number }[];
  } {
    this.check(context);
    const { start, count: contextCount } = this.backoff(context);
    const counts = new Map<number, number>();
    if (start === context.length) {
      for (let c = 0; c < this.separator; c++)
        if (this.unigrams[c]! > 0) counts.set(c, this.unigrams[c]!);
    } else {
      const depth = context.length - start;
      for (const shard of this.shards) {
        const [lo, hi] = shard.range(context, start);
        // The next tokens of a range are sorted: walk it one distinct token at a time.
        let x = lo;
        while (x < hi) {
          const p = shard.sa[x]! + depth;
          const t = p < shard.tokens.length ? shard.tokens[p]! : -1;
          const [, b] = shard.narrow(x, hi, depth, t);
          if (t >= 0 && t !== this.separator) counts.set(t, (counts.get(t) ?? 0) + (b - x));
          x = b;
        }
      }
    }
    const next = [...counts]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, top)
      .map(([token, count]) => ({ token, count, probability: count / contextCount }));
    return { contextLength: context.length - start, contextCount, next };
  }

  /** Information of a token, −log2 p(token), in Q16 fixed point (the token must occur). */
  private information(token: number): number {
    return log2Fixed(this.totalTokens) - log2Fixed(this.unigrams[token]!);
  }

  /**
   * The trace of an output: at each position the longest match in the index, cut at delimiters;
   * kept when it is at least `minTokens` long, occurs in at most `maxOccurrences` places and is
   * not inside another kept span; ranked by summed unigram log-probability (rarest first). Each
   * span's credit, −Σ log2 p(token), is split evenly over its occurrences and each occurrence's
   * to its row's contributor; credits summed per contributor and normalised.
   *
   * Duplicates never add credit: of identical rows only the first contributed is indexed (in a
   * version, and not again in a later one), and identical rows of different datanets count once,
   * for the first contributed (shard.ts `firstRow`).
   */
  trace(output: ArrayLike<number>, options: TraceOptions = {}): TraceResult {
    this.check(output);
    const maxOccurrences = options.maxOccurrences ?? TRACE_DEFAULTS.maxOccurrences;
    const minTokens = Math.max(1, options.minTokens ?? TRACE_DEFAULTS.minTokens);
    const listed = options.listOccurrences ?? TRACE_DEFAULTS.listOccurrences;
    const L = output.length;

    // segmentEnd[i]: where the sentence holding position i ends (just after its delimiter).
    const segmentEnd = new Int32Array(L);
    let end = L;
    for (let i = L - 1; i >= 0; i--) {
      if (this.delimiters[output[i]!]) end = i + 1;
      segmentEnd[i] = end;
    }

    interface Candidate {
      start: number;
      end: number;
      places: Place[];
    }
    const candidates: Candidate[] = [];
    let reach = 0; // the furthest end of a candidate so far: later ones inside it are not maximal
    for (let i = 0; i < L; i++) {
      const stop = segmentEnd[i]!;
      if (stop - i < minTokens || stop <= reach) continue;
      let length = 0;
      let ranges: { shard: SpanShard; lo: number; hi: number }[] = [];
      for (const shard of this.shards) {
        const m = shard.longest(output, i, stop);
        if (m.length === 0 || m.length < length) continue;
        if (m.length > length) {
          length = m.length;
          ranges = [];
        }
        ranges.push({ shard, lo: m.lo, hi: m.hi });
      }
      if (length < minTokens || i + length <= reach) continue;
      // Rare enough? Every shard's count is a lower bound of the deduplicated count.
      if (ranges.some((r) => r.hi - r.lo > maxOccurrences)) continue;
      const places = dedupe(ranges);
      if (places.reduce((n, p) => n + p.count, 0) > maxOccurrences) continue;
      candidates.push({ start: i, end: i + length, places });
      reach = i + length;
    }

    const spans: (TraceSpan & { info: number; places: Place[] })[] = [];
    for (const c of candidates) {
      const places = c.places;
      const occurrences = places.reduce((n, p) => n + p.count, 0);
      let info = 0;
      for (let k = c.start; k < c.end; k++) info += this.information(output[k]!);
      spans.push({
        start: c.start,
        end: c.end,
        occurrences,
        logProb: -info / 2 ** Q,
        credit: info / 2 ** Q,
        rows: places.flatMap((p) => p.occurrences).slice(0, listed),
        info,
        places,
      });
    }

    const credits = new Map<string, Fraction>();
    for (const span of spans) {
      const occurrences = BigInt(span.occurrences);
      for (const place of span.places) {
        const share = fraction(BigInt(span.info) * BigInt(place.count), occurrences);
        const who = place.contributor;
        credits.set(who, addFraction(credits.get(who) ?? { num: 0n, den: 1n }, share));
      }
    }
    const ppb = normalisePpb(credits);
    const weights: Record<string, number> = {};
    const weightsPpb: Record<string, string> = {};
    for (const [who, parts] of [...ppb].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      weights[who] = Number(parts) / 1e9;
      weightsPpb[who] = parts.toString();
    }
    spans.sort((a, b) => b.info - a.info || a.start - b.start);
    return {
      length: L,
      spans: spans.map(({ info: _, places: __, ...span }) => span),
      weights,
      weightsPpb,
    };
  }
}

function occurrenceAt(shard: SpanShard, position: number): Occurrence {
  const { row, offset } = shard.rowAt(position);
  const r = shard.rows[row]!;
  return {
    datanetId: shard.meta.datanetId,
    version: shard.meta.version,
    rowHash: r.rowHash,
    contributor: r.contributor,
    contributionId: r.contributionId,
    offset,
  };
}

/** A distinct row holding a span: how many times, and whom it credits. */
interface Place {
  rowHash: string;
  count: number;
  contributor: string;
  occurrences: Occurrence[];
}

/**
 * The places of a span's occurrences, one per distinct row hash: a row held by several datanets
 * (same hash, so the same text and the same occurrences) counts once, for the first contributed.
 */
function dedupe(ranges: readonly { shard: SpanShard; lo: number; hi: number }[]): Place[] {
  const byHash = new Map<string, { row: ShardRow; occurrences: Occurrence[] }>();
  for (const { shard, lo, hi } of ranges) {
    const perRow = new Map<number, Occurrence[]>();
    for (let x = lo; x < hi; x++) {
      const p = shard.sa[x]!;
      const { row } = shard.rowAt(p);
      const list = perRow.get(row) ?? [];
      list.push(occurrenceAt(shard, p));
      perRow.set(row, list);
    }
    for (const [row, occurrences] of perRow) {
      const r = shard.rows[row]!;
      const seen = byHash.get(r.rowHash);
      if (!seen || firstRow(r, seen.row) < 0)
        byHash.set(r.rowHash, {
          row: r,
          occurrences: occurrences.sort((a, b) => a.offset - b.offset),
        });
    }
  }
  return [...byHash]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([rowHash, v]) => ({
      rowHash,
      count: v.occurrences.length,
      contributor: v.row.contributor,
      occurrences: v.occurrences,
    }));
}
