/**
 * The RAG embedder: a BERT-family GGUF run by llama.cpp (node-llama-cpp's embedding context, mean
 * or CLS pooling as the file says). By default the built-in static model (build.ts); any
 * BERT-family embedding GGUF (all-MiniLM-L6-v2, bge-small, nomic-embed-text, …) works through the
 * same code: `--embedding-model` / `OPENLEDGER_EMBEDDING_MODEL`.
 *
 * - Vectors keep the first `openledger.embedding.dimensions` outputs when the file has that key
 *   (the built-in model's sink dimensions are dropped), else all of them, and are L2-normalised.
 * - Texts longer than `maxTokens` are cut to their first `maxTokens` tokens.
 * - `tokenSpans` is exact (the model's own WordPiece, wordpiece.ts) for `tokenizer.ggml.model`
 *   "bert", and an approximation otherwise (see `approximateSpans`).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { getLlama, type Llama, type LlamaEmbeddingContext, type LlamaModel } from 'node-llama-cpp';
import { ggufNumber, ggufString, readGguf } from '../../engine/gguf/index.ts';
import type { GgufMetadata } from '../../engine/gguf/index.ts';
import { WordPieceTokenizer } from '../../engine/tokenizer/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { Embedder, TokenSpan } from '../types.ts';
import { builtinEmbedderPath, EMBEDDING_DIMENSIONS_KEY } from './build.ts';

export {
  BUILTIN_EMBEDDER_NAME,
  EMBEDDING_DIMENSIONS_KEY,
  buildBuiltinEmbedder,
  builtinEmbedderPath,
  readEmbedderCard,
} from './build.ts';
export type { EmbedderBuildOptions, EmbedderBuildResult, EmbedderCard } from './build.ts';

export interface OpenEmbedderOptions {
  /** A BERT-family GGUF (default: the built-in `models/openledger-embed-static.gguf`). */
  file?: string;
  /** llama.cpp threads (always passed to the embedding context). */
  threads: number;
  /** The node's llama.cpp binding, shared with the serving engine (default: a private one). */
  llama?: Llama;
}

/** Longest input the context takes; a model trained on more is still run at this size. */
const MAX_CONTEXT = 512;
/** Texts embedded between two yields to the event loop. */
const BATCH = 32;

/**
 * Architectures llama.cpp runs as encoders with pooling. A file of another architecture is still
 * taken when it declares a pooling type (`<arch>.pooling_type`).
 */
const ENCODER_ARCHITECTURES = new Set([
  'bert',
  'nomic-bert',
  'nomic-bert-moe',
  'jina-bert-v2',
  'jina-bert-v3',
  'modern-bert',
  'neo-bert',
  'eurobert',
  'gemma-embedding',
  't5encoder',
]);

/** Opens an embedding model (the built-in one by default). */
export async function openEmbedder(options: OpenEmbedderOptions): Promise<Embedder> {
  const builtin = options.file === undefined;
  const file = path.resolve(options.file ?? builtinEmbedderPath());
  if (!Number.isSafeInteger(options.threads) || options.threads < 1) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `threads must be a positive integer, not ${options.threads}`,
    );
  }
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    throw new OpenLedgerError(
      'EMBEDDER_MISSING',
      builtin
        ? `The built-in embedding model is not built (${file} is missing).`
        : `The embedding model ${file} does not exist.`,
      {
        hint: builtin
          ? 'Run `npm run build:model` (or `openledger models build-embedder`) in the package folder.'
          : 'Check --embedding-model / OPENLEDGER_EMBEDDING_MODEL: it names a BERT-family GGUF file.',
        details: { file },
      },
    );
  }
  const header = await readGguf(file).catch((error: unknown) => {
    throw new OpenLedgerError('GGUF_INVALID', `${file} is not a readable GGUF file`, {
      cause: error,
      details: { file, reason: (error as Error).message },
    });
  });
  const meta = header.metadata;
  const architecture = ggufString(meta, 'general.architecture', '');
  if (!ENCODER_ARCHITECTURES.has(architecture) && !meta.has(`${architecture}.pooling_type`)) {
    throw new OpenLedgerError(
      'MODEL_UNSUPPORTED',
      `${path.basename(file)} is a '${architecture || 'unknown'}' model, not an embedding model (BERT family)`,
      {
        hint: 'Name a BERT-family embedding GGUF, e.g. all-MiniLM-L6-v2, bge-small-en or nomic-embed-text.',
        details: { file, architecture },
      },
    );
  }
  const embeddingLength = ggufNumber(meta, `${architecture}.embedding_length`);
  const dimensions = meta.has(EMBEDDING_DIMENSIONS_KEY)
    ? ggufNumber(meta, EMBEDDING_DIMENSIONS_KEY)
    : embeddingLength;
  if (!Number.isSafeInteger(dimensions) || dimensions < 1 || dimensions > embeddingLength) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `${EMBEDDING_DIMENSIONS_KEY} is ${dimensions}; expected 1 … ${embeddingLength}`,
      { details: { file } },
    );
  }
  const name = ggufString(meta, 'general.name', '') || path.basename(file, '.gguf');
  const spans = spanFunction(meta);
  const sha256 = await fileSha256(file);

  const ownLlama = options.llama === undefined;
  const llama =
    options.llama ??
    (await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: options.threads,
      logLevel: 'error' as never,
    }));
  let model: LlamaModel | undefined;
  try {
    model = await llama.loadModel({ modelPath: file });
    const contextSize = Math.min(model.trainContextSize, MAX_CONTEXT);
    const context = await model.createEmbeddingContext({
      contextSize,
      batchSize: contextSize,
      threads: options.threads,
    });
    return new LlamaEmbedder({
      name,
      sha256,
      dimensions,
      // [CLS] and [SEP] take two positions, and node-llama-cpp wants the input shorter than the
      // context
      maxTokens: contextSize - 3,
      spans,
      model,
      context,
      llama: ownLlama ? llama : undefined,
    });
  } catch (error) {
    await model?.dispose().catch(() => undefined);
    if (ownLlama) await llama.dispose().catch(() => undefined);
    throw new OpenLedgerError(
      'MODEL_UNSUPPORTED',
      `llama.cpp could not open ${path.basename(file)} as an embedding model: ${(error as Error).message}`,
      { cause: error, details: { file } },
    );
  }
}

