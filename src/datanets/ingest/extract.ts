import { createRequire } from 'node:module';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { OpenLedgerError } from '../../errors.ts';
import { chunkBlocks, paragraphsOf, type Block } from './chunk.ts';
import { rowHash } from './hash.ts';
import { flattenContent, parseRecord, type RecordPlace } from './records.ts';
import {
  DEFAULT_MAX_ROW_CHARS,
  DEFAULT_MAX_UNPACKED_BYTES,
  type ExtractOptions,
  type ExtractedRow,
  type FileKind,
  type RowContent,
  type RowSource,
} from './types.ts';
import { decodeUtf8 } from './utf8.ts';
import { listZipEntries } from './zip.ts';

/**
 * Turns a text file into rows. Documents (txt, md, pdf, docx) become `document` rows cut on
 * paragraph boundaries into chunks of at most `maxRowChars`; json, jsonl and csv hold one record per
 * row, each in the alpaca, sharegpt, OpenAI messages or `{text}` form (a `{text}` record longer than
 * `maxRowChars` is cut like a document, its pieces sharing the record's source). Any problem is an
 * OpenLedgerError FILE_INVALID naming where it is; a file with no rows at all is one too.
 */
export async function extractRows(
  kind: FileKind,
  bytes: Uint8Array,
  options: ExtractOptions = {},
): Promise<ExtractedRow[]> {
  const maxRowChars = options.maxRowChars ?? DEFAULT_MAX_ROW_CHARS;
  if (!Number.isSafeInteger(maxRowChars) || maxRowChars < 1) {
    throw new OpenLedgerError('BAD_REQUEST', `maxRowChars must be a positive integer.`);
  }
  const out = new RowCollector(options.maxRows);
  switch (kind) {
    case 'txt':
    case 'md': {
      const text = normaliseText(decodeUtf8(bytes));
      out.documents(paragraphsOf(text, { markdown: kind === 'md' }), maxRowChars);
      break;
    }
    case 'pdf':
      out.documents(await pdfBlocks(bytes), maxRowChars);
      break;
    case 'docx':
      out.documents(await docxBlocks(bytes, options.maxUnpackedBytes), maxRowChars);
      break;
    case 'json':
      jsonRecords(decodeUtf8(bytes), out, maxRowChars);
      break;
    case 'jsonl':
      jsonlRecords(decodeUtf8(bytes), out, maxRowChars);
      break;
    case 'csv':
      csvRecords(decodeUtf8(bytes), out, maxRowChars);
      break;
    case 'image':
    case 'audio':
      throw new OpenLedgerError(
        'UNSUPPORTED_FILE_TYPE',
        `An ${kind} file has no text rows to extract.`,
        { hint: 'Store images and audio as blobs; only text files are split into rows.' },
      );
    default:
      throw new OpenLedgerError('UNSUPPORTED_FILE_TYPE', `Unknown file kind "${String(kind)}".`);
  }
  if (out.rows.length === 0) {
    throw new OpenLedgerError('FILE_INVALID', `The ${kind} file holds no text to use as rows.`, {
      hint:
        kind === 'pdf'
          ? 'A scanned PDF has no text layer: run OCR on it first.'
          : 'Upload a file with content.',
    });
  }
  return out.rows;
}

class RowCollector {
  readonly rows: ExtractedRow[] = [];
  constructor(private readonly maxRows: number | undefined) {}

  add(content: RowContent, source: Omit<RowSource, 'index'>): void {
    if (this.maxRows !== undefined && this.rows.length >= this.maxRows) {
      throw new OpenLedgerError(
        'PAYLOAD_TOO_LARGE',
        `The file holds more than ${this.maxRows} rows.`,
        { hint: 'Split it into smaller files.', details: { maxRows: this.maxRows } },
      );
    }
    this.rows.push({
      content,
      text: flattenContent(content),
      hash: rowHash(content),
      source: { index: this.rows.length, ...source },
    });
  }

