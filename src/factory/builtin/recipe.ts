/**
 * The recipe of the built-in base model: a small llama trained from scratch, by this project's
 * own trainer, on public-domain text that an npm package ships (see corpus.ts), with a
 * SentencePiece-BPE vocabulary learned from the same text (bpe-trainer.ts).
 *
 * Everything is a function of the constants below: the corpus, the vocabulary, the initial
 * weights (seeded), the order of the training windows (seeded) and the optimizer. With the
 * TypeScript matmul backend the result is the same bit for bit on every machine; with
 * onnxruntime (the default, ~10× faster) it is the same on machines whose CPUs take the same
 * MLAS kernels (float32 sums are ordered differently by AVX2 and AVX-512 kernels).
 */
import { OpenLedgerError } from '../../errors.ts';
import { gguf, type GgufTensorInput, type GgufValue } from '../../engine/gguf/index.ts';
import { GGML_TYPE } from '../../engine/gguf/types.ts';
import type { MatmulBackend } from '../../engine/kernels/index.ts';
import { LLAMA_LAYER_TENSORS, LlamaModel } from '../../engine/model/index.ts';
import type { LlamaConfig, LlamaLayerWeights, LlamaWeights } from '../../engine/model/index.ts';
import { Prng, Trainer } from '../../engine/train/index.ts';
import type { TrainBatch } from '../../engine/train/index.ts';
import {
  builtinTokenizer,
  builtinTokenizerMetadata,
  builtinTokenizerVocab,
  tokenizeCorpus,
  type BuiltinVocab,
} from './bpe-trainer.ts';
import { loadBuiltinCorpus, type CorpusSource } from './corpus.ts';
import { BUILTIN_MODEL_NAME } from './paths.ts';

export { BUILTIN_MODEL_NAME };

/** Everything that decides the result; its hash names the build (see build.ts). */
export const BUILTIN_RECIPE = {
  recipeVersion: 1,
  vocabSize: 2048,
  model: {
    dim: 128,
    hiddenDim: 352,
    nLayers: 4,
    nHeads: 4,
    nKvHeads: 4,
    contextLength: 256,
    ropeFreqBase: 10000,
    rmsEps: 1e-5,
  },
  init: { seed: 1, std: 0.02 },
  training: {
    seed: 2,
    steps: 200,
    batchSize: 16,
    sequenceLength: 128,
    learningRate: 3e-3,
    minLearningRate: 3e-4,
    warmupSteps: 30,
    weightDecay: 0.1,
    maxGradNorm: 1,
  },
  evaluation: { windows: 64, samplePrompts: ['The whale', 'Mr. Speaker, the state of the'] },
} as const;

export type BuiltinRecipe = typeof BUILTIN_RECIPE;

export interface PretrainProgress {
  step: number;
  of: number;
  loss: number;
  learningRate: number;
  tokensPerSecond: number;
  etaSeconds: number;
  /** Set on the steps where validation runs. */
  validationLoss?: number;
}

export interface BuiltinMetrics {
  parameters: number;
  trainTokensInCorpus: number;
  validationTokensInCorpus: number;
  tokensSeen: number;
  /** Mean validation loss (nats per token) before training, and after. */
  initialValidationLoss: number;
  validationLoss: number;
  validationPerplexity: number;
  /** Validation loss of the unigram distribution of the training tokens (a floor to beat). */
  unigramValidationLoss: number;
  charactersPerToken: number;
  trainingSeconds: number;
  matmulBackend: string;
  samples: { prompt: string; text: string }[];
}

export interface BuiltinModel {
  config: LlamaConfig;
  weights: LlamaWeights;
  vocab: BuiltinVocab;
  sources: CorpusSource[];
  corpusSha256: string;
  metrics: BuiltinMetrics;
}

export interface PretrainOptions {
  backend: MatmulBackend;
  /** Override the recipe's step count (tests: a short run of the same recipe). */
  steps?: number;
  /** Override the recipe's windows per step (tests: a cheaper step). */
  batchSize?: number;
  onProgress?: (progress: PretrainProgress) => void;
}

/** The llama configuration the recipe trains. */
export function builtinConfig(vocabSize: number): LlamaConfig {
  const m = BUILTIN_RECIPE.model;
  const headDim = m.dim / m.nHeads;
  return { ...m, headDim, vocabSize, ropeDim: headDim, ropeType: 'normal' };
}

