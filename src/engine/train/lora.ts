/**
 * LoRA adapters (Hu et al., 2021) for the llama family (Llama, Mistral, Qwen2) and GPT-2: each
 * adapted weight W [out][in]
 * gets two small trainable matrices, A [r][in] and B [out][r], and the layer computes
 *
 *     y = W·x + (alpha / r) · B·(A·dropout(x))
 *
 * A starts Kaiming-uniform (PEFT's `kaiming_uniform_(a=√5)`: U(−1/√in, 1/√in)) and B starts at
 * zero, so a fresh adapter leaves the model exactly as it was. Matrices are row-major, exactly
 * llama.cpp's GGUF LoRA tensors: `blk.N.<target>.weight.lora_a` with ne = [in, r] is A, and
 * `….lora_b` with ne = [r, out] is B (see ARCHITECTURE.md §6).
 */
import { OpenLedgerError } from '../../errors.ts';
import { Gpt2Model, LlamaModel } from '../model/index.ts';
import type { Gpt2LayerWeights, LlamaLayerWeights } from '../model/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { Prng } from './prng.ts';

/** The weights a LoRA may adapt in a llama-family model (llama, qwen2), by their GGUF names. */
export const LORA_TARGETS = [
  'attn_q',
  'attn_k',
  'attn_v',
  'attn_output',
  'ffn_gate',
  'ffn_up',
  'ffn_down',
] as const;

export type LoraTarget = (typeof LORA_TARGETS)[number];

/**
 * The weights a LoRA may adapt in GPT-2: q, k and v are one fused matrix (`attn_qkv`, Hugging
 * Face's `c_attn`), as llama.cpp applies an adapter to it (`build_lora_mm(wqkv, …)`).
 */
export const GPT2_LORA_TARGETS = ['attn_qkv', 'attn_output', 'ffn_up', 'ffn_down'] as const;

export type Gpt2LoraTarget = (typeof GPT2_LORA_TARGETS)[number];

/** A target of any architecture. */
export type AnyLoraTarget = LoraTarget | Gpt2LoraTarget;

/**
 * Every target, in the order an adapter lists its tensors (parameters, GGUF files, checkpoints);
 * restricted to LORA_TARGETS it is LORA_TARGETS' order.
 */
export const ALL_LORA_TARGETS: readonly AnyLoraTarget[] = [
  'attn_q',
  'attn_k',
  'attn_v',
  'attn_qkv',
  'attn_output',
  'ffn_gate',
  'ffn_up',
  'ffn_down',
];

/** The Gpt2LayerWeights field of each GPT-2 target, and of its bias. */
export const GPT2_LORA_TARGET_WEIGHT: Readonly<
  Record<Gpt2LoraTarget, { weight: keyof Gpt2LayerWeights; bias: keyof Gpt2LayerWeights }>
> = {
  attn_qkv: { weight: 'attnQkv', bias: 'attnQkvBias' },
  attn_output: { weight: 'attnOutput', bias: 'attnOutputBias' },
  ffn_up: { weight: 'ffnUp', bias: 'ffnUpBias' },
  ffn_down: { weight: 'ffnDown', bias: 'ffnDownBias' },
};

/** The dimensions of a model that shape its adapters (LlamaConfig and Gpt2Config have them). */
export interface LoraModelShape {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Only GPT-2's config has it (learned positions): it selects GPT-2's targets. */
  nPositions?: number;
}

/** The targets a model can adapt: GPT-2's for a GPT-2 config (it has nPositions), else llama's. */
export function loraTargetsOf(config: LoraModelShape): readonly AnyLoraTarget[] {
  return config.nPositions === undefined ? LORA_TARGETS : GPT2_LORA_TARGETS;
}

/** The LlamaLayerWeights field of each target. */
export const LORA_TARGET_WEIGHT: Readonly<Record<LoraTarget, keyof LlamaLayerWeights>> = {
  attn_q: 'attnQ',
  attn_k: 'attnK',
  attn_v: 'attnV',
  attn_output: 'attnOutput',
  ffn_gate: 'ffnGate',
  ffn_up: 'ffnUp',
  ffn_down: 'ffnDown',
};

