/**
 * A BERT WordPiece tokenizer (GGUF `tokenizer.ggml.model` = "bert": BERT, MiniLM, BGE, nomic-embed
 * and the built-in static embedder), as llama.cpp's `llm_tokenizer_wpm` implements it, so that our
 * token ids equal llama.cpp's, and with each token's characters in the original text.
 *
 * 1. The basic tokenizer walks the text one code point at a time:
 *    - with accent stripping, the code point becomes the first code point of its NFD form ("é" →
 *      "e"); llama.cpp's table is built the same way (`unicodedata.normalize('NFD', c)[0]`);
 *    - llama.cpp's whitespace (its own set, not JavaScript's `\s`) ends the current word;
 *    - NUL, U+FFFD and other `\p{C}` (controls, format characters such as U+200B) are dropped, and so
 *      are accent marks (`\p{M}`) when stripping accents; a dropped character does not split a word;
 *    - the character is lower-cased (its simple lower case: "İ" → "i");
 *    - punctuation (`\p{P}`), ASCII symbols (`$+<=>^`|~`) and CJK ideographs are words of their own;
 *      everything else joins the current word.
 * 2. Each word is cut greedily into the longest vocabulary pieces from its start: the first piece
 *    is a whole-word entry ("whale"), the next ones are "##" continuation entries ("##man"). If
 *    some position of the word matches no piece, the whole word is one `[UNK]`.
 *
 * BERT's own tokenizer also makes a word of more than 100 characters one `[UNK]`; llama.cpp does
 * not, so `maxWordChars` is 100 by default (BERT) and `Infinity` to count tokens as llama.cpp does.
 *
 * The vocabulary is BERT's `vocab.txt` form ("##" marks continuation pieces). GGUF files store it
 * in llama.cpp's phantom-space form (whole-word entries start with "▁", continuation entries lose
 * their "##", bracketed special tokens stay as they are); `fromGguf` converts it back.
 */
import { OpenLedgerError } from '../../errors.ts';
import type { TokenSpan } from '../../rag/types.ts';
import { ggufArray, ggufBool, ggufNumber } from '../gguf/index.ts';
import type { GgufMetadata } from '../gguf/index.ts';

/** llama.cpp's phantom space before a whole-word entry in a GGUF `bert` vocabulary. */
export const PHANTOM_SPACE = '\u2581';

export interface WordPieceOptions {
  /** Lower-case the text (default true; GGUF `tokenizer.ggml.normalizer.lowercase`). */
  lowercase?: boolean;
  /** Strip accents (default: as `lowercase`; GGUF `tokenizer.ggml.normalizer.strip_accents`). */
  stripAccents?: boolean;
  /** A longer word (in code points) is one `[UNK]`: 100 as BERT (default), Infinity as llama.cpp. */
  maxWordChars?: number;
  /** The unknown token's id (default: the id of "[UNK]"). */
  unkId?: number;
}

/** A word of the basic tokenizer: its normalized text and where its characters are in the input. */
export interface BasicWord {
  /** Normalized (lower-cased, accents stripped) text. */
  text: string;
  /** UTF-16 offset in the input of the first character. */
  start: number;
  /** UTF-16 offset just after the word's last character (dropped marks inside it included). */
  end: number;
  /** UTF-16 offset in the input of each code point of `text`. */
  offsets: number[];
}

/** Token ids and, for each, its characters in the input. */
export interface WordPieceEncoding {
  ids: number[];
  spans: TokenSpan[];
}

/** Pieces of one word: ids and the number of code points of the word each covers. */
interface Pieces {
  ids: readonly number[];
  lengths: readonly number[];
}

/** llama.cpp's whitespace set (unicode-data.cpp `unicode_set_whitespace`). */
const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

// What the basic tokenizer does with a character.
const JOIN = 0;
const SPACE = 1;
const DROP = 2;
const ALONE = 3;

const CONTROL = /^\p{C}$/u;
const MARK = /^\p{M}$/u;
const PUNCTUATION = /^\p{P}$/u;
const SYMBOL = /^\p{S}$/u;

