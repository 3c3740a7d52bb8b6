/**
 * The GPT-2 forward pass for inference, as llama.cpp's `llm_build_gpt2` computes it, written in
 * the manner of llama.ts (float32 weights, float64 sums, preallocated buffers).
 *
 * Notation as in llama.ts; qkvDim = nH·hd + 2·kvDim (GPT-2 itself has nKV = nH).
 *
 *     x   = token_embd[token] + position_embd[pos]               learned positions, no RoPE
 *   each layer:
 *     xb  = layernorm(x) ⊙ attn_norm + attn_norm.bias
 *     qkv = W_qkv·xb + b_qkv                                      [qkvDim]: q, then k, then v
 *     per head: a = softmax(q_h · k_t / √hd), o_h = Σ_t a[t] · v_t     (cache k, v at pos)
 *     x  += W_o·o + b_o
 *     xb  = layernorm(x) ⊙ ffn_norm + ffn_norm.bias
 *     x  += W_down·gelu(W_up·xb + b_up) + b_down                 [hidden] inside
 *   logits = W_output · (layernorm(x) ⊙ output_norm + output_norm.bias)
 *
 * GELU is the tanh approximation (GPT-2's `gelu_new`, ggml's `gelu`). llama.cpp's CPU backend
 * looks it up in a table indexed by the input rounded to half precision and stores the result in
 * half precision; we compute it exactly, as Hugging Face does and as a backward pass needs.
 * Emulating the table was tried and brought us no closer to llama.cpp (4.3e-4 → 4.2e-4 and
 * 5.3e-4 → 5.8e-4 of the largest logit on the two test shapes): float32 summation order dominates,
 * not GELU (see docs/benchmarks.md, "Engine correctness").
 */
import { OpenLedgerError } from '../../errors.ts';
import type { ErrorCode } from '../../errors.ts';
import { GgufFile, llamaHyperparams, readGguf } from '../gguf/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { BATCH, DecoderModel } from './decoder.ts';
import type { DecoderConfig } from './decoder.ts';
import { addBias, causalAttention, gelu, layernorm, matmul } from './ops.ts';
import { GgufTensorLoader } from './tensors.ts';

export interface Gpt2Config extends DecoderConfig {
  /** Embedding length (model width). */
  dim: number;
  /** Feed-forward hidden length (4·dim in GPT-2). */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads (GPT-2: nHeads); nHeads must be a multiple of it. */
  nKvHeads: number;
  /** dim / nHeads. */
  headDim: number;
  vocabSize: number;
  /** Rows of `position_embd`: the positions the model has embeddings for (n_ctx_train). */
  nPositions: number;
  /** Positions the KV cache holds (at most nPositions). */
  contextLength: number;
  /** LayerNorm epsilon (`gpt2.attention.layer_norm_epsilon`). */
  normEps: number;
}

/** One transformer block; names follow GGUF's `blk.N.<name>.weight` / `.bias`. */
export interface Gpt2LayerWeights {
  /** [dim] */
  attnNorm: Float32Array;
  /** [dim] */
  attnNormBias: Float32Array;
  /** [qkvDim][dim]: the rows of q, then k, then v (Hugging Face's `c_attn`, transposed) */
  attnQkv: Float32Array;
  /** [qkvDim] */
  attnQkvBias: Float32Array;
  /** [dim][nH·hd] */
  attnOutput: Float32Array;
  /** [dim] */
  attnOutputBias: Float32Array;
  /** [dim] */
  ffnNorm: Float32Array;
  /** [dim] */
  ffnNormBias: Float32Array;
  /** [hidden][dim] */
  ffnUp: Float32Array;
  /** [hidden] */
  ffnUpBias: Float32Array;
  /** [dim][hidden] */
  ffnDown: Float32Array;
  /** [dim] */
  ffnDownBias: Float32Array;
}

export interface Gpt2Weights {
  /** [vocab][dim] `token_embd` */
  tokenEmbd: Float32Array;
  /** [nPositions][dim] `position_embd` */
  positionEmbd: Float32Array;
  layers: Gpt2LayerWeights[];
  /** [dim] `output_norm.weight` */
  outputNorm: Float32Array;
  /** [dim] `output_norm.bias` */
  outputNormBias: Float32Array;
  /** [vocab][dim] `output`; the same array as tokenEmbd when tied (GPT-2's own checkpoints). */
  output: Float32Array;
}

