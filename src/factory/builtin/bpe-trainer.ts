/**
 * Trains the SentencePiece-BPE vocabulary of the built-in base model: the kind of vocabulary
 * GGUF calls `tokenizer.ggml.model = "llama"`, which llama.cpp's SPM tokenizer and our
 * `SentencePieceTokenizer` encode with (merge the adjacent pair whose concatenation is the
 * token with the highest score, leftmost first; `<0xXX>` byte fallback).
 *
 * Written here rather than taken from npm: the packages that train BPE (`@huggingface/tokenizers`
 * bindings, `sentencepiece` ports) are native or WASM builds that download or bundle megabytes,
 * and none writes the GGUF token/score/type arrays; the algorithm itself is ~200 lines.
 *
 * Training, as SentencePiece's `--model_type=bpe` with `--split_digits --byte_fallback`:
 *
 *   1. each document gets the space prefix the tokenizer adds, spaces become "▁" (U+2581), and
 *      it is cut into words that start at a "▁" (so no token spans two words);
 *   2. the alphabet is every character seen at least `minCharCount` times, plus "▁", "\n" and
 *      printable ASCII; any other character is encoded through its UTF-8 byte tokens;
 *   3. the most frequent adjacent pair of symbols (counted over word frequencies) is merged into a
 *      new token, repeatedly, until the vocabulary has `vocabSize` tokens. Ties go to the pair of
 *      lower symbol ids (characters in code-point order, then merges in order), so training is
 *      deterministic. Digits and "\n" never merge (as Llama's vocabulary: numbers are read digit
 *      by digit). Pair counts are updated incrementally, only in the words a merge touches.
 *
 * Layout, as in Llama's vocabulary: `<unk>` 0 (type UNKNOWN), `<s>` 1 and `</s>` 2 (CONTROL),
 * `<0x00>`…`<0xFF>` (BYTE), the merged tokens in merge order with score −rank (so an earlier merge
 * wins, as in BPE), then the single characters with scores below every merge (a merge never
 * produces a single character, so their scores only keep the order total).
 *
 * The SPM encoder merges any adjacent pair whose concatenation is a token, not just the pair the
 * trainer merged; no learned token may therefore be a proper prefix or suffix of a special or
 * byte token's text (`<s`, `s>`, `<0x4`, …), or llama.cpp, which looks up every token text,
 * could assemble `<s>` out of plain text where our encoder (normal tokens only) would not.
 */
import { createHash } from 'node:crypto';
import { OpenLedgerError } from '../../errors.ts';
import { gguf, type GgufValue } from '../../engine/gguf/index.ts';
import { SPACE_MARKER, SentencePieceTokenizer, TOKEN_TYPE } from '../../engine/tokenizer/index.ts';

export interface BuiltinVocab {
  tokens: string[];
  scores: Float32Array;
  tokenTypes: Int32Array;
  bos: number;
  eos: number;
  unk: number;
  /** sha256 (hex) of the tokens, scores and types (see `vocabSha256`). */
  sha256: string;
}

export interface BpeTrainOptions {
  /** Characters seen fewer times are left to byte fallback (default 2). */
  minCharCount?: number;
  /** Stop early when the best pair occurs fewer times (default 2). */
  minPairCount?: number;
}

/** Tokens before the learned ones: `<unk>`, `<s>`, `</s>` and the 256 byte tokens. */
export const RESERVED_TOKENS = 3 + 256;

export const DEFAULT_VOCAB_SIZE = 2048;

const UNK = '<unk>';
const BOS = '<s>';
const EOS = '</s>';

/**
 * Trains a vocabulary of `vocabSize` tokens on `docs` (see the module comment). Deterministic:
 * the same documents give the same vocabulary on every machine.
 */
