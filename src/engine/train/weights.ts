/**
 * The base weights a training model reads. Like the inference `LlamaWeights`, except that each
 * projection may be kept as quantized blocks (QLoRA): 8-bit (Q8_0) or 4-bit (Q4_0) blocks of 32,
 * dequantized by the matmul backend into one scratch matrix at a time. Embeddings, norms and the
 * classifier stay float32 (the classifier is usually tied to the embedding, which is read by row).
 */
import { OpenLedgerError } from '../../errors.ts';
import { QLORA_TYPES, canQuantizeRows, matrixBytes, quantizeMatrix } from '../kernels/index.ts';
import type { Matrix, QloraBits } from '../kernels/index.ts';
import type {
  Gpt2Config,
  Gpt2LayerWeights,
  Gpt2Weights,
  LlamaConfig,
  LlamaLayerBiases,
  LlamaLayerWeights,
} from '../model/index.ts';
import {
  GPT2_LORA_TARGETS,
  GPT2_LORA_TARGET_WEIGHT,
  LORA_TARGETS,
  LORA_TARGET_WEIGHT,
  loraTargetShape,
} from './lora.ts';
import type { AnyLoraTarget, LoraModelShape } from './lora.ts';

export interface TrainingLayerWeights {
  attnNorm: Float32Array;
  attnQ: Matrix;
  attnK: Matrix;
  attnV: Matrix;
  attnOutput: Matrix;
  ffnNorm: Float32Array;
  ffnGate: Matrix;
  ffnUp: Matrix;
  ffnDown: Matrix;
}

export interface TrainingWeights {
  tokenEmbd: Float32Array;
  layers: TrainingLayerWeights[];
  outputNorm: Float32Array;
  /** The same array as tokenEmbd when tied. */
  output: Matrix;
  /** Per layer, the biases it has (Qwen2: q, k, v); absent when no layer has any. Float32. */
  layerBiases?: LlamaLayerBiases[];
  /** [vocab] `output.bias` (some Qwen2 exports). */
  outputBias?: Float32Array;
}

/** GPT-2's projection weights (what a QLoRA base keeps quantized). */
type Gpt2Projection = 'attnQkv' | 'attnOutput' | 'ffnUp' | 'ffnDown';

/** A GPT-2 layer as the training model reads it: projections float32 or quantized. */
export type Gpt2TrainingLayerWeights = Omit<Gpt2LayerWeights, Gpt2Projection> &
  Record<Gpt2Projection, Matrix>;

/** Gpt2Weights whose layer projections may be quantized (QLoRA); the rest stays float32. */
export interface Gpt2TrainingWeights extends Omit<Gpt2Weights, 'layers'> {
  layers: Gpt2TrainingLayerWeights[];
}

/** The ggml type of `bits`; VALIDATION_FAILED for anything else. */
function qloraType(bits: QloraBits): number {
  const type = QLORA_TYPES[bits] as number | undefined;
  if (type === undefined) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `QLoRA bits '${String(bits)}' is not one of ${Object.keys(QLORA_TYPES).join(', ')}`,
    );
  }
  return type;
}

/** `values`, the weight of `target`, as quantized blocks; VALIDATION_FAILED if rows do not fill blocks. */
function quantizeTarget(
  config: LoraModelShape,
  target: AnyLoraTarget,
  values: Float32Array,
  bits: QloraBits,
  type: number,
): Matrix {
  const [cols, rows] = loraTargetShape(config, target);
  if (!canQuantizeRows(cols, type)) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `QLoRA ${bits}: rows of ${target} have ${cols} values, not whole blocks of 32`,
      { hint: 'train this model with plain LoRA (no quantized base)' },
    );
  }
  return quantizeMatrix(values, rows, cols, type);
}

/**
 * The weights with every layer projection quantized to `bits` (QLoRA's frozen base). The float
 * arrays of the projections are no longer referenced by the result, so once the caller drops the
 * float model they are freed and the base lives on in ~1/4 (8-bit) or ~1/7 (4-bit) of the memory.
 */
export function quantizeBase(
  model: {
    config: LlamaConfig;
    weights: { layers: LlamaLayerWeights[] } & Omit<TrainingWeights, 'layers'>;
  },
  bits: QloraBits,
): TrainingWeights {
  const type = qloraType(bits);
  const { config, weights } = model;
  const layers = weights.layers.map((layer): TrainingLayerWeights => {
    const out: Record<keyof TrainingLayerWeights, Matrix> = { ...layer };
    for (const target of LORA_TARGETS) {
      const key = LORA_TARGET_WEIGHT[target];
      out[key] = quantizeTarget(config, target, layer[key], bits, type);
    }
    return out as TrainingLayerWeights; // only projections were replaced; norms stay float32
  });
  return { ...weights, layers };
}

/**
 * quantizeBase for GPT-2: its four projections (attn_qkv, attn_output, ffn_up, ffn_down) as
 * `bits` blocks; embeddings, LayerNorms and biases stay float32.
 */
export function quantizeGpt2Base(
  model: { config: Gpt2Config; weights: Gpt2Weights },
  bits: QloraBits,
): Gpt2TrainingWeights {
  const type = qloraType(bits);
  const { config, weights } = model;
  const layers = weights.layers.map((layer): Gpt2TrainingLayerWeights => {
    const out: Gpt2TrainingLayerWeights = { ...layer };
    for (const target of GPT2_LORA_TARGETS) {
      const key = GPT2_LORA_TARGET_WEIGHT[target].weight as Gpt2Projection;
      out[key] = quantizeTarget(config, target, layer[key], bits, type);
    }
    return out;
  });
  return { ...weights, layers };
}

/** Bytes the base weights take in memory (a tied classifier counted once). */
export function trainingWeightBytes(weights: TrainingWeights | Gpt2TrainingWeights): number {
  let total = weights.tokenEmbd.byteLength + weights.outputNorm.byteLength;
  if (weights.output !== weights.tokenEmbd) total += matrixBytes(weights.output);
  for (const layer of weights.layers) {
    for (const value of Object.values(layer) as Matrix[]) total += matrixBytes(value);
  }
  if ('positionEmbd' in weights)
    return total + weights.positionEmbd.byteLength + weights.outputNormBias.byteLength;
  for (const biases of weights.layerBiases ?? []) {
    for (const bias of Object.values(biases)) total += bias?.byteLength ?? 0;
  }
  return total + (weights.outputBias?.byteLength ?? 0);
}