/** The GGUF tensor name of each layer weight, without `blk.N.` (and with its suffix). */
export const GPT2_LAYER_TENSORS: Readonly<Record<keyof Gpt2LayerWeights, string>> = {
  attnNorm: 'attn_norm.weight',
  attnNormBias: 'attn_norm.bias',
  attnQkv: 'attn_qkv.weight',
  attnQkvBias: 'attn_qkv.bias',
  attnOutput: 'attn_output.weight',
  attnOutputBias: 'attn_output.bias',
  ffnNorm: 'ffn_norm.weight',
  ffnNormBias: 'ffn_norm.bias',
  ffnUp: 'ffn_up.weight',
  ffnUpBias: 'ffn_up.bias',
  ffnDown: 'ffn_down.weight',
  ffnDownBias: 'ffn_down.bias',
};

export interface Gpt2ModelOptions<Tok extends Tokenizer = Tokenizer> {
  /** The tokenizer `generate` uses for text prompts (the GGUF's own when loaded from one). */
  tokenizer?: Tok;
  /** Cap the KV cache below the model's context length, to save memory. */
  contextLength?: number;
}

/** A GPT-2 model with its KV cache (one sequence at a time, as `LlamaModel`). */
export class Gpt2Model<Tok extends Tokenizer = Tokenizer> extends DecoderModel<Gpt2Config, Tok> {
  readonly arch = 'gpt2' as const;
  readonly weights: Gpt2Weights;

  // KV cache, per layer: [ctx][kvDim]
  private readonly keyCache: Float32Array[];
  private readonly valueCache: Float32Array[];
  private readonly att: Float32Array;
  private readonly acc: Float64Array;
  // activations of a batch of up to `capacity` tokens
  private capacity = 0;
  private x = new Float32Array(0); // [T][dim] the residual stream
  private xb = new Float32Array(0); // [T][dim] normed input, then a projection to add
  private qkv = new Float32Array(0); // [T][qkvDim]
  private attnOut = new Float32Array(0); // [T][nH·hd]
  private hb = new Float32Array(0); // [T][hidden]

  constructor(config: Gpt2Config, weights: Gpt2Weights, options: Gpt2ModelOptions<Tok> = {}) {
    const contextLength = Math.min(config.contextLength, options.contextLength ?? Infinity);
    const checked = { ...config, contextLength };
    checkConfig(checked, 'gpt2 model', 'VALIDATION_FAILED');
    checkWeights(checked, weights);
    super(checked, options.tokenizer);
    this.weights = weights;
    const { nLayers, nKvHeads, headDim } = checked;
    const kvDim = nKvHeads * headDim;
    this.keyCache = Array.from({ length: nLayers }, () => new Float32Array(contextLength * kvDim));
    this.valueCache = Array.from(
      { length: nLayers },
      () => new Float32Array(contextLength * kvDim),
    );
    this.att = new Float32Array(contextLength);
    this.acc = new Float64Array(headDim);
  }

  /** The number of weights (a tied output matrix counted once). */
  get parameterCount(): number {
    const w = this.weights;
    let count =
      w.tokenEmbd.length + w.positionEmbd.length + w.outputNorm.length + w.outputNormBias.length;
    if (w.output !== w.tokenEmbd) count += w.output.length;
    for (const layer of w.layers) for (const t of Object.values(layer)) count += t.length;
    return count;
  }

