/**
 * Hugging Face model folders: conversion of LlamaForCausalLM and Qwen2ForCausalLM folders (config.json, safetensors,
 * tokenizer.json) to GGUF as llama.cpp's convert_hf_to_gguf does, its inverse, and the q/k
 * row permutation between the two layouts.
 */
export {
  HF_ARCHITECTURES,
  HF_LLAMA_ARCHITECTURES,
  convertHfFolder,
  hfShards,
  isHfFolder,
} from './convert.ts';
export type { ConvertHfOptions, ConvertHfResult, HfLlamaConfig } from './convert.ts';
export { ggufToHfFolder } from './export.ts';
export { ggufToHfRows, hfToGgufRows } from './permute.ts';
export {
  bpeTokenizerJsonFromGguf,
  ggufBpeVocabFromTokenizerJson,
  ggufVocabFromTokenizerJson,
  tokenizerJsonFromGguf,
} from './tokenizer.ts';
export type { TokenizerConfig } from './tokenizer.ts';