  documents(blocks: readonly Block[], maxRowChars: number): void {
    for (const chunk of chunkBlocks(blocks, maxRowChars)) this.document(chunk);
  }

  document(chunk: Block): void {
    const content: RowContent =
      chunk.title === undefined
        ? { type: 'document', text: chunk.text }
        : { type: 'document', text: chunk.text, title: chunk.title };
    const source: Omit<RowSource, 'index'> = {};
    if (chunk.line !== undefined) source.line = chunk.line;
    if (chunk.page !== undefined) source.page = chunk.page;
    this.add(content, source);
  }

  record(value: unknown, place: RecordPlace, maxRowChars: number): void {
    const content = parseRecord(value, place);
    const source: Omit<RowSource, 'index'> = { record: place.record };
    if (place.line !== undefined) source.line = place.line;
    if (content.type === 'document' && content.text.length > maxRowChars) {
      for (const chunk of chunkBlocks(paragraphsOf(normaliseText(content.text)), maxRowChars)) {
        this.add({ ...content, text: chunk.text }, source);
      }
      return;
    }
    this.add(content, source);
  }
}

/** LF line endings and NFC, so the same document typed on two systems gives the same rows. */
function normaliseText(text: string): string {
  return text.replace(/\r\n?/g, '\n').normalize('NFC');
}

// ---------------------------------------------------------------------------------------- JSON

function jsonRecords(text: string, out: RowCollector, maxRowChars: number): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // Many "json" datasets are really JSON Lines: read them as such when the first line is a record.
    const firstLine = text.trimStart().split('\n', 1)[0] ?? '';
    if (text.trim().includes('\n') && parsesAsObject(firstLine)) {
      jsonlRecords(text, out, maxRowChars);
      return;
    }
    throw jsonError(text, error, 0);
  }
  if (Array.isArray(value)) {
    const lines = arrayElementLines(text);
    value.forEach((element: unknown, record) => {
      const line = lines[record];
      out.record(element, line === undefined ? { record } : { record, line }, maxRowChars);
    });
    return;
  }
  out.record(value, { record: 0, line: 1 + leadingNewlines(text) }, maxRowChars);
}

function parsesAsObject(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

function leadingNewlines(text: string): number {
  const lead = /^\s*/.exec(text)?.[0] ?? '';
  return lead.split('\n').length - 1;
}

/** The 1-based line where each element of a top-level JSON array starts (input already parsed). */
function arrayElementLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expectValue = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) line++;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character (never a newline in JSON)
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (depth === 1 && expectValue && c !== 0x5d) {
      lines.push(line);
      expectValue = false;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c && depth === 1) expectValue = true;
  }
  return lines;
}

function jsonlRecords(text: string, out: RowCollector, maxRowChars: number): void {
  const lines = text.split('\n');
  let record = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw jsonError(line, error, i);
    }
    out.record(value, { record, line: i + 1 }, maxRowChars);
    record++;
  }
}

/** FILE_INVALID for a JSON syntax error, with the line (and column, when V8 gives a position). */
function jsonError(text: string, error: unknown, lineOffset: number): OpenLedgerError {
  const reason = error instanceof Error ? error.message : String(error);
  const position = /position (\d+)/.exec(reason)?.[1];
  let line = lineOffset + 1;
  let column: number | undefined;
  if (position !== undefined) {
    const before = text.slice(0, Number(position));
    const lastNewline = before.lastIndexOf('\n');
    line = lineOffset + before.split('\n').length;
    column = Number(position) - lastNewline;
  } else if (lineOffset === 0 && text.includes('\n')) {
    // V8 names no position (e.g. "Unexpected end of JSON input"): the error is at the end.
    line = text.trimEnd().split('\n').length;
  }
  return new OpenLedgerError(
    'FILE_INVALID',
    `Line ${line}${column === undefined ? '' : `, column ${column}`} is not valid JSON: ${reason}`,
    { details: { line, ...(column === undefined ? {} : { column }) } },
  );
}

