/**
 * Benchmark of datanet ingestion: what a text contribution costs on its way in, and how well the
 * near-duplicate check finds planted copies.
 *
 *   node --import tsx bench/datanets-ingest.ts [--mb 50] [--file-mb 5] [--seed 1]
 *     [--part all|throughput|dedup] [--json]
 *   node --import tsx bench/datanets-ingest.ts --render results.json   # JSON from --json to Markdown
 *
 * 1. Throughput. A deterministic English-like corpus of `--mb` MB (10^6 bytes) is written three
 *    ways, in files of about `--file-mb` MB: plain text documents (.txt, hard-wrapped paragraphs),
 *    JSON Lines alpaca records and CSV alpaca records. Each form is ingested in its own child
 *    process (so peak RSS is per form) along the path a contribution takes in the service:
 *    detectFile, extractRows (which hashes each row with rowHash), MinHashIndex.signature, then a
 *    query and an add on one index that grows over the whole form. Each stage is timed on its own.
 *    rowHash, shingling and assessRow are also timed in extra passes, outside the total.
 * 2. Near-duplicates. 2000 distinct paragraphs go into a MinHashIndex; 200 perturbed copies of
 *    random originals (words replaced, deleted or inserted, case and punctuation changed) and 200
 *    hard negatives (new paragraphs on an original's topic words) are queried at several
 *    thresholds, and precision, recall and F1 are counted against the known ground truth.
 *
 * Markdown tables go to stdout (progress to stderr); with --json, one JSON document instead.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  MinHashIndex,
  assessRow,
  detectFile,
  extractRows,
  rowHash,
} from '../src/datanets/ingest/index.ts';

// ------------------------------------------------------------------------------ random numbers

/** mulberry32: a small, fast, seeded 32-bit generator; the same stream on every machine. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }
  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

// ----------------------------------------------------------------------------- English-like text

// The most common English words: the head of the frequency distribution, as in real text.
const FUNCTION_WORDS = (
  'the of and to a in is that for it as was with be by on not he this are or his from at which ' +
  'but have an they you were her she there been one all we their has would when if more no out ' +
  'so said what up its about into than them can only other new some could time these two may ' +
  'then do first any my now such like our over man me even most made after also did many before ' +
  'must through back years where much your way well down should because each just those people ' +
  'how too little state good very make world still own see men work long get here between both ' +
  'life being under never day same another know while last might us great old year off come ' +
  'since against go came right used take three'
).split(' ');

const ONSETS = 'b c d f g h j k l m n p r s t v w br cl cr dr fl gr pl pr sh st th tr ch'.split(
  ' ',
);
const VOWELS = 'a e i o u a e i o ai ea ee oo ou'.split(' ');
const CODAS = ['', '', '', 'n', 'r', 's', 't', 'l', 'nd', 'st', 'rk', 'ng', 'm'];
const SUFFIXES = ['', '', '', '', 's', 's', 'ed', 'ing', 'er', 'ly', 'tion', 'ment', 'ness', 'al'];

/** The corpus's language: ~4,200 word types with Zipf-Mandelbrot frequencies, and topics. */
class Language {
  /** Every word type, most frequent first. */
  readonly words: string[];
  /** Content words (no function words), for topics and for edits. */
  readonly contentWords: string[];
  private readonly cumulative: Float64Array;

  constructor(seed: number, contentWordCount = 4000) {
    const rng = new Rng(seed);
    const seen = new Set(FUNCTION_WORDS);
    const content: string[] = [];
    while (content.length < contentWordCount) {
      let word = '';
      const syllables = rng.int(1, 3);
      for (let s = 0; s < syllables; s++) {
        word += rng.pick(ONSETS) + rng.pick(VOWELS) + (s === syllables - 1 ? rng.pick(CODAS) : '');
      }
      word += rng.pick(SUFFIXES);
      if (word.length >= 3 && !seen.has(word)) {
        seen.add(word);
        content.push(word);
      }
    }
    this.contentWords = content;
    this.words = [...FUNCTION_WORDS, ...content];
    // Zipf-Mandelbrot: p(rank) ~ 1 / (rank + 2.7), close to English word frequencies.
    this.cumulative = new Float64Array(this.words.length);
    let sum = 0;
    for (let rank = 0; rank < this.words.length; rank++) {
      sum += 1 / (rank + 1 + 2.7);
      this.cumulative[rank] = sum;
    }
    for (let rank = 0; rank < this.words.length; rank++) this.cumulative[rank]! /= sum;
  }

