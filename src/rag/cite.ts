/**
 * Citations in a RAG answer (docs/rag.md, "Citations"): splitting the answer into sentences,
 * reading their `[n]` markers, and checking each against the numbered source it names. The check
 * is lexical and deterministic (the same answer and sources give the same verdicts on every node):
 * a source supports a sentence when it holds most of the sentence's content words and every one
 * of its numbers and proper names. Unsupported citations are dropped; a sentence left with none
 * gets the source that supports it best, if one does. `answerFromSources` is the "answer only from
 * the sources" fallback for generators that cannot cite (the 1M built-in model): the source
 * sentence that best matches the question, with its number.
 *
 * Lexical support is a floor, not an oracle: a paraphrase with new words fails it, and a sentence
 * that reuses a source's words while changing their meaning can pass it. The numbers-and-names
 * rule removes the commonest harmful case, a citation for a figure or a name the source lacks.
 */
import type { Citation, Source } from './types.ts';

/** What an answer says when the sources do not hold the answer (the system prompt asks for it). */
export const NOT_IN_SOURCES = 'The sources do not contain the answer.';

/** Share of a sentence's content words its source must hold to support it. */
export const SUPPORT_RECALL = 0.6;
/**
 * A sentence with no supported citation gets one added only if it has at least this many content
 * words: "Yes." or a list number must not collect a citation from whatever source shares a word.
 */
export const ADD_MIN_TERMS = 2;
/** Share of the question's content words the extractive answer's sentence must hold. */
export const ANSWER_MIN_OVERLAP = 0.5;

export interface Sentence {
  /** The sentence, trimmed, with its `[n]` markers. */
  text: string;
  /** `answer.slice(start, end) === text`. */
  start: number;
  end: number;
}

/** A citation after the check; `added` marks one the check added to an uncited sentence. */
export interface CheckedCitation extends Citation {
  added: boolean;
}

export interface CheckedAnswer {
  sentences: Sentence[];
  /** Every `[n]` naming a source, in sentence order, then the added ones. */
  citations: CheckedCitation[];
  /** The answer with unsupported and unknown markers removed and added ones appended. */
  cleaned: string;
}

// ---- Words -------------------------------------------------------------------------------------

/** English function words (NLTK's list, plus question words and contraction stems). */
const STOPWORDS = new Set(
  (
    'a about above after again against all also am an and any are as at be because been before ' +
    'being below between both but by can could did do does doing down during each few for from ' +
    'further had has have having he her here hers herself him himself his how i if in into is it ' +
    'its itself just many may me might more most much must my myself no nor not now of off on ' +
    'once only or other our ours ourselves out over own same shall she should so some such than ' +
    'that the their theirs them themselves then there these they this those through to too under ' +
    'until up upon very was we were what when where which while who whom whose why will with ' +
    'would you your yours yourself yourselves ' +
    'aren couldn didn doesn don hadn hasn haven isn ll mustn re shan shouldn ve wasn weren won wouldn'
  ).split(' '),
);

/** A word (letters) or a number (digits, with `,` or `.` between digit groups). */
const WORD = /[\p{L}\p{M}]+|\p{N}+(?:[.,]\p{N}+)*/gu;
/** A citation marker: `[1]`, `[1, 3]`, with the whitespace before it. */
const MARKER = /\s*\[\s*\d+(?:\s*,\s*\d+)*\s*\]/g;

interface Term {
  /** The lower-cased stem of a word, or a number without its `,` separators. */
  key: string;
  /** A number: the source must hold it. */
  number: boolean;
  /** Not a stopword and not a lone letter: counts for recall. */
  content: boolean;
  /** Starts with a capital letter. */
  capital: boolean;
}

const isVowel = (c: string) => c === 'a' || c === 'e' || c === 'i' || c === 'o' || c === 'u';

/** Porter's consonant: not a vowel, and `y` only after a vowel (or at the start). */
function consonant(w: string, i: number): boolean {
  const c = w[i]!;
  if (isVowel(c)) return false;
  if (c === 'y') return i === 0 || !consonant(w, i - 1);
  return true;
}

/** Porter's m: the number of vowel-consonant sequences in the stem. */
function measure(w: string): number {
  let m = 0;
  let i = 0;
  while (i < w.length && consonant(w, i)) i++;
  for (;;) {
    while (i < w.length && !consonant(w, i)) i++;
    if (i >= w.length) return m;
    while (i < w.length && consonant(w, i)) i++;
    m++;
  }
}

function hasVowel(w: string): boolean {
  for (let i = 0; i < w.length; i++) if (!consonant(w, i)) return true;
  return false;
}

/** Consonant-vowel-consonant at the end, the last not w, x or y (hop → hope). */
function cvc(w: string): boolean {
  const n = w.length;
  if (n < 3 || !consonant(w, n - 1) || consonant(w, n - 2) || !consonant(w, n - 3)) return false;
  const c = w[n - 1]!;
  return c !== 'w' && c !== 'x' && c !== 'y';
}