/**
 * Initial weights: N(0, std²) everywhere, the projections into the residual stream (attention
 * output, FFN down) scaled by 1/√(2L) as GPT-2 does, norms at 1, the classifier tied to the
 * embedding.
 */
export function initialWeights(config: LlamaConfig, seed: number, std: number): LlamaWeights {
  const prng = new Prng(seed, 7);
  const { dim: C, hiddenDim: H, nHeads, nKvHeads, headDim, vocabSize: V, nLayers: L } = config;
  const matrix = (rows: number, cols: number, scale = std) =>
    Float32Array.from({ length: rows * cols }, () => scale * prng.normal());
  const residualStd = std / Math.sqrt(2 * L);
  const tokenEmbd = matrix(V, C);
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    layers.push({
      attnNorm: new Float32Array(C).fill(1),
      attnQ: matrix(nHeads * headDim, C),
      attnK: matrix(nKvHeads * headDim, C),
      attnV: matrix(nKvHeads * headDim, C),
      attnOutput: matrix(C, nHeads * headDim, residualStd),
      ffnNorm: new Float32Array(C).fill(1),
      ffnGate: matrix(H, C),
      ffnUp: matrix(H, C),
      ffnDown: matrix(C, H, residualStd),
    });
  }
  return { tokenEmbd, layers, outputNorm: new Float32Array(C).fill(1), output: tokenEmbd };
}

/** B windows of T + 1 tokens from `stream` starting at the given offsets. */
function windowBatch(stream: Int32Array, starts: readonly number[], T: number): TrainBatch {
  const B = starts.length;
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  starts.forEach((start, b) => {
    inputs.set(stream.subarray(start, start + T), b * T);
    targets.set(stream.subarray(start + 1, start + T + 1), b * T);
  });
  return { B, T, inputs, targets, mask: new Float32Array(B * T).fill(1) };
}

/** Evenly spaced windows over the validation stream (the same every run). */
function validationBatches(
  stream: Int32Array,
  windows: number,
  T: number,
  B: number,
): TrainBatch[] {
  const span = stream.length - T - 1;
  if (span <= 0) {
    throw new OpenLedgerError('INTERNAL', 'the validation text is shorter than one window');
  }
  const starts = Array.from({ length: windows }, (_, i) => Math.floor((i * span) / windows));
  const batches: TrainBatch[] = [];
  for (let i = 0; i < starts.length; i += B)
    batches.push(windowBatch(stream, starts.slice(i, i + B), T));
  return batches;
}

/** Cross-entropy of the training unigram distribution (add-one smoothed) on the validation text. */
function unigramLoss(train: Int32Array, validation: Int32Array, V: number): number {
  const counts = new Float64Array(V).fill(1);
  for (const t of train) counts[t]!++;
  const total = train.length + V;
  let sum = 0;
  for (const t of validation) sum -= Math.log(counts[t]! / total);
  return sum / validation.length;
}