  /** A word drawn by frequency. */
  word(rng: Rng): string {
    const u = rng.float();
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return this.words[lo]!;
  }

  /** A topic: a dozen mid-frequency content words that a paragraph on it keeps coming back to. */
  topic(rng: Rng, size = 12): string[] {
    const topic = new Set<string>();
    while (topic.size < size) topic.add(this.contentWords[rng.int(100, 3999)]!);
    return [...topic];
  }

  /**
   * A paragraph of exactly `wordCount` words in sentences of 6 to 24 words: capitals, commas, the
   * odd em dash and quotation, full stops and question marks. Each word is a topic word with
   * probability `topicRate`, otherwise a word drawn by frequency.
   */
  paragraph(rng: Rng, wordCount: number, topic: readonly string[], topicRate = 0.12): string {
    const sentences: string[] = [];
    let left = wordCount;
    while (left > 0) {
      const length = Math.min(left, rng.int(6, 24));
      left -= length;
      const words: string[] = [];
      for (let i = 0; i < length; i++) {
        let word = rng.chance(topicRate) ? rng.pick(topic) : this.word(rng);
        if (i < length - 1 && rng.chance(0.06)) word += ',';
        else if (i > 0 && i < length - 1 && rng.chance(0.008)) word += ' —';
        words.push(word);
      }
      if (length >= 4 && rng.chance(0.05)) {
        const at = rng.int(0, length - 3);
        words[at] = `"${words[at]}`;
        words[at + 2] = `${words[at + 2]!.replace(/,$/, '')}"`;
      }
      let sentence = words.join(' ');
      sentence = sentence[0]!.toUpperCase() + sentence.slice(1);
      const end = rng.float();
      sentences.push(sentence + (end < 0.88 ? '.' : end < 0.96 ? '?' : '!'));
    }
    return sentences.join(' ');
  }

  /** A short instruction for an alpaca record. */
  instruction(rng: Rng, topic: readonly string[]): string {
    const verbs = ['Explain', 'Summarise', 'Describe', 'Rewrite', 'Answer', 'List the points of'];
    const about = Array.from({ length: rng.int(3, 10) }, () =>
      rng.chance(0.4) ? rng.pick(topic) : this.word(rng),
    ).join(' ');
    return `${rng.pick(verbs)} ${about}${rng.chance(0.5) ? '?' : '.'}`;
  }
}

/** Hard-wraps a paragraph at `width` columns, as plain-text books and READMEs often are. */
function wrap(text: string, width = 78): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------- corpus

const FORMS = ['txt', 'jsonl', 'csv'] as const;
type Form = (typeof FORMS)[number];

interface CorpusFile {
  name: string;
  bytes: Uint8Array;
}

const MB = 1_000_000;

/**
 * The corpus as files of one form. The text stream is the same for every form (same seed); only
 * the packaging differs: .txt files of paragraphs 40-200 words long, wrapped and separated by a
 * blank line; alpaca records (instruction, input in half of them, output) as JSONL or CSV.
 */
