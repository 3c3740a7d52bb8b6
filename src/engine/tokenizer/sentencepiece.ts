/**
 * A SentencePiece-BPE tokenizer (GGUF `tokenizer.ggml.model` = "llama"), as llama.cpp's
 * `llm_tokenizer_spm` and llama2.c's `encode` implement it:
 *
 *   1. prepend a space (SentencePiece's add_dummy_prefix) and write every space as "▁" (U+2581);
 *   2. cut the text into characters (Unicode code points, i.e. UTF-8 characters);
 *   3. repeatedly merge the adjacent pair whose concatenation is a vocabulary token with the
 *      highest score (ties: the leftmost pair), until no adjacent pair forms a token;
 *   4. each remaining piece is its token, or, when it is not in the vocabulary (only a single
 *      character can be), its UTF-8 bytes as `<0xXX>` byte tokens (byte fallback).
 *
 * Step 3 uses a priority queue of candidate pairs, as llama.cpp does, so encoding is
 * O(n log n) in the text length; it picks the same merges as llama2.c's O(n²) scan.
 *
 * Decoding maps "▁" back to spaces and byte tokens back to their bytes, drops control tokens
 * (BOS, EOS) and removes the space that encoding prepended.
 */
import { readFile } from 'node:fs/promises';
import { OpenLedgerError } from '../../errors.ts';
import { ggufArray, ggufBool, ggufNumber, ggufString } from '../gguf/index.ts';
import type { GgufMetadata } from '../gguf/index.ts';

/** Token types of `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`). */
export const TOKEN_TYPE = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** SentencePiece's whitespace marker "▁" (U+2581). */
export const SPACE_MARKER = '\u2581';

/** What llama.cpp prints for the unknown token (U+2585 "▅"). */
const UNKNOWN_PIECE = '\u2585';

export interface SentencePieceVocab {
  /** The pieces, spaces written as "▁"; byte tokens are `<0xXX>`. */
  tokens: readonly string[];
  /** One score per token; merges prefer the higher score. */
  scores: ArrayLike<number>;
  /** One `TOKEN_TYPE` per token. */
  tokenTypes: ArrayLike<number>;
  bosId: number;
  eosId: number;
  unkId: number;
  /** Whether `encode` adds BOS by default (`tokenizer.ggml.add_bos_token`). */
  addBos: boolean;
  /** Whether `encode` adds EOS by default (`tokenizer.ggml.add_eos_token`). */
  addEos: boolean;
  /** Whether a space is prepended before encoding (`tokenizer.ggml.add_space_prefix`). */
  addSpacePrefix: boolean;
}

export interface EncodeOptions {
  /** Prepend BOS; defaults to the vocabulary's `addBos`. */
  addBos?: boolean;
  /** Append EOS; defaults to the vocabulary's `addEos`. */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Render control tokens (BOS, EOS, …) as their text instead of dropping them (default false). */
  special?: boolean;
  /**
   * Remove the leading space of the first piece, the one encoding prepended (default true when
   * the vocabulary adds a space prefix). llama2.c and SentencePiece do this at the start of the
   * text and after BOS. (llama.cpp's `detokenize` keeps it when the tokens start with BOS.)
   * Pass false to decode a continuation, e.g. generated tokens on their own.
   */
  stripLeadingSpace?: boolean;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8'); // invalid sequences become U+FFFD
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

export class SentencePieceTokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  private readonly tokens: readonly string[];
  private readonly scores: Float32Array;
  private readonly types: Uint8Array;
  /** piece → id, for the pieces a merge may produce (normal and user-defined tokens). */
  private readonly mergeable: Map<string, number>;
  /** byte → id of its `<0xXX>` token, or -1. */
  private readonly byteTokens: Int32Array;
  /** id → the bytes it decodes to (control tokens: empty). */
  private readonly pieceBytes: Uint8Array[];

