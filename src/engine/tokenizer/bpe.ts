/**
 * A GPT-2 style byte-level BPE tokenizer (GGUF `tokenizer.ggml.model` = "gpt2": GPT-2, Qwen2,
 * Llama 3 and most Hugging Face `tokenizer.json` BPE models), as llama.cpp's `llm_tokenizer_bpe`
 * implements it, so that our token ids equal llama.cpp's:
 *
 *   1. split the text at special tokens (user-defined ones always, control ones on request);
 *   2. pre-tokenize each piece of text into words with the model's pre-tokenizer
 *      (`tokenizer.ggml.pre`: the GPT-2 regex, or the Qwen2/Llama 3 one);
 *   3. write each word's UTF-8 bytes as GPT-2's printable byte characters (`bytes_to_unicode`:
 *      a space is "Ġ", a newline "Ċ");
 *   4. within each word, repeatedly merge the adjacent pair with the lowest merge rank (the line
 *      of `tokenizer.ggml.merges`; ties: the leftmost pair) until no pair is a merge;
 *   5. each remaining symbol is its token.
 *
 * Written here rather than taken from npm: the pre-tokenizers must reproduce llama.cpp's own
 * hand-written matchers (its whitespace set differs from JavaScript's `\s`), and the packages that
 * read `tokenizer.json` do not read GGUF vocabularies. The pre-tokenizers below are line-by-line
 * ports of `unicode_regex_split_custom_gpt2` / `_qwen2` / `_llama3` in llama.cpp's unicode.cpp.
 *
 * Decoding maps the byte characters back to bytes; control tokens are dropped unless asked for.
 * Unlike llama.cpp's `detokenize`, it does not "clean up" spaces before punctuation, so
 * decode(encode(text)) is text.
 */
import { OpenLedgerError } from '../../errors.ts';
import { ggufArray, ggufBool, ggufNumber, ggufString } from '../gguf/index.ts';
import type { GgufMetadata } from '../gguf/index.ts';
import { TOKEN_TYPE } from './sentencepiece.ts';
import type { EncodeOptions } from './sentencepiece.ts';

/**
 * The pre-tokenizers: 'gpt2' (GGUF `tokenizer.ggml.pre` "gpt-2"), 'qwen2' ("qwen2"), 'llama3'
 * ("llama-bpe", "llama3": Qwen2's with numbers in groups of up to 3 and whole-word lookups).
 */
export type BpePreTokenizer = 'gpt2' | 'qwen2' | 'llama3';

/** `tokenizer.ggml.pre` values → pre-tokenizer (llama.cpp's names). */
const PRE_TOKENIZERS: Readonly<Record<string, BpePreTokenizer>> = {
  'gpt-2': 'gpt2',
  qwen2: 'qwen2',
  'deepseek-r1-qwen': 'qwen2',
  'llama-bpe': 'llama3',
  llama3: 'llama3',
  'llama-v3': 'llama3',
};

export interface BpeVocab {
  /** The tokens, normal ones in GPT-2's byte characters ("Ġthe"). */
  tokens: readonly string[];
  /** The merges "left right" in rank order (rank = index). */
  merges: readonly string[];
  /** One `TOKEN_TYPE` per token (default: all NORMAL). */
  tokenTypes?: ArrayLike<number>;
  preTokenizer: BpePreTokenizer;
  /** -1 when the vocabulary has none. */
  bosId: number;
  eosId: number;
  /** Whether `encode` adds BOS / EOS by default. */
  addBos: boolean;
  addEos: boolean;
}

export interface BpeEncodeOptions extends EncodeOptions {
  /** Recognise control tokens written in the text ("<|endoftext|>") (default false). */
  parseSpecial?: boolean;
}

export interface BpeDecodeOptions {
  /** Render control tokens as their text instead of dropping them (default false). */
  special?: boolean;
}

// ---------------------------------------------------------------------------------------------
// GPT-2's byte ↔ character map

/**
 * GPT-2's `bytes_to_unicode`: the printable bytes ! … ~, ¡ … ¬, ® … ÿ stand for themselves; the
 * other 68 bytes, in order, become U+0100, U+0101, …
 */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const map = new Array<string>(256);
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  return map;
})();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** GPT-2's printable character of each byte value (e.g. byteChar(0x20) is "Ġ"). */
export function byteChar(byte: number): string {
  const char = BYTE_TO_CHAR[byte];
  if (char === undefined) throw new RangeError(`${byte} is not a byte`);
  return char;
}