export interface LoraConfig {
  /** r: the inner dimension of B·A. */
  rank: number;
  /** The update is scaled by alpha / r. */
  alpha: number;
  /** Dropout probability on the adapter's input path while training (0 … <1). */
  dropout: number;
  targets: readonly AnyLoraTarget[];
}

/** One adapted weight: A [r][in], B [out][r]. */
export interface LoraPair {
  /** in: columns of W. */
  inDim: number;
  /** out: rows of W. */
  outDim: number;
  /** [r][in] (lora_a, ne = [in, r]) */
  a: Float32Array;
  /** [out][r] (lora_b, ne = [r, out]) */
  b: Float32Array;
}

/** A trainable parameter of an adapter, named as in the GGUF file. */
export interface LoraParameter {
  /** e.g. `blk.3.attn_q.weight.lora_a` */
  name: string;
  layer: number;
  target: AnyLoraTarget;
  kind: 'a' | 'b';
  value: Float32Array;
}

/** [in, out] of a target's weight W [out][in]. */
export function loraTargetShape(config: LoraModelShape, target: AnyLoraTarget): [number, number] {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  switch (target) {
    case 'attn_q':
      return [dim, qDim];
    case 'attn_k':
    case 'attn_v':
      return [dim, kvDim];
    case 'attn_qkv':
      return [dim, qDim + 2 * kvDim];
    case 'attn_output':
      return [qDim, dim];
    case 'ffn_gate':
    case 'ffn_up':
      return [dim, hiddenDim];
    case 'ffn_down':
      return [hiddenDim, dim];
  }
}

/**
 * Throws VALIDATION_FAILED unless `config` is a usable LoRA configuration whose targets are among
 * `allowed` (default: any architecture's).
 */
export function checkLoraConfig(
  config: LoraConfig,
  allowed: readonly AnyLoraTarget[] = ALL_LORA_TARGETS,
): void {
  const invalid = (message: string, hint?: string): never => {
    throw new OpenLedgerError('VALIDATION_FAILED', `LoRA config: ${message}`, {
      ...(hint === undefined ? {} : { hint }),
    });
  };
  if (!Number.isSafeInteger(config.rank) || config.rank <= 0) {
    invalid(`rank is ${config.rank}; it must be a positive integer`, 'typical ranks are 4 … 64');
  }
  if (!Number.isFinite(config.alpha) || config.alpha <= 0) {
    invalid(`alpha is ${config.alpha}; it must be a positive number`, 'alpha = 2 × rank is usual');
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    invalid(`dropout is ${config.dropout}; it must be in [0, 1)`);
  }
  if (config.targets.length === 0) {
    invalid('no targets', `choose among ${allowed.join(', ')}`);
  }
  const seen = new Set<string>();
  for (const target of config.targets) {
    if (!(allowed as readonly string[]).includes(target)) {
      const known = (ALL_LORA_TARGETS as readonly string[]).includes(target);
      invalid(
        known
          ? `target '${target}' is not a weight of this architecture`
          : `unknown target '${String(target)}'`,
        `choose among ${allowed.join(', ')}`,
      );
    }
    if (seen.has(target)) invalid(`target '${target}' is listed twice`);
    seen.add(target);
  }
}

/**
 * The A and B matrices of every adapted weight of every layer. `layers[l][target]` is undefined
 * for a weight the adapter leaves alone.
 */
export class LoraAdapter {
  readonly config: Readonly<LoraConfig>;
  readonly layers: Partial<Record<AnyLoraTarget, LoraPair>>[];

