import { OpenLedgerError } from '../../errors.ts';

/*
 * Hashing is written here rather than taken from npm: there is no maintained MinHash/LSH package
 * for Node (the few that exist are unmaintained and seed from Math.random, so signatures would not
 * be reproducible), and the murmur packages hash strings or bytes, while the hot loop here mixes
 * 32-bit integers: a word hash per word, a shingle hash per word 5-gram, then one hash per
 * permutation per shingle. MurmurHash3's 32-bit block mix and finaliser (public domain) are enough,
 * take a dozen lines, and give the same signature on every machine and every version of Node.
 * Changing any constant here changes every stored signature: don't.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3 fmix32: a bijection on 32 bits with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** One MurmurHash3 x86_32 block step: mixes a 32-bit value into the running hash. */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** FNV-1a over the word's UTF-16 code units, finalised with fmix32. */
function wordHash(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

/** Deterministic 32-bit generator (SplitMix32) for the permutation seeds. */
function seeds(count: number, seed: number): Uint32Array {
  const out = new Uint32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    out[i] = (z ^ (z >>> 16)) >>> 0;
  }
  return out;
}

const PERMUTATION_SEED = 0x4f4c4d48; // "OLMH"
const EMPTY = 0xffffffff;

/** Lower-cased, NFKC-normalised words; punctuation and whitespace runs are word breaks. */
export function words(text: string): string[] {
  return (
    text
      .normalize('NFKC')
      .toLowerCase()
      .match(/[\p{L}\p{N}\p{M}]+/gu) ?? []
  );
}

export interface MinHashOptions {
  /** Number of hash functions, the signature's length (default 128). */
  numPerm?: number;
  /** LSH bands; numPerm must be a multiple (default 32, so 4 rows a band). */
  bands?: number;
  /**
   * Words per shingle (default 3). Shorter shingles keep reworded copies similar: with 5-word
   * shingles a copy with 5% of its words changed falls to Jaccard 0.65, with 3-word ones to about
   * 0.75 (docs/benchmarks.md).
   */
  shingleSize?: number;
}

export interface NearMatch {
  id: string;
  similarity: number;
}

/**
 * Near-duplicate detection: MinHash signatures over word shingles, indexed by LSH banding.
 *
 * With 32 bands of 4 rows, two texts become candidates with probability 1 - (1 - J^4)^32: 99.9%
 * at Jaccard 0.6, 0.5% at 0.1; candidates are then kept only when their estimated Jaccard (the
 * share of equal signature positions) reaches the threshold. A text shorter than one shingle is
 * one shingle; a text with no words has an empty signature, which matches nothing.
 */
export class MinHashIndex {
  readonly numPerm: number;
  readonly bands: number;
  readonly rows: number;
  readonly shingleSize: number;
  private readonly seeds: Uint32Array;
  private readonly ids: string[] = [];
  private readonly signatures: Uint32Array[] = [];
  private readonly positions = new Map<string, number>();
  private readonly buckets: Map<number, number[]>[];