export function builtinTokenizerVocab(
  docs: readonly string[],
  vocabSize = DEFAULT_VOCAB_SIZE,
  options: BpeTrainOptions = {},
): BuiltinVocab {
  const minCharCount = options.minCharCount ?? 2;
  const minPairCount = options.minPairCount ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < RESERVED_TOKENS + 128 || vocabSize > 65536) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `vocabSize must be an integer from ${RESERVED_TOKENS + 128} to 65536, got ${vocabSize}`,
    );
  }

  const words = countWords(docs);
  const alphabet = chooseAlphabet(words, minCharCount);
  if (RESERVED_TOKENS + alphabet.length > vocabSize) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `vocabSize ${vocabSize} is smaller than the ${RESERVED_TOKENS} reserved tokens and ${alphabet.length} characters`,
    );
  }
  const merges = learnMerges(
    words,
    alphabet,
    vocabSize - RESERVED_TOKENS - alphabet.length,
    minPairCount,
  );

  const tokens: string[] = [UNK, BOS, EOS];
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(byteToken(b));
    types.push(TOKEN_TYPE.BYTE);
    scores.push(0);
  }
  merges.forEach((piece, rank) => {
    tokens.push(piece);
    types.push(TOKEN_TYPE.NORMAL);
    scores.push(-rank);
  });
  // Characters last, most frequent first (their order does not change any encoding).
  const charCounts = countChars(words);
  const chars = [...alphabet].sort(
    (a, b) => (charCounts.get(b) ?? 0) - (charCounts.get(a) ?? 0) || compareCodePoints(a, b),
  );
  chars.forEach((char, i) => {
    tokens.push(char);
    types.push(TOKEN_TYPE.NORMAL);
    scores.push(-(merges.length + i));
  });

  const vocab = {
    tokens,
    scores: Float32Array.from(scores),
    tokenTypes: Int32Array.from(types),
    bos: 1,
    eos: 2,
    unk: 0,
  };
  return { ...vocab, sha256: vocabSha256(vocab) };
}

/** The tokenizer that encodes with a trained vocabulary (BOS added, EOS not, space prefix). */
export function builtinTokenizer(vocab: Omit<BuiltinVocab, 'sha256'>): SentencePieceTokenizer {
  return new SentencePieceTokenizer({
    tokens: vocab.tokens,
    scores: vocab.scores,
    tokenTypes: vocab.tokenTypes,
    bosId: vocab.bos,
    eosId: vocab.eos,
    unkId: vocab.unk,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
  });
}

/**
 * The documents as one token stream for pretraining: BOS, then each document's tokens, with a
 * BOS before every document (so the model learns to start text after BOS, as it will be asked).
 */
export function tokenizeCorpus(
  vocab: Omit<BuiltinVocab, 'sha256'>,
  docs: readonly string[],
): Int32Array {
  const tokenizer = builtinTokenizer(vocab);
  const parts: number[][] = [];
  let length = 0;
  for (const doc of docs) {
    const ids = tokenizer.encode(doc, { addBos: true, addEos: false });
    parts.push(ids);
    length += ids.length;
  }
  const out = new Int32Array(length);
  let at = 0;
  for (const ids of parts) {
    out.set(ids, at);
    at += ids.length;
  }
  return out;
}

/** The `tokenizer.ggml.*` metadata of a GGUF whose tokenizer is this vocabulary. */
export function builtinTokenizerMetadata(
  vocab: Omit<BuiltinVocab, 'sha256'>,
): [string, GgufValue][] {
  return [
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.array('string', vocab.tokens)],
    ['tokenizer.ggml.scores', gguf.array('float32', Array.from(vocab.scores))],
    ['tokenizer.ggml.token_type', gguf.array('int32', Array.from(vocab.tokenTypes))],
    ['tokenizer.ggml.bos_token_id', gguf.uint32(vocab.bos)],
    ['tokenizer.ggml.eos_token_id', gguf.uint32(vocab.eos)],
    ['tokenizer.ggml.unknown_token_id', gguf.uint32(vocab.unk)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(true)],
    ['tokenizer.ggml.add_eos_token', gguf.bool(false)],
    ['tokenizer.ggml.add_space_prefix', gguf.bool(true)],
  ];
}

