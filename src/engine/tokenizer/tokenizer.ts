/**
 * What the models need of a tokenizer, whichever kind the GGUF file has, and the choice of kind
 * from its metadata (`tokenizer.ggml.model`, as llama.cpp chooses).
 */
import { OpenLedgerError } from '../../errors.ts';
import { ggufString } from '../gguf/index.ts';
import type { GgufMetadata } from '../gguf/index.ts';
import { BpeTokenizer } from './bpe.ts';
import { SentencePieceTokenizer } from './sentencepiece.ts';
import type { EncodeOptions } from './sentencepiece.ts';

export interface Tokenizer {
  readonly vocabSize: number;
  /** -1 when the vocabulary has none. */
  readonly bosId: number;
  readonly eosId: number;
  /** Whether `encode` adds BOS by default. */
  readonly addBos: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, options?: { special?: boolean }): string;
}

/**
 * The tokenizer a GGUF file describes: SentencePiece for `tokenizer.ggml.model` "llama",
 * byte-level BPE for "gpt2"; undefined when the file has no vocabulary. Another kind is
 * GGUF_UNSUPPORTED.
 */
export function tokenizerFromGguf(
  meta: GgufMetadata,
): SentencePieceTokenizer | BpeTokenizer | undefined {
  if (!meta.has('tokenizer.ggml.tokens')) return undefined;
  const model = ggufString(meta, 'tokenizer.ggml.model', 'llama');
  if (model === 'llama') return SentencePieceTokenizer.fromGguf(meta);
  if (model === 'gpt2') return BpeTokenizer.fromGguf(meta);
  throw new OpenLedgerError(
    'GGUF_UNSUPPORTED',
    `tokenizer model '${model}' is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE))`,
    { details: { model } },
  );
}
