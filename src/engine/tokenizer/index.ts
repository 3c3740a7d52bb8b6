/**
 * Tokenizers of the engine: SentencePiece-BPE (Llama) from GGUF metadata or llama2.c's
 * `tokenizer.bin`, and GPT-2 style byte-level BPE (GPT-2, Qwen2, Llama 3) from GGUF metadata.
 */
export {
  SPACE_MARKER,
  SentencePieceTokenizer,
  TOKEN_TYPE,
  loadLlama2cTokenizer,
  parseLlama2cTokenizer,
} from './sentencepiece.ts';
export type { DecodeOptions, EncodeOptions, SentencePieceVocab } from './sentencepiece.ts';
export { BpeTokenizer, byteChar } from './bpe.ts';
export type { BpeDecodeOptions, BpeEncodeOptions, BpePreTokenizer, BpeVocab } from './bpe.ts';
export { tokenizerFromGguf } from './tokenizer.ts';
export * from './wordpiece.ts';
export type { Tokenizer } from './tokenizer.ts';
