/**
 * The WordPiece vocabulary of the built-in static embedder, derived from the built-in corpus (no
 * third-party vocabulary file): a pure function of the documents and the recipe below.
 *
 * The corpus is split into words by the BERT basic tokenizer (lower-cased, accents stripped,
 * punctuation and CJK characters alone: `WordPieceTokenizer.words`), and the vocabulary is, in this
 * order and without duplicates:
 *
 * 1. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0–4);
 * 2. every character of the corpus's words, then each again as a "##" continuation piece, so that
 *    any word of those characters is spelt out rather than [UNK];
 * 3. the words of two or more characters seen at least `minWordCount` times (the embedder's
 *    co-occurrence statistics ignore rarer tokens, so a rarer word is better spelt from pieces);
 * 4. "##" pieces: the 2–6 character endings of the words (each weighted by its word's count) seen
 *    at least `minWordCount` times, until the vocabulary has `size` entries.
 *
 * Within each group: the higher count first, then code point order.
 */
import { createHash } from 'node:crypto';
import { WordPieceTokenizer } from '../../engine/tokenizer/index.ts';

export const EMBEDDER_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const SPECIAL_IDS = { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 } as const;

export interface EmbedderVocabRecipe {
  /** Entries in all (fewer when the corpus has fewer candidates). */
  size: number;
  /** A whole word or a "##" piece needs this many occurrences. */
  minWordCount: number;
  /** Lengths (code points) of the "##" ending pieces, inclusive. */
  suffixChars: readonly [number, number];
}

export interface EmbedderVocab {
  /** The entries in BERT's `vocab.txt` form, by id. */
  tokens: string[];
  /** sha256 of `tokens` as a vocab.txt (one entry per line, each ending in a newline). */
  sha256: string;
  /** How many entries each group contributed. */
  groups: { special: number; characters: number; words: number; suffixes: number };
  /** Words the basic tokenizer found in the documents. */
  words: number;
}

/** Compares strings by code point (JavaScript's `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n;) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

/** Entries by count (higher first), then code point order. */
function ranked(counts: Map<string, number>, keep: (entry: string, count: number) => boolean) {
  return [...counts]
    .filter(([entry, count]) => keep(entry, count))
    .sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]))
    .map(([entry]) => entry);
}

function add(counts: Map<string, number>, key: string, by: number): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}

/** The vocabulary of `documents` (deterministic: the same documents give the same entries). */
export function buildEmbedderVocab(
  documents: readonly string[],
  recipe: EmbedderVocabRecipe,
): EmbedderVocab {
  const basic = new WordPieceTokenizer(['[UNK]']);
  const wordCounts = new Map<string, number>();
  let words = 0;
  for (const doc of documents) {
    for (const word of basic.words(doc)) {
      add(wordCounts, word.text, 1);
      words++;
    }
  }
  const charCounts = new Map<string, number>();
  const suffixCounts = new Map<string, number>();
  const [shortest, longest] = recipe.suffixChars;
  for (const [word, count] of wordCounts) {
    const chars = [...word];
    for (const ch of chars) add(charCounts, ch, count);
    // proper endings only: a piece that follows at least one character
    for (let length = shortest; length <= longest && length < chars.length; length++) {
      add(suffixCounts, chars.slice(chars.length - length).join(''), count);
    }
  }

  const tokens: string[] = [];
  const seen = new Set<string>();
  const push = (token: string): boolean => {
    if (tokens.length >= recipe.size || seen.has(token)) return false;
    seen.add(token);
    tokens.push(token);
    return true;
  };
  EMBEDDER_SPECIAL_TOKENS.forEach(push);
  const special = tokens.length;
  const characters = ranked(charCounts, () => true);
  for (const ch of characters) push(ch);
  for (const ch of characters) push(`##${ch}`);
  const afterCharacters = tokens.length;
  for (const word of ranked(
    wordCounts,
    (w, count) => count >= recipe.minWordCount && [...w].length >= 2,
  )) {
    push(word);
  }
  const afterWords = tokens.length;
  for (const suffix of ranked(suffixCounts, (_s, count) => count >= recipe.minWordCount)) {
    push(`##${suffix}`);
  }
  const hash = createHash('sha256');
  for (const token of tokens) hash.update(token, 'utf8').update('\n');
  return {
    tokens,
    sha256: hash.digest('hex'),
    groups: {
      special,
      characters: afterCharacters - special,
      words: afterWords - afterCharacters,
      suffixes: tokens.length - afterWords,
    },
    words,
  };
}