  constructor(config: LoraConfig, layers: Partial<Record<AnyLoraTarget, LoraPair>>[]) {
    checkLoraConfig(config);
    this.config = { ...config, targets: [...config.targets] };
    this.layers = layers;
    for (const [l, layer] of layers.entries()) {
      for (const [target, pair] of Object.entries(layer) as [LoraTarget, LoraPair][]) {
        if (
          pair.a.length !== config.rank * pair.inDim ||
          pair.b.length !== pair.outDim * config.rank
        ) {
          throw new OpenLedgerError(
            'VALIDATION_FAILED',
            `LoRA blk.${l}.${target}: A has ${pair.a.length} values and B ${pair.b.length}; rank ${config.rank} with in ${pair.inDim}, out ${pair.outDim} needs ${config.rank * pair.inDim} and ${pair.outDim * config.rank}`,
          );
        }
      }
    }
  }

  /**
   * A new adapter for a model of `modelConfig`: A Kaiming-uniform from `seed`, B zero. The
   * draws go layer by layer, target by target in LORA_TARGETS order, so a seed fixes the adapter.
   */
  static create(modelConfig: LoraModelShape, config: LoraConfig, seed: number): LoraAdapter {
    checkLoraConfig(config, loraTargetsOf(modelConfig));
    const prng = new Prng(seed, 0);
    const layers: Partial<Record<AnyLoraTarget, LoraPair>>[] = [];
    for (let l = 0; l < modelConfig.nLayers; l++) {
      const layer: Partial<Record<AnyLoraTarget, LoraPair>> = {};
      for (const target of ALL_LORA_TARGETS) {
        if (!config.targets.includes(target)) continue;
        const [inDim, outDim] = loraTargetShape(modelConfig, target);
        const bound = 1 / Math.sqrt(inDim); // √(6 / ((1 + a²)·in)) with a = √5
        const a = new Float32Array(config.rank * inDim);
        for (let i = 0; i < a.length; i++) a[i] = prng.range(-bound, bound);
        layer[target] = { inDim, outDim, a, b: new Float32Array(outDim * config.rank) };
      }
      layers.push(layer);
    }
    return new LoraAdapter(config, layers);
  }

  /** alpha / r: the factor of B·A in the effective weight. */
  get scale(): number {
    return this.config.alpha / this.config.rank;
  }

  /** Every A and B, layer by layer, target by target (ALL_LORA_TARGETS order), A before B. */
  parameters(): LoraParameter[] {
    const out: LoraParameter[] = [];
    for (const [layer, pairs] of this.layers.entries()) {
      for (const target of ALL_LORA_TARGETS) {
        const pair = pairs[target];
        if (pair === undefined) continue;
        const base = `blk.${layer}.${target}.weight`;
        out.push({ name: `${base}.lora_a`, layer, target, kind: 'a', value: pair.a });
        out.push({ name: `${base}.lora_b`, layer, target, kind: 'b', value: pair.b });
      }
    }
    return out;
  }

  /** The number of trainable values. */
  get parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.value.length, 0);
  }

  /** A deep copy. */
  clone(): LoraAdapter {
    return new LoraAdapter(
      this.config as LoraConfig,
      this.layers.map((layer) => {
        const copy: Partial<Record<AnyLoraTarget, LoraPair>> = {};
        for (const [target, pair] of Object.entries(layer) as [AnyLoraTarget, LoraPair][]) {
          copy[target] = { ...pair, a: pair.a.slice(), b: pair.b.slice() };
        }
        return copy;
      }),
    );
  }

  /** Throws VALIDATION_FAILED unless every pair is a weight of a model of `modelConfig`. */
  checkFits(modelConfig: LoraModelShape): void {
    if (this.layers.length !== modelConfig.nLayers) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `the LoRA adapter has ${this.layers.length} layers, the model ${modelConfig.nLayers}`,
        { hint: 'use the adapter with the base model it was trained on' },
      );
    }
    const allowed = loraTargetsOf(modelConfig);
    for (const [l, layer] of this.layers.entries()) {
      for (const [target, pair] of Object.entries(layer) as [AnyLoraTarget, LoraPair][]) {
        if (!allowed.includes(target)) {
          throw new OpenLedgerError(
            'VALIDATION_FAILED',
            `LoRA blk.${l}.${target}: the model has no such weight (its targets: ${allowed.join(', ')})`,
            { hint: 'use the adapter with the base model it was trained on' },
          );
        }
        const [inDim, outDim] = loraTargetShape(modelConfig, target);
        if (pair.inDim !== inDim || pair.outDim !== outDim) {
          throw new OpenLedgerError(
            'VALIDATION_FAILED',
            `LoRA blk.${l}.${target} adapts a [${pair.outDim}][${pair.inDim}] weight; the model's is [${outDim}][${inDim}]`,
            { hint: 'use the adapter with the base model it was trained on' },
          );
        }
      }
    }
  }
}

