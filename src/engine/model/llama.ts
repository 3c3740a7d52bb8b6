/**
 * The Llama-family forward pass for inference (Llama, Mistral, Qwen2), in the manner of llama2.c's
 * `run.c`: one readable file, the shapes in comments, float32 weights, preallocated buffers and
 * inner loops that allocate nothing.
 *
 * Notation: dim = embedding length, hidden = feed-forward length, nH = heads, nKV = key/value
 * heads (grouped-query attention when nKV < nH), hd = head dim = dim / nH, kvDim = nKV · hd,
 * vocab = vocabulary size, ctx = positions the KV cache holds, T = tokens in a batch.
 *
 * Matrices are row-major [out][in], exactly GGUF's bytes for ne = [in, out] and llama2.c's
 * checkpoint layout, so y = W·x is `y[o] = Σ_i W[o·in + i] · x[i]`.
 *
 * One layer, for each token at position pos (llama.cpp `build_llama`, llama2.c `forward`):
 *
 *     xb  = rmsnorm(x) ⊙ attn_norm                 [dim]
 *     q   = Wq·xb, k = Wk·xb, v = Wv·xb           [nH·hd], [kvDim], [kvDim]
 *     q, k ← RoPE(q, k, pos); cache k, v at pos
 *     per head h (kv head h / (nH/nKV)):
 *       a[t] = softmax_t(q_h · k_t / √hd)          t = 0 … pos
 *       o_h  = Σ_t a[t] · v_t                      [hd]
 *     x  += Wo·o                                   [dim]
 *     xb  = rmsnorm(x) ⊙ ffn_norm
 *     x  += W_down·(silu(W_gate·xb) ⊙ W_up·xb)    SwiGLU, [hidden] inside
 *
 * then logits = W_output · (rmsnorm(x) ⊙ output_norm)  [vocab].
 *
 * Qwen2 (llama.cpp `llm_build_qwen2`) is this block with biases added to q, k and v (and NeoX
 * RoPE, below). Mistral is llama in GGUF; llama.cpp's llama architecture ignores Mistral 7B v0.1's
 * 4096-position sliding window, and so do we: the same as llama.cpp at any length, and the same
 * as the original model for sequences up to 4096 tokens.
 *
 * RoPE: llama.cpp's "normal" rope (LLAMA_ROPE_TYPE_NORM, the type of arch `llama`) rotates
 * consecutive pairs (x[2i], x[2i+1]) by θ = pos · base^(−2i/ropeDim), as llama2.c's run.c does.
 * Verified on aidreams260K: this pairing reproduces the known greedy continuation of llama.cpp
 * and run.c, while the NeoX pairing (x[i], x[i + ropeDim/2]) does not (see
 * test/engine-llama.test.ts). llama2.c exports therefore need no q/k permutation in GGUF.
 * Qwen2 uses LLAMA_ROPE_TYPE_NEOX: the pairs (x[i], x[i + ropeDim/2]), the Hugging Face layout.
 *
 * Every dot product accumulates in float64 (JavaScript numbers) and is stored as float32; a
 * batch computes each output with exactly the same operations as one token at a time, so
 * `forwardSequence` equals `forward` token by token, bit for bit.
 */
import { readFile } from 'node:fs/promises';
import { OpenLedgerError } from '../../errors.ts';
import type { ErrorCode } from '../../errors.ts';
import { GgufFile, llamaHyperparams, readGguf } from '../gguf/index.ts';
import { SentencePieceTokenizer } from '../tokenizer/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { BATCH, DecoderModel } from './decoder.ts';
import { addBias, causalAttention, matmul, rmsnorm } from './ops.ts';
import { GgufTensorLoader } from './tensors.ts';