  protected runBatch(tokens: ArrayLike<number>, from: number, T: number, pos0: number): void {
    const { dim, hiddenDim, nHeads, nKvHeads, headDim, normEps, nLayers } = this.config;
    const qDim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const qkvDim = qDim + 2 * kvDim;
    const { x, xb, qkv, attnOut, hb, att, acc } = this;
    const w = this.weights;

    // x[t] = token_embd[tokens[t]] + position_embd[pos0 + t]
    for (let t = 0; t < T; t++) {
      const token = tokens[from + t]!;
      const te = token * dim;
      const pe = (pos0 + t) * dim;
      for (let i = 0; i < dim; i++) x[t * dim + i] = w.tokenEmbd[te + i]! + w.positionEmbd[pe + i]!;
    }

    for (let l = 0; l < nLayers; l++) {
      const layer = w.layers[l]!;
      const keyCache = this.keyCache[l]!;
      const valueCache = this.valueCache[l]!;

      // Attention. xb = layernorm(x); qkv = W_qkv·xb + b_qkv
      layernorm(xb, x, layer.attnNorm, layer.attnNormBias, dim, T, normEps);
      matmul(qkv, xb, layer.attnQkv, dim, qkvDim, T); // [T][dim] → [T][qkvDim]
      addBias(qkv, layer.attnQkvBias, qkvDim, T);
      for (let t = 0; t < T; t++) {
        const pos = pos0 + t;
        const row = t * qkvDim;
        keyCache.set(qkv.subarray(row + qDim, row + qDim + kvDim), pos * kvDim);
        valueCache.set(qkv.subarray(row + qDim + kvDim, row + qkvDim), pos * kvDim);
        causalAttention(
          attnOut,
          t * qDim,
          qkv,
          row,
          keyCache,
          valueCache,
          pos,
          nHeads,
          nKvHeads,
          headDim,
          att,
          acc,
        );
      }
      // x += W_o·attnOut + b_o
      matmul(xb, attnOut, layer.attnOutput, qDim, dim, T);
      addBias(xb, layer.attnOutputBias, dim, T);
      for (let i = 0; i < T * dim; i++) x[i] = x[i]! + xb[i]!;

      // Feed-forward. x += W_down·gelu(W_up·layernorm(x) + b_up) + b_down
      layernorm(xb, x, layer.ffnNorm, layer.ffnNormBias, dim, T, normEps);
      matmul(hb, xb, layer.ffnUp, dim, hiddenDim, T);
      addBias(hb, layer.ffnUpBias, hiddenDim, T);
      gelu(hb, T * hiddenDim);
      matmul(xb, hb, layer.ffnDown, hiddenDim, dim, T);
      addBias(xb, layer.ffnDownBias, dim, T);
      for (let i = 0; i < T * dim; i++) x[i] = x[i]! + xb[i]!;
    }
  }

  protected classify(out: Float32Array, rows: number, first: number): void {
    const { dim, vocabSize, normEps } = this.config;
    const w = this.weights;
    const xs = this.x.subarray(first * dim, (first + rows) * dim);
    const xb = this.xb.subarray(0, rows * dim);
    layernorm(xb, xs, w.outputNorm, w.outputNormBias, dim, rows, normEps);
    matmul(out, xb, w.output, dim, vocabSize, rows);
  }