  constructor(options: MinHashOptions = {}) {
    this.numPerm = options.numPerm ?? 128;
    this.bands = options.bands ?? 32;
    this.shingleSize = options.shingleSize ?? 3;
    for (const [name, value] of Object.entries({
      numPerm: this.numPerm,
      bands: this.bands,
      shingleSize: this.shingleSize,
    })) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new OpenLedgerError('BAD_REQUEST', `MinHash ${name} must be a positive integer.`);
      }
    }
    if (this.numPerm % this.bands !== 0) {
      throw new OpenLedgerError('BAD_REQUEST', 'MinHash numPerm must be a multiple of bands.');
    }
    this.rows = this.numPerm / this.bands;
    this.seeds = seeds(this.numPerm, PERMUTATION_SEED);
    this.buckets = Array.from({ length: this.bands }, () => new Map<number, number[]>());
  }

  get size(): number {
    return this.ids.length;
  }

  has(id: string): boolean {
    return this.positions.has(id);
  }

  /** Distinct shingle hashes of a text, sorted. */
  shingles(text: string): Uint32Array {
    const hashes = words(text).map(wordHash);
    if (hashes.length === 0) return new Uint32Array(0);
    const n = Math.min(this.shingleSize, hashes.length);
    const out = new Uint32Array(hashes.length - n + 1);
    for (let i = 0; i + n <= hashes.length; i++) {
      let h = 0;
      for (let k = 0; k < n; k++) h = mixBlock(h, hashes[i + k]!);
      out[i] = fmix32(h ^ n);
    }
    out.sort();
    let unique = 0;
    for (let i = 0; i < out.length; i++)
      if (i === 0 || out[i] !== out[i - 1]) out[unique++] = out[i]!;
    return out.subarray(0, unique);
  }

  /** The text's MinHash signature: per permutation, the least permuted shingle hash. */
  signature(text: string): Uint32Array {
    const signature = new Uint32Array(this.numPerm).fill(EMPTY);
    const shingles = this.shingles(text);
    if (shingles.length === 0) return signature;
    for (let i = 0; i < this.numPerm; i++) {
      const seed = this.seeds[i]!;
      let min = EMPTY;
      for (let s = 0; s < shingles.length; s++) {
        // fmix32 is a bijection, so x -> fmix32(x ^ seed) is a pseudo-random permutation of 2^32.
        const v = fmix32(shingles[s]! ^ seed);
        if (v < min) min = v;
      }
      signature[i] = min;
    }
    return signature;
  }

  /** Adds a row's signature under a unique id. */
  add(id: string, signature: Uint32Array): void {
    this.check(signature);
    if (this.positions.has(id)) {
      throw new OpenLedgerError('CONFLICT', `MinHash index already holds "${id}".`);
    }
    const position = this.ids.length;
    this.ids.push(id);
    this.signatures.push(signature);
    this.positions.set(id, position);
    if (isEmpty(signature)) return;
    for (let band = 0; band < this.bands; band++) {
      const key = this.bandKey(signature, band);
      const bucket = this.buckets[band]!.get(key);
      if (bucket) bucket.push(position);
      else this.buckets[band]!.set(key, [position]);
    }
  }

  /** Rows whose estimated Jaccard similarity is at least `threshold` (default 0.8), best first. */
  query(signature: Uint32Array, threshold = 0.8): NearMatch[] {
    this.check(signature);
    if (isEmpty(signature)) return [];
    const candidates = new Set<number>();
    for (let band = 0; band < this.bands; band++) {
      const bucket = this.buckets[band]!.get(this.bandKey(signature, band));
      if (bucket) for (const position of bucket) candidates.add(position);
    }
    const matches: NearMatch[] = [];
    for (const position of candidates) {
      const similarity = MinHashIndex.similarity(signature, this.signatures[position]!);
      if (similarity >= threshold) matches.push({ id: this.ids[position]!, similarity });
    }
    return matches.sort((a, b) =>
      b.similarity !== a.similarity ? b.similarity - a.similarity : a.id < b.id ? -1 : 1,
    );
  }

  /** Estimated Jaccard similarity of two signatures: the share of positions where they agree. */
  static similarity(a: Uint32Array, b: Uint32Array): number {
    if (a.length !== b.length || a.length === 0) {
      throw new OpenLedgerError('BAD_REQUEST', 'MinHash signatures of different lengths.');
    }
    if (isEmpty(a) || isEmpty(b)) return 0;
    let equal = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) equal++;
    return equal / a.length;
  }

  /** Base64 of the signature's values as little-endian 32-bit words (the same on every machine). */
  static encode(signature: Uint32Array): string {
    const bytes = Buffer.alloc(signature.length * 4);
    for (let i = 0; i < signature.length; i++) bytes.writeUInt32LE(signature[i]!, i * 4);
    return bytes.toString('base64');
  }

  static decode(encoded: string): Uint32Array {
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(encoded)) {
      throw new OpenLedgerError('BAD_REQUEST', 'A MinHash signature is not valid base64.');
    }
    const bytes = Buffer.from(encoded, 'base64');
    if (bytes.length === 0 || bytes.length % 4 !== 0) {
      throw new OpenLedgerError(
        'BAD_REQUEST',
        'A MinHash signature is not a whole number of words.',
      );
    }
    const signature = new Uint32Array(bytes.length / 4);
    for (let i = 0; i < signature.length; i++) signature[i] = bytes.readUInt32LE(i * 4);
    return signature;
  }

  private check(signature: Uint32Array): void {
    if (!(signature instanceof Uint32Array) || signature.length !== this.numPerm) {
      throw new OpenLedgerError(
        'BAD_REQUEST',
        `A MinHash signature must hold ${this.numPerm} values, not ${signature?.length ?? 0}.`,
      );
    }
  }

  private bandKey(signature: Uint32Array, band: number): number {
    let h = band;
    for (let r = band * this.rows; r < (band + 1) * this.rows; r++) h = mixBlock(h, signature[r]!);
    return fmix32(h ^ this.rows);
  }
}

function isEmpty(signature: Uint32Array): boolean {
  for (let i = 0; i < signature.length; i++) if (signature[i] !== EMPTY) return false;
  return true;
}
