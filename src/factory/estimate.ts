/**
 * What a training job will cost before it runs: parameters (base and trainable), memory (base
 * weights as stored and as the float32 working copy, the adapter with its gradients and AdamW
 * moments, the activations of one micro-batch, the inference KV caches, the merged copy the
 * evaluation builds) and compute (FLOPs per step), with a time from a measured throughput.
 *
 * The memory figures follow the buffers the code allocates, not a rule of thumb:
 *  - engine/model loadLlamaGguf dequantizes every tensor to float32 (a tied output is shared)
 *    and a LlamaModel allocates a KV cache of 2 · layers · context · kvDim float32;
 *  - engine/train/training-model.ts `ensure(B, T)` allocates, for R = B·T rows, the residual
 *    stream (L+1)·R·C, per layer ln1, res2, ln2 (R·C), rstd1, rstd2 (R), q, atty (R·qDim), k, v
 *    (R·kvDim), gate, up, act (R·H), the attention probabilities B·nH·T·T and per adapted target
 *    u (R·r) plus, with dropout, the dropped input (R·in floats) and its mask (R·in bytes); then
 *    lnf (R·C), rstdf (R), logits (R·V), lse (R·8 bytes) and the gradient scratch dresid, dln
 *    (R·C), datty, dq (R·qDim), dk, dv (R·kvDim), dact, dgate, dup (R·H), proj, dxd (R·wide) and
 *    du (R·r);
 *  - an adapter value is float32 with a float64 gradient (LoraTrainingModel.grads) and two
 *    float32 AdamW moments (optim.ts): 20 bytes per trainable value;
 *  - the evaluation (eval.ts) merges the adapter into a copy of the adapted weights and builds a
 *    second LlamaModel (another KV cache) while the training state is still alive.
 * The peak adds them all: a bound, since the garbage collector may free some earlier.
 *
 * FLOPs per position (one input token): with N the frozen matrix weights a token passes through
 * (every projection of every layer and the classifier; the embedding is a lookup) and n the
 * trainable LoRA values, forward 2N + 2n + attention, backward 2N (input gradients through the
 * frozen weights) + 4n (gradients of A and B and through them) + twice the attention forward,
 * the attention forward being 4 · qDim per layer per visible key (QKᵀ and att·V, (T+1)/2 keys
 * on average under the causal mask). So about 4N + 6n per token: LoRA spares the 2N of weight
 * gradients that full fine-tuning (6N) pays.
 *
 * The time divides the FLOPs by a throughput measured on this machine by `measureThroughput`: a
 * probe runs real training steps (this trainer, its matmul backend) on a one-layer model of the
 * base model's head layout and width (capped at 512: under a second, once per shape and
 * process) and divides their FLOPs (the formula above) by the median step time. It is an
 * estimate before the job starts, for full rows of maxTokens unless told the mean example length
 * (an upper bound for short rows); once the job runs, its progress events carry an ETA from the
 * measured step times.
 */
import {
  LlamaModel,
  LoraAdapter,
  Trainer,
  createMatmulBackend,
  Prng,
  llamaHyperparams,
  loraTargetShape,
  makeTrainBatch,
  type GgufMetadata,
  type GgufTensorInfo,
  type LlamaConfig,
  type LlamaLayerWeights,
} from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { Hyperparameters } from './params.ts';

export interface ModelShape {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  contextLength: number;
}