/** The CJK ideograph blocks BERT splits one by one (llama.cpp's `is_chinese_char`). */
function isChinese(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** A character's class and the code point it becomes, packed as `cp * 4 + class`. */
function classify(cp: number, lowercase: boolean, stripAccents: boolean): number {
  let c = cp;
  if (stripAccents) c = String.fromCodePoint(cp).normalize('NFD').codePointAt(0) ?? cp;
  if (WHITESPACE.has(c)) return SPACE;
  const ch = String.fromCodePoint(c);
  if (c === 0 || c === 0xfffd || CONTROL.test(ch)) return DROP;
  if (stripAccents && MARK.test(ch)) return DROP;
  // the simple lower case: toLowerCase's first code point ("İ" gives "i̇", whose first is "i")
  const mapped = lowercase ? (ch.toLowerCase().codePointAt(0) ?? c) : c;
  const alone = PUNCTUATION.test(ch) || (c < 0x7f && SYMBOL.test(ch)) || isChinese(c);
  return mapped * 4 + (alone ? ALONE : JOIN);
}

/** Words the cache keeps before it starts again (bounded memory in a long-lived node). */
const CACHE_LIMIT = 65_536;

export class WordPieceTokenizer {
  /** The vocabulary in BERT's form ("##" continuation pieces), by id. */
  readonly vocab: readonly string[];
  readonly unkId: number;
  readonly lowercase: boolean;
  readonly stripAccents: boolean;
  readonly maxWordChars: number;
  private readonly ids = new Map<string, number>();
  /** The longest entry, in code points (a piece is never longer). */
  private readonly maxPieceChars: number;
  private readonly classes = new Map<number, number>();
  private readonly ascii: Int32Array;
  private readonly cache = new Map<string, Pieces>();

  constructor(vocab: readonly string[], options: WordPieceOptions = {}) {
    this.vocab = vocab;
    this.lowercase = options.lowercase ?? true;
    this.stripAccents = options.stripAccents ?? this.lowercase;
    this.maxWordChars = options.maxWordChars ?? 100;
    let longest = 1;
    vocab.forEach((token, id) => {
      // the first entry wins, as in llama.cpp (a later duplicate is unreachable)
      if (token.length > 0 && !this.ids.has(token)) this.ids.set(token, id);
      const bare = token.startsWith('##') ? token.slice(2) : token;
      longest = Math.max(longest, [...bare].length);
    });
    this.maxPieceChars = longest;
    const unkId = options.unkId ?? this.ids.get('[UNK]');
    if (unkId === undefined || !Number.isSafeInteger(unkId) || unkId < 0 || unkId >= vocab.length) {
      throw new OpenLedgerError(
        'GGUF_INVALID',
        'the WordPiece vocabulary has no [UNK] token (or its id is out of range)',
      );
    }
    this.unkId = unkId;
    this.ascii = new Int32Array(128);
    for (let cp = 0; cp < 128; cp++) {
      this.ascii[cp] = classify(cp, this.lowercase, this.stripAccents);
    }
  }

  /**
   * The tokenizer of a GGUF file with `tokenizer.ggml.model` "bert": its vocabulary converted from
   * the phantom-space form, its unknown token and its normalizer flags.
   */
  static fromGguf(
    meta: GgufMetadata,
    options: Pick<WordPieceOptions, 'maxWordChars'> = {},
  ): WordPieceTokenizer {
    const tokens = ggufArray(meta, 'tokenizer.ggml.tokens', 'string');
    const vocab = tokens.map(fromPhantomSpace);
    const lowercase = ggufBool(meta, 'tokenizer.ggml.normalizer.lowercase', true);
    const stripAccents = ggufBool(meta, 'tokenizer.ggml.normalizer.strip_accents', lowercase);
    const unkIndex = vocab.indexOf('[UNK]');
    const unkId = ggufNumber(
      meta,
      'tokenizer.ggml.unknown_token_id',
      unkIndex >= 0 ? unkIndex : 100,
    );
    return new WordPieceTokenizer(vocab, {
      lowercase,
      stripAccents,
      unkId,
      ...(options.maxWordChars === undefined ? {} : { maxWordChars: options.maxWordChars }),
    });
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** The id of an entry in BERT form ("whale", "##man", "[CLS]"), if the vocabulary has it. */
  idOf(token: string): number | undefined {
    return this.ids.get(token);
  }

  /** The basic tokenizer's words (normalized text and offsets into `text`). */
  words(text: string): BasicWord[] {
    const words: BasicWord[] = [];
    let current: BasicWord | undefined;
    for (let i = 0; i < text.length;) {
      const cp = text.codePointAt(i) ?? 0;
      const width = cp > 0xffff ? 2 : 1;
      const packed = cp < 128 ? (this.ascii[cp] ?? 0) : this.classOf(cp);
      const kind = packed & 3;
      if (kind === SPACE) {
        current = undefined;
      } else if (kind === DROP) {
        if (current !== undefined) current.end = i + width;
      } else {
        const ch = String.fromCodePoint(packed >>> 2);
        if (kind === ALONE) {
          words.push({ text: ch, start: i, end: i + width, offsets: [i] });
          current = undefined;
        } else if (current === undefined) {
          current = { text: ch, start: i, end: i + width, offsets: [i] };
          words.push(current);
        } else {
          current.text += ch;
          current.offsets.push(i);
          current.end = i + width;
        }
      }
      i += width;
    }
    return words;
  }

  /** Token ids of `text` (no [CLS]/[SEP]: llama.cpp's `tokenize` without special tokens). */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const word of this.words(text)) ids.push(...this.pieces(word.text).ids);
    return ids;
  }

  /** Token ids of `text` and each token's characters: `text.slice(span.start, span.end)`. */
  encodeWithSpans(text: string): WordPieceEncoding {
    const ids: number[] = [];
    const spans: TokenSpan[] = [];
    for (const word of this.words(text)) {
      const { ids: pieceIds, lengths } = this.pieces(word.text);
      let at = 0;
      for (let p = 0; p < pieceIds.length; p++) {
        const next = at + (lengths[p] ?? 0);
        ids.push(pieceIds[p] ?? this.unkId);
        spans.push({
          start: word.offsets[at] ?? word.start,
          end: next < word.offsets.length ? (word.offsets[next] ?? word.end) : word.end,
        });
        at = next;
      }
    }
    return { ids, spans };
  }

  /** Each token's characters in `text`. */
  tokenSpans(text: string): TokenSpan[] {
    return this.encodeWithSpans(text).spans;
  }

  /** The text of some tokens: pieces joined, a space before each whole-word piece. */
  decode(ids: ArrayLike<number>): string {
    let out = '';
    for (let i = 0; i < ids.length; i++) {
      const token = this.vocab[ids[i] ?? -1] ?? '';
      if (token.startsWith('##')) out += token.slice(2);
      else out += (out.length > 0 ? ' ' : '') + token;
    }
    return out;
  }

  /** The pieces of one normalized word (cached). */
  pieces(word: string): Pieces {
    let pieces = this.cache.get(word);
    if (pieces === undefined) {
      pieces = this.cut(word);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, pieces);
    }
    return pieces;
  }

  private cut(word: string): Pieces {
    // UTF-16 offset of each code point, and the end
    const bounds: number[] = [];
    for (let i = 0; i < word.length;) {
      bounds.push(i);
      i += (word.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
    }
    const chars = bounds.length;
    bounds.push(word.length);
    if (chars > this.maxWordChars) return { ids: [this.unkId], lengths: [chars] };
    const ids: number[] = [];
    const lengths: number[] = [];
    for (let start = 0; start < chars;) {
      let found = -1;
      let end = Math.min(chars, start + this.maxPieceChars);
      for (; end > start; end--) {
        const piece = word.slice(bounds[start], bounds[end]);
        const id = this.ids.get(start === 0 ? piece : `##${piece}`);
        if (id !== undefined) {
          found = id;
          break;
        }
      }
      if (found < 0) return { ids: [this.unkId], lengths: [chars] };
      ids.push(found);
      lengths.push(end - start);
      start = end;
    }
    return { ids, lengths };
  }

  private classOf(cp: number): number {
    let packed = this.classes.get(cp);
    if (packed === undefined) {
      packed = classify(cp, this.lowercase, this.stripAccents);
      if (this.classes.size < CACHE_LIMIT) this.classes.set(cp, packed);
    }
    return packed;
  }
}

/**
 * A GGUF `bert` token in BERT's form: "▁whale" → "whale", "man" → "##man", "[CLS]" stays (the
 * inverse of convert_hf_to_gguf's `phantom`).
 */
export function fromPhantomSpace(token: string): string {
  if (token.startsWith(PHANTOM_SPACE)) return token.slice(PHANTOM_SPACE.length);
  if (token.length >= 2 && token.startsWith('[') && token.endsWith(']')) return token;
  return `##${token}`;
}

/** A BERT-form token in a GGUF `bert` vocabulary's phantom-space form. */
export function toPhantomSpace(token: string): string {
  if (token.length >= 2 && token.startsWith('[') && token.endsWith(']')) return token;
  if (token.startsWith('##')) return token.slice(2);
  return PHANTOM_SPACE + token;
}
