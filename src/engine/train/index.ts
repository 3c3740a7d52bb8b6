/**
 * LoRA training for the llama architecture: the adapter and its GGUF files, the training forward
 * and backward passes, AdamW with warmup + cosine, and a small training loop.
 */
export { Prng } from './prng.ts';
export {
  LORA_TARGETS,
  LORA_TARGET_WEIGHT,
  LoraAdapter,
  checkLoraConfig,
  loraTargetShape,
  mergeLora,
} from './lora.ts';
export type { LoraConfig, LoraPair, LoraParameter, LoraTarget } from './lora.ts';
export { loadLoraGguf, loraGgufInput, saveLoraGguf } from './gguf.ts';
export type { LoadLoraOptions, SaveLoraOptions } from './gguf.ts';
export {
  attentionBackward,
  attentionForward,
  crossEntropyBackward,
  crossEntropyForward,
  matmulBackward,
  matmulForward,
  rmsnormBackward,
  rmsnormForward,
  ropeBackward,
  ropeForward,
  ropeTable,
  swigluBackward,
  swigluForward,
} from './kernels.ts';
export type { Floats, RopeTable } from './kernels.ts';
export { LoraTrainingModel, makeTrainBatch } from './training-model.ts';
export type {
  ForwardOptions,
  ForwardResult,
  LoraGradPair,
  TrainBatch,
  TrainExample,
  TrainingModelOptions,
} from './training-model.ts';
export { AdamW, checkLrSchedule, clipGradNorm, learningRateAt } from './optim.ts';
export type { AdamWOptions, LrSchedule } from './optim.ts';
export { LoraTrainer, trainLora } from './train.ts';
export type { LoraTrainerOptions, TrainLoraOptions, TrainStepResult } from './train.ts';