/**
 * sha256 of a vocabulary: per token its UTF-8 text, a NUL, its score as float32 and its type as
 * int32 (little-endian), then the BOS, EOS and UNK ids.
 */
export function vocabSha256(vocab: Omit<BuiltinVocab, 'sha256'>): string {
  const hash = createHash('sha256');
  const number = Buffer.alloc(8);
  vocab.tokens.forEach((token, i) => {
    number.writeFloatLE(vocab.scores[i]!, 0);
    number.writeInt32LE(vocab.tokenTypes[i]!, 4);
    hash.update(token, 'utf8').update('\0').update(number);
  });
  const ids = Buffer.alloc(12);
  ids.writeInt32LE(vocab.bos, 0);
  ids.writeInt32LE(vocab.eos, 4);
  ids.writeInt32LE(vocab.unk, 8);
  return hash.update(ids).digest('hex');
}

// ---------------------------------------------------------------------------------------------

function byteToken(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** Words ("▁" + the characters up to the next space) and how often each occurs. */
function countWords(docs: readonly string[]): Map<string, number> {
  const words = new Map<string, number>();
  for (const doc of docs) {
    if (doc.length === 0) continue;
    const escaped = (' ' + doc).replaceAll(' ', SPACE_MARKER);
    for (const word of escaped.match(/▁[^▁]*|[^▁]+/gu) ?? []) {
      words.set(word, (words.get(word) ?? 0) + 1);
    }
  }
  return words;
}

function countChars(words: Map<string, number>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [word, n] of words)
    for (const char of word) counts.set(char, (counts.get(char) ?? 0) + n);
  return counts;
}

/** Sorted by code point: characters seen `minCount` times, "▁", "\n" and printable ASCII. */
function chooseAlphabet(words: Map<string, number>, minCount: number): string[] {
  const chosen = new Set<string>([SPACE_MARKER, '\n']);
  for (let c = 0x21; c < 0x7f; c++) chosen.add(String.fromCharCode(c));
  for (const [char, n] of countChars(words)) if (n >= minCount) chosen.add(char);
  chosen.delete(' '); // always written as "▁"
  return [...chosen].sort(compareCodePoints);
}

function compareCodePoints(a: string, b: string): number {
  return a.codePointAt(0)! - b.codePointAt(0)!;
}

/** Characters that never merge: digits (numbers are read digit by digit) and newlines. */
const UNMERGEABLE = /^[0-9\n]$/;

/** Proper prefixes and suffixes of the special and byte tokens' texts (see the module comment). */
function forbiddenPieces(): Set<string> {
  const forbidden = new Set<string>();
  for (const text of [UNK, BOS, EOS, ...Array.from({ length: 256 }, (_, b) => byteToken(b))]) {
    for (let i = 1; i < text.length; i++) {
      forbidden.add(text.slice(0, i));
      forbidden.add(text.slice(i));
    }
    forbidden.add(text);
  }
  return forbidden;
}

/**
 * BPE over the distinct words: returns the pieces of `maxMerges` merges at most, in order (a
 * merge whose piece already exists, e.g. "abc" from "ab"+"c" after "a"+"bc", adds no token and
 * does not count).
 */