/** Runs the recipe: corpus → vocabulary → tokens → initial weights → training → metrics. */
export async function pretrainBuiltin(options: PretrainOptions): Promise<BuiltinModel> {
  const recipe = BUILTIN_RECIPE;
  const corpus = loadBuiltinCorpus();
  const vocab = builtinTokenizerVocab(corpus.train, recipe.vocabSize);
  const trainStream = tokenizeCorpus(vocab, corpus.train);
  const validationStream = tokenizeCorpus(vocab, corpus.validation);
  const config = builtinConfig(vocab.tokens.length);
  const weights = initialWeights(config, recipe.init.seed, recipe.init.std);
  const model = { config, weights };
  const t = recipe.training;
  const steps = options.steps ?? t.steps;
  const trainer = new Trainer(model, null, {
    backend: options.backend,
    trainBase: true,
    learningRate: t.learningRate,
    minLearningRate: t.minLearningRate,
    warmupSteps: Math.min(t.warmupSteps, Math.max(0, steps - 1)),
    totalSteps: steps,
    weightDecay: t.weightDecay,
    maxGradNorm: t.maxGradNorm,
    seed: t.seed,
  });
  const T = t.sequenceLength;
  const batchSize = options.batchSize ?? t.batchSize;
  const validation = validationBatches(validationStream, recipe.evaluation.windows, T, t.batchSize);
  const initialValidationLoss = await trainer.evaluate(validation);

  const order = new Prng(t.seed, 3);
  const span = trainStream.length - T - 1;
  const started = performance.now();
  let tokensSeen = 0;
  for (let step = 0; step < steps; step++) {
    const starts = Array.from({ length: batchSize }, () => Math.floor(order.uniform() * span));
    const result = await trainer.trainStep([windowBatch(trainStream, starts, T)]);
    tokensSeen += result.tokens;
    if (options.onProgress !== undefined) {
      const elapsed = (performance.now() - started) / 1000;
      const done = step + 1;
      const last = done === steps;
      options.onProgress({
        step: done,
        of: steps,
        loss: result.loss,
        learningRate: result.learningRate,
        tokensPerSecond: Math.round(tokensSeen / elapsed),
        etaSeconds: Math.round((elapsed / done) * (steps - done)),
        ...(last || done % 100 === 0 ? { validationLoss: await trainer.evaluate(validation) } : {}),
      });
    }
  }
  const trainingSeconds = (performance.now() - started) / 1000;
  const validationLoss = await trainer.evaluate(validation);

  const tokenizer = builtinTokenizer(vocab);
  const inference = new LlamaModel(config, weights, { tokenizer });
  const samples = recipe.evaluation.samplePrompts.map((prompt) => ({
    prompt,
    text: inference.generate(prompt, 32).text,
  }));
  const chars = corpus.train.reduce((n, doc) => n + doc.length, 0);
  return {
    config,
    weights,
    vocab,
    sources: corpus.sources,
    corpusSha256: corpus.sha256,
    metrics: {
      parameters: inference.parameterCount,
      trainTokensInCorpus: trainStream.length,
      validationTokensInCorpus: validationStream.length,
      tokensSeen,
      initialValidationLoss,
      validationLoss,
      validationPerplexity: Math.exp(validationLoss),
      unigramValidationLoss: unigramLoss(trainStream, validationStream, config.vocabSize),
      charactersPerToken: chars / (trainStream.length - corpus.train.length),
      trainingSeconds,
      matmulBackend: options.backend.name,
      samples,
    },
  };
}

/** The GGUF contents of a trained built-in model: llama metadata, tokenizer, F32 tensors. */
export function builtinGgufInput(
  built: BuiltinModel,
  extra: [string, GgufValue][] = [],
): { metadata: [string, GgufValue][]; tensors: GgufTensorInput[] } {
  const { config, weights } = built;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['general.name', gguf.string(BUILTIN_MODEL_NAME)],
    ['general.license', gguf.string('Apache-2.0')],
    ['llama.context_length', gguf.uint32(config.contextLength)],
    ['llama.embedding_length', gguf.uint32(config.dim)],
    ['llama.block_count', gguf.uint32(config.nLayers)],
    ['llama.feed_forward_length', gguf.uint32(config.hiddenDim)],
    ['llama.attention.head_count', gguf.uint32(config.nHeads)],
    ['llama.attention.head_count_kv', gguf.uint32(config.nKvHeads)],
    ['llama.rope.dimension_count', gguf.uint32(config.ropeDim)],
    ['llama.rope.freq_base', gguf.float32(config.ropeFreqBase)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.float32(config.rmsEps)],
    ['general.file_type', gguf.uint32(0)], // all F32
    ...builtinTokenizerMetadata(built.vocab),
    ...extra,
  ];
  const { dim: C, vocabSize: V } = config;
  const tensors: GgufTensorInput[] = [
    { name: 'token_embd.weight', dims: [C, V], type: GGML_TYPE.F32, data: weights.tokenEmbd },
  ];
  weights.layers.forEach((layer, l) => {
    for (const key of Object.keys(LLAMA_LAYER_TENSORS) as (keyof LlamaLayerWeights)[]) {
      const values = layer[key];
      const cols = key === 'attnNorm' || key === 'ffnNorm' ? values.length : inputsOf(config, key);
      const dims = key === 'attnNorm' || key === 'ffnNorm' ? [cols] : [cols, values.length / cols];
      tensors.push({
        name: `blk.${l}.${LLAMA_LAYER_TENSORS[key]}.weight`,
        dims,
        type: GGML_TYPE.F32,
        data: values,
      });
    }
  });
  tensors.push({
    name: 'output_norm.weight',
    dims: [C],
    type: GGML_TYPE.F32,
    data: weights.outputNorm,
  });
  return { metadata, tensors };
}

/** Columns (inputs) of a layer projection. */
function inputsOf(config: LlamaConfig, key: keyof LlamaLayerWeights): number {
  switch (key) {
    case 'attnOutput':
      return config.nHeads * config.headDim;
    case 'ffnDown':
      return config.hiddenDim;
    default:
      return config.dim;
  }
}