class LlamaEmbedder implements Embedder {
  readonly name: string;
  readonly sha256: string;
  readonly dimensions: number;
  readonly maxTokens: number;
  private readonly spans: (text: string) => TokenSpan[];
  private readonly model: LlamaModel;
  private readonly context: LlamaEmbeddingContext;
  private readonly llama: Llama | undefined;
  private closed: Promise<void> | undefined;

  constructor(parts: {
    name: string;
    sha256: string;
    dimensions: number;
    maxTokens: number;
    spans: (text: string) => TokenSpan[];
    model: LlamaModel;
    context: LlamaEmbeddingContext;
    llama: Llama | undefined;
  }) {
    this.name = parts.name;
    this.sha256 = parts.sha256;
    this.dimensions = parts.dimensions;
    this.maxTokens = parts.maxTokens;
    this.spans = parts.spans;
    this.model = parts.model;
    this.context = parts.context;
    this.llama = parts.llama;
  }

  tokenSpans(text: string): TokenSpan[] {
    return this.spans(text);
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i++) {
      signal?.throwIfAborted();
      if (this.closed) {
        throw new OpenLedgerError('ENGINE_UNAVAILABLE', `the embedder ${this.name} is closed`);
      }
      // let other work in between batches (the tokenizer runs on this thread)
      if (i > 0 && i % BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
      const tokens = this.model.tokenize(texts[i] ?? '').slice(0, this.maxTokens);
      if (tokens.length === 0) {
        out.push(new Float32Array(this.dimensions));
        continue;
      }
      let vector: readonly number[];
      try {
        vector = (await this.context.getEmbeddingFor(tokens)).vector;
      } catch (error) {
        throw new OpenLedgerError(
          'ENGINE_UNAVAILABLE',
          `llama.cpp could not embed a text with ${this.name}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      out.push(normalized(vector, this.dimensions));
    }
    return out;
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.context.dispose().catch(() => undefined);
      await this.model.dispose().catch(() => undefined);
      await this.llama?.dispose().catch(() => undefined);
    })();
    return this.closed;
  }
}

/** The first `dimensions` values at unit length (all zeros when they are all zero). */
function normalized(vector: readonly number[], dimensions: number): Float32Array {
  let sum = 0;
  for (let i = 0; i < dimensions; i++) sum += (vector[i] ?? 0) ** 2;
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  const out = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i++) out[i] = (vector[i] ?? 0) * scale;
  return out;
}

/** How `tokenSpans` cuts a text for this file's vocabulary. */
function spanFunction(meta: GgufMetadata): (text: string) => TokenSpan[] {
  if (ggufString(meta, 'tokenizer.ggml.model', '') === 'bert') {
    // llama.cpp's rule for long words (no [UNK] cut-off), so counts equal llama.cpp's
    const wordpiece = WordPieceTokenizer.fromGguf(meta, { maxWordChars: Infinity });
    return (text) => wordpiece.tokenSpans(text);
  }
  return approximateSpans;
}

/**
 * For vocabularies other than WordPiece (BPE, SentencePiece): one span per run of letters, digits
 * and marks, and one per other non-space character. This is an approximation, not the model's
 * tokens: subword vocabularies cut rare words into several tokens, so a chunk may hold more tokens
 * than counted here (chunks stay well under `maxTokens`, and longer inputs are cut, not refused).
 */
export function approximateSpans(text: string): TokenSpan[] {
  const spans: TokenSpan[] = [];
  for (const match of text.matchAll(/[\p{L}\p{N}\p{M}]+|[^\s\p{L}\p{N}\p{M}]/gu)) {
    spans.push({ start: match.index, end: match.index + match[0].length });
  }
  return spans;
}

/** sha256 (hex) of a file, streamed. */
async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