/**
 * Porter's step 1 (Porter 1980, steps 1a–1c): plurals, -ed and -ing, final y. Enough to match
 * "tonnes" with "tonne" and "reported" with "reports"; the later steps mostly merge words of
 * different meaning at this scale.
 */
export function stem(word: string): string {
  let w = word;
  if (w.length <= 2) return w;
  // 1a
  if (w.endsWith('sses') || w.endsWith('ies')) w = w.slice(0, -2);
  else if (w.endsWith('s') && !w.endsWith('ss')) w = w.slice(0, -1);
  // 1b
  let trimmed = false;
  if (w.endsWith('eed')) {
    if (measure(w.slice(0, -3)) > 0) w = w.slice(0, -1);
  } else if (w.endsWith('ed') && hasVowel(w.slice(0, -2))) {
    w = w.slice(0, -2);
    trimmed = true;
  } else if (w.endsWith('ing') && hasVowel(w.slice(0, -3))) {
    w = w.slice(0, -3);
    trimmed = true;
  }
  if (trimmed) {
    const last = w[w.length - 1];
    if (w.endsWith('at') || w.endsWith('bl') || w.endsWith('iz')) w += 'e';
    else if (
      w.length >= 2 &&
      last === w[w.length - 2] &&
      consonant(w, w.length - 1) &&
      last !== 'l' &&
      last !== 's' &&
      last !== 'z'
    )
      w = w.slice(0, -1);
    else if (measure(w) === 1 && cvc(w)) w += 'e';
  }
  // 1c
  if (w.endsWith('y') && hasVowel(w.slice(0, -1))) w = `${w.slice(0, -1)}i`;
  return w;
}

function terms(text: string): Term[] {
  const out: Term[] = [];
  for (const [word] of text.matchAll(WORD)) {
    if (/^\p{N}/u.test(word)) {
      out.push({ key: word.replaceAll(',', ''), number: true, content: true, capital: false });
      continue;
    }
    const lower = word.toLowerCase();
    const content = lower.length > 1 && !STOPWORDS.has(lower);
    out.push({ key: stem(lower), number: false, content, capital: /^\p{Lu}/u.test(word) });
  }
  return out;
}

/** The distinct content keys of a text, in order of first appearance. */
function contentKeys(list: readonly Term[]): string[] {
  return [...new Set(list.filter((t) => t.content).map((t) => t.key))];
}

/** Every key of a text (stopwords included: a name may be spelt like one). */
function keySet(text: string): Set<string> {
  return new Set(terms(text).map((t) => t.key));
}

/** The text without its citation markers. */
export function stripCitations(text: string): string {
  return text.replace(MARKER, '');
}

// ---- Sentences and markers ---------------------------------------------------------------------

/**
 * A sentence end: `.?!`, closing quotes or brackets, citation markers after the punctuation
 * ("… whale. [2]" keeps its marker), then whitespace or the end; or any line break (list items).
 */
const SENTENCE_END = /[.?!]+["'”’)]*(?:\s*\[\s*\d+(?:\s*,\s*\d+)*\s*\])*(?=\s|$)|\n/g;
/** Words whose period does not end a sentence. */
const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'dr',
  'prof',
  'st',
  'jr',
  'sr',
  'vs',
  'e.g',
  'i.e',
]);

/** Whether the `.` at `at` belongs to an abbreviation, an initial or a list number. */
function falseEnd(text: string, at: number): boolean {
  if (text[at] !== '.') return false;
  const before = /(\S*)$/.exec(text.slice(Math.max(0, at - 40), at))![1]!;
  if (ABBREVIATIONS.has(before.toLowerCase())) return true;
  if (/^\p{Lu}$/u.test(before)) return true; // "J. Smith"
  // "1." opening a list item: nothing but whitespace between it and the line's start.
  if (/^\d+$/.test(before)) {
    const lineStart = text.lastIndexOf('\n', at - 1) + 1;
    return text.slice(lineStart, at - before.length).trim() === '';
  }
  return false;
}

/** The answer's sentences, trimmed, with their offsets; empty pieces are left out. */
export function splitSentences(answer: string): Sentence[] {
  const out: Sentence[] = [];
  const push = (from: number, to: number) => {
    let start = from;
    let end = to;
    while (start < end && /\s/.test(answer[start]!)) start++;
    while (end > start && /\s/.test(answer[end - 1]!)) end--;
    if (end > start) out.push({ text: answer.slice(start, end), start, end });
  };
  let from = 0;
  for (const match of answer.matchAll(SENTENCE_END)) {
    if (falseEnd(answer, match.index)) continue;
    const to = match.index + match[0].length;
    push(from, to);
    from = to;
  }
  push(from, answer.length);
  return out;
}

/** The source numbers a sentence cites, in order, once each: `[1]`, `[1, 3]`, `[1][2]`. */
export function parseCitations(sentence: string): number[] {
  const out: number[] = [];
  for (const [marker] of sentence.matchAll(MARKER))
    for (const digits of marker.match(/\d+/g) ?? []) {
      const n = Number(digits);
      if (Number.isSafeInteger(n) && !out.includes(n)) out.push(n);
    }
  return out;
}

