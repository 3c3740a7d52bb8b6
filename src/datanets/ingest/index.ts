/**
 * Ingestion and validation of datanet contributions, with no database and no network: what a file
 * is, its rows, each row's hash, quality, relevance and near duplicates.
 */
export type {
  ChatMessage,
  ChatRole,
  ExtractOptions,
  ExtractedRow,
  FileKind,
  Modality,
  RowContent,
  RowSource,
} from './types.ts';
export { DEFAULT_MAX_ROW_CHARS, DEFAULT_MAX_UNPACKED_BYTES } from './types.ts';
export { ACCEPTED_EXTENSIONS, detectFile, type DetectedFile } from './detect.ts';
export { extractRows } from './extract.ts';
export { splitLong } from './chunk.ts';
export { RECORD_FORMS, flattenContent, parseRecord, toChatMessages } from './records.ts';
export { canonicalJson, rowHash } from './hash.ts';
export { MIN_TEXT_CHARS, textQuality, type QualityResult } from './quality.ts';
export { MinHashIndex, type MinHashOptions, type NearMatch } from './minhash.ts';
export { relevance, terms, type RelevanceOptions } from './relevance.ts';
export { assessRow, type AssessInput, type AssessOptions, type Assessment } from './assess.ts';