function generateCorpus(form: Form, totalMb: number, fileMb: number, seed: number): CorpusFile[] {
  const language = new Language(seed);
  const rng = new Rng(seed + 1);
  const topics = Array.from({ length: 256 }, () => language.topic(rng));
  const paragraph = (): string => language.paragraph(rng, rng.int(40, 200), rng.pick(topics));
  const files: CorpusFile[] = [];
  const encoder = new TextEncoder();
  let total = 0;
  while (total < totalMb * MB) {
    const parts: string[] = form === 'csv' ? ['instruction,input,output\n'] : [];
    let size = 0;
    const fileTarget = Math.min(fileMb * MB, totalMb * MB - total);
    while (size < fileTarget) {
      let part: string;
      if (form === 'txt') part = `${wrap(paragraph())}\n\n`;
      else {
        const topic = rng.pick(topics);
        const instruction = language.instruction(rng, topic);
        const input = rng.chance(0.5) ? language.paragraph(rng, rng.int(40, 200), topic) : '';
        const output = language.paragraph(rng, rng.int(40, 200), topic);
        part =
          form === 'jsonl'
            ? `${JSON.stringify({ instruction, input, output })}\n`
            : `${[instruction, input, output].map(csvField).join(',')}\n`;
      }
      parts.push(part);
      size += Buffer.byteLength(part);
    }
    const bytes = encoder.encode(parts.join(''));
    files.push({ name: `corpus-${String(files.length).padStart(3, '0')}.${form}`, bytes });
    total += bytes.byteLength;
  }
  return files;
}

function csvField(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

// ---------------------------------------------------------------------------------- throughput

/** Stages of the contribution path, in order; their times add up to the total. */
const PATH_STAGES = ['detect', 'extract', 'signature', 'query', 'add'] as const;
/** Extra passes, timed apart: parts of a stage above, or work the service does besides. */
type ExtraStage = 'rowHash' | 'shingles' | 'assess';
type Stage = (typeof PATH_STAGES)[number] | ExtraStage;

const STAGE_LABEL: Record<Stage, string> = {
  detect: 'detectFile',
  extract: 'extractRows (parse, chunk, rowHash)',
  signature: 'MinHash signature',
  query: 'LSH query',
  add: 'LSH add',
  rowHash: '↳ of extract: rowHash',
  shingles: '↳ of signature: words + shingles',
  assess: 'assessRow (service, not in total)',
};

interface FormResult {
  form: Form;
  files: number;
  bytes: number;
  rows: number;
  avgRowChars: number;
  /** Rows whose query found a match at the default threshold (0.8): the corpus has none planted. */
  nearMatches: number;
  seconds: Record<Stage, number>;
  totalSeconds: number;
  rowsPerSecond: number;
  mbPerSecond: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
}

const DESCRIPTION =
  'English prose: explanations, summaries and answers on everyday and technical topics. ' +
  'Tags: writing instruction answers prose';

const seconds = (from: number): number => (performance.now() - from) / 1000;
const mib = (bytes: number): number => bytes / 2 ** 20;

async function measureForm(
  form: Form,
  totalMb: number,
  fileMb: number,
  seed: number,
): Promise<FormResult> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  progress(`${form}: generating ${totalMb} MB`);
  const files = generateCorpus(form, totalMb, fileMb, seed);

  // Warm up the JIT on a small file of the same form, with an index of its own.
  const warmIndex = new MinHashIndex();
  for (const file of generateCorpus(form, 0.3, 0.3, seed + 99)) {
    const rows = await extractRows(detectFile(file.name, file.bytes).kind, file.bytes);
    rows.forEach((row, i) => {
      const signature = warmIndex.signature(row.text);
      warmIndex.query(signature);
      warmIndex.add(String(i), signature);
      rowHash(row.content);
      assessRow({ text: row.text, description: DESCRIPTION });
    });
  }
  gc();
  const rssBefore = process.memoryUsage().rss;

  const time: Record<Stage, number> = {
    detect: 0,
    extract: 0,
    signature: 0,
    query: 0,
    add: 0,
    rowHash: 0,
    shingles: 0,
    assess: 0,
  };
  const index = new MinHashIndex();
  let rowCount = 0;
  let chars = 0;
  let nearMatches = 0;
  for (const file of files) {
    progress(`${form}: ${file.name}`);
    let t = performance.now();
    const detected = detectFile(file.name, file.bytes);
    time.detect += seconds(t);

    t = performance.now();
    const rows = await extractRows(detected.kind, file.bytes);
    time.extract += seconds(t);

    t = performance.now();
    const signatures = rows.map((row) => index.signature(row.text));
    time.signature += seconds(t);

    for (let i = 0; i < rows.length; i++) {
      t = performance.now();
      if (index.query(signatures[i]!).length > 0) nearMatches++;
      const t2 = performance.now();
      index.add(`${file.name}#${i}`, signatures[i]!);
      time.add += seconds(t2);
      time.query += (t2 - t) / 1000;
    }

    // Extra passes, outside the total.
    t = performance.now();
    for (const row of rows) rowHash(row.content);
    time.rowHash += seconds(t);
    t = performance.now();
    for (const row of rows) index.shingles(row.text);
    time.shingles += seconds(t);
    t = performance.now();
    for (const row of rows) assessRow({ text: row.text, description: DESCRIPTION });
    time.assess += seconds(t);

    rowCount += rows.length;
    for (const row of rows) chars += row.text.length;
  }
  const bytes = files.reduce((sum, file) => sum + file.bytes.byteLength, 0);
  const totalSeconds = PATH_STAGES.reduce((sum, stage) => sum + time[stage], 0);
  const result: FormResult = {
    form,
    files: files.length,
    bytes,
    rows: rowCount,
    avgRowChars: Math.round(chars / rowCount),
    nearMatches,
    seconds: time,
    totalSeconds,
    rowsPerSecond: rowCount / totalSeconds,
    mbPerSecond: bytes / MB / totalSeconds,
    rssBeforeMiB: mib(rssBefore),
    // maxRSS is in kilobytes (KiB on Linux); it covers the whole process, extra passes included.
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  return result;
}

/** Runs one form in a fresh child process, so its peak RSS is its own. */
function measureFormInChild(form: Form, options: Options): Promise<FormResult> {
  return new Promise((resolve, reject) => {
    const child = fork(
      fileURLToPath(import.meta.url),
      [
        '--child',
        form,
        '--mb',
        String(options.mb),
        '--file-mb',
        String(options.fileMb),
        '--seed',
        String(options.seed),
      ],
      {
        execArgv: [...process.execArgv, '--expose-gc'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      },
    );
    let result: FormResult | undefined;
    child.on('message', (message) => (result = message as FormResult));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 && result !== undefined) resolve(result);
      else reject(new Error(`The ${form} benchmark exited with code ${code}.`));
    });
  });
}