function learnMerges(
  wordCounts: Map<string, number>,
  alphabet: readonly string[],
  maxMerges: number,
  minPairCount: number,
): string[] {
  // Symbols: characters first (ids in code-point order), then merged pieces. -1 marks a
  // character outside the alphabet, which never merges.
  const pieces: string[] = [...alphabet];
  const pieceIds = new Map<string, number>(pieces.map((p, i) => [p, i]));
  const mergeable: boolean[] = pieces.map((p) => !UNMERGEABLE.test(p));
  const forbidden = forbiddenPieces();
  /** Pairs whose piece is forbidden: never counted again once seen. */
  const banned = new Set<number>();

  const words: Int32Array[] = [];
  const freqs: number[] = [];
  for (const [word, n] of wordCounts) {
    words.push(Int32Array.from(Array.from(word, (char) => pieceIds.get(char) ?? -1)));
    freqs.push(n);
  }

  // Pair key: left * 2^16 + right (symbol ids stay below 2^16).
  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const canPair = (a: number, b: number): boolean =>
    a >= 0 && b >= 0 && mergeable[a]! && mergeable[b]!;
  const addWord = (w: number, sign: 1 | -1, touched: Set<number> | null): void => {
    const symbols = words[w]!;
    const n = freqs[w]! * sign;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const a = symbols[i]!;
      const b = symbols[i + 1]!;
      if (!canPair(a, b)) continue;
      const key = a * 65536 + b;
      if (banned.has(key)) continue;
      counts.set(key, (counts.get(key) ?? 0) + n);
      if (sign > 0) {
        let set = where.get(key);
        if (set === undefined) where.set(key, (set = new Set()));
        set.add(w);
      }
      touched?.add(key);
    }
  };
  for (let w = 0; w < words.length; w++) addWord(w, 1, null);

  const heap = new PairHeap();
  for (const [key, n] of counts) heap.push(n, key);

  const learned: string[] = [];
  while (learned.length < maxMerges && heap.size > 0) {
    const { count, key } = heap.pop();
    if (counts.get(key) !== count) continue; // stale: a fresher entry holds the current count
    if (count < minPairCount) break;
    const a = Math.floor(key / 65536);
    const b = key % 65536;
    const piece = pieces[a]! + pieces[b]!;
    counts.delete(key);
    if (forbidden.has(piece)) {
      banned.add(key);
      continue;
    }

    let id = pieceIds.get(piece);
    if (id === undefined) {
      id = pieces.length;
      if (id >= 65536) break;
      pieces.push(piece);
      pieceIds.set(piece, id);
      mergeable.push(true);
      learned.push(piece);
    }

    const touched = new Set<number>();
    for (const w of where.get(key) ?? []) {
      const symbols = words[w]!;
      if (!containsPair(symbols, a, b)) continue;
      addWord(w, -1, touched);
      words[w] = mergePair(symbols, a, b, id);
      addWord(w, 1, touched);
    }
    where.delete(key);
    for (const k of touched) {
      const n = counts.get(k) ?? 0;
      if (n <= 0) counts.delete(k);
      else if (k !== key) heap.push(n, k);
    }
  }
  return learned;
}

function containsPair(symbols: Int32Array, a: number, b: number): boolean {
  for (let i = 0; i + 1 < symbols.length; i++)
    if (symbols[i] === a && symbols[i + 1] === b) return true;
  return false;
}

/** Replaces each (a, b), left to right without overlaps, by `id`. */
function mergePair(symbols: Int32Array, a: number, b: number, id: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
      out.push(id);
      i++;
    } else {
      out.push(symbols[i]!);
    }
  }
  return Int32Array.from(out);
}

/** A max-heap of (count, pair key): higher count first, then the lower key. */
class PairHeap {
  private readonly countsOf: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(count: number, key: number): void {
    let i = this.keys.length;
    this.countsOf.push(count);
    this.keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.countsOf[0]!, key: this.keys[0]! };
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.countsOf.pop();
    this.keys.pop();
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

  private before(x: number, y: number): boolean {
    const cx = this.countsOf[x]!;
    const cy = this.countsOf[y]!;
    return cx > cy || (cx === cy && this.keys[x]! < this.keys[y]!);
  }

  private swap(x: number, y: number): void {
    const c = this.countsOf[x]!;
    this.countsOf[x] = this.countsOf[y]!;
    this.countsOf[y] = c;
    const k = this.keys[x]!;
    this.keys[x] = this.keys[y]!;
    this.keys[y] = k;
  }
}