export interface TrainingEstimate {
  model: ModelShape & { architecture: string; tensorTypes: Record<string, number> };
  /** Tokens per row after the cap at the model's context. */
  maxTokens: number;
  /** Tokens per example the compute assumes (the request's, else maxTokens: an upper bound). */
  tokensPerExample: number;
  parameters: {
    /** Every value of the base model's tensors. */
    base: number;
    /** The LoRA A and B values: exactly what the optimizer updates. */
    trainable: number;
    /** trainable / base, in percent. */
    trainablePercent: number;
  };
  memory: {
    /** The GGUF's tensor data as stored (quantized types stay small on disk). */
    baseStoredBytes: number;
    /** The float32 working copy the engine computes with. */
    baseF32Bytes: number;
    /** The base model's KV cache (2 · layers · context · kvDim float32). */
    kvCacheBytes: number;
    /** Adapter values, their float64 gradients and AdamW's two moments. */
    loraBytes: number;
    /** The activations and gradient scratch of one micro-batch of batchSize × (maxTokens − 1). */
    activationBytes: number;
    /** The evaluation's merged copy of the adapted weights and its model's KV cache. */
    evaluationBytes: number;
    /** The sum of the above but the stored bytes (streamed from the file while loading). */
    peakBytes: number;
  };
  compute: {
    /** Input positions per optimizer step: batchSize × (tokensPerExample − 1). */
    positionsPerStep: number;
    flopsPerPosition: number;
    flopsPerStep: number;
    totalFlops: number;
  };
  /** Present when a throughput is given or measured. */
  time?: {
    flopsPerSecond: number;
    source: 'probe';
    secondsPerStep: number;
    /** steps × secondsPerStep: training steps only (periodic evaluation and loading excluded). */
    totalSeconds: number;
  };
}

/** The GGUF header of a base model: what the estimate reads (GgufFile satisfies it). */
export interface ModelHeader {
  metadata: GgufMetadata;
  tensors: readonly GgufTensorInfo[];
}

type EstimateParams = Pick<
  Hyperparameters,
  'rank' | 'targets' | 'batchSize' | 'steps' | 'maxTokens' | 'dropout'
>;

/** The llama shape of a GGUF header; GGUF_UNSUPPORTED for what the trainer cannot train. */
export function modelShape(header: ModelHeader): ModelShape & { architecture: string } {
  const hp = llamaHyperparams(header.metadata);
  // Qwen2 is llama's block plus three bias vectors per layer: the same estimate. GPT-2's layers
  // differ (fused qkv, no gate); its jobs train without an estimate.
  if (hp.arch !== 'llama' && hp.arch !== 'qwen2')
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `architecture '${hp.arch}': the estimate covers llama and qwen2 models`,
    );
  const embd = header.tensors.find((t) => t.name === 'token_embd.weight');
  return {
    architecture: hp.arch,
    dim: hp.embeddingLength,
    hiddenDim: hp.feedForwardLength,
    nLayers: hp.blockCount,
    nHeads: hp.headCount,
    nKvHeads: hp.headCountKv,
    headDim: hp.headDim,
    vocabSize: embd?.dims[1] ?? hp.vocabSize,
    contextLength: hp.contextLength,
  };
}

/** LoRA values for `rank` on `targets` of every layer: Σ r · (in + out). */
export function trainableParameters(
  shape: ModelShape,
  rank: number,
  targets: Hyperparameters['targets'],
): number {
  const config = shape as unknown as LlamaConfig; // loraTargetShape reads the dims only
  let perLayer = 0;
  for (const target of targets) {
    const [inDim, outDim] = loraTargetShape(config, target);
    perLayer += rank * (inDim + outDim);
  }
  return perLayer * shape.nLayers;
}

/** FLOPs of one input position of a training step (see the module comment). */
export function flopsPerPosition(
  shape: ModelShape,
  trainable: number,
  positionsPerRow: number,
): number {
  const { dim: C, hiddenDim: H, nLayers: L, nHeads, nKvHeads, headDim, vocabSize: V } = shape;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const frozen = L * (2 * C * qDim + 2 * C * kvDim + 3 * C * H) + V * C;
  const keys = (positionsPerRow + 1) / 2;
  const attention = 4 * L * qDim * keys;
  return 4 * frozen + 6 * trainable + 3 * attention;
}

