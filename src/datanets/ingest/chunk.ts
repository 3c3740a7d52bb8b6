/** A paragraph of a document, with where it starts. */
export interface Block {
  text: string;
  line?: number;
  page?: number;
  /** The Markdown heading in effect where the block starts. */
  title?: string;
}

export type Chunk = Block;

const HEADING = /^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/**
 * Splits text (LF line endings) into paragraphs at blank lines, remembering each one's first line.
 * In Markdown, a fenced code block stays one paragraph (its blank lines included), a heading starts
 * a new paragraph, and each paragraph carries the heading it falls under as its title.
 */
export function paragraphsOf(
  text: string,
  options: { markdown?: boolean; page?: number } = {},
): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let current: string[] = [];
  let start = 0;
  let fence: string | null = null;
  let heading: string | undefined;
  let blockTitle: string | undefined;
  const flush = () => {
    if (current.length > 0) {
      const block: Block = { text: current.join('\n') };
      if (options.page === undefined) block.line = start;
      else block.page = options.page;
      if (blockTitle !== undefined) block.title = blockTitle;
      blocks.push(block);
    }
    current = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (options.markdown) {
      const marker = FENCE.exec(line)?.[1];
      if (fence === null && marker !== undefined) fence = marker;
      else if (fence !== null && marker !== undefined && marker.startsWith(fence)) {
        current.push(line);
        fence = null;
        continue;
      }
      if (fence === null) {
        const title = HEADING.exec(line)?.[1];
        if (title !== undefined) {
          flush();
          heading = title;
        }
      }
    }
    if (fence === null && line.trim() === '') {
      flush();
      continue;
    }
    if (current.length === 0) {
      start = i + 1;
      blockTitle = heading;
    }
    current.push(line);
  }
  flush();
  return blocks;
}

/**
 * Packs paragraphs, in order, into chunks of at most `maxChars` UTF-16 code units (so also at most
 * `maxChars` characters), joined by a blank line. A paragraph too long for one chunk is cut by
 * `splitLong`. Each chunk keeps the position and title of its first paragraph, and stays on one
 * PDF page. Deterministic.
 */
export function chunkBlocks(blocks: readonly Block[], maxChars: number): Chunk[] {
  const chunks: Chunk[] = [];
  let parts: string[] = [];
  let length = 0;
  let first: Block | undefined;
  const flush = () => {
    if (first !== undefined && parts.length > 0) chunks.push(withText(first, parts.join('\n\n')));
    parts = [];
    length = 0;
    first = undefined;
  };
  for (const block of blocks) {
    const text = block.text.trim();
    if (text === '') continue;
    if (text.length > maxChars) {
      flush();
      for (const piece of splitPieces(text, maxChars)) {
        const line =
          block.line === undefined
            ? undefined
            : block.line + countNewlines(text.slice(0, piece.start));
        chunks.push(withText({ ...block, line }, piece.text));
      }
      continue;
    }
    // A chunk never spans two pages, so its page is where all of its text is.
    if (first !== undefined && (length + 2 + text.length > maxChars || block.page !== first.page))
      flush();
    if (first === undefined) first = block;
    length += (parts.length > 0 ? 2 : 0) + text.length;
    parts.push(text);
  }
  flush();
  return chunks;
}

function withText(block: Block, text: string): Chunk {
  // Only defined fields: the title ends up in the row's content, and so in its hash.
  const chunk: Chunk = { text };
  if (block.line !== undefined) chunk.line = block.line;
  if (block.page !== undefined) chunk.page = block.page;
  if (block.title !== undefined) chunk.title = block.title;
  return chunk;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) n++;
  return n;
}

const SENTENCE_END = /[.!?…]["'”’)\]]*\s|[。！？]/g;
const WHITESPACE = /\s/;
let wordSegmenter: Intl.Segmenter | undefined;

/**
 * Cuts one over-long paragraph into pieces of at most `maxChars`, preferring (in the second half
 * of each window) a line break, then a sentence end, then any whitespace; text without spaces (CJK,
 * Thai) is cut at a word boundary found by `Intl.Segmenter`. Only a single "word" longer than the
 * limit (a URL, base64) is ever cut inside, and never between the halves of a surrogate pair.
 */
export function splitLong(text: string, maxChars: number): string[] {
  return splitPieces(text.trim(), maxChars).map((piece) => piece.text);
}

/** `splitLong`, with each piece's offset in `text` (which must not start with whitespace). */
function splitPieces(text: string, maxChars: number): { text: string; start: number }[] {
  const pieces: { text: string; start: number }[] = [];
  let start = 0;
  let rest = text;
  while (rest.length > maxChars) {
    const cut = findCut(rest, maxChars);
    const piece = rest.slice(0, cut).trimEnd();
    if (piece !== '') pieces.push({ text: piece, start });
    const next = rest.slice(cut).trimStart();
    start += rest.length - next.length;
    rest = next;
  }
  if (rest !== '') pieces.push({ text: rest, start });
  return pieces;
}

function findCut(rest: string, maxChars: number): number {
  // The window includes the character just past the limit: if it is a space, cutting there is fine.
  const window = rest.slice(0, maxChars + 1);
  const half = Math.floor(maxChars / 2);
  const newline = window.lastIndexOf('\n');
  if (newline >= half) return newline;
  let sentence = -1;
  SENTENCE_END.lastIndex = 0;
  for (let match = SENTENCE_END.exec(window); match; match = SENTENCE_END.exec(window)) {
    const end = match.index + match[0].length;
    if (end >= half && rest.slice(0, end).trimEnd().length <= maxChars) sentence = end;
  }
  if (sentence > 0) return sentence;
  for (let at = window.length - 1; at > 0; at--) {
    if (WHITESPACE.test(window[at]!)) return at;
  }
  wordSegmenter ??= new Intl.Segmenter('und', { granularity: 'word' });
  let boundary = 0;
  for (const segment of wordSegmenter.segment(rest.slice(0, maxChars + 2))) {
    if (segment.index > maxChars) break;
    if (segment.index > 0) boundary = segment.index;
  }
  if (boundary > 0) return boundary;
  const code = rest.charCodeAt(maxChars - 1);
  return code >= 0xd800 && code <= 0xdbff && maxChars > 1 ? maxChars - 1 : maxChars;
}