// ---------------------------------------------------------------------------------------------
// Character classes, as llama.cpp's unicode tables define them

/** llama.cpp's `unicode_set_whitespace` (JavaScript's `\s` adds U+FEFF and lacks U+0085). */
const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

const LETTER = 1;
const NUMBER = 2;
const SPACE = 4;
/** Past the end of the piece of text: no class at all (llama.cpp's empty flags). */
const OUTSIDE = -1;

const LETTER_RE = /^\p{L}$/u;
const NUMBER_RE = /^\p{N}$/u;
const classCache = new Map<number, number>();

/** LETTER, NUMBER, SPACE or 0 (anything else) for a code point. */
function charClass(cp: number): number {
  let cls = classCache.get(cp);
  if (cls === undefined) {
    const ch = String.fromCodePoint(cp);
    cls = WHITESPACE.has(cp)
      ? SPACE
      : LETTER_RE.test(ch)
        ? LETTER
        : NUMBER_RE.test(ch)
          ? NUMBER
          : 0;
    if (classCache.size < 65536) classCache.set(cp, cls);
  }
  return cls;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: each returns the lengths (in code points) of the words of cps[0 … n)

const CR = 0x0d;
const LF = 0x0a;
const APOSTROPHE = 0x27;
const SPACE_CP = 0x20;

/** 's 't 're 've 'm 'll 'd at cps[pos] (case-insensitive when `fold`): its length, or 0. */
function contraction(cps: Int32Array, pos: number, n: number, fold: boolean): number {
  if (cps[pos] !== APOSTROPHE || pos + 1 >= n) return 0;
  const lower = (cp: number): number => (fold && cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp);
  const a = lower(cps[pos + 1]!);
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2; // s t m d
  if (pos + 2 < n) {
    const b = lower(cps[pos + 2]!);
    if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) {
      return 3; // re ve ll
    }
  }
  return 0;
}

/** `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` */
function splitGpt2(cps: Int32Array, n: number): number[] {
  const words: number[] = [];
  const cls = (pos: number): number => (pos < n ? charClass(cps[pos]!) : OUTSIDE);
  let start = 0;
  const add = (end: number): void => {
    if (end > start) words.push(end - start);
    start = end;
  };
  for (let pos = 0; pos < n;) {
    const c = contraction(cps, pos, n, false);
    if (c > 0) {
      add((pos += c));
      continue;
    }
    const space = cps[pos] === SPACE_CP ? 1 : 0;
    let next = cls(pos + space);
    if (next === LETTER || next === NUMBER) {
      const kind = next;
      pos += space;
      while (next === kind) next = cls(++pos);
      add(pos);
      continue;
    }
    if (next === 0) {
      // ?[^\s\p{L}\p{N}]+
      pos += space;
      while (next === 0) next = cls(++pos);
      add(pos);
      continue;
    }
    let spaces = 0;
    while (cls(pos + spaces) === SPACE) spaces++;
    if (spaces > 1 && pos + spaces < n) {
      add((pos += spaces - 1)); // \s+(?!\S): leave the last space to the word after
      continue;
    }
    if (spaces > 0) {
      add((pos += spaces));
      continue;
    }
    add(++pos);
  }
  return words;
}

/**
 * Qwen2: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+`; Llama 3: the same with `\p{N}{1,3}` (`digits` 3).
 */