/** Bytes of the activations one micro-batch of B × T allocates in the training model. */
export function activationBytes(shape: ModelShape, p: EstimateParams, B: number, T: number) {
  const { dim: C, hiddenDim: H, nLayers: L, nHeads: nH, nKvHeads, headDim, vocabSize: V } = shape;
  const qDim = nH * headDim;
  const kvDim = nKvHeads * headDim;
  const R = B * T;
  const r = p.rank;
  const wide = Math.max(C, H, qDim, kvDim);
  const config = shape as unknown as LlamaConfig;
  let loraFloats = 0;
  let loraBytes = 0;
  for (const target of p.targets) {
    const [inDim] = loraTargetShape(config, target);
    loraFloats += R * r + (p.dropout > 0 ? R * inDim : 0);
    loraBytes += p.dropout > 0 ? R * inDim : 0;
  }
  const perLayer = R * (3 * C + 2 + 2 * qDim + 2 * kvDim + 3 * H) + B * nH * T * T + loraFloats;
  const floats =
    (L + 1) * R * C +
    L * perLayer +
    R * (C + 1 + V) +
    R * (2 * C + 2 * qDim + 2 * kvDim + 3 * H + 2 * wide + r);
  return 4 * floats + L * loraBytes + 8 * R;
}

/**
 * The estimate for hyperparameters `p` on the model of `header`. `tokensPerExample` (default
 * maxTokens) sets the compute; memory always assumes full rows of maxTokens.
 */
export function estimateTraining(
  p: EstimateParams,
  header: ModelHeader,
  options: { tokensPerExample?: number; flopsPerSecond?: number } = {},
): TrainingEstimate {
  const shape = modelShape(header);
  const { nLayers: L, nKvHeads, headDim, contextLength } = shape;
  const kvDim = nKvHeads * headDim;
  const maxTokens = Math.min(p.maxTokens, contextLength);
  const tokensPerExample = Math.max(2, Math.min(options.tokensPerExample ?? maxTokens, maxTokens));

  let base = 0;
  let stored = 0;
  const tensorTypes: Record<string, number> = {};
  for (const t of header.tensors) {
    base += t.elementCount;
    stored += t.byteLength;
    tensorTypes[t.typeName] = (tensorTypes[t.typeName] ?? 0) + 1;
  }
  const trainable = trainableParameters(shape, p.rank, p.targets);
  const kvCacheBytes = 2 * L * contextLength * kvDim * 4;
  const loraBytes = trainable * (4 + 8 + 4 + 4);
  const activations = activationBytes(shape, p, p.batchSize, maxTokens - 1);
  // mergeLora copies each adapted weight (in · out float32 per layer and target)
  let merged = 0;
  for (const target of p.targets) {
    const [inDim, outDim] = loraTargetShape(shape as unknown as LlamaConfig, target);
    merged += L * inDim * outDim * 4;
  }
  const evaluationBytes = merged + kvCacheBytes;
  const baseF32Bytes = 4 * base;

  const positionsPerStep = p.batchSize * (tokensPerExample - 1);
  const perPosition = flopsPerPosition(shape, trainable, tokensPerExample - 1);
  const flopsPerStep = perPosition * positionsPerStep;
  const estimate: TrainingEstimate = {
    model: { ...shape, tensorTypes },
    maxTokens,
    tokensPerExample,
    parameters: {
      base,
      trainable,
      trainablePercent: base > 0 ? Math.round((1e6 * trainable) / base) / 1e4 : 0,
    },
    memory: {
      baseStoredBytes: stored,
      baseF32Bytes,
      kvCacheBytes,
      loraBytes,
      activationBytes: activations,
      evaluationBytes,
      peakBytes: baseF32Bytes + kvCacheBytes + loraBytes + activations + evaluationBytes,
    },
    compute: {
      positionsPerStep,
      flopsPerPosition: perPosition,
      flopsPerStep,
      totalFlops: flopsPerStep * p.steps,
    },
  };
  if (options.flopsPerSecond !== undefined && options.flopsPerSecond > 0) {
    const secondsPerStep = flopsPerStep / options.flopsPerSecond;
    estimate.time = {
      flopsPerSecond: Math.round(options.flopsPerSecond),
      source: 'probe',
      secondsPerStep,
      totalSeconds: secondsPerStep * p.steps,
    };
  }
  return estimate;
}

/** The probe budget: FLOPs per timed step, and the least time measured. */
const PROBE_FLOPS = 6e7;
const PROBE_MIN_MS = 60;
const PROBE_MAX_WIDTH = 512;
const throughputCache = new Map<string, number>();

/**
 * Training FLOP/s measured on this machine (see the module comment): real LoRA training steps,
 * on the matmul backend a job uses, of a one-layer random model with the base model's head size, grouping and width (capped at
 * 512), rank and targets. Cached per shape for the life of the process.
 */
