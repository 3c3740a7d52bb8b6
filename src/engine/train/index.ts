/**
 * Training for the llama family (Llama, Mistral, Qwen2) and GPT-2: LoRA adapters (on float or quantized bases) and their
 * GGUF files, full training of every weight, the forward and backward passes, AdamW with
 * warmup + cosine, and a small LoRA training loop.
 */
export { Prng } from './prng.ts';
export {
  ALL_LORA_TARGETS,
  GPT2_LORA_TARGETS,
  GPT2_LORA_TARGET_WEIGHT,
  LORA_TARGETS,
  LORA_TARGET_WEIGHT,
  LoraAdapter,
  checkLoraConfig,
  loraTargetShape,
  loraTargetsOf,
  mergeLora,
} from './lora.ts';
export type {
  AnyLoraTarget,
  Gpt2LoraTarget,
  LoraConfig,
  LoraModelShape,
  LoraPair,
  LoraParameter,
  LoraTarget,
} from './lora.ts';
export { loadLoraGguf, loraGgufInput, saveLoraGguf } from './gguf.ts';
export type { LoadLoraOptions, SaveLoraOptions } from './gguf.ts';
export {
  attentionBackward,
  attentionForward,
  crossEntropyBackward,
  crossEntropyForward,
  geluBackward,
  geluForward,
  layernormBackward,
  layernormForward,
  rmsnormBackward,
  rmsnormForward,
  ropeBackward,
  ropeForward,
  ropeTable,
  swigluBackward,
  swigluForward,
} from './kernels.ts';
export type { Floats, RopeTable } from './kernels.ts';
export { TrainingModel, makePackedBatch, makeTrainBatch } from './training-model.ts';
export { Gpt2TrainingModel } from './gpt2-training-model.ts';
export type {
  ForwardOptions,
  ForwardResult,
  LoraGradPair,
  TrainBatch,
  TrainExample,
  TrainableParameter,
  TrainingModelOptions,
  TrainingNetwork,
} from './training-model.ts';
export { quantizeBase, quantizeGpt2Base, trainingWeightBytes } from './weights.ts';
export type {
  Gpt2TrainingLayerWeights,
  Gpt2TrainingWeights,
  TrainingLayerWeights,
  TrainingWeights,
} from './weights.ts';
export { AdamW, checkLrSchedule, clipGradNorm, learningRateAt } from './optim.ts';
export type { AdamWOptions, LrSchedule } from './optim.ts';
export { Trainer, createTrainingNetwork, isGpt2Model, trainLora } from './train.ts';
export type { TrainLoraOptions, TrainStepResult, TrainableModel, TrainerOptions } from './train.ts';
export {
  DEFAULT_SKETCH_K,
  SKETCH_STREAM,
  adapterSketchLayout,
  checkSketchLayout,
  dataInfScores,
  exampleGradient,
  projectGradient,
  sketchExamples,
  sketchLayout,
  tracInScores,
} from './sketch.ts';
export type {
  DataInfOptions,
  ExampleLoss,
  GradientSource,
  SketchGroup,
  SketchGrouping,
  SketchLayout,
  SketchMatrix,
  SketchParam,
} from './sketch.ts';