// ----------------------------------------------------------------------------- near-duplicates

interface Query {
  text: string;
  /** Id of the original it copies; undefined for a negative. */
  sourceId?: string;
}

interface DedupPoint {
  threshold: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  /** Null when nothing matched at all. */
  precision: number | null;
  recall: number;
  f1: number | null;
  /** Hard negatives with any match. */
  negativesFlagged: number;
  /** Shared-prefix negatives with any match (not in precision: see measureDedup). */
  prefixNegativesFlagged: number;
}

interface RateRow {
  rate: number;
  copies: number;
  /** Mean exact Jaccard similarity of the copies' shingle sets to their originals'. */
  meanJaccard: number;
  /** Mean MinHash estimate of the same. */
  meanEstimate: number;
  /** Recall of the index at each threshold. */
  recall: number[];
  /** Share of copies whose exact Jaccard reaches each threshold: what a perfect index would find. */
  exactRecall: number[];
}

interface DedupResult {
  originals: number;
  copies: number;
  negatives: number;
  prefixNegatives: number;
  prefixShare: [number, number];
  copyRate: [number, number];
  /** Pairs of originals at estimated Jaccard >= the lowest threshold (the originals are distinct). */
  originalPairsMatched: number;
  /** Each hard negative's highest estimated Jaccard to any original (default index): mean, max. */
  negativeSimilarity: { mean: number; max: number };
  thresholds: number[];
  byShingleSize: { shingleSize: number; points: DedupPoint[] }[];
  rates: RateRow[];
}

const THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.9];
const RATES = [0.01, 0.02, 0.05, 0.1, 0.15];

/**
 * A near-copy: `rate` of the words (rounded, at least one) replaced, deleted or a word inserted
 * before them, one of the three at random; then maybe lower-cased, commas turned into semicolons
 * or dropped, full stops into exclamation marks, and extra spaces. Only the word edits matter to
 * MinHash, which reads lower-cased words; the rest checks that it does not care.
 */
function perturb(text: string, rate: number, rng: Rng, language: Language): string {
  const tokens = text.split(' ');
  const edits = Math.max(1, Math.round(rate * tokens.length));
  const positions = new Set<number>();
  while (positions.size < edits) positions.add(rng.int(0, tokens.length - 1));
  const out: string[] = [];
  tokens.forEach((token, i) => {
    const op = positions.has(i) ? rng.pick(['replace', 'delete', 'insert'] as const) : 'keep';
    const punctuation = /[,.?!"—]*$/.exec(token)?.[0] ?? '';
    if (op === 'keep') out.push(token);
    else if (op === 'replace') out.push(language.word(rng) + punctuation);
    else if (op === 'insert') out.push(language.word(rng), token);
    else if (/[.?!]/.test(punctuation)) out.push('.'); // a deleted last word keeps the sentence end
  });
  let copy = out.join(' ').replace(/ \./g, '.');
  if (rng.chance(0.5)) copy = copy.toLowerCase();
  if (rng.chance(0.5)) copy = copy.replaceAll(',', rng.chance(0.5) ? ';' : '');
  if (rng.chance(0.3)) copy = copy.replaceAll('.', '!');
  if (rng.chance(0.3)) copy = copy.replaceAll(' ', '  ');
  return copy;
}

function exactJaccard(a: Uint32Array, b: Uint32Array): number {
  const set = new Set(a);
  let shared = 0;
  for (const x of b) if (set.has(x)) shared++;
  return shared / (set.size + b.length - shared);
}

function measureDedup(seed: number): DedupResult {
  const language = new Language(seed);
  const rng = new Rng(seed + 2);
  const topics = Array.from({ length: 100 }, () => language.topic(rng));
  const originals = Array.from({ length: 2000 }, (_, i) => {
    const topic = topics[i % topics.length]!;
    return { id: `o${i}`, topic, text: language.paragraph(rng, rng.int(60, 150), topic) };
  });
  const copyRate: [number, number] = [0.05, 0.15];
  const copies: Query[] = Array.from({ length: 200 }, () => {
    const source = rng.pick(originals);
    const rate = copyRate[0] + rng.float() * (copyRate[1] - copyRate[0]);
    return { text: perturb(source.text, rate, rng, language), sourceId: source.id };
  });
  // Hard negatives: a new paragraph on an original's topic words, twice as dense in them.
  const negatives: Query[] = Array.from({ length: 200 }, () => {
    const source = rng.pick(originals);
    return { text: language.paragraph(rng, rng.int(60, 150), source.topic, 0.25) };
  });
  // Beyond the brief, and kept out of precision: distinct rows that share a long prefix (the same
  // instruction with another answer). An original's first 40-80% of words, then new text.
  const prefixShare: [number, number] = [0.4, 0.8];
  const prefixNegatives = Array.from({ length: 200 }, () => {
    const source = rng.pick(originals);
    const words = source.text.split(' ');
    const share = prefixShare[0] + rng.float() * (prefixShare[1] - prefixShare[0]);
    const keep = Math.round(share * words.length);
    const rest = language.paragraph(rng, words.length - keep, source.topic);
    return `${words.slice(0, keep).join(' ')} ${rest}`;
  });

  let originalPairsMatched = 0;
  const defaultShingleSize = new MinHashIndex().shingleSize;
  const byShingleSize = [defaultShingleSize, 5].map((shingleSize) => {
    const index = new MinHashIndex({ shingleSize });
    for (const original of originals) {
      const signature = index.signature(original.text);
      originalPairsMatched +=
        shingleSize === defaultShingleSize ? index.query(signature, THRESHOLDS[0]).length : 0;
      index.add(original.id, signature);
    }
    const points = THRESHOLDS.map((threshold) => {
      let truePositives = 0;
      let falsePositives = 0;
      let falseNegatives = 0;
      let negativesFlagged = 0;
      for (const query of [...copies, ...negatives]) {
        const matches = index.query(index.signature(query.text), threshold);
        const found = matches.some((match) => match.id === query.sourceId);
        truePositives += found ? 1 : 0;
        falsePositives += matches.length - (found ? 1 : 0);
        if (query.sourceId !== undefined && !found) falseNegatives++;
        if (query.sourceId === undefined && matches.length > 0) negativesFlagged++;
      }
      const prefixNegativesFlagged = prefixNegatives.filter(
        (text) => index.query(index.signature(text), threshold).length > 0,
      ).length;
      const flagged = truePositives + falsePositives;
      const precision = flagged === 0 ? null : truePositives / flagged;
      const recall = truePositives / (truePositives + falseNegatives);
      const f1 =
        precision === null
          ? null
          : precision + recall === 0
            ? 0
            : (2 * precision * recall) / (precision + recall);
      return {
        threshold,
        truePositives,
        falsePositives,
        falseNegatives,
        precision,
        recall,
        f1,
        negativesFlagged,
        prefixNegativesFlagged,
      };
    });
    return { shingleSize, points };
  });

  // Recall by perturbation rate, default index; exact Jaccard shows what the threshold allows.
  const index = new MinHashIndex();
  const signatures = new Map(originals.map((o) => [o.id, index.signature(o.text)]));
  for (const [id, signature] of signatures) index.add(id, signature);
  const closest = negatives.map((negative) => {
    const signature = index.signature(negative.text);
    let best = 0;
    for (const other of signatures.values()) {
      best = Math.max(best, MinHashIndex.similarity(signature, other));
    }
    return best;
  });
  const negativeSimilarity = {
    mean: closest.reduce((sum, x) => sum + x, 0) / closest.length,
    max: Math.max(...closest),
  };
  const rates = RATES.map((rate): RateRow => {
    const found = THRESHOLDS.map(() => 0);
    const exact = THRESHOLDS.map(() => 0);
    let jaccardSum = 0;
    let estimateSum = 0;
    const count = 200;
    for (let k = 0; k < count; k++) {
      const source = rng.pick(originals);
      const text = perturb(source.text, rate, rng, language);
      const signature = index.signature(text);
      const jaccard = exactJaccard(index.shingles(source.text), index.shingles(text));
      jaccardSum += jaccard;
      estimateSum += MinHashIndex.similarity(signature, signatures.get(source.id)!);
      THRESHOLDS.forEach((threshold, t) => {
        if (index.query(signature, threshold).some((m) => m.id === source.id)) found[t]!++;
        if (jaccard >= threshold) exact[t]!++;
      });
    }
    return {
      rate,
      copies: count,
      meanJaccard: jaccardSum / count,
      meanEstimate: estimateSum / count,
      recall: found.map((n) => n / count),
      exactRecall: exact.map((n) => n / count),
    };
  });

  return {
    originals: originals.length,
    copies: copies.length,
    negatives: negatives.length,
    prefixNegatives: prefixNegatives.length,
    prefixShare,
    copyRate,
    originalPairsMatched,
    negativeSimilarity,
    thresholds: THRESHOLDS,
    byShingleSize,
    rates,
  };
}

// ---------------------------------------------------------------------------------- reporting

interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  loadAverage: number[];
}

