/** The kinds of file a datanet accepts, named by extension and confirmed by content. */
export type FileKind = 'txt' | 'md' | 'pdf' | 'docx' | 'json' | 'jsonl' | 'csv' | 'image' | 'audio';

export type Modality = 'text' | 'image' | 'audio';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** One training example, in one of three shapes; its canonical JSON is what `rowHash` hashes. */
export type RowContent =
  | { type: 'document'; text: string; title?: string }
  | { type: 'instruction'; instruction: string; input?: string; output: string }
  | { type: 'chat'; messages: ChatMessage[] };

/** Where in the contributed file a row came from, so it stays traceable to its source. */
export interface RowSource {
  /** 0-based position of the row among the file's rows. */
  index: number;
  /** 0-based position of the record the row came from (json: the array element; jsonl, csv). */
  record?: number;
  /** 1-based line where the row starts (txt, md, jsonl, csv). */
  line?: number;
  /** 1-based page where the row starts (pdf). */
  page?: number;
}

export interface ExtractedRow {
  content: RowContent;
  /** The row flattened to plain text, for dedup, quality and relevance. */
  text: string;
  /** `rowHash(content)`: sha256 hex of the content's canonical JSON. */
  hash: string;
  source: RowSource;
}

export interface ExtractOptions {
  /** Documents are cut into rows of at most this many characters (UTF-16 code units). */
  maxRowChars?: number;
  /** Refuse files with more rows than this (PAYLOAD_TOO_LARGE). */
  maxRows?: number;
  /** Refuse DOCX files whose unpacked entries add up to more than this many bytes (zip bombs). */
  maxUnpackedBytes?: number;
}

export const DEFAULT_MAX_ROW_CHARS = 4000;
export const DEFAULT_MAX_UNPACKED_BYTES = 256 * 1024 * 1024;
