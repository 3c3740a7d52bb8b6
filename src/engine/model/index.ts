/** Models of the engine: the Llama forward pass (GGUF and llama2.c checkpoints). */
export {
  LLAMA_LAYER_TENSORS,
  LlamaModel,
  argmax,
  loadLlama2cCheckpoint,
  loadLlamaGguf,
  matmul,
  parseLlama2cCheckpoint,
  rmsnorm,
} from './llama.ts';
export type {
  GenerateOptions,
  GenerateResult,
  LlamaConfig,
  LlamaLayerWeights,
  LlamaModelOptions,
  LlamaWeights,
} from './llama.ts';
