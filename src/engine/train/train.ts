/**
 * A training step and a small LoRA training loop on top of a training model (`TrainingModel` for
 * the llama family, `Gpt2TrainingModel` for GPT-2; `createTrainingNetwork` picks it): micro-batches
 * accumulated into the gradient of the step's mean loss, global-norm clipping, AdamW at the
 * scheduled learning rate. Deterministic for a given seed, data and matmul backend.
 */
import { OpenLedgerError } from '../../errors.ts';
import type { MatmulBackend } from '../kernels/index.ts';
import type { Gpt2Config, LlamaConfig } from '../model/index.ts';
import { Gpt2TrainingModel } from './gpt2-training-model.ts';
import { LoraAdapter } from './lora.ts';
import type { LoraConfig } from './lora.ts';
import { AdamW, checkLrSchedule, clipGradNorm, learningRateAt } from './optim.ts';
import type { AdamWOptions, LrSchedule } from './optim.ts';
import { Prng } from './prng.ts';
import { makeTrainBatch } from './network.ts';
import type { TrainBatch, TrainExample, TrainingModelOptions, TrainingNetwork } from './network.ts';
import { TrainingModel } from './training-model.ts';
import type { Gpt2TrainingWeights, TrainingWeights } from './weights.ts';

/**
 * A base model any training model takes: a llama-family model (LlamaModel, or its config with
 * QLoRA `TrainingWeights`) or a GPT-2 model (Gpt2Model, or its config with QLoRA
 * `Gpt2TrainingWeights`; recognised by its position embeddings).
 */
export type TrainableModel =
  | { config: LlamaConfig; weights: TrainingWeights }
  | { config: Gpt2Config; weights: Gpt2TrainingWeights };

/** True for a GPT-2 model (it has learned position embeddings). */
export function isGpt2Model(
  model: TrainableModel,
): model is { config: Gpt2Config; weights: Gpt2TrainingWeights } {
  return 'positionEmbd' in model.weights;
}

/** The training model of `model`'s architecture. */
export function createTrainingNetwork(
  model: TrainableModel,
  adapter: LoraAdapter | null,
  options: TrainingModelOptions = {},
): TrainingModel | Gpt2TrainingModel {
  return isGpt2Model(model)
    ? new Gpt2TrainingModel(model, adapter, options)
    : new TrainingModel(model, adapter, options);
}

export interface TrainerOptions extends AdamWOptions, LrSchedule {
  /** Clip the global gradient norm to this (default 1; 0 turns clipping off). */
  maxGradNorm?: number;
  /** Seed of the dropout masks (default 0). */
  seed?: number;
  /** See TrainingModelOptions (default 'float32'). */
  precision?: 'float32' | 'float64';
  /** Where matrix products run (default TypeScript; see createMatmulBackend). */
  backend?: MatmulBackend;
  /** Train the base weights too (full training). */
  trainBase?: boolean;
}

export interface TrainStepResult {
  /** The step just done (0-based). */
  step: number;
  /** The mean loss over the step's unmasked targets (with dropout, before the update). */
  loss: number;
  /** Unmasked targets in the step. */
  tokens: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  learningRate: number;
}

/** A training model, an AdamW optimizer over what it trains and a learning-rate schedule. */
export class Trainer {
  readonly network: TrainingNetwork;
  readonly optimizer: AdamW;
  readonly schedule: LrSchedule;
  readonly maxGradNorm: number;
  /** Steps done so far. */
  step = 0;

  constructor(model: TrainableModel, adapter: LoraAdapter | null, options: TrainerOptions) {
    this.network = createTrainingNetwork(model, adapter, {
      ...(options.precision === undefined ? {} : { precision: options.precision }),
      ...(options.backend === undefined ? {} : { backend: options.backend }),
      ...(options.trainBase === undefined ? {} : { trainBase: options.trainBase }),
      seed: options.seed ?? 0,
    });
    this.optimizer = new AdamW(
      this.network.parameters().map((p) => p.value),
      options,
    );
    this.schedule = {
      learningRate: options.learningRate,
      totalSteps: options.totalSteps,
      warmupSteps: options.warmupSteps ?? 0,
      minLearningRate: options.minLearningRate ?? 0,
    };
    checkLrSchedule(this.schedule);
    this.maxGradNorm = options.maxGradNorm ?? 1;
  }

