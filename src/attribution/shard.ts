/**
 * One shard of a span index: the token ids of some rows of one datanet version, concatenated with
 * a separator after each row, their suffix array, and the map from positions to rows and
 * contributors. Immutable once built; stored as one blob in the binary format below.
 *
 * Binary format (all integers little-endian):
 *
 *   offset  size  field
 *        0     8  magic "OLSPAN" 0x00 0x01 (the last byte is the format version)
 *        8     4  u32 header size (32)
 *       12     4  u32 separator: the token id after each row, = the vocabulary size
 *       16     4  u32 n: token count, separators included
 *       20     4  u32 r: row count
 *       24     4  u32 m: byte length of the metadata JSON
 *       28     4  u32 0 (reserved)
 *       32    4n  i32[n] token ids
 *     32+4n   4n  i32[n] suffix array: positions of the suffixes in lexicographic order
 *     32+8n 4r+4  u32[r+1] row starts: the position of each row's first token; the last is n
 *   36+8n+4r   m  metadata, canonical JSON (RFC 8785): { kind: "openledger.span-shard",
 *                 formatVersion: 1, datanetId, version, tokenizer, separator,
 *                 rows: [[rowHash, contributor, contributionId, committedAt, submittedAt]…] }
 *
 * Times are in ms since the epoch: `committedAt` of the version that first holds the row,
 * `submittedAt` of the contribution that brought it. Identical rows (same hash) go to the
 * earliest by (committedAt, submittedAt, contributionId), in a version and across datanets.
 */
import { canonicalJson } from '../datanets/ingest/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { suffixArray } from './sais.ts';

export const SHARD_MAGIC = Buffer.from([0x4f, 0x4c, 0x53, 0x50, 0x41, 0x4e, 0x00, 0x01]);
const HEADER_BYTES = 32;

/** One indexed row: of identical rows, only the first contributed is indexed. */
export interface ShardRow {
  rowHash: string;
  /** Checksummed address. */
  contributor: string;
  contributionId: string;
  committedAt: number;
  submittedAt: number;
}

/** The order that decides which of identical rows is credited: the first one contributed. */
export function firstRow(a: ShardRow, b: ShardRow): number {
  return (
    a.committedAt - b.committedAt ||
    a.submittedAt - b.submittedAt ||
    (a.contributionId < b.contributionId ? -1 : a.contributionId > b.contributionId ? 1 : 0)
  );
}

export interface ShardMeta {
  datanetId: number;
  version: number;
  /** sha256 of the tokenizer the ids come from. */
  tokenizer: string;
  /** The vocabulary size: an id no token has. */
  separator: number;
}

/**
 * The rows to index from a version's added rows: of identical rows (same hash) only the first
 * contributed, and none whose hash an earlier version holds (`earlier`), since those are indexed
 * there. File rows have no text and are left out by the caller. Sorted by row hash.
 */
export function rowsToIndex<T extends { row: ShardRow }>(
  added: readonly T[],
  earlier: ReadonlySet<string>,
): T[] {
  const byHash = new Map<string, T>();
  for (const candidate of added) {
    if (earlier.has(candidate.row.rowHash)) continue;
    const seen = byHash.get(candidate.row.rowHash);
    if (!seen || firstRow(candidate.row, seen.row) < 0)
      byHash.set(candidate.row.rowHash, candidate);
  }
  return [...byHash.values()].sort((x, y) => (x.row.rowHash < y.row.rowHash ? -1 : 1));
}

export class SpanShard {
  readonly meta: ShardMeta;
  readonly tokens: Int32Array;
  readonly sa: Int32Array;
  readonly rowStarts: Uint32Array;
  readonly rows: ShardRow[];
  /** bucket[c]..bucket[c + 1]: the suffix-array range of the suffixes that start with c. */
  readonly bucket: Int32Array;

  private constructor(
    meta: ShardMeta,
    tokens: Int32Array,
    sa: Int32Array,
    rowStarts: Uint32Array,
    rows: ShardRow[],
  ) {
    this.meta = meta;
    this.tokens = tokens;
    this.sa = sa;
    this.rowStarts = rowStarts;
    this.rows = rows;
    const bucket = new Int32Array(meta.separator + 2);
    for (let i = 0; i < tokens.length; i++) bucket[tokens[i]! + 1]!++;
    for (let c = 1; c < bucket.length; c++) bucket[c]! += bucket[c - 1]!;
    this.bucket = bucket;
  }