function splitQwen2(cps: Int32Array, n: number, digits: number): number[] {
  const words: number[] = [];
  const cls = (pos: number): number => (pos < n ? charClass(cps[pos]!) : OUTSIDE);
  let start = 0;
  const add = (end: number): void => {
    if (end > start) words.push(end - start);
    start = end;
  };
  for (let pos = 0; pos < n;) {
    const cp = cps[pos]!;
    const here = cls(pos);
    const c = contraction(cps, pos, n, true);
    if (c > 0) {
      add((pos += c));
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (cp !== CR && cp !== LF && here !== NUMBER) {
      if (here === LETTER || cls(pos + 1) === LETTER) {
        pos++;
        while (cls(pos) === LETTER) pos++;
        add(pos);
        continue;
      }
    }
    // \p{N}{1,digits}
    if (here === NUMBER) {
      let first = pos;
      while (cls(pos) === NUMBER) {
        if (++pos - first >= digits) {
          add(pos);
          first = pos;
        }
      }
      add(pos);
      continue;
    }
    // ?[^\s\p{L}\p{N}]+[\r\n]*
    let next = cp === SPACE_CP ? cls(pos + 1) : here;
    if (next === 0) {
      pos += cp === SPACE_CP ? 1 : 0;
      while (next === 0) next = cls(++pos);
      while (pos < n && (cps[pos] === CR || cps[pos] === LF)) pos++;
      add(pos);
      continue;
    }
    let spaces = 0;
    let afterNewline = 0;
    while (cls(pos + spaces) === SPACE) {
      const s = cps[pos + spaces];
      if (s === CR || s === LF) afterNewline = pos + spaces + 1;
      spaces++;
    }
    if (afterNewline > 0) {
      add((pos = afterNewline)); // \s*[\r\n]+
      continue;
    }
    if (spaces > 1 && pos + spaces < n) {
      add((pos += spaces - 1)); // \s+(?!\S)
      continue;
    }
    if (spaces > 0) {
      add((pos += spaces));
      continue;
    }
    add(++pos);
  }
  return words;
}

// ---------------------------------------------------------------------------------------------

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8'); // invalid sequences become U+FFFD

/** At most this many words' merges are remembered (a word's tokens depend only on the word). */
const WORD_CACHE = 50_000;

export class BpeTokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly preTokenizer: BpePreTokenizer;
  private readonly tokens: readonly string[];
  private readonly types: Uint8Array;
  /** text → id (the last id of a duplicate text, as llama.cpp's `token_to_id` keeps). */
  private readonly ids: Map<string, number>;
  /** "left right" → rank. */
  private readonly ranks: Map<string, number>;
  /** Control and user-defined tokens, longest first: split out of the text before BPE. */
  private readonly specials: { id: number; text: string; control: boolean }[];
  private readonly pieceBytes: Uint8Array[];
  private readonly wordCache = new Map<string, number[]>();

  constructor(vocab: BpeVocab) {
    const n = vocab.tokens.length;
    const types = vocab.tokenTypes ?? new Uint8Array(n).fill(TOKEN_TYPE.NORMAL);
    if (types.length !== n) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `a BPE vocabulary needs one type per token: ${n} tokens, ${types.length} types`,
      );
    }
    for (const [name, id, used] of [
      ['BOS', vocab.bosId, vocab.addBos],
      ['EOS', vocab.eosId, vocab.addEos],
    ] as const) {
      const none = id === -1 && !used;
      if (!none && (!Number.isInteger(id) || id < 0 || id >= n)) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `the ${name} token id ${id} is outside the vocabulary of ${n} tokens`,
        );
      }
    }
    this.vocabSize = n;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
    this.preTokenizer = vocab.preTokenizer;
    this.tokens = vocab.tokens;
    this.types = Uint8Array.from(types);
    this.ids = new Map();
    this.ranks = new Map();
    this.specials = [];
    this.pieceBytes = new Array<Uint8Array>(n);

    for (let id = 0; id < n; id++) {
      const text = vocab.tokens[id]!;
      this.ids.set(text, id);
      const type = this.types[id]!;
      if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.USER_DEFINED) {
        if (text.length > 0) this.specials.push({ id, text, control: type === TOKEN_TYPE.CONTROL });
        this.pieceBytes[id] = utf8Encoder.encode(text);
      } else {
        this.pieceBytes[id] = decodeByteChars(text);
      }
    }
    // Longest first, as llama.cpp partitions (ties: the lower id).
    this.specials.sort((a, b) => b.text.length - a.text.length || a.id - b.id);
    vocab.merges.forEach((merge, rank) => {
      // llama.cpp splits at the first space after the first character.
      const at = merge.indexOf(' ', 1);
      const key = at < 0 ? ' ' : `${merge.slice(0, at)} ${merge.slice(at + 1)}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
  }

  /** The tokenizer of a GGUF file whose `tokenizer.ggml.model` is "gpt2" (byte-level BPE). */
  static fromGguf(meta: GgufMetadata): BpeTokenizer {
    const model = ggufString(meta, 'tokenizer.ggml.model');
    if (model !== 'gpt2') {
      throw new OpenLedgerError(
        'GGUF_UNSUPPORTED',
        `tokenizer model '${model}' is not byte-level BPE ('gpt2'); this tokenizer reads only that`,
        { details: { model } },
      );
    }
    const pre = ggufString(meta, 'tokenizer.ggml.pre', 'default');
    const preTokenizer = PRE_TOKENIZERS[pre];
    if (preTokenizer === undefined) {
      throw new OpenLedgerError(
        'GGUF_UNSUPPORTED',
        `BPE pre-tokenizer '${pre}' is not supported (supported: ${Object.keys(PRE_TOKENIZERS).join(', ')})`,
        { details: { pre } },
      );
    }
    const tokens = ggufArray(meta, 'tokenizer.ggml.tokens', 'string');
    const merges = ggufArray(meta, 'tokenizer.ggml.merges', 'string');
    const tokenTypes = meta.has('tokenizer.ggml.token_type')
      ? ggufArray(meta, 'tokenizer.ggml.token_type', 'int32')
      : undefined;
    // llama.cpp adds BOS by default only for the Llama 3 pre-tokenizer.
    return new BpeTokenizer({
      tokens,
      merges,
      ...(tokenTypes === undefined ? {} : { tokenTypes }),
      preTokenizer,
      bosId: ggufNumber(meta, 'tokenizer.ggml.bos_token_id', -1),
      eosId: ggufNumber(meta, 'tokenizer.ggml.eos_token_id', -1),
      addBos: ggufBool(meta, 'tokenizer.ggml.add_bos_token', preTokenizer === 'llama3'),
      addEos: ggufBool(meta, 'tokenizer.ggml.add_eos_token', false),
    });
  }

  /** The token's text as stored (GPT-2 byte characters for normal tokens). */
  piece(id: number): string {
    const piece = this.tokens[id];
    if (piece === undefined) throw this.badId(id);
    return piece;
  }

  tokenType(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw this.badId(id);
    return this.types[id]!;
  }

  /** The id of a token text as stored, if the vocabulary has it. */
  tokenId(text: string): number | undefined {
    return this.ids.get(text);
  }

  /** Text → token ids. */
  encode(text: string, options: BpeEncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos ?? this.addBos) out.push(this.requireId(this.bosId, 'BOS'));
    for (const fragment of this.partition(text, options.parseSpecial ?? false)) {
      if (typeof fragment === 'number') out.push(fragment);
      else this.encodeText(fragment, out);
    }
    if (options.addEos ?? this.addEos) out.push(this.requireId(this.eosId, 'EOS'));
    return out;
  }

  /** Token ids → UTF-8 bytes. */
  decodeBytes(ids: ArrayLike<number>, options: BpeDecodeOptions = {}): Uint8Array {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const bytes = this.pieceBytes[id];
      if (bytes === undefined) throw this.badId(id);
      if (this.types[id] === TOKEN_TYPE.CONTROL && !(options.special ?? false)) continue;
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

  /** Token ids → text; byte sequences that are not valid UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>, options: BpeDecodeOptions = {}): string {
    return utf8Decoder.decode(this.decodeBytes(ids, options));
  }

  // -------------------------------------------------------------------------------------------

  /** The text cut at special tokens: strings to encode and the ids of the specials between. */
  private partition(text: string, parseSpecial: boolean): (string | number)[] {
    let fragments: (string | number)[] = [text];
    for (const special of this.specials) {
      if (special.control && !parseSpecial) continue;
      const next: (string | number)[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === 'number') {
          next.push(fragment);
          continue;
        }
        let from = 0;
        for (let at = fragment.indexOf(special.text); at >= 0;) {
          if (at > from) next.push(fragment.slice(from, at));
          next.push(special.id);
          from = at + special.text.length;
          at = fragment.indexOf(special.text, from);
        }
        if (from < fragment.length) next.push(fragment.slice(from));
      }
      fragments = next;
    }
    return fragments;
  }

  /** Pre-tokenizes `text` and appends the BPE tokens of each word. */
  private encodeText(text: string, out: number[]): void {
    const cps = Int32Array.from(text, (ch) => ch.codePointAt(0)!);
    // A lone surrogate cannot be UTF-8; it becomes U+FFFD, as the text llama.cpp receives has.
    for (let i = 0; i < cps.length; i++) {
      const cp = cps[i]!;
      if (cp >= 0xd800 && cp <= 0xdfff) cps[i] = 0xfffd;
    }
    const words =
      this.preTokenizer === 'gpt2'
        ? splitGpt2(cps, cps.length)
        : splitQwen2(cps, cps.length, this.preTokenizer === 'llama3' ? 3 : 1);
    let at = 0;
    for (const length of words) {
      let word = '';
      for (let i = at; i < at + length; i++) {
        for (const byte of utf8Encoder.encode(String.fromCodePoint(cps[i]!))) {
          word += BYTE_TO_CHAR[byte]!;
        }
      }
      at += length;
      let tokens = this.wordCache.get(word);
      if (tokens === undefined) {
        tokens = this.encodeWord(word);
        if (this.wordCache.size >= WORD_CACHE) this.wordCache.clear();
        this.wordCache.set(word, tokens);
      }
      for (const token of tokens) out.push(token);
    }
  }

  /** The BPE of one word (in byte characters). */
  private encodeWord(word: string): number[] {
    if (this.preTokenizer === 'llama3') {
      // llama.cpp's ignore_merges: a word that is a token is that token.
      const whole = this.ids.get(word);
      if (whole !== undefined) return [whole];
    }
    // Symbols: one per character, as a linked list; a merged-away symbol keeps text ''.
    const symbols = Array.from(word);
    const n = symbols.length;
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const queue = new RankQueue();
    const tryPair = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const rank = this.ranks.get(`${symbols[left]!} ${symbols[right]!}`);
      if (rank !== undefined) queue.push(rank, left, right, symbols[left]! + symbols[right]!);
    };
    for (let i = 0; i + 1 < n; i++) tryPair(i, i + 1);

    while (queue.size > 0) {
      const { left, right, text } = queue.pop();
      const a = symbols[left]!;
      const b = symbols[right]!;
      // A stale pair: one side was merged since it was queued.
      if (a === '' || b === '' || a + b !== text) continue;
      symbols[left] = text;
      symbols[right] = '';
      const after = next[right]!;
      next[left] = after;
      if (after >= 0) prev[after] = left;
      tryPair(prev[left]!, left);
      tryPair(left, after);
    }

    const tokens: number[] = [];
    for (let s = 0; s >= 0; s = next[s]!) {
      const symbol = symbols[s]!;
      const id = this.ids.get(symbol);
      if (id !== undefined) {
        tokens.push(id);
        continue;
      }
      // Not a token (a merge whose result the vocabulary lacks): llama.cpp looks up each UTF-8
      // byte of the symbol's text as a one-byte token and drops the bytes it does not find.
      for (const byte of utf8Encoder.encode(symbol)) {
        const byteId = byte < 0x80 ? this.ids.get(String.fromCharCode(byte)) : undefined;
        if (byteId !== undefined) tokens.push(byteId);
      }
    }
    return tokens;
  }

  private requireId(id: number, name: string): number {
    if (id < 0) {
      throw new OpenLedgerError('VALIDATION_FAILED', `this vocabulary has no ${name} token`, {
        hint: `encode with add${name === 'BOS' ? 'Bos' : 'Eos'}: false`,
      });
    }
    return id;
  }

  private badId(id: number): OpenLedgerError {
    return new OpenLedgerError(
      'VALIDATION_FAILED',
      `token id ${id} is outside the vocabulary of ${this.vocabSize} tokens`,
    );
  }
}

/** A token's byte characters → its bytes (a character outside the map: its own UTF-8). */
function decodeByteChars(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of text) {
    const byte = CHAR_TO_BYTE.get(ch);
    if (byte !== undefined) bytes.push(byte);
    else for (const b of utf8Encoder.encode(ch)) bytes.push(b);
  }
  return Uint8Array.from(bytes);
}

/** A min-heap of candidate merges: lower rank first, then the leftmost pair. */
class RankQueue {
  private items: { rank: number; left: number; right: number; text: string }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(rank: number, left: number, right: number, text: string): void {
    const items = this.items;
    items.push({ rank, left, right, text });
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): { rank: number; left: number; right: number; text: string } {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(l, best)) best = l;
        if (r < items.length && this.before(r, best)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const x = this.items[a]!;
    const y = this.items[b]!;
    return x.rank < y.rank || (x.rank === y.rank && x.left < y.left);
  }
}
