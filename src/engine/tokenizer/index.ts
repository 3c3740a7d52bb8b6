/**
 * Tokenizers of the engine: SentencePiece-BPE (Llama) from GGUF metadata or llama2.c's
 * `tokenizer.bin`.
 */
export {
  SPACE_MARKER,
  SentencePieceTokenizer,
  TOKEN_TYPE,
  loadLlama2cTokenizer,
  parseLlama2cTokenizer,
} from './sentencepiece.ts';
export type { DecodeOptions, EncodeOptions, SentencePieceVocab } from './sentencepiece.ts';