  get adapter(): LoraAdapter | null {
    return this.network.adapter;
  }

  /**
   * One optimizer step over `microBatches` (gradient accumulation): every micro-batch's
   * backward is scaled by 1 / (unmasked targets of the whole step), so the accumulated gradient
   * is that of the step's mean loss, however the targets fall into micro-batches.
   */
  async trainStep(microBatches: readonly TrainBatch[]): Promise<TrainStepResult> {
    if (microBatches.length === 0) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'a training step needs a micro-batch');
    }
    let tokens = 0;
    for (const batch of microBatches) for (const m of batch.mask) tokens += m;
    const net = this.network;
    net.zeroGrad();
    let lossSum = 0;
    for (const batch of microBatches) {
      lossSum += (await net.forward(batch, { train: true })).lossSum;
      await net.backward(tokens > 0 ? 1 / tokens : 0);
    }
    const grads = net.gradientList();
    const gradNorm = clipGradNorm(grads, this.maxGradNorm);
    const learningRate = learningRateAt(this.step, this.schedule);
    this.optimizer.step(grads, learningRate);
    const step = this.step++;
    return { step, loss: tokens > 0 ? lossSum / tokens : 0, tokens, gradNorm, learningRate };
  }

  /** The mean loss over the unmasked targets of `batches`, without dropout (no update). */
  async evaluate(batches: readonly TrainBatch[]): Promise<number> {
    let lossSum = 0;
    let count = 0;
    for (const batch of batches) {
      const result = await this.network.forward(batch);
      lossSum += result.lossSum;
      count += result.count;
    }
    return count > 0 ? lossSum / count : 0;
  }
}

export interface TrainLoraOptions extends Omit<TrainerOptions, 'totalSteps' | 'trainBase'> {
  lora: LoraConfig;
  /** Optimizer steps. */
  steps: number;
  /** Examples per micro-batch (default 8). */
  batchSize?: number;
  /** Micro-batches per step (default 1). */
  accumulationSteps?: number;
  /** Seed of the adapter's initialisation, the data order and dropout (default 0). */
  seed?: number;
  /** Start from this adapter (trained further in place) instead of a new one. */
  adapter?: LoraAdapter;
  /** Called after every step. */
  onStep?: (result: TrainStepResult) => void;
}

/**
 * Trains a LoRA adapter on `examples` for `options.steps` steps. The examples are reshuffled
 * (seeded) each epoch; each step takes batchSize × accumulationSteps of them.
 */
export async function trainLora(
  model: TrainableModel,
  examples: readonly TrainExample[],
  options: TrainLoraOptions,
): Promise<{ adapter: LoraAdapter; history: TrainStepResult[] }> {
  if (examples.length === 0) {
    throw new OpenLedgerError('VALIDATION_FAILED', 'no training examples');
  }
  const seed = options.seed ?? 0;
  const adapter = options.adapter ?? LoraAdapter.create(model.config, options.lora, seed);
  const trainer = new Trainer(model, adapter, {
    ...options,
    totalSteps: options.steps,
    seed,
  });
  const batchSize = options.batchSize ?? 8;
  const accumulation = options.accumulationSteps ?? 1;
  const order = new Prng(seed, 2);
  let epoch: number[] = [];
  const next = (): TrainExample => {
    if (epoch.length === 0) epoch = order.shuffle(examples.map((_, i) => i));
    return examples[epoch.pop()!]!;
  };
  const history: TrainStepResult[] = [];
  for (let s = 0; s < options.steps; s++) {
    const microBatches: TrainBatch[] = [];
    for (let m = 0; m < accumulation; m++) {
      const chosen = Array.from({ length: Math.min(batchSize, examples.length) }, next);
      microBatches.push(makeTrainBatch(chosen));
    }
    const result = await trainer.trainStep(microBatches);
    history.push(result);
    options.onStep?.(result);
  }
  return { adapter, history };
}
