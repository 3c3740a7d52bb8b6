/**
 * The shapes shared by the RAG modules: the embedder, chunks, retrieved sources and citations.
 * Retrieval (store, indexer, retrieve) produces `Source`s; answers (prompt, cite, contextcite)
 * consume them; the receipt's RAG channel records them by hash, never by text.
 */

/** A token's characters in the text it came from: `text.slice(start, end)`. */
export interface TokenSpan {
  start: number;
  end: number;
}

/** A BERT-family embedding model run by llama.cpp. */
export interface Embedder {
  /** Shown in /healthz and the docs: the GGUF's `general.name` or its file name. */
  readonly name: string;
  /** sha256 of the GGUF file: index rows are keyed by it, so switching models re-indexes. */
  readonly sha256: string;
  readonly dimensions: number;
  /** Longest input in tokens (the model's positions); chunks stay under it. */
  readonly maxTokens: number;
  /** The embedder's own tokens as character spans (chunking counts these). */
  tokenSpans(text: string): TokenSpan[];
  /** One L2-normalised vector per text, in order. */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** A piece of a row's text, cut by `chunkText`. */
export interface ChunkSpan {
  /** Position of the chunk within its row. */
  ord: number;
  charStart: number;
  charEnd: number;
  /** Embedder tokens in the chunk. */
  tokens: number;
}

/** A retrieved chunk, numbered as a source of an answer (n starts at 1). */
export interface Source {
  n: number;
  chunkId: number;
  datanetId: number;
  /** First datanet version that holds the row. */
  version: number;
  rowId: string;
  rowHash: string;
  contributor: string;
  charStart: number;
  charEnd: number;
  text: string;
  /** Reciprocal-rank-fusion score (higher is better). */
  score: number;
}

/** An `[n]` in an answer, after the support check. */
export interface Citation {
  /** The source number. */
  n: number;
  /** Index of the answer sentence that carries it. */
  sentence: number;
  /** Whether the source supports the sentence (unsupported citations are dropped from answers). */
  supported: boolean;
}