// ---- Support -----------------------------------------------------------------------------------

export interface Support {
  supported: boolean;
  /** Share of the sentence's distinct content words (stemmed) that the source holds. */
  recall: number;
}

function supportOf(sentence: readonly Term[], source: ReadonlySet<string>): Support {
  const keys = contentKeys(sentence);
  if (keys.length === 0) return { supported: false, recall: 0 };
  let held = 0;
  for (const key of keys) if (source.has(key)) held++;
  const recall = held / keys.length;
  // Numbers and proper names (capitalised, not the sentence's first word) must all be there.
  const exact = sentence.every(
    (t, i) => !(t.number || (t.capital && t.content && i > 0)) || source.has(t.key),
  );
  return { supported: exact && recall >= SUPPORT_RECALL, recall };
}

/**
 * Whether `sourceText` supports `sentence` (its `[n]` markers ignored): it holds at least
 * SUPPORT_RECALL of the sentence's distinct content words (lower-cased, Porter step 1 stems,
 * stopwords out), and every number and every capitalised word after the first.
 */
export function supports(sentence: string, sourceText: string): Support {
  return supportOf(terms(stripCitations(sentence)), keySet(sourceText));
}

/** `[1, 3]` with only the numbers `keep` allows, or nothing (with its leading space) if none. */
function rewriteMarkers(sentence: string, keep: (n: number) => boolean): string {
  return sentence.replace(MARKER, (marker) => {
    const all = (marker.match(/\d+/g) ?? []).map(Number);
    const kept = all.filter(keep);
    if (kept.length === all.length) return marker;
    if (kept.length === 0) return '';
    return `${/^\s*/.exec(marker)![0]}[${kept.join(', ')}]`;
  });
}

/**
 * Checks every `[n]` of an answer against source n: supported ones stay, unsupported ones are
 * removed from `cleaned` (and reported with `supported: false`), numbers that name no source are
 * removed and not reported. A sentence left with no supported citation gets ` [n]` appended for
 * the source that supports it best (highest recall, then lowest n), if one supports it and the
 * sentence has at least ADD_MIN_TERMS content words.
 */
export function checkCitations(answer: string, sources: readonly Source[]): CheckedAnswer {
  const byN = new Map<number, ReadonlySet<string>>();
  for (const source of [...sources].sort((a, b) => a.n - b.n))
    if (!byN.has(source.n)) byN.set(source.n, keySet(source.text));

  const sentences = splitSentences(answer);
  const citations: CheckedCitation[] = [];
  let cleaned = '';
  let copied = 0;
  for (const [i, sentence] of sentences.entries()) {
    const words = terms(stripCitations(sentence.text));
    const supported = new Set<number>();
    for (const n of parseCitations(sentence.text)) {
      const source = byN.get(n);
      if (source === undefined) continue;
      const ok = supportOf(words, source).supported;
      if (ok) supported.add(n);
      citations.push({ n, sentence: i, supported: ok, added: false });
    }
    let text = rewriteMarkers(sentence.text, (n) => supported.has(n));
    if (supported.size === 0 && contentKeys(words).length >= ADD_MIN_TERMS) {
      let best: { n: number; recall: number } | null = null;
      for (const [n, source] of byN) {
        const s = supportOf(words, source);
        if (s.supported && (best === null || s.recall > best.recall))
          best = { n, recall: s.recall };
      }
      if (best !== null) {
        citations.push({ n: best.n, sentence: i, supported: true, added: true });
        text += ` [${best.n}]`;
      }
    }
    cleaned += answer.slice(copied, sentence.start) + text;
    copied = sentence.end;
  }
  cleaned += answer.slice(copied);
  return { sentences, citations, cleaned };
}

/**
 * The extractive answer: the source sentence holding the largest share of the question's content
 * words (ties: the lower n, then the earlier sentence), as `"<sentence> [n]"`; null when the
 * question has no content words or no sentence holds ANSWER_MIN_OVERLAP of them.
 */
export function answerFromSources(
  question: string,
  sources: readonly Source[],
): { answer: string; citations: Citation[] } | null {
  const wanted = contentKeys(terms(question));
  if (wanted.length === 0) return null;
  let best: { n: number; text: string; overlap: number } | null = null;
  for (const source of [...sources].sort((a, b) => a.n - b.n))
    for (const sentence of splitSentences(source.text)) {
      const text = stripCitations(sentence.text).trim();
      const keys = keySet(text);
      let held = 0;
      for (const key of wanted) if (keys.has(key)) held++;
      const overlap = held / wanted.length;
      if (best === null || overlap > best.overlap) best = { n: source.n, text, overlap };
    }
  if (best === null || best.text === '' || best.overlap < ANSWER_MIN_OVERLAP) return null;
  return {
    answer: `${best.text} [${best.n}]`,
    citations: [{ n: best.n, sentence: 0, supported: true }],
  };
}