export interface LlamaConfig {
  /** Embedding length (model width). */
  dim: number;
  /** Feed-forward (SwiGLU) hidden length. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads; nHeads must be a multiple of it. */
  nKvHeads: number;
  /** dim / nHeads. */
  headDim: number;
  vocabSize: number;
  /** Positions the KV cache holds: the most tokens one sequence may have. */
  contextLength: number;
  /** RoPE base (10000 for Llama 1/2). */
  ropeFreqBase: number;
  /** How many dimensions of each head RoPE rotates (even, at most headDim). */
  ropeDim: number;
  /**
   * Which pairs RoPE rotates: 'normal' (x[2i], x[2i+1]), llama.cpp's rope type for `llama`;
   * 'neox' (x[i], x[i + ropeDim/2]), its type for qwen2 and Hugging Face layouts.
   */
  ropeType: 'normal' | 'neox';
  /** RMSNorm epsilon. */
  rmsEps: number;
}

/** One transformer block; names follow GGUF's `blk.N.<name>.weight` (llama2.c names in brackets). */
export interface LlamaLayerWeights {
  /** [dim] (rms_att_weight) */
  attnNorm: Float32Array;
  /** [nH·hd][dim] (wq) */
  attnQ: Float32Array;
  /** [kvDim][dim] (wk) */
  attnK: Float32Array;
  /** [kvDim][dim] (wv) */
  attnV: Float32Array;
  /** [dim][nH·hd] (wo) */
  attnOutput: Float32Array;
  /** [dim] (rms_ffn_weight) */
  ffnNorm: Float32Array;
  /** [hidden][dim] (w1) */
  ffnGate: Float32Array;
  /** [hidden][dim] (w3) */
  ffnUp: Float32Array;
  /** [dim][hidden] (w2) */
  ffnDown: Float32Array;
}

export interface LlamaWeights {
  /** [vocab][dim] `token_embd` (token_embedding_table) */
  tokenEmbd: Float32Array;
  layers: LlamaLayerWeights[];
  /** [dim] `output_norm` (rms_final_weight) */
  outputNorm: Float32Array;
  /** [vocab][dim] `output` (wcls); the same array as tokenEmbd when the embeddings are tied. */
  output: Float32Array;
  /** Per layer, the biases it has (Qwen2: q, k, v); absent when no layer has any. */
  layerBiases?: LlamaLayerBiases[];
  /** [vocab] `output.bias` (some Qwen2 exports). */
  outputBias?: Float32Array;
}

/** The GGUF tensor name of each layer weight, without `blk.N.` and `.weight`. */
export const LLAMA_LAYER_TENSORS: Readonly<Record<keyof LlamaLayerWeights, string>> = {
  attnNorm: 'attn_norm',
  attnQ: 'attn_q',
  attnK: 'attn_k',
  attnV: 'attn_v',
  attnOutput: 'attn_output',
  ffnNorm: 'ffn_norm',
  ffnGate: 'ffn_gate',
  ffnUp: 'ffn_up',
  ffnDown: 'ffn_down',
};

/**
 * Optional biases of one block (Qwen2 has them on q, k and v; llama.cpp accepts them on any
 * llama-family model). Names as in `LlamaLayerWeights`, GGUF `blk.N.<name>.bias`.
 */
export interface LlamaLayerBiases {
  /** [nH·hd] */
  attnQ?: Float32Array;
  /** [kvDim] */
  attnK?: Float32Array;
  /** [kvDim] */
  attnV?: Float32Array;
  /** [dim] */
  attnOutput?: Float32Array;
}

export interface LlamaModelOptions<Tok extends Tokenizer = SentencePieceTokenizer> {
  /** The tokenizer `generate` uses for text prompts (the GGUF's own when loaded from one). */
  tokenizer?: Tok;
  /** Cap the KV cache below the model's context length, to save memory. */
  contextLength?: number;
  /**
   * The GGUF architecture the weights came from (default 'llama'): 'qwen2' is the same forward
   * pass with q/k/v biases and NeoX RoPE; exporters write it back.
   */
  arch?: 'llama' | 'qwen2';
}