  static build(meta: ShardMeta, rows: readonly { row: ShardRow; tokens: ArrayLike<number> }[]) {
    let n = 0;
    for (const r of rows) n += r.tokens.length + 1;
    if (n > 0x7fff_ffff)
      throw new OpenLedgerError('LIMIT_EXCEEDED', `A shard holds at most 2^31 tokens, not ${n}.`);
    const tokens = new Int32Array(n);
    const rowStarts = new Uint32Array(rows.length + 1);
    let at = 0;
    rows.forEach((r, i) => {
      rowStarts[i] = at;
      for (let j = 0; j < r.tokens.length; j++) {
        const t = r.tokens[j]!;
        if (!Number.isInteger(t) || t < 0 || t >= meta.separator)
          throw new OpenLedgerError(
            'VALIDATION_FAILED',
            `Token id ${t} is outside the vocabulary.`,
          );
        tokens[at++] = t;
      }
      tokens[at++] = meta.separator;
    });
    rowStarts[rows.length] = at;
    const sa = suffixArray(tokens, meta.separator);
    return new SpanShard(
      meta,
      tokens,
      sa,
      rowStarts,
      rows.map((r) => r.row),
    );
  }

  /** Token count without the row separators. */
  get tokenCount(): number {
    return this.tokens.length - this.rows.length;
  }

  /** How often token `c` occurs. */
  unigram(c: number): number {
    return c >= 0 && c + 1 < this.bucket.length ? this.bucket[c + 1]! - this.bucket[c]! : 0;
  }

  encode(): Buffer {
    const n = this.tokens.length;
    const r = this.rows.length;
    const metadata = Buffer.from(
      canonicalJson({
        kind: 'openledger.span-shard',
        formatVersion: 1,
        datanetId: this.meta.datanetId,
        version: this.meta.version,
        tokenizer: this.meta.tokenizer,
        separator: this.meta.separator,
        rows: this.rows.map((row) => [
          row.rowHash,
          row.contributor,
          row.contributionId,
          row.committedAt,
          row.submittedAt,
        ]),
      }),
      'utf8',
    );
    const out = Buffer.alloc(HEADER_BYTES + 8 * n + 4 * (r + 1) + metadata.length);
    SHARD_MAGIC.copy(out, 0);
    out.writeUInt32LE(HEADER_BYTES, 8);
    out.writeUInt32LE(this.meta.separator, 12);
    out.writeUInt32LE(n, 16);
    out.writeUInt32LE(r, 20);
    out.writeUInt32LE(metadata.length, 24);
    let at = HEADER_BYTES;
    for (let i = 0; i < n; i++, at += 4) out.writeInt32LE(this.tokens[i]!, at);
    for (let i = 0; i < n; i++, at += 4) out.writeInt32LE(this.sa[i]!, at);
    for (let i = 0; i <= r; i++, at += 4) out.writeUInt32LE(this.rowStarts[i]!, at);
    metadata.copy(out, at);
    return out;
  }

