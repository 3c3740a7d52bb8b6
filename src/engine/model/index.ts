/**
 * Models of the engine: the Llama-family forward pass (Llama, Mistral, Qwen2; GGUF and llama2.c
 * checkpoints), GPT-2, and `loadModelGguf`, which picks by the GGUF's architecture.
 */
export {
  LLAMA_LAYER_TENSORS,
  LlamaModel,
  loadLlama2cCheckpoint,
  loadLlamaFamilyGguf,
  loadLlamaGguf,
  parseLlama2cCheckpoint,
} from './llama.ts';
export type {
  LlamaConfig,
  LlamaLayerBiases,
  LlamaLayerWeights,
  LlamaModelOptions,
  LlamaWeights,
} from './llama.ts';
export { GPT2_LAYER_TENSORS, Gpt2Model, loadGpt2Gguf } from './gpt2.ts';
export type { Gpt2Config, Gpt2LayerWeights, Gpt2ModelOptions, Gpt2Weights } from './gpt2.ts';
export { BATCH, DecoderModel } from './decoder.ts';
export type {
  DecoderArchitecture,
  DecoderConfig,
  GenerateOptions,
  GenerateResult,
  LanguageModel,
} from './decoder.ts';
export { loadModelGguf } from './load.ts';
export type { GgufModel, LoadModelOptions } from './load.ts';
export { addBias, argmax, causalAttention, gelu, layernorm, matmul, rmsnorm } from './ops.ts';