  constructor(vocab: SentencePieceVocab) {
    const n = vocab.tokens.length;
    if (vocab.scores.length !== n || vocab.tokenTypes.length !== n) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `a SentencePiece vocabulary needs one score and one type per token: ${n} tokens, ${vocab.scores.length} scores, ${vocab.tokenTypes.length} types`,
      );
    }
    for (const [name, id] of [
      ['BOS', vocab.bosId],
      ['EOS', vocab.eosId],
      ['UNK', vocab.unkId],
    ] as const) {
      if (!Number.isInteger(id) || id < 0 || id >= n) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `the ${name} token id ${id} is outside the vocabulary of ${n} tokens`,
        );
      }
    }
    this.vocabSize = n;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.unkId = vocab.unkId;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
    this.addSpacePrefix = vocab.addSpacePrefix;
    this.tokens = vocab.tokens;
    this.scores = Float32Array.from(vocab.scores);
    this.types = Uint8Array.from(vocab.tokenTypes);
    this.mergeable = new Map();
    this.byteTokens = new Int32Array(256).fill(-1);
    this.pieceBytes = new Array<Uint8Array>(n);

    for (let id = 0; id < n; id++) {
      const piece = vocab.tokens[id]!;
      const type = this.types[id]!;
      const byte = BYTE_TOKEN.exec(piece);
      if (type === TOKEN_TYPE.BYTE && byte !== null) {
        const value = parseInt(byte[1]!, 16);
        if (this.byteTokens[value] === -1) this.byteTokens[value] = id;
        this.pieceBytes[id] = Uint8Array.of(value);
      } else if (type === TOKEN_TYPE.CONTROL) {
        this.pieceBytes[id] = new Uint8Array(0);
      } else if (type === TOKEN_TYPE.UNKNOWN) {
        this.pieceBytes[id] = utf8Encoder.encode(UNKNOWN_PIECE);
      } else {
        // A duplicate piece keeps its first id, as SentencePiece does.
        if (type !== TOKEN_TYPE.UNUSED && !this.mergeable.has(piece)) this.mergeable.set(piece, id);
        this.pieceBytes[id] = utf8Encoder.encode(piece.replaceAll(SPACE_MARKER, ' '));
      }
    }
  }

  /** The tokenizer of a GGUF file whose `tokenizer.ggml.model` is "llama" (SentencePiece). */
  static fromGguf(meta: GgufMetadata): SentencePieceTokenizer {
    const model = ggufString(meta, 'tokenizer.ggml.model');
    if (model !== 'llama') {
      throw new OpenLedgerError(
        'GGUF_UNSUPPORTED',
        `tokenizer model '${model}' is not SentencePiece ('llama'); this tokenizer reads only that`,
        { details: { model } },
      );
    }
    const tokens = ggufArray(meta, 'tokenizer.ggml.tokens', 'string');
    const scores = meta.has('tokenizer.ggml.scores')
      ? ggufArray(meta, 'tokenizer.ggml.scores', 'float32')
      : new Float32Array(tokens.length);
    const tokenTypes = meta.has('tokenizer.ggml.token_type')
      ? ggufArray(meta, 'tokenizer.ggml.token_type', 'int32')
      : new Int32Array(tokens.length).fill(TOKEN_TYPE.NORMAL);
    // llama.cpp's defaults for SentencePiece vocabularies.
    return new SentencePieceTokenizer({
      tokens,
      scores,
      tokenTypes,
      bosId: ggufNumber(meta, 'tokenizer.ggml.bos_token_id', 1),
      eosId: ggufNumber(meta, 'tokenizer.ggml.eos_token_id', 2),
      unkId: ggufNumber(meta, 'tokenizer.ggml.unknown_token_id', 0),
      addBos: ggufBool(meta, 'tokenizer.ggml.add_bos_token', true),
      addEos: ggufBool(meta, 'tokenizer.ggml.add_eos_token', false),
      addSpacePrefix: ggufBool(meta, 'tokenizer.ggml.add_space_prefix', true),
    });
  }

  /** The piece of a token as stored (spaces as "▁", bytes as `<0xXX>`). */
  piece(id: number): string {
    const piece = this.tokens[id];
    if (piece === undefined) throw this.badId(id);
    return piece;
  }

  score(id: number): number {
    if (id < 0 || id >= this.vocabSize) throw this.badId(id);
    return this.scores[id]!;
  }

  tokenType(id: number): number {
    if (id < 0 || id >= this.vocabSize) throw this.badId(id);
    return this.types[id]!;
  }

  /** The id of a piece written with "▁" for spaces (normal and user-defined tokens). */
  tokenId(piece: string): number | undefined {
    return this.mergeable.get(piece);
  }

  /** Text → token ids: BPE merges by score, byte fallback, optional BOS/EOS. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos ?? this.addBos) out.push(this.bosId);
    if (text.length > 0) {
      const escaped = (this.addSpacePrefix ? ' ' + text : text).replaceAll(' ', SPACE_MARKER);
      this.encodePieces(escaped, out);
    }
    if (options.addEos ?? this.addEos) out.push(this.eosId);
    return out;
  }

  /** Token ids → UTF-8 bytes (see `DecodeOptions`). */
  decodeBytes(ids: ArrayLike<number>, options: DecodeOptions = {}): Uint8Array {
    const special = options.special ?? false;
    let strip = options.stripLeadingSpace ?? this.addSpacePrefix;
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      let bytes = this.pieceBytes[id];
      if (bytes === undefined) throw this.badId(id);
      if (this.types[id] === TOKEN_TYPE.CONTROL) {
        // Dropped, or rendered as is; either way `strip` stays armed for the piece after BOS.
        if (!special) continue;
        bytes = utf8Encoder.encode(this.tokens[id]!);
      } else if (strip && bytes.length > 0) {
        if (bytes[0] === 0x20) bytes = bytes.subarray(1);
        strip = false;
      }
      parts.push(bytes);
      length += bytes.length;
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Token ids → text; byte tokens that do not form valid UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return utf8Decoder.decode(this.decodeBytes(ids, options));
  }

  // -------------------------------------------------------------------------------------------

  /** The BPE of an escaped text ("▁" for spaces), appending token ids to `out`. */
  private encodePieces(text: string, out: number[]): void {
    // Symbols: one per code point, as a doubly linked list over string offsets. A merged-away
    // symbol keeps length 0.
    const n = text.length; // an upper bound on the number of code points
    const start = new Int32Array(n);
    const len = new Int32Array(n);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    let count = 0;
    for (let i = 0; i < n;) {
      const code = text.charCodeAt(i);
      const width = code >= 0xd800 && code < 0xdc00 && i + 1 < n ? 2 : 1; // a surrogate pair
      start[count] = i;
      len[count] = width;
      prev[count] = count - 1;
      next[count] = count + 1;
      count++;
      i += width;
    }
    next[count - 1] = -1;

    const queue = new PairQueue();
    const tryPair = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const piece = text.slice(start[left]!, start[right]! + len[right]!);
      const id = this.mergeable.get(piece);
      if (id !== undefined) queue.push(this.scores[id]!, left, right, piece.length);
    };
    for (let i = 0; i + 1 < count; i++) tryPair(i, i + 1);

    // Merge the best pair until none is left; a queued pair whose symbols changed is stale.
    while (queue.size > 0) {
      const { left, right, size } = queue.pop();
      if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== size) continue;
      len[left] = size;
      len[right] = 0;
      const after = next[right]!;
      next[left] = after;
      if (after >= 0) prev[after] = left;
      tryPair(prev[left]!, left);
      tryPair(left, after);
    }

    for (let s = 0; s >= 0; s = next[s]!) {
      const piece = text.slice(start[s]!, start[s]! + len[s]!);
      const id = this.mergeable.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // Byte fallback: the UTF-8 bytes of the character as <0xXX> tokens (else UNK).
      for (const byte of utf8Encoder.encode(piece)) {
        const byteId = this.byteTokens[byte]!;
        out.push(byteId >= 0 ? byteId : this.unkId);
      }
    }
  }

  private badId(id: number): OpenLedgerError {
    return new OpenLedgerError(
      'VALIDATION_FAILED',
      `token id ${id} is outside the vocabulary of ${this.vocabSize} tokens`,
    );
  }
}