function machine(): Machine {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg().map((load) => Number(load.toFixed(2))),
  };
}

function table(header: string[], rows: (string | number)[][]): string {
  const lines = [header, header.map(() => '---'), ...rows.map((row) => row.map(String))];
  return lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

const f = (value: number, digits = 2): string => value.toFixed(digits);
const int = (value: number): string => Math.round(value).toLocaleString('en-US');

function throughputMarkdown(results: FormResult[]): string {
  const overview = table(
    [
      'form',
      'files',
      'MB',
      'rows',
      'chars/row',
      'total s',
      'rows/s',
      'MB/s',
      'RSS before (MiB)',
      'peak RSS (MiB)',
    ],
    results.map((r) => [
      r.form,
      r.files,
      f(r.bytes / MB, 1),
      int(r.rows),
      int(r.avgRowChars),
      f(r.totalSeconds),
      int(r.rowsPerSecond),
      f(r.mbPerSecond),
      int(r.rssBeforeMiB),
      int(r.peakRssMiB),
    ]),
  );
  const stages: Stage[] = [
    'detect',
    'extract',
    'rowHash',
    'signature',
    'shingles',
    'query',
    'add',
    'assess',
  ];
  const cell = (r: FormResult, stage: Stage) =>
    `${f(r.seconds[stage])} s (${Math.round((100 * r.seconds[stage]) / r.totalSeconds)}%, ${int(r.bytes / MB / r.seconds[stage])} MB/s)`;
  const breakdown = table(
    ['stage', ...results.map((r) => r.form)],
    [
      ...stages.map((stage) => [STAGE_LABEL[stage], ...results.map((r) => cell(r, stage))]),
      ['**total (path)**', ...results.map((r) => `**${f(r.totalSeconds)} s**`)],
    ],
  );
  const matches = results.map((r) => `${r.form} ${r.nearMatches}`).join(', ');
  return [
    '### Throughput',
    '',
    overview,
    '',
    '### Where the time goes',
    '',
    'Seconds per stage, share of the path total, and the stage alone in MB/s of input. Rows marked ↳ ' +
      'are parts of the stage above, timed in a separate pass; assessRow is what the service runs ' +
      'per row besides (quality and relevance), timed apart and not in the total.',
    '',
    breakdown,
    '',
    `Rows matching an earlier row at 0.8 (none planted): ${matches}.`,
  ].join('\n');
}

function dedupMarkdown(d: DedupResult): string {
  const sections = d.byShingleSize.map(({ shingleSize, points }) => {
    const label =
      shingleSize === new MinHashIndex().shingleSize
        ? `default index (${shingleSize}-word shingles)`
        : `${shingleSize}-word shingles`;
    return [
      `#### ${label}`,
      '',
      table(
        [
          'threshold',
          'TP',
          'FP',
          'FN',
          'precision',
          'recall',
          'F1',
          'hard negatives flagged',
          'shared-prefix flagged',
        ],
        points.map((p) => [
          p.threshold === 0.8 ? '**0.8** (default)' : f(p.threshold, 1),
          p.truePositives,
          p.falsePositives,
          p.falseNegatives,
          p.precision === null ? 'n/a' : f(p.precision),
          f(p.recall),
          p.f1 === null ? 'n/a' : f(p.f1),
          `${p.negativesFlagged} / ${d.negatives}`,
          `${p.prefixNegativesFlagged} / ${d.prefixNegatives}`,
        ]),
      ),
    ].join('\n');
  });
  const rates = table(
    [
      'words edited',
      'exact Jaccard',
      'MinHash estimate',
      ...d.thresholds.map((t) => `recall @${f(t, 1)}`),
    ],
    d.rates.map((r) => [
      percent(r.rate),
      f(r.meanJaccard),
      f(r.meanEstimate),
      ...r.recall.map((recall, t) => `${f(recall)} (${f(r.exactRecall[t]!)})`),
    ]),
  );
  return [
    '### Near-duplicate detection',
    '',
    `${d.originals} distinct paragraphs (60-150 words, 100 topics) are indexed, then queried:`,
    '',
    `- ${d.copies} planted copies of random originals, ${percent(d.copyRate[0])}-${percent(d.copyRate[1])} ` +
      'of words replaced, deleted or inserted, and case and punctuation changed. A true positive is ' +
      'a copy whose original is among the matches; every other match is a false positive.',
    `- ${d.negatives} hard negatives: new paragraphs on an original's topic words. Their highest ` +
      `estimated similarity to any original: mean ${f(d.negativeSimilarity.mean)}, max ` +
      `${f(d.negativeSimilarity.max)}. Any match is a false positive.`,
    `- ${d.prefixNegatives} shared-prefix negatives, beyond the brief and not in precision: an ` +
      `original's first ${percent(d.prefixShare[0])}-${percent(d.prefixShare[1])} of words, then new ` +
      'text (like one instruction with another answer).',
    '',
    `Pairs of distinct originals matching each other at ${f(d.thresholds[0]!, 1)}: ` +
      `${d.originalPairsMatched}.`,
    '',
    ...sections.flatMap((section) => [section, '']),
    '#### Recall by perturbation rate (default index)',
    '',
    `${d.rates[0]?.copies ?? 0} copies per rate. In parentheses: the share of copies whose exact ` +
      'shingle Jaccard reaches the threshold, i.e. what a perfect estimator would find.',
    '',
    rates,
  ].join('\n');
}

const percent = (share: number): string => `${Math.round(share * 100)}%`;

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

// ---------------------------------------------------------------------------------------- main

interface Options {
  mb: number;
  fileMb: number;
  seed: number;
  part: 'all' | 'throughput' | 'dedup';
  json: boolean;
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number.`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string' },
      'file-mb': { type: 'string' },
      seed: { type: 'string' },
      part: { type: 'string' },
      json: { type: 'boolean', default: false },
      render: { type: 'string' },
      child: { type: 'string' },
    },
  });
  const part = values.part ?? 'all';
  if (part !== 'all' && part !== 'throughput' && part !== 'dedup') {
    throw new Error('--part must be all, throughput or dedup.');
  }
  const options: Options = {
    mb: positive('mb', values.mb, 50),
    fileMb: positive('file-mb', values['file-mb'], 5),
    seed: Math.trunc(positive('seed', values.seed, 1)),
    part,
    json: values.json,
  };

  if (values.render !== undefined) {
    const report = JSON.parse(readFileSync(values.render, 'utf8')) as Report;
    process.stdout.write(reportMarkdown(report));
    return;
  }
  if (values.child !== undefined) {
    const form = values.child as Form;
    if (!FORMS.includes(form)) throw new Error(`Unknown form ${form}.`);
    const result = await measureForm(form, options.mb, options.fileMb, options.seed);
    process.send?.(result);
    return;
  }

  const started = new Date();
  const env = machine();
  const throughput: FormResult[] = [];
  if (options.part !== 'dedup') {
    for (const form of FORMS) throughput.push(await measureFormInChild(form, options));
  }
  let dedup: DedupResult | undefined;
  if (options.part !== 'throughput') {
    progress('near-duplicates');
    dedup = measureDedup(options.seed);
  }

  const report: Report = { date: started.toISOString(), machine: env, options, throughput, dedup };
  process.stdout.write(
    options.json ? `${JSON.stringify(report, null, 2)}\n` : reportMarkdown(report),
  );
}

interface Report {
  date: string;
  machine: Machine;
  options: Options;
  throughput: FormResult[];
  dedup?: DedupResult;
}

function reportMarkdown({ date, machine: env, options, throughput, dedup }: Report): string {
  const out = [
    `## Datanet ingestion (${date.slice(0, 10)})`,
    '',
    `${throughput.length > 0 ? `\`--mb ${options.mb} --file-mb ${options.fileMb}\`, ` : ''}` +
      `\`--seed ${options.seed}\`; ${env.cpus} CPUs (${env.cpuModel}), ${env.memoryGiB} GiB, ` +
      `Node ${env.node}, load average at start ${env.loadAverage.join(' / ')}.`,
  ];
  if (throughput.length > 0) out.push('', throughputMarkdown(throughput));
  if (dedup) out.push('', dedupMarkdown(dedup));
  return `${out.join('\n')}\n`;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
