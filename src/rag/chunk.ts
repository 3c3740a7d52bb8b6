/**
 * Cutting a row's text into chunks for retrieval (docs/rag.md, "Chunking"). Token-aware: it counts
 * the embedder's own tokens (given as character spans), so no chunk exceeds what the embedder
 * reads. It prefers to cut where a sentence or paragraph ends, falls back to a window of tokens
 * (at a word boundary where one is near), and lets consecutive chunks overlap by about `overlap`
 * tokens so that a fact cut in two still lies whole in one of them.
 *
 * Pure and deterministic: the same text and spans give the same chunks on every node.
 */
import { OpenLedgerError } from '../errors.ts';
import type { ChunkSpan, TokenSpan } from './types.ts';

export interface ChunkOptions {
  /** Tokens a chunk aims for (default 200). */
  target?: number;
  /** Tokens shared by consecutive chunks, about (default 40). */
  overlap?: number;
  /** Tokens a chunk never exceeds (default 480, under BERT's 512 positions with [CLS]/[SEP]). */
  max?: number;
}

export const CHUNK_DEFAULTS = { target: 200, overlap: 40, max: 480 } as const;

/** A sentence end: `.?!`, then closing quotes or brackets, then whitespace. */
const SENTENCE_END = /[.?!]["'”’)\]]*(?=\s)/g;
/** A paragraph break: a line with nothing but whitespace on it. */
const BLANK_LINE = /\n[ \t\r]*\n/g;

function invalid(message: string): never {
  throw new OpenLedgerError('VALIDATION_FAILED', `chunk: ${message}`);
}

function checkOptions(opts: ChunkOptions): Required<ChunkOptions> {
  const target = opts.target ?? CHUNK_DEFAULTS.target;
  const overlap = opts.overlap ?? CHUNK_DEFAULTS.overlap;
  const max = opts.max ?? CHUNK_DEFAULTS.max;
  for (const [name, v] of [
    ['target', target],
    ['overlap', overlap],
    ['max', max],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 0) invalid(`${name} must be a whole number ≥ 0`);
  if (target < 1 || target > max) invalid(`target must be between 1 and max (${max})`);
  // An overlap of the whole target would never move on.
  if (overlap >= target) invalid(`overlap (${overlap}) must be below target (${target})`);
  return { target, overlap, max };
}

function checkSpans(text: string, spans: readonly TokenSpan[]): void {
  let previous = 0;
  for (const [i, s] of spans.entries()) {
    if (
      !Number.isSafeInteger(s.start) ||
      !Number.isSafeInteger(s.end) ||
      s.start < previous ||
      s.end < s.start ||
      s.end > text.length
    )
      invalid(`token ${i} [${s.start}, ${s.end}) is not in order within the text`);
    previous = s.start;
  }
}

/**
 * Token indices b (0 < b < n) where cutting before token b ends a sentence or paragraph: the
 * break's character position lies between the end of token b−1 and the start of token b.
 */
function sentenceCuts(text: string, spans: readonly TokenSpan[]): Uint8Array {
  const n = spans.length;
  const cut = new Uint8Array(n + 1);
  const breaks: number[] = [];
  for (const match of text.matchAll(SENTENCE_END)) breaks.push(match.index + match[0].length);
  for (const match of text.matchAll(BLANK_LINE)) breaks.push(match.index);
  breaks.sort((a, b) => a - b);
  let b = 0;
  for (const at of breaks) {
    while (b < n && spans[b]!.start < at) b++;
    if (b > 0 && b < n && spans[b - 1]!.end <= at) cut[b] = 1;
  }
  return cut;
}

/** Token indices b where a whitespace gap separates token b−1 from token b (a word boundary). */
function wordCuts(spans: readonly TokenSpan[]): Uint8Array {
  const cut = new Uint8Array(spans.length + 1);
  for (let b = 1; b < spans.length; b++) if (spans[b]!.start > spans[b - 1]!.end) cut[b] = 1;
  return cut;
}

/** The index in [lo, hi] with `marks[i]` closest to `aim` (the lower one on a tie), or −1. */
function nearest(marks: Uint8Array, lo: number, hi: number, aim: number): number {
  let best = -1;
  for (let i = lo; i <= hi; i++)
    if (marks[i] === 1 && (best < 0 || Math.abs(i - aim) < Math.abs(best - aim))) best = i;
  return best;
}

/**
 * Chunks of `text`, in order, as character ranges with their token counts. `tokenSpans` are the
 * embedder's tokens of `text` (`Embedder.tokenSpans`), in order, special tokens left out.
 *
 * - Empty text, or text with no tokens (only whitespace), has no chunks.
 * - Text of at most `target` tokens is one chunk.
 * - Every chunk has at most `max` tokens; the chunks together cover the whole text (the first
 *   starts at 0, the last ends at `text.length`, each starts no later than the previous ends).
 * - A chunk ends at the sentence or paragraph end nearest `target` tokens, between `target / 2`
 *   and `max` tokens in; with none there, after `target` tokens (moved back to the nearest word
 *   boundary within the last quarter of the window, so words stay whole where they can).
 * - The next chunk starts about `overlap` tokens before the end (at a sentence start if one lies
 *   within half the overlap of that, else at a word boundary, else exactly there), and ends
 *   after the previous chunk's end.
 */
export function chunkText(
  text: string,
  tokenSpans: readonly TokenSpan[],
  opts: ChunkOptions = {},
): ChunkSpan[] {
  const { target, overlap, max } = checkOptions(opts);
  checkSpans(text, tokenSpans);
  const n = tokenSpans.length;
  if (text.length === 0 || n === 0) return [];

  const sentences = sentenceCuts(text, tokenSpans);
  const words = wordCuts(tokenSpans);
  const chunks: ChunkSpan[] = [];
  // How far the next start may move from `end − overlap` to reach a sentence or word start; kept
  // under what would let a chunk end where the previous one did (then it would never move on).
  const slack = Math.floor(Math.min(overlap, target - overlap - 1) / 2);
  let start = 0;
  let charStart = 0;
  let previousEnd = 0;
  for (;;) {
    let end: number;
    if (n - start <= target) end = n;
    else {
      const lo = Math.max(start + Math.max(1, Math.floor(target / 2)), previousEnd + 1);
      end = nearest(sentences, lo, Math.min(start + max, n - 1), start + target);
      if (end < 0) {
        const window = start + target;
        const from = Math.max(window - Math.floor(target / 4), previousEnd + 1);
        const back = nearest(words, from, window, window);
        end = back > 0 ? back : window;
      }
    }
    const last = end === n;
    const charEnd = last ? text.length : tokenSpans[end - 1]!.end;
    chunks.push({ ord: chunks.length, charStart, charEnd, tokens: end - start });
    if (last) return chunks;

    // Step back about `overlap` tokens, but always forward of this chunk's start.
    const aim = end - overlap;
    let next = nearest(sentences, Math.max(start + 1, aim - slack), aim + slack, aim);
    if (next < 0) next = nearest(words, Math.max(start + 1, aim - slack), aim + slack, aim);
    if (next < 0) next = Math.max(start + 1, aim);
    start = next;
    previousEnd = end;
    // With no overlap the whitespace between the chunks goes to the next one, so none is lost.
    charStart = Math.min(tokenSpans[start]!.start, charEnd);
  }
}