/**
 * A max-heap of candidate merges: higher score first, then the leftmost pair (lower left symbol
 * index), as llama.cpp's `llm_bigram_spm` comparator orders them.
 */
class PairQueue {
  private scores: number[] = [];
  private lefts: number[] = [];
  private rights: number[] = [];
  private sizes: number[] = [];

  get size(): number {
    return this.scores.length;
  }

  push(score: number, left: number, right: number, size: number): void {
    let i = this.scores.length;
    this.scores.push(score);
    this.lefts.push(left);
    this.rights.push(right);
    this.sizes.push(size);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { left: number; right: number; size: number } {
    const top = { left: this.lefts[0]!, right: this.rights[0]!, size: this.sizes[0]! };
    const last = this.scores.length - 1;
    this.swap(0, last);
    this.scores.pop();
    this.lefts.pop();
    this.rights.pop();
    this.sizes.pop();
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }

  /** Whether entry a comes out before entry b. */
  private before(a: number, b: number): boolean {
    const sa = this.scores[a]!;
    const sb = this.scores[b]!;
    return sa > sb || (sa === sb && this.lefts[a]! < this.lefts[b]!);
  }

  private swap(a: number, b: number): void {
    swapItems(this.scores, a, b);
    swapItems(this.lefts, a, b);
    swapItems(this.rights, a, b);
    swapItems(this.sizes, a, b);
  }
}

function swapItems(array: number[], a: number, b: number): void {
  const t = array[a]!;
  array[a] = array[b]!;
  array[b] = t;
}

// ---------------------------------------------------------------------------------------------
// llama2.c's tokenizer.bin

/**
 * Parses llama2.c's `tokenizer.bin` (written by its `tokenizer.py export`):
 *
 *     int32 max_token_length
 *     vocab_size × { float32 score, int32 len, len bytes of UTF-8 }
 *
 * The export wrote "▁" as a space and BOS/EOS as "\n<s>\n"/"\n</s>\n"; they are turned back into
 * "▁", "<s>" and "</s>". The file has no token types, so they are inferred as SentencePiece's
 * Llama models have them: id 0 is UNK, ids 1 and 2 are BOS and EOS (control), `<0xXX>` are bytes.
 */
export function parseLlama2cTokenizer(
  bytes: Uint8Array,
  source = 'tokenizer.bin',
): SentencePieceTokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (message: string): never => {
    throw new OpenLedgerError('FILE_INVALID', `${source}: ${message}`);
  };
  if (bytes.length < 4) fail('too short for a llama2.c tokenizer');
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const tokens: string[] = [];
  const scores: number[] = [];
  for (let at = 4; at < bytes.length;) {
    if (at + 8 > bytes.length) fail(`truncated at offset ${at} (token ${tokens.length})`);
    const score = view.getFloat32(at, true);
    const length = view.getInt32(at + 4, true);
    if (length < 0 || at + 8 + length > bytes.length) {
      fail(`token ${tokens.length} at offset ${at} has length ${length}, past the end of the file`);
    }
    let piece: string;
    try {
      piece = decoder.decode(bytes.subarray(at + 8, at + 8 + length));
    } catch {
      return fail(`token ${tokens.length} at offset ${at} is not valid UTF-8`);
    }
    tokens.push(piece);
    scores.push(score);
    at += 8 + length;
  }
  if (tokens.length < 3) fail(`has ${tokens.length} tokens; a Llama vocabulary has at least 3`);

  const tokenTypes = tokens.map((piece, id) => {
    if (id === 0) return TOKEN_TYPE.UNKNOWN;
    if (id === 1 || id === 2) return TOKEN_TYPE.CONTROL;
    return BYTE_TOKEN.test(piece) ? TOKEN_TYPE.BYTE : TOKEN_TYPE.NORMAL;
  });
  const pieces = tokens.map((piece, id) => {
    if (id === 1) return '<s>';
    if (id === 2) return '</s>';
    return piece.replaceAll(' ', SPACE_MARKER);
  });
  return new SentencePieceTokenizer({
    tokens: pieces,
    scores,
    tokenTypes,
    bosId: 1,
    eosId: 2,
    unkId: 0,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
  });
}

/** Reads llama2.c's `tokenizer.bin` from a path (see `parseLlama2cTokenizer`). */
export async function loadLlama2cTokenizer(file: string): Promise<SentencePieceTokenizer> {
  return parseLlama2cTokenizer(await readFile(file), file);
}
