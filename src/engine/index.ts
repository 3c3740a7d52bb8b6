/**
 * The engine: GGUF files, tokenizers and the model forward passes the trainer, the attribution
 * and the server build on.
 */
export * from './gguf/index.ts';
export * from './kernels/index.ts';
export * from './model/index.ts';
export * from './tokenizer/index.ts';
export * from './train/index.ts';