/** W + scale·B·A for one weight W [out][in], each sum in float64, stored as float32 (a copy). */
function mergedWeight(w: Float32Array, pair: LoraPair, r: number, scale: number): Float32Array {
  const { inDim, outDim, a, b } = pair;
  const merged = w.slice(); // [out][in]
  const row = new Float64Array(inDim);
  for (let o = 0; o < outDim; o++) {
    // W[o][:] += scale · Σ_k B[o][k] · A[k][:]
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k]!;
      if (bk === 0) continue;
      const ak = k * inDim;
      for (let i = 0; i < inDim; i++) row[i] = row[i]! + bk * a[ak + i]!;
    }
    const wo = o * inDim;
    for (let i = 0; i < inDim; i++) merged[wo + i] = merged[wo + i]! + scale * row[i]!;
  }
  return merged;
}

/**
 * A new model whose adapted weights are W + scale·B·A (scale = alpha / r by default), each sum
 * in float64 and stored as float32; the other weights (biases included) are shared with `model`,
 * not copied. The architecture, tokenizer and context length are kept.
 */
export function mergeLora<Tok extends Tokenizer>(
  model: LlamaModel<Tok>,
  adapter: LoraAdapter,
  options?: { scale?: number },
): LlamaModel<Tok>;
export function mergeLora<Tok extends Tokenizer>(
  model: Gpt2Model<Tok>,
  adapter: LoraAdapter,
  options?: { scale?: number },
): Gpt2Model<Tok>;
export function mergeLora<Tok extends Tokenizer>(
  model: LlamaModel<Tok> | Gpt2Model<Tok>,
  adapter: LoraAdapter,
  options?: { scale?: number },
): LlamaModel<Tok> | Gpt2Model<Tok>;
export function mergeLora<Tok extends Tokenizer>(
  model: LlamaModel<Tok> | Gpt2Model<Tok>,
  adapter: LoraAdapter,
  options: { scale?: number } = {},
): LlamaModel<Tok> | Gpt2Model<Tok> {
  adapter.checkFits(model.config);
  const scale = options.scale ?? adapter.scale;
  const r = adapter.config.rank;
  const tokenizer = model.tokenizer === undefined ? {} : { tokenizer: model.tokenizer };
  const pairsOf = (l: number) => Object.entries(adapter.layers[l]!) as [AnyLoraTarget, LoraPair][];
  if (model instanceof Gpt2Model) {
    const layers = model.weights.layers.map((weights, l): Gpt2LayerWeights => {
      const merged = { ...weights };
      for (const [target, pair] of pairsOf(l)) {
        const key = GPT2_LORA_TARGET_WEIGHT[target as Gpt2LoraTarget].weight;
        merged[key] = mergedWeight(weights[key], pair, r, scale);
      }
      return merged;
    });
    return new Gpt2Model<Tok>(model.config, { ...model.weights, layers }, tokenizer);
  }
  const layers = model.weights.layers.map((weights, l): LlamaLayerWeights => {
    const merged = { ...weights };
    for (const [target, pair] of pairsOf(l)) {
      const key = LORA_TARGET_WEIGHT[target as LoraTarget];
      merged[key] = mergedWeight(weights[key], pair, r, scale);
    }
    return merged;
  });
  return new LlamaModel<Tok>(
    model.config,
    { ...model.weights, layers },
    { ...tokenizer, arch: model.arch },
  );
}