// ----------------------------------------------------------------------------------------- CSV

interface CsvRow {
  record: string[];
  raw: string;
  info: { lines: number };
}

function csvRecords(text: string, out: RowCollector, maxRowChars: number): void {
  let rows: CsvRow[];
  try {
    rows = parseCsv(text, {
      bom: true,
      info: true,
      raw: true,
      skip_empty_lines: true,
    }) as unknown as CsvRow[];
  } catch (error) {
    const line = (error as { lines?: unknown }).lines;
    const reason = error instanceof Error ? error.message : String(error);
    throw new OpenLedgerError('FILE_INVALID', `The CSV file is malformed: ${reason}`, {
      details: typeof line === 'number' ? { line } : undefined,
    });
  }
  const [header, ...records] = rows;
  if (header === undefined) return;
  const columns = header.record.map((name) => name.trim().toLowerCase());
  const has = (name: string) => columns.includes(name);
  if (!(has('instruction') && has('output')) && !has('text')) {
    throw new OpenLedgerError(
      'FILE_INVALID',
      `The CSV header (${columns.join(', ')}) has neither instruction and output columns nor a text column.`,
      { hint: 'Name the columns instruction, input, output (alpaca) or text (documents).' },
    );
  }
  records.forEach((row, record) => {
    const value = Object.create(null) as Record<string, string>; // header names are data
    columns.forEach((name, i) => {
      const cell = row.record[i];
      if (name !== '' && cell !== undefined && !(name in value)) value[name] = cell;
    });
    // With both column sets present, a row fills one or the other.
    if (
      has('text') &&
      (value.instruction ?? '').trim() === '' &&
      (value.output ?? '').trim() === ''
    ) {
      delete value.instruction;
      delete value.output;
      delete value.input;
    }
    out.record(value, { record, line: csvStartLine(row) }, maxRowChars);
  });
}

function csvStartLine(row: CsvRow): number {
  const raw = row.raw.replace(/^(?:\r?\n)+/, '');
  const newlines = raw.split('\n').length - 1 - (raw.endsWith('\n') ? 1 : 0);
  return row.info.lines - newlines;
}

// ----------------------------------------------------------------------------------------- PDF

interface PdfTextItem {
  str: string;
  hasEOL: boolean;
  transform: number[];
  height: number;
}

let pdfAssets: { cMapUrl: string; standardFontDataUrl: string } | undefined;

/** Local paths to pdf.js's character maps and standard fonts: it reads them from disk, never the network. */
function localPdfAssets(): { cMapUrl: string; standardFontDataUrl: string } {
  if (pdfAssets === undefined) {
    const root = path.dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json'));
    pdfAssets = {
      cMapUrl: path.join(root, 'cmaps') + path.sep,
      standardFontDataUrl: path.join(root, 'standard_fonts') + path.sep,
    };
  }
  return pdfAssets;
}

/**
 * Text of each page by pdf.js (legacy build, the one meant for Node), as paragraphs: a new one
 * starts where the vertical gap between lines is well over a line's height. Lines within a
 * paragraph are joined with a space (or nothing after a hyphen). Fonts are not loaded as font
 * faces and eval is off (untrusted files); there is no worker thread in Node and no fetching.
 */