  protected ensureCapacity(T: number): void {
    if (T <= this.capacity) return;
    const { dim, hiddenDim, nHeads, nKvHeads, headDim } = this.config;
    const capacity = Math.max(T, Math.min(BATCH, 2 * this.capacity));
    this.capacity = capacity;
    this.x = new Float32Array(capacity * dim);
    this.xb = new Float32Array(capacity * dim);
    this.qkv = new Float32Array(capacity * (nHeads + 2 * nKvHeads) * headDim);
    this.attnOut = new Float32Array(capacity * nHeads * headDim);
    this.hb = new Float32Array(capacity * hiddenDim);
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * Loads a gpt2-architecture GGUF (as llama.cpp's converter writes Hugging Face GPT-2): every
 * tensor dequantized to float32, `output` tied to `token_embd` when absent, with the tokenizer
 * given in `options` (`loadModelGguf` reads the file's own).
 */
export async function loadGpt2Gguf<Tok extends Tokenizer = Tokenizer>(
  input: string | Uint8Array | GgufFile,
  options: Gpt2ModelOptions<Tok> = {},
): Promise<Gpt2Model<Tok>> {
  const file = input instanceof GgufFile ? input : await readGguf(input);
  const hp = llamaHyperparams(file.metadata);
  if (hp.arch !== 'gpt2') {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `${file.source}: architecture '${hp.arch}' is not gpt2`,
      { details: { arch: hp.arch }, hint: 'load it with loadModelGguf' },
    );
  }
  const vocabSize = file.tensor('token_embd.weight').dims[1] ?? 0;
  const config: Gpt2Config = {
    dim: hp.embeddingLength,
    hiddenDim: hp.feedForwardLength,
    nLayers: hp.blockCount,
    nHeads: hp.headCount,
    nKvHeads: hp.headCountKv,
    headDim: hp.headDim,
    vocabSize,
    nPositions: hp.contextLength,
    contextLength: hp.contextLength,
    normEps: hp.rmsEps,
  };
  checkConfig(config, file.source, 'GGUF_INVALID');
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, nPositions } = config;
  const qDim = nHeads * headDim;
  const qkvDim = qDim + 2 * nKvHeads * headDim;
  const tensors = new GgufTensorLoader(file);

  const tokenEmbd = await tensors.load('token_embd.weight', [dim, vocabSize]);
  const positionEmbd = await tensors.load('position_embd.weight', [dim, nPositions]);
  const shapes: Record<keyof Gpt2LayerWeights, number[]> = {
    attnNorm: [dim],
    attnNormBias: [dim],
    attnQkv: [dim, qkvDim],
    attnQkvBias: [qkvDim],
    attnOutput: [qDim, dim],
    attnOutputBias: [dim],
    ffnNorm: [dim],
    ffnNormBias: [dim],
    ffnUp: [dim, hiddenDim],
    ffnUpBias: [hiddenDim],
    ffnDown: [hiddenDim, dim],
    ffnDownBias: [dim],
  };
  const layers: Gpt2LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const layer: Partial<Gpt2LayerWeights> = {};
    for (const key of Object.keys(shapes) as (keyof Gpt2LayerWeights)[]) {
      layer[key] = await tensors.load(`blk.${l}.${GPT2_LAYER_TENSORS[key]}`, shapes[key]);
    }
    layers.push(layer as Gpt2LayerWeights);
  }
  const outputNorm = await tensors.load('output_norm.weight', [dim]);
  const outputNormBias = await tensors.load('output_norm.bias', [dim]);
  const output = (await tensors.optional('output.weight', [dim, vocabSize])) ?? tokenEmbd;
  tensors.checkAllUsed('gpt2');
  return new Gpt2Model<Tok>(
    config,
    { tokenEmbd, positionEmbd, layers, outputNorm, outputNormBias, output },
    options,
  );
}

// ---------------------------------------------------------------------------------------------
// Checks

function checkConfig(config: Gpt2Config, source: string, code: ErrorCode): void {
  const invalid = (message: string): OpenLedgerError =>
    new OpenLedgerError(code, `${source}: ${message}`);
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, contextLength } = config;
  const positive = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    contextLength,
    nPositions: config.nPositions,
  };
  for (const [key, value] of Object.entries(positive)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw invalid(`${key} is ${value}; it must be a positive integer`);
    }
  }
  if (nHeads * headDim !== dim) {
    throw invalid(`dim ${dim} is not nHeads ${nHeads} × headDim ${headDim}`);
  }
  if (nHeads % nKvHeads !== 0) {
    throw invalid(`nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
  }
  if (contextLength > config.nPositions) {
    throw invalid(`contextLength ${contextLength} is beyond the ${config.nPositions} positions`);
  }
  if (!(config.normEps >= 0)) throw invalid(`normEps ${config.normEps} is invalid`);
}

function checkWeights(config: Gpt2Config, weights: Gpt2Weights): void {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize, nLayers, nPositions } = config;
  const qDim = nHeads * headDim;
  const qkvDim = qDim + 2 * nKvHeads * headDim;
  const expect = (name: string, array: Float32Array | undefined, length: number): void => {
    if (!(array instanceof Float32Array) || array.length !== length) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `gpt2 model: weight ${name} has ${array?.length ?? 'no'} values, expected ${length}`,
      );
    }
  };
  expect('token_embd', weights.tokenEmbd, vocabSize * dim);
  expect('position_embd', weights.positionEmbd, nPositions * dim);
  expect('output_norm', weights.outputNorm, dim);
  expect('output_norm.bias', weights.outputNormBias, dim);
  expect('output', weights.output, vocabSize * dim);
  if (weights.layers.length !== nLayers) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `gpt2 model: ${weights.layers.length} layers given, expected ${nLayers}`,
    );
  }
  const sizes: Record<keyof Gpt2LayerWeights, number> = {
    attnNorm: dim,
    attnNormBias: dim,
    attnQkv: qkvDim * dim,
    attnQkvBias: qkvDim,
    attnOutput: dim * qDim,
    attnOutputBias: dim,
    ffnNorm: dim,
    ffnNormBias: dim,
    ffnUp: hiddenDim * dim,
    ffnUpBias: hiddenDim,
    ffnDown: dim * hiddenDim,
    ffnDownBias: dim,
  };
  weights.layers.forEach((layer, l) => {
    for (const key of Object.keys(sizes) as (keyof Gpt2LayerWeights)[]) {
      expect(`blk.${l}.${GPT2_LAYER_TENSORS[key]}`, layer[key], sizes[key]);
    }
  });
}