  static decode(bytes: Buffer): SpanShard {
    const bad = (why: string) =>
      new OpenLedgerError('BLOB_CORRUPT', `Not a span-index shard: ${why}.`);
    if (bytes.length < HEADER_BYTES || !bytes.subarray(0, 8).equals(SHARD_MAGIC))
      throw bad('wrong magic');
    if (bytes.readUInt32LE(8) !== HEADER_BYTES) throw bad('unknown header size');
    const separator = bytes.readUInt32LE(12);
    const n = bytes.readUInt32LE(16);
    const r = bytes.readUInt32LE(20);
    const m = bytes.readUInt32LE(24);
    if (bytes.length !== HEADER_BYTES + 8 * n + 4 * (r + 1) + m) throw bad('wrong length');
    const ints = (offset: number, count: number) => {
      // A view when the bytes are 4-aligned in their buffer (and the machine little-endian, as
      // every platform Node runs on is); a copy otherwise.
      const start = bytes.byteOffset + offset;
      if (start % 4 === 0) return new Int32Array(bytes.buffer, start, count);
      const copy = new Int32Array(count);
      for (let i = 0; i < count; i++) copy[i] = bytes.readInt32LE(offset + 4 * i);
      return copy;
    };
    const tokens = ints(HEADER_BYTES, n);
    const sa = ints(HEADER_BYTES + 4 * n, n);
    const starts = ints(HEADER_BYTES + 8 * n, r + 1);
    const rowStarts = new Uint32Array(starts.buffer, starts.byteOffset, r + 1);
    const json = JSON.parse(bytes.toString('utf8', HEADER_BYTES + 8 * n + 4 * (r + 1))) as {
      kind: string;
      datanetId: number;
      version: number;
      tokenizer: string;
      separator: number;
      rows: [string, string, string, number, number][];
    };
    if (
      json.kind !== 'openledger.span-shard' ||
      json.rows.length !== r ||
      json.separator !== separator
    )
      throw bad('metadata does not match');
    return new SpanShard(
      { datanetId: json.datanetId, version: json.version, tokenizer: json.tokenizer, separator },
      tokens,
      sa,
      rowStarts,
      json.rows.map(([rowHash, contributor, contributionId, committedAt, submittedAt]) => ({
        rowHash,
        contributor,
        contributionId,
        committedAt,
        submittedAt,
      })),
    );
  }

  // ----- search ------------------------------------------------------------------------------

  /** The symbol `depth` tokens into suffix `sa[x]`; -1 past the end of the text. */
  private at(x: number, depth: number): number {
    const p = this.sa[x]! + depth;
    return p < this.tokens.length ? this.tokens[p]! : -1;
  }

  /**
   * Within [lo, hi), whose suffixes share their first `depth` tokens, the sub-range whose token at
   * `depth` is `token` (empty: lo === hi).
   */
  narrow(lo: number, hi: number, depth: number, token: number): [number, number] {
    if (depth === 0) {
      if (token < 0 || token + 1 >= this.bucket.length) return [0, 0];
      return [this.bucket[token]!, this.bucket[token + 1]!];
    }
    let a = lo;
    let b = hi;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (this.at(mid, depth) < token) a = mid + 1;
      else b = mid;
    }
    const first = a;
    b = hi;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (this.at(mid, depth) <= token) a = mid + 1;
      else b = mid;
    }
    return [first, a];
  }

  /** The suffix-array range of `pattern[start, end)`. */
  range(pattern: ArrayLike<number>, start = 0, end = pattern.length): [number, number] {
    let lo = 0;
    let hi = this.sa.length;
    for (let k = start; k < end && lo < hi; k++)
      [lo, hi] = this.narrow(lo, hi, k - start, pattern[k]!);
    return [lo, hi];
  }

  count(pattern: ArrayLike<number>, start = 0, end = pattern.length): number {
    const [lo, hi] = this.range(pattern, start, end);
    return hi - lo;
  }

  /** The longest prefix of `pattern[start, end)` that occurs here, and its range. */
  longest(
    pattern: ArrayLike<number>,
    start: number,
    end: number,
  ): { length: number; lo: number; hi: number } {
    let lo = 0;
    let hi = this.sa.length;
    let length = 0;
    for (let k = start; k < end; k++) {
      const [a, b] = this.narrow(lo, hi, k - start, pattern[k]!);
      if (a >= b) break;
      lo = a;
      hi = b;
      length++;
    }
    return length === 0 ? { length, lo: 0, hi: 0 } : { length, lo, hi };
  }

  /** The row (index into `rows`) holding position `p`, and p's offset in it. */
  rowAt(p: number): { row: number; offset: number } {
    let a = 0;
    let b = this.rows.length; // rowStarts[a] <= p < rowStarts[b]
    while (b - a > 1) {
      const mid = (a + b) >>> 1;
      if (this.rowStarts[mid]! <= p) a = mid;
      else b = mid;
    }
    return { row: a, offset: p - this.rowStarts[a]! };
  }
}