/**
 * A Llama-family model (Llama, Mistral, Qwen2) with its KV cache. The cache makes it stateful:
 * one instance runs one sequence at a time (positions are explicit, so a new sequence simply
 * starts again at position 0).
 */
export class LlamaModel<Tok extends Tokenizer = SentencePieceTokenizer> extends DecoderModel<
  LlamaConfig,
  Tok
> {
  readonly arch: 'llama' | 'qwen2';
  readonly weights: LlamaWeights;

  // KV cache, per layer: [ctx][kvDim]
  private readonly keyCache: Float32Array[];
  private readonly valueCache: Float32Array[];
  // RoPE: base^(−2i/ropeDim) for i < ropeDim/2, and cos/sin of one position
  private readonly invFreq: Float64Array;
  private readonly ropeCos: Float64Array;
  private readonly ropeSin: Float64Array;
  // attention scores of one head: [ctx]; its output before normalising: [hd]
  private readonly att: Float32Array;
  private readonly acc: Float64Array;
  // activations of a batch of up to `capacity` tokens (grown on demand, at most BATCH)
  private capacity = 0;
  private x = new Float32Array(0); // [T][dim] the residual stream
  private xb = new Float32Array(0); // [T][dim] normed input, then a projection to add
  private q = new Float32Array(0); // [T][nH·hd]
  private k = new Float32Array(0); // [T][kvDim]
  private v = new Float32Array(0); // [T][kvDim]
  private attnOut = new Float32Array(0); // [T][nH·hd] the heads' outputs, concatenated
  private hb = new Float32Array(0); // [T][hidden] gate, then silu(gate) ⊙ up
  private hb2 = new Float32Array(0); // [T][hidden] up

  constructor(config: LlamaConfig, weights: LlamaWeights, options: LlamaModelOptions<Tok> = {}) {
    const contextLength = Math.min(config.contextLength, options.contextLength ?? Infinity);
    const checked = { ...config, contextLength };
    checkConfig(checked, 'llama model', 'VALIDATION_FAILED');
    checkWeights(checked, weights);
    super(checked, options.tokenizer);
    this.arch = options.arch ?? 'llama';
    this.weights = weights;

    const { nLayers, headDim, nKvHeads, ropeDim, ropeFreqBase } = this.config;
    const kvDim = nKvHeads * headDim;
    this.keyCache = Array.from({ length: nLayers }, () => new Float32Array(contextLength * kvDim));
    this.valueCache = Array.from(
      { length: nLayers },
      () => new Float32Array(contextLength * kvDim),
    );
    this.invFreq = new Float64Array(ropeDim / 2);
    for (let i = 0; i < ropeDim / 2; i++)
      this.invFreq[i] = Math.pow(ropeFreqBase, (-2 * i) / ropeDim);
    this.ropeCos = new Float64Array(ropeDim / 2);
    this.ropeSin = new Float64Array(ropeDim / 2);
    this.att = new Float32Array(contextLength);
    this.acc = new Float64Array(headDim);
  }

  /** The number of weights (a tied output matrix counted once). */
  get parameterCount(): number {
    const w = this.weights;
    let count = w.tokenEmbd.length + w.outputNorm.length;
    if (w.output !== w.tokenEmbd) count += w.output.length;
    for (const layer of w.layers) for (const t of Object.values(layer)) count += t.length;
    for (const biases of w.layerBiases ?? [])
      for (const b of Object.values(biases)) count += b?.length ?? 0;
    return count + (w.outputBias?.length ?? 0);
  }

  // -------------------------------------------------------------------------------------------

  /** The transformer for tokens[from … from+T) at positions pos0 …; leaves x [T][dim]. */
  protected runBatch(tokens: ArrayLike<number>, from: number, T: number, pos0: number): void {
    const { dim, hiddenDim, nHeads, nKvHeads, headDim, rmsEps } = this.config;
    const qDim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const { x, xb, q, k, v, attnOut, hb, hb2, att, acc } = this;
    const w = this.weights;

    // x[t] = token_embd[tokens[t]]
    for (let t = 0; t < T; t++) {
      const token = tokens[from + t]!;
      x.set(w.tokenEmbd.subarray(token * dim, (token + 1) * dim), t * dim);
    }

    for (let l = 0; l < this.config.nLayers; l++) {
      const layer = w.layers[l]!;
      const biases = w.layerBiases?.[l];
      const keyCache = this.keyCache[l]!;
      const valueCache = this.valueCache[l]!;

      // Attention. xb = rmsnorm(x) ⊙ attn_norm; q, k, v = Wq·xb (+ bq), Wk·xb (+ bk), Wv·xb (+ bv)
      rmsnorm(xb, x, layer.attnNorm, dim, T, rmsEps);
      matmul(q, xb, layer.attnQ, dim, qDim, T); // [T][dim] → [T][qDim]
      matmul(k, xb, layer.attnK, dim, kvDim, T); // [T][dim] → [T][kvDim]
      matmul(v, xb, layer.attnV, dim, kvDim, T);
      if (biases?.attnQ) addBias(q, biases.attnQ, qDim, T);
      if (biases?.attnK) addBias(k, biases.attnK, kvDim, T);
      if (biases?.attnV) addBias(v, biases.attnV, kvDim, T);

      for (let t = 0; t < T; t++) {
        const pos = pos0 + t;
        // RoPE on every query and key head, then k, v into the cache at pos
        this.setRopeAngles(pos);
        this.rope(q, t * qDim, nHeads);
        this.rope(k, t * kvDim, nKvHeads);
        keyCache.set(k.subarray(t * kvDim, (t + 1) * kvDim), pos * kvDim);
        valueCache.set(v.subarray(t * kvDim, (t + 1) * kvDim), pos * kvDim);
        // causal attention over positions 0 … pos; the cache rows of this batch up to pos are in
        causalAttention(
          attnOut,
          t * qDim,
          q,
          t * qDim,
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

      // x += Wo·attnOut (+ bo)
      matmul(xb, attnOut, layer.attnOutput, qDim, dim, T); // [T][qDim] → [T][dim]
      if (biases?.attnOutput) addBias(xb, biases.attnOutput, dim, T);
      for (let i = 0; i < T * dim; i++) x[i] = x[i]! + xb[i]!;

      // Feed-forward. xb = rmsnorm(x) ⊙ ffn_norm; x += W_down·(silu(W_gate·xb) ⊙ W_up·xb)
      rmsnorm(xb, x, layer.ffnNorm, dim, T, rmsEps);
      matmul(hb, xb, layer.ffnGate, dim, hiddenDim, T); // [T][dim] → [T][hidden]
      matmul(hb2, xb, layer.ffnUp, dim, hiddenDim, T);
      for (let i = 0; i < T * hiddenDim; i++) {
        const gate = hb[i]!;
        hb[i] = (gate / (1 + Math.exp(-gate))) * hb2[i]!; // silu(gate) · up
      }
      matmul(xb, hb, layer.ffnDown, hiddenDim, dim, T); // [T][hidden] → [T][dim]
      for (let i = 0; i < T * dim; i++) x[i] = x[i]! + xb[i]!;
    }
  }

  /**
   * out [T'][vocab] = W_output · (rmsnorm(x[t]) ⊙ output_norm) (+ output bias) for the T' = `rows`
   * batch rows starting at row `first`.
   */
  protected classify(out: Float32Array, rows: number, first: number): void {
    const { dim, vocabSize, rmsEps } = this.config;
    const xs = this.x.subarray(first * dim, (first + rows) * dim);
    const xb = this.xb.subarray(0, rows * dim);
    rmsnorm(xb, xs, this.weights.outputNorm, dim, rows, rmsEps);
    matmul(out, xb, this.weights.output, dim, vocabSize, rows); // [T'][dim] → [T'][vocab]
    if (this.weights.outputBias) addBias(out, this.weights.outputBias, vocabSize, rows);
  }

  /** cos and sin of pos · base^(−2i/ropeDim), i < ropeDim/2. */
  private setRopeAngles(pos: number): void {
    const { invFreq, ropeCos, ropeSin } = this;
    for (let i = 0; i < invFreq.length; i++) {
      const theta = pos * invFreq[i]!;
      ropeCos[i] = Math.cos(theta);
      ropeSin[i] = Math.sin(theta);
    }
  }

  /** Rotates the first ropeDim dimensions of `heads` heads of hd at vec[offset …], in place. */
  private rope(vec: Float32Array, offset: number, heads: number): void {
    const { headDim, ropeDim, ropeType } = this.config;
    const { ropeCos, ropeSin } = this;
    const half = ropeDim / 2;
    // normal: the pairs (2i, 2i+1); neox: the pairs (i, i + ropeDim/2)
    const step = ropeType === 'normal' ? 2 : 1;
    const partner = ropeType === 'normal' ? 1 : half;
    for (let h = 0; h < heads; h++) {
      const base = offset + h * headDim;
      for (let i = 0; i < half; i++) {
        const a = base + step * i;
        const b = a + partner;
        const x0 = vec[a]!;
        const x1 = vec[b]!;
        const c = ropeCos[i]!;
        const s = ropeSin[i]!;
        vec[a] = x0 * c - x1 * s;
        vec[b] = x0 * s + x1 * c;
      }
    }
  }

  protected ensureCapacity(T: number): void {
    if (T <= this.capacity) return;
    const { dim, hiddenDim, nHeads, nKvHeads, headDim } = this.config;
    const capacity = Math.max(T, Math.min(BATCH, 2 * this.capacity));
    this.capacity = capacity;
    this.x = new Float32Array(capacity * dim);
    this.xb = new Float32Array(capacity * dim);
    this.q = new Float32Array(capacity * nHeads * headDim);
    this.k = new Float32Array(capacity * nKvHeads * headDim);
    this.v = new Float32Array(capacity * nKvHeads * headDim);
    this.attnOut = new Float32Array(capacity * nHeads * headDim);
    this.hb = new Float32Array(capacity * hiddenDim);
    this.hb2 = new Float32Array(capacity * hiddenDim);
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * Loads a llama-architecture GGUF (Llama 1/2/3, Mistral, llama2.c exports): hyperparameters from
 * its metadata, every tensor dequantized to float32 (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K),
 * `output` tied to `token_embd` when absent, and its SentencePiece tokenizer when it has one.
 * For Qwen2 files and byte-level BPE vocabularies, use `loadModelGguf`.
 */
export async function loadLlamaGguf(
  input: string | Uint8Array | GgufFile,
  options: LlamaModelOptions = {},
): Promise<LlamaModel> {
  const file = input instanceof GgufFile ? input : await readGguf(input);
  const hp = llamaHyperparams(file.metadata);
  if (hp.arch !== 'llama') {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `${file.source}: architecture '${hp.arch}' is not llama; loadLlamaGguf runs llama only`,
      { details: { arch: hp.arch }, hint: 'load it with loadModelGguf' },
    );
  }
  const tokenizer =
    options.tokenizer ??
    (file.metadata.has('tokenizer.ggml.tokens') &&
    file.metadata.get('tokenizer.ggml.model')?.value === 'llama'
      ? SentencePieceTokenizer.fromGguf(file.metadata)
      : undefined);
  return loadLlamaFamilyGguf(file, { ...options, tokenizer });
}

/**
 * Loads a llama or qwen2 GGUF (the architecture from its metadata) with the tokenizer given in
 * `options`, as llama.cpp's `llama` and `qwen2` architectures read it: Qwen2 adds biases to q, k
 * and v, rotates NeoX pairs, and may have an untied `output` and an `output.bias`. Tensors the
 * forward pass would not use are refused (GGUF_UNSUPPORTED).
 */
export async function loadLlamaFamilyGguf<Tok extends Tokenizer>(
  file: GgufFile,
  options: LlamaModelOptions<Tok> = {},
): Promise<LlamaModel<Tok>> {
  const hp = llamaHyperparams(file.metadata);
  if (hp.arch !== 'llama' && hp.arch !== 'qwen2') {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `${file.source}: architecture '${hp.arch}' is not of the llama family (llama, qwen2)`,
      { details: { arch: hp.arch } },
    );
  }
  const embd = file.tensor('token_embd.weight');
  const vocabSize = embd.dims[1] ?? 0;
  const config: LlamaConfig = {
    dim: hp.embeddingLength,
    hiddenDim: hp.feedForwardLength,
    nLayers: hp.blockCount,
    nHeads: hp.headCount,
    nKvHeads: hp.headCountKv,
    headDim: hp.headDim,
    vocabSize,
    contextLength: hp.contextLength,
    ropeFreqBase: hp.ropeFreqBase,
    ropeDim: hp.ropeDimensionCount,
    // llama.cpp's rope type per architecture (llama_model_rope_type): NORM for llama, NEOX for qwen2
    ropeType: hp.arch === 'qwen2' ? 'neox' : 'normal',
    rmsEps: hp.rmsEps,
  };
  checkConfig(config, file.source, 'GGUF_INVALID');
  const { dim, hiddenDim, nHeads, nKvHeads, headDim } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const tensors = new GgufTensorLoader(file);

  const tokenEmbd = await tensors.load('token_embd.weight', [dim, vocabSize]);
  const layers: LlamaLayerWeights[] = [];
  const layerBiases: LlamaLayerBiases[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const name = (tensor: string): string => `blk.${l}.${tensor}.weight`;
    const bias = (tensor: string, length: number): Promise<Float32Array | undefined> =>
      tensors.optional(`blk.${l}.${tensor}.bias`, [length]);
    layers.push({
      attnNorm: await tensors.load(name('attn_norm'), [dim]),
      attnQ: await tensors.load(name('attn_q'), [dim, qDim]),
      attnK: await tensors.load(name('attn_k'), [dim, kvDim]),
      attnV: await tensors.load(name('attn_v'), [dim, kvDim]),
      attnOutput: await tensors.load(name('attn_output'), [qDim, dim]),
      ffnNorm: await tensors.load(name('ffn_norm'), [dim]),
      ffnGate: await tensors.load(name('ffn_gate'), [dim, hiddenDim]),
      ffnUp: await tensors.load(name('ffn_up'), [dim, hiddenDim]),
      ffnDown: await tensors.load(name('ffn_down'), [hiddenDim, dim]),
    });
    // Optional for both architectures in llama.cpp (create_tensor_qkv, wo_b: TENSOR_NOT_REQUIRED).
    const biases: LlamaLayerBiases = {};
    const q = await bias('attn_q', qDim);
    const k = await bias('attn_k', kvDim);
    const v = await bias('attn_v', kvDim);
    const o = await bias('attn_output', dim);
    if (q) biases.attnQ = q;
    if (k) biases.attnK = k;
    if (v) biases.attnV = v;
    if (o) biases.attnOutput = o;
    layerBiases.push(biases);
  }
  const outputNorm = await tensors.load('output_norm.weight', [dim]);
  const output = (await tensors.optional('output.weight', [dim, vocabSize])) ?? tokenEmbd;
  const outputBias =
    hp.arch === 'qwen2' ? await tensors.optional('output.bias', [vocabSize]) : undefined;
  tensors.checkAllUsed(hp.arch);

  const weights: LlamaWeights = { tokenEmbd, layers, outputNorm, output };
  if (layerBiases.some((b) => Object.keys(b).length > 0)) weights.layerBiases = layerBiases;
  if (outputBias) weights.outputBias = outputBias;
  return new LlamaModel<Tok>(config, weights, { ...options, arch: hp.arch });
}

/**
 * Parses a llama2.c checkpoint (`export.py --version 0`, the legacy format `run.c` reads):
 *
 *     int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *         (vocab_size < 0: the classifier is not shared with the embedding)
 *     float32 token_embedding_table [vocab][dim]
 *             rms_att_weight [layers][dim]
 *             wq [layers][dim][dim], wk [layers][kvDim][dim], wv [layers][kvDim][dim],
 *             wo [layers][dim][dim]
 *             rms_ffn_weight [layers][dim]
 *             w1 [layers][hidden][dim], w2 [layers][dim][hidden], w3 [layers][hidden][dim]
 *             rms_final_weight [dim]
 *             freq_cis_real, freq_cis_imag [seq_len][hd/2] each (unused)
 *             wcls [vocab][dim] (only when not shared)
 *
 * llama2.c uses RMSNorm epsilon 1e-5 and RoPE base 10000.
 */
export function parseLlama2cCheckpoint(
  bytes: Uint8Array,
  options: LlamaModelOptions & { source?: string } = {},
): LlamaModel {
  const source = options.source ?? 'llama2.c checkpoint';
  const fail = (message: string): never => {
    throw new OpenLedgerError('FILE_INVALID', `${source}: ${message}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 28) fail('too short for a llama2.c header (7 int32)');
  const header = Array.from({ length: 7 }, (_, i) => view.getInt32(4 * i, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = header as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const shared = signedVocab > 0;
  const vocabSize = Math.abs(signedVocab);
  if ([dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen].some((v) => v <= 0)) {
    fail(`the header [${header.join(', ')}] is not a llama2.c version-0 header`);
  }
  const config: LlamaConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim: dim / nHeads,
    vocabSize,
    contextLength: seqLen,
    ropeFreqBase: 10000,
    ropeDim: dim / nHeads,
    ropeType: 'normal',
    rmsEps: 1e-5,
  };
  checkConfig(config, source, 'FILE_INVALID');
  const { headDim } = config;
  const kvDim = nKvHeads * headDim;

  let at = 28;
  const take = (count: number): Float32Array => {
    if (at + 4 * count > bytes.length) {
      fail(`ends at ${bytes.length} bytes, before the weights it declares (${at + 4 * count})`);
    }
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, true);
    at += 4 * count;
    return out;
  };
  /** `layers` consecutive matrices of `size` floats each. */
  const perLayer = (size: number): Float32Array[] => {
    const all = take(nLayers * size);
    return Array.from({ length: nLayers }, (_, l) => all.slice(l * size, (l + 1) * size));
  };

  const tokenEmbd = take(vocabSize * dim);
  const attnNorm = perLayer(dim);
  const wq = perLayer(dim * dim);
  const wk = perLayer(kvDim * dim);
  const wv = perLayer(kvDim * dim);
  const wo = perLayer(dim * dim);
  const ffnNorm = perLayer(dim);
  const w1 = perLayer(hiddenDim * dim);
  const w2 = perLayer(dim * hiddenDim);
  const w3 = perLayer(hiddenDim * dim);
  const outputNorm = take(dim);
  at += 4 * 2 * seqLen * (headDim / 2); // skip freq_cis_real and freq_cis_imag [seq_len][hd/2]
  const output = shared ? tokenEmbd : take(vocabSize * dim);
  if (at > bytes.length)
    fail(`ends at ${bytes.length} bytes, before the weights it declares (${at})`);
  if (at < bytes.length) fail(`has ${bytes.length - at} bytes after the weights it declares`);

  const layers = Array.from({ length: nLayers }, (_, l): LlamaLayerWeights => ({
    attnNorm: attnNorm[l]!,
    attnQ: wq[l]!,
    attnK: wk[l]!,
    attnV: wv[l]!,
    attnOutput: wo[l]!,
    ffnNorm: ffnNorm[l]!,
    ffnGate: w1[l]!,
    ffnUp: w3[l]!,
    ffnDown: w2[l]!,
  }));
  return new LlamaModel(config, { tokenEmbd, layers, outputNorm, output }, options);
}

/** Reads a llama2.c checkpoint from a path (see `parseLlama2cCheckpoint`). */
export async function loadLlama2cCheckpoint(
  file: string,
  options: LlamaModelOptions = {},
): Promise<LlamaModel> {
  return parseLlama2cCheckpoint(await readFile(file), { ...options, source: file });
}

// ---------------------------------------------------------------------------------------------
// Checks

function checkConfig(config: LlamaConfig, source: string, code: ErrorCode): void {
  const invalid = (message: string): OpenLedgerError =>
    new OpenLedgerError(code, `${source}: ${message}`);
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, contextLength } = config;
  const positive = { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, contextLength };
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
  if (config.ropeDim % 2 !== 0 || config.ropeDim <= 0 || config.ropeDim > headDim) {
    throw invalid(`ropeDim ${config.ropeDim} must be even and in 2 … ${headDim}`);
  }
  if (!(config.rmsEps >= 0) || !(config.ropeFreqBase > 0)) {
    throw invalid(`rmsEps ${config.rmsEps} or ropeFreqBase ${config.ropeFreqBase} is invalid`);
  }
}

function checkWeights(config: LlamaConfig, weights: LlamaWeights): void {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize, nLayers } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const expect = (name: string, array: Float32Array | undefined, length: number): void => {
    if (!(array instanceof Float32Array) || array.length !== length) {
      throw invalidWeights(
        `weight ${name} has ${array?.length ?? 'no'} values, expected ${length}`,
      );
    }
  };
  expect('token_embd', weights.tokenEmbd, vocabSize * dim);
  expect('output_norm', weights.outputNorm, dim);
  expect('output', weights.output, vocabSize * dim);
  if (weights.layers.length !== nLayers) {
    throw invalidWeights(`${weights.layers.length} layers given, expected ${nLayers}`);
  }
  const sizes: Record<keyof LlamaLayerWeights, number> = {
    attnNorm: dim,
    attnQ: qDim * dim,
    attnK: kvDim * dim,
    attnV: kvDim * dim,
    attnOutput: dim * qDim,
    ffnNorm: dim,
    ffnGate: hiddenDim * dim,
    ffnUp: hiddenDim * dim,
    ffnDown: dim * hiddenDim,
  };
  weights.layers.forEach((layer, l) => {
    for (const key of Object.keys(sizes) as (keyof LlamaLayerWeights)[]) {
      expect(`blk.${l}.${LLAMA_LAYER_TENSORS[key]}`, layer[key], sizes[key]);
    }
  });
  if (weights.layerBiases !== undefined) {
    if (weights.layerBiases.length !== nLayers) {
      throw invalidWeights(`biases for ${weights.layerBiases.length} layers, expected ${nLayers}`);
    }
    const biasSizes: Record<keyof LlamaLayerBiases, number> = {
      attnQ: qDim,
      attnK: kvDim,
      attnV: kvDim,
      attnOutput: dim,
    };
    weights.layerBiases.forEach((biases, l) => {
      for (const key of Object.keys(biases) as (keyof LlamaLayerBiases)[]) {
        if (!(key in biasSizes)) throw invalidWeights(`blk.${l} has an unknown bias '${key}'`);
        const bias = biases[key];
        if (bias !== undefined)
          expect(`blk.${l}.${LLAMA_LAYER_TENSORS[key]}.bias`, bias, biasSizes[key]);
      }
    });
  }
  if (weights.outputBias !== undefined) expect('output.bias', weights.outputBias, vocabSize);
}

function invalidWeights(message: string): OpenLedgerError {
  return new OpenLedgerError('VALIDATION_FAILED', `llama model: ${message}`);
}