export async function measureThroughput(
  shape: ModelShape,
  p: Pick<Hyperparameters, 'rank' | 'targets'>,
): Promise<number> {
  const group = shape.nHeads / shape.nKvHeads;
  const hd = shape.headDim;
  const nKv = Math.max(1, Math.floor(Math.min(shape.dim, PROBE_MAX_WIDTH) / (hd * group)));
  const nH = nKv * group;
  const dim = nH * hd;
  const hiddenDim = Math.max(1, Math.round((shape.hiddenDim * dim) / shape.dim));
  const key = `${dim}/${hiddenDim}/${nH}/${nKv}/${p.rank}/${p.targets.join(',')}`;
  const cached = throughputCache.get(key);
  if (cached !== undefined) return cached;

  const V = 256;
  const probeShape: ModelShape = {
    dim,
    hiddenDim,
    nLayers: 1,
    nHeads: nH,
    nKvHeads: nKv,
    headDim: hd,
    vocabSize: V,
    contextLength: 64,
  };
  const trainable = trainableParameters(probeShape, p.rank, p.targets);
  const T = 32;
  const perRow = flopsPerPosition(probeShape, trainable, T) * T;
  const B = Math.max(1, Math.min(16, Math.round(PROBE_FLOPS / perRow)));
  const config: LlamaConfig = {
    ...probeShape,
    ropeFreqBase: 10000,
    ropeDim: hd - (hd % 2),
    ropeType: 'normal',
    rmsEps: 1e-5,
  };
  const prng = new Prng(7, 3);
  const random = (n: number, scale: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = prng.range(-scale, scale);
    return a;
  };
  const qDim = nH * hd;
  const kvDim = nKv * hd;
  const layer: LlamaLayerWeights = {
    attnNorm: new Float32Array(dim).fill(1),
    attnQ: random(qDim * dim, 1 / Math.sqrt(dim)),
    attnK: random(kvDim * dim, 1 / Math.sqrt(dim)),
    attnV: random(kvDim * dim, 1 / Math.sqrt(dim)),
    attnOutput: random(dim * qDim, 1 / Math.sqrt(qDim)),
    ffnNorm: new Float32Array(dim).fill(1),
    ffnGate: random(hiddenDim * dim, 1 / Math.sqrt(dim)),
    ffnUp: random(hiddenDim * dim, 1 / Math.sqrt(dim)),
    ffnDown: random(dim * hiddenDim, 1 / Math.sqrt(hiddenDim)),
  };
  const embd = random(V * dim, 1);
  const model = new LlamaModel(config, {
    tokenEmbd: embd,
    layers: [layer],
    outputNorm: new Float32Array(dim).fill(1),
    output: embd,
  });
  const adapter = LoraAdapter.create(
    config,
    { rank: p.rank, alpha: 2 * p.rank, dropout: 0, targets: p.targets },
    0,
  );
  // the backend a training job picks (train-core.ts): onnxruntime when it loads, else TypeScript
  const backend = await createMatmulBackend();
  const trainer = new Trainer(model, adapter, { learningRate: 1e-3, totalSteps: 1000, backend });
  const batch = makeTrainBatch(
    Array.from({ length: B }, (_, b) => ({
      tokens: Array.from({ length: T + 1 }, (_, t) => (b * 31 + t * 7) % V),
    })),
  );
  // Two warm-up steps (buffers, JIT, onnxruntime sessions), then the median of timed steps:
  // a cold or interrupted step would otherwise skew a sub-second measurement.
  const times: number[] = [];
  try {
    for (let i = 0; i < 2; i++) await trainer.trainStep([batch]);
    const started = performance.now();
    while (times.length < 3 || (performance.now() - started < PROBE_MIN_MS && times.length < 15)) {
      const t0 = performance.now();
      await trainer.trainStep([batch]);
      times.push(performance.now() - t0);
    }
  } finally {
    await backend.close();
  }
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1]!;
  const flopsPerSecond = (perRow * B) / (median / 1000);
  throughputCache.set(key, flopsPerSecond);
  return flopsPerSecond;
}