async function pdfBlocks(bytes: Uint8Array): Promise<Block[]> {
  const { getDocument } = await import('pdfjs-dist/legacy/build/pdf.mjs');
  const task = getDocument({
    data: bytes.slice(), // pdf.js may take ownership of the buffer
    ...localPdfAssets(),
    isEvalSupported: false,
    disableFontFace: true,
    useSystemFonts: false,
    useWorkerFetch: false,
    isOffscreenCanvasSupported: false,
    enableXfa: false,
    stopAtErrors: false,
    verbosity: 0,
  });
  try {
    let document;
    try {
      document = await task.promise;
    } catch (error) {
      const name = (error as { name?: unknown }).name;
      throw new OpenLedgerError(
        'FILE_INVALID',
        name === 'PasswordException'
          ? 'The PDF is password-protected.'
          : `The PDF cannot be read: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    const metadata = await document.getMetadata().catch(() => undefined);
    const info = metadata?.info as { Title?: unknown } | undefined;
    const title =
      typeof info?.Title === 'string' && info.Title.trim() !== '' ? info.Title.trim() : undefined;
    const blocks: Block[] = [];
    for (let pageNumber = 1; pageNumber <= document.numPages; pageNumber++) {
      const page = await document.getPage(pageNumber);
      const content = await page.getTextContent();
      for (const text of pageParagraphs(content.items as PdfTextItem[])) {
        const block: Block = { text: text.normalize('NFC'), page: pageNumber };
        if (title !== undefined) block.title = title;
        blocks.push(block);
      }
      page.cleanup();
    }
    return blocks;
  } finally {
    await task.destroy();
  }
}

function pageParagraphs(items: readonly PdfTextItem[]): string[] {
  const paragraphs: string[] = [];
  let lines: string[] = [];
  let line = '';
  let lineY: number | undefined;
  let lineHeight = 0;
  let previousY: number | undefined;
  let previousHeight = 0;
  const endLine = () => {
    const text = line.replace(/\s+/g, ' ').trim();
    if (text !== '' && lineY !== undefined) {
      const gap = previousY === undefined ? 0 : Math.abs(previousY - lineY);
      const height = Math.max(lineHeight, previousHeight, 1);
      if (previousY !== undefined && gap > 1.6 * height) endParagraph();
      lines.push(text);
      previousY = lineY;
      previousHeight = lineHeight;
    }
    line = '';
    lineY = undefined;
    lineHeight = 0;
  };
  const endParagraph = () => {
    let text = '';
    for (const part of lines) {
      if (text === '') text = part;
      else if (/\p{L}-$/u.test(text)) text += part;
      else text += ` ${part}`;
    }
    if (text !== '') paragraphs.push(text);
    lines = [];
  };
  for (const item of items) {
    if (typeof item.str !== 'string') continue; // marked-content entries
    if (item.str !== '') {
      if (lineY === undefined && item.str.trim() !== '') {
        lineY = item.transform[5];
        lineHeight = item.height;
      }
      line += item.str;
    }
    if (item.hasEOL) endLine();
  }
  endLine();
  endParagraph();
  return paragraphs;
}

// ---------------------------------------------------------------------------------------- DOCX

/**
 * Raw text by mammoth, paragraph by paragraph. The ZIP's central directory is read first, so an
 * archive that would unpack to more than `maxUnpackedBytes` is refused before anything is inflated.
 */
async function docxBlocks(bytes: Uint8Array, maxUnpackedBytes?: number): Promise<Block[]> {
  const limit = maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES;
  const entries = listZipEntries(bytes);
  if (entries === null || !entries.some((entry) => entry.name === 'word/document.xml')) {
    throw new OpenLedgerError('FILE_INVALID', 'The file is not a Word (.docx) document.');
  }
  const unpacked = entries.reduce((sum, entry) => sum + entry.uncompressedSize, 0);
  if (unpacked > limit) {
    throw new OpenLedgerError(
      'PAYLOAD_TOO_LARGE',
      `The DOCX unpacks to ${unpacked} bytes, more than the ${limit} allowed.`,
      { details: { unpacked, limit } },
    );
  }
  const { default: mammoth } = await import('mammoth'); // loaded on first use, like pdf.js
  let text: string;
  try {
    const result = await mammoth.extractRawText({
      buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    });
    text = result.value;
  } catch (error) {
    throw new OpenLedgerError(
      'FILE_INVALID',
      `The DOCX cannot be read: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  // No line numbers: a .docx has none; rows keep their index.
  return paragraphsOf(normaliseText(text)).map((block) => ({ text: block.text }));
}
