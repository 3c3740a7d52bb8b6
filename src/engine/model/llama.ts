/**
 * The Llama forward pass for inference, in the manner of llama2.c's `run.c`: one readable file,
 * the shapes in comments, float32 weights, preallocated buffers and inner loops that allocate
 * nothing.
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
 * RoPE: llama.cpp's "normal" rope (LLAMA_ROPE_TYPE_NORM, the type of arch `llama`) rotates
 * consecutive pairs (x[2i], x[2i+1]) by θ = pos · base^(−2i/ropeDim), as llama2.c's run.c does.
 * Verified on aidreams260K: this pairing reproduces the known greedy continuation of llama.cpp
 * and run.c, while the NeoX pairing (x[i], x[i + ropeDim/2]) does not (see
 * test/engine-llama.test.ts). llama2.c exports therefore need no q/k permutation in GGUF.
 *
 * Every dot product accumulates in float64 (JavaScript numbers) and is stored as float32; a
 * batch computes each output with exactly the same operations as one token at a time, so
 * `forwardSequence` equals `forward` token by token, bit for bit.
 */
import { readFile } from 'node:fs/promises';
import { OpenLedgerError } from '../../errors.ts';
import type { ErrorCode } from '../../errors.ts';
import { GgufFile, ggmlTypeName, llamaHyperparams, readGguf } from '../gguf/index.ts';
import type { GgufTensorInfo } from '../gguf/index.ts';
import { SentencePieceTokenizer } from '../tokenizer/index.ts';

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

export interface LlamaModelOptions {
  /** The tokenizer `generate` uses for text prompts (the GGUF's own when loaded from one). */
  tokenizer?: SentencePieceTokenizer;
  /** Cap the KV cache below the model's context length, to save memory. */
  contextLength?: number;
}

export interface GenerateOptions {
  /** Stop when the model produces EOS (default true); EOS is not included in the result. */
  stopAtEos?: boolean;
  /** For a text prompt: prepend BOS (default: the tokenizer's add_bos_token). */
  addBos?: boolean;
  /** Called with each generated token as soon as it is chosen. */
  onToken?: (token: number) => void;
}

export interface GenerateResult {
  /** The prompt's tokens, BOS included when added. */
  promptTokens: number[];
  /** The generated tokens. */
  tokens: number[];
  /** The generated text (a continuation: its leading space is kept); '' without a tokenizer. */
  text: string;
  stoppedBy: 'eos' | 'maxTokens' | 'context';
}

/** Tokens per batch in `forwardSequence`: bounds the scratch memory (T rows of every buffer). */
const BATCH = 32;

/**
 * A Llama model with its KV cache. The cache makes it stateful: one instance runs one sequence at
 * a time (positions are explicit, so a new sequence simply starts again at position 0).
 */
export class LlamaModel {
  readonly config: LlamaConfig;
  readonly weights: LlamaWeights;
  readonly tokenizer: SentencePieceTokenizer | undefined;

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
  // logits of one token: [vocab]; the token `forward` runs
  private readonly logits: Float32Array;
  private readonly one = new Int32Array(1);
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

  constructor(config: LlamaConfig, weights: LlamaWeights, options: LlamaModelOptions = {}) {
    const contextLength = Math.min(config.contextLength, options.contextLength ?? Infinity);
    this.config = { ...config, contextLength };
    checkConfig(this.config, 'llama model', 'VALIDATION_FAILED');
    checkWeights(this.config, weights);
    this.weights = weights;
    this.tokenizer = options.tokenizer;
    if (this.tokenizer !== undefined && this.tokenizer.vocabSize > config.vocabSize) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `the tokenizer has ${this.tokenizer.vocabSize} tokens, the model only ${config.vocabSize}`,
      );
    }

    const { nLayers, headDim, nKvHeads, ropeDim, ropeFreqBase, vocabSize } = this.config;
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
    this.logits = new Float32Array(vocabSize);
  }

  /** The number of weights (a tied output matrix counted once). */
  get parameterCount(): number {
    const w = this.weights;
    let count = w.tokenEmbd.length + w.outputNorm.length;
    if (w.output !== w.tokenEmbd) count += w.output.length;
    for (const layer of w.layers) for (const t of Object.values(layer)) count += t.length;
    return count;
  }

  /**
   * Runs one token at position `pos` (0-based), reading the KV cache for positions < pos and
   * writing position pos. Returns the logits [vocab] in a buffer that the next call overwrites
   * (copy it with `.slice()` to keep it).
   */
  forward(token: number, pos: number): Float32Array {
    const one = this.one;
    one[0] = token;
    this.checkTokens(one, pos);
    this.ensureCapacity(1);
    this.runBatch(one, 0, 1, pos);
    this.classify(this.logits, 1, 0);
    return this.logits;
  }

  /**
   * Runs `tokens` at positions startPos, startPos + 1, … (filling the KV cache as `forward` does)
   * and returns the logits of every position: a new Float32Array [tokens.length][vocab], row t
   * predicting the token after tokens[t]. Equal, bit for bit, to calling `forward` per token.
   */
  forwardSequence(tokens: ArrayLike<number>, startPos = 0): Float32Array {
    this.checkTokens(tokens, startPos);
    const { vocabSize } = this.config;
    const out = new Float32Array(tokens.length * vocabSize);
    for (let done = 0; done < tokens.length; done += BATCH) {
      const T = Math.min(BATCH, tokens.length - done);
      this.ensureCapacity(T);
      this.runBatch(tokens, done, T, startPos + done);
      this.classify(out.subarray(done * vocabSize, (done + T) * vocabSize), T, 0);
    }
    return out;
  }

  /**
   * Greedy decoding (argmax at each step; temperature 0) from a text prompt (tokenized with the
   * model's tokenizer) or from token ids, for at most `maxTokens` new tokens.
   */
  generate(
    prompt: string | readonly number[],
    maxTokens: number,
    options: GenerateOptions = {},
  ): GenerateResult {
    const tokenizer = this.tokenizer;
    let promptTokens: number[];
    if (typeof prompt === 'string') {
      if (tokenizer === undefined) {
        throw new OpenLedgerError('VALIDATION_FAILED', 'this model has no tokenizer', {
          hint: 'give the prompt as token ids, or load the model with a tokenizer',
        });
      }
      promptTokens = tokenizer.encode(prompt, { addBos: options.addBos, addEos: false });
    } else {
      promptTokens = [...prompt];
    }
    if (promptTokens.length === 0) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'the prompt has no tokens', {
        hint: 'give a non-empty prompt, or start from BOS',
      });
    }
    const { contextLength, vocabSize } = this.config;
    if (promptTokens.length > contextLength) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `the prompt has ${promptTokens.length} tokens; the context holds ${contextLength}`,
      );
    }
    const stopAtEos = options.stopAtEos ?? true;
    const eos = tokenizer?.eosId ?? 2;

    // Prompt: one batched pass that computes only the last position's logits.
    this.checkTokens(promptTokens, 0);
    const n = promptTokens.length;
    for (let done = 0; done < n; done += BATCH) {
      const T = Math.min(BATCH, n - done);
      this.ensureCapacity(T);
      this.runBatch(promptTokens, done, T, done);
    }
    this.classify(this.logits, 1, (n - 1) % BATCH); // the last token's row of the last batch

    const tokens: number[] = [];
    let stoppedBy: GenerateResult['stoppedBy'] = 'maxTokens';
    for (let pos = n; tokens.length < maxTokens; pos++) {
      const next = argmax(this.logits, vocabSize);
      if (stopAtEos && next === eos) {
        stoppedBy = 'eos';
        break;
      }
      tokens.push(next);
      options.onToken?.(next);
      if (tokens.length === maxTokens) break;
      if (pos >= contextLength) {
        stoppedBy = 'context';
        break;
      }
      this.forward(next, pos);
    }
    const text =
      tokenizer === undefined
        ? ''
        : tokenizer
            .decode([...promptTokens, ...tokens])
            .slice(tokenizer.decode(promptTokens).length);
    return { promptTokens, tokens, text, stoppedBy };
  }

  // -------------------------------------------------------------------------------------------

  /** The transformer for tokens[from … from+T) at positions pos0 …; leaves x [T][dim]. */
  private runBatch(tokens: ArrayLike<number>, from: number, T: number, pos0: number): void {
    const { dim, hiddenDim, nHeads, nKvHeads, headDim, rmsEps } = this.config;
    const qDim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const { x, xb, q, k, v, attnOut, hb, hb2 } = this;
    const w = this.weights;

    // x[t] = token_embd[tokens[t]]
    for (let t = 0; t < T; t++) {
      const token = tokens[from + t]!;
      x.set(w.tokenEmbd.subarray(token * dim, (token + 1) * dim), t * dim);
    }

    for (let l = 0; l < this.config.nLayers; l++) {
      const layer = w.layers[l]!;
      const keyCache = this.keyCache[l]!;
      const valueCache = this.valueCache[l]!;

      // Attention. xb = rmsnorm(x) ⊙ attn_norm; q, k, v = Wq·xb, Wk·xb, Wv·xb
      rmsnorm(xb, x, layer.attnNorm, dim, T, rmsEps);
      matmul(q, xb, layer.attnQ, dim, qDim, T); // [T][dim] → [T][qDim]
      matmul(k, xb, layer.attnK, dim, kvDim, T); // [T][dim] → [T][kvDim]
      matmul(v, xb, layer.attnV, dim, kvDim, T);

      for (let t = 0; t < T; t++) {
        const pos = pos0 + t;
        // RoPE on every query and key head, then k, v into the cache at pos
        this.setRopeAngles(pos);
        this.rope(q, t * qDim, nHeads);
        this.rope(k, t * kvDim, nKvHeads);
        keyCache.set(k.subarray(t * kvDim, (t + 1) * kvDim), pos * kvDim);
        valueCache.set(v.subarray(t * kvDim, (t + 1) * kvDim), pos * kvDim);
        // causal attention over positions 0 … pos; the cache rows of this batch up to pos are in
        this.attention(attnOut, t * qDim, q, t * qDim, keyCache, valueCache, pos);
      }

      // x += Wo·attnOut
      matmul(xb, attnOut, layer.attnOutput, qDim, dim, T); // [T][qDim] → [T][dim]
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
   * out [T'][vocab] = W_output · (rmsnorm(x[t]) ⊙ output_norm) for the T' = `rows` batch rows
   * starting at row `first`.
   */
  private classify(out: Float32Array, rows: number, first: number): void {
    const { dim, vocabSize, rmsEps } = this.config;
    const xs = this.x.subarray(first * dim, (first + rows) * dim);
    const xb = this.xb.subarray(0, rows * dim);
    rmsnorm(xb, xs, this.weights.outputNorm, dim, rows, rmsEps);
    matmul(out, xb, this.weights.output, dim, vocabSize, rows); // [T'][dim] → [T'][vocab]
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

  /**
   * Multi-head causal attention of one query token at position pos:
   * out[h·hd …] = Σ_{t ≤ pos} softmax_t(q_h · k_t / √hd) · v_t, with kv head h / (nH/nKV).
   */
  private attention(
    out: Float32Array,
    outOffset: number,
    q: Float32Array,
    qOffset: number,
    keyCache: Float32Array, // [ctx][kvDim]
    valueCache: Float32Array, // [ctx][kvDim]
    pos: number,
  ): void {
    const { nHeads, nKvHeads, headDim } = this.config;
    const kvDim = nKvHeads * headDim;
    const group = nHeads / nKvHeads; // query heads per kv head
    const scale = 1 / Math.sqrt(headDim);
    const { att, acc } = this;
    for (let h = 0; h < nHeads; h++) {
      const qh = qOffset + h * headDim;
      const kvh = Math.floor(h / group) * headDim;
      // scores: att[t] = q_h · k_t / √hd
      let max = -Infinity;
      for (let t = 0; t <= pos; t++) {
        const kt = t * kvDim + kvh;
        let score = 0;
        for (let i = 0; i < headDim; i++) score += q[qh + i]! * keyCache[kt + i]!;
        score *= scale;
        att[t] = score;
        if (score > max) max = score;
      }
      // softmax over t ≤ pos
      let sum = 0;
      for (let t = 0; t <= pos; t++) {
        const e = Math.exp(att[t]! - max);
        att[t] = e;
        sum += e;
      }
      // out_h = Σ_t att[t] · v_t / sum, accumulated in float64 over the cache rows in order
      acc.fill(0);
      for (let t = 0; t <= pos; t++) {
        const a = att[t]!;
        const vt = t * kvDim + kvh;
        for (let i = 0; i < headDim; i++) acc[i] = acc[i]! + a * valueCache[vt + i]!;
      }
      const oh = outOffset + h * headDim;
      for (let i = 0; i < headDim; i++) out[oh + i] = acc[i]! / sum;
    }
  }

  private ensureCapacity(T: number): void {
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

  private checkTokens(tokens: ArrayLike<number>, startPos: number): void {
    const { contextLength, vocabSize } = this.config;
    if (!Number.isInteger(startPos) || startPos < 0 || startPos + tokens.length > contextLength) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `positions ${startPos} to ${startPos + tokens.length - 1} are outside the context of ${contextLength}`,
        { hint: 'start a new sequence, or load the model with a longer contextLength' },
      );
    }
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (!Number.isInteger(token) || token < 0 || token >= vocabSize) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `token ${token} (at index ${i}) is outside the vocabulary of ${vocabSize}`,
        );
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels

/**
 * out[t][o] = Σ_i w[o][i] · x[t][i]: x [T][n], w [d][n] row-major, out [T][d].
 *
 * Every output is one sequential float64 sum over i, so a result does not depend on T or on the
 * blocking. The blocking is for speed: several weight rows are walked together (8 for a single
 * token, 4 in a batch) so that independent sums keep the CPU busy and each x[i] is loaded once
 * per block; in a batch, two tokens share every weight load, so the weights are read T/2 times.
 */
export function matmul(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  n: number,
  d: number,
  T: number,
): void {
  let o = 0;
  if (T === 1) {
    // one token: rows o … o+7
    const d8 = d - (d % 8);
    for (; o < d8; o += 8) {
      const r0 = o * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let s4 = 0;
      let s5 = 0;
      let s6 = 0;
      let s7 = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[i]!;
        s0 += w[r0 + i]! * xi;
        s1 += w[r0 + n + i]! * xi;
        s2 += w[r0 + 2 * n + i]! * xi;
        s3 += w[r0 + 3 * n + i]! * xi;
        s4 += w[r0 + 4 * n + i]! * xi;
        s5 += w[r0 + 5 * n + i]! * xi;
        s6 += w[r0 + 6 * n + i]! * xi;
        s7 += w[r0 + 7 * n + i]! * xi;
      }
      out[o] = s0;
      out[o + 1] = s1;
      out[o + 2] = s2;
      out[o + 3] = s3;
      out[o + 4] = s4;
      out[o + 5] = s5;
      out[o + 6] = s6;
      out[o + 7] = s7;
    }
  }
  const d4 = d - (d % 4);
  for (; o < d4; o += 4) {
    const r0 = o * n;
    const r1 = r0 + n;
    const r2 = r1 + n;
    const r3 = r2 + n;
    let t = 0;
    for (; t + 1 < T; t += 2) {
      // rows o … o+3 × tokens t, t+1
      const xa = t * n;
      const xb = xa + n;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let b0 = 0;
      let b1 = 0;
      let b2 = 0;
      let b3 = 0;
      for (let i = 0; i < n; i++) {
        const u = x[xa + i]!;
        const v = x[xb + i]!;
        const w0 = w[r0 + i]!;
        const w1 = w[r1 + i]!;
        const w2 = w[r2 + i]!;
        const w3 = w[r3 + i]!;
        a0 += w0 * u;
        a1 += w1 * u;
        a2 += w2 * u;
        a3 += w3 * u;
        b0 += w0 * v;
        b1 += w1 * v;
        b2 += w2 * v;
        b3 += w3 * v;
      }
      const oa = t * d + o;
      const ob = oa + d;
      out[oa] = a0;
      out[oa + 1] = a1;
      out[oa + 2] = a2;
      out[oa + 3] = a3;
      out[ob] = b0;
      out[ob + 1] = b1;
      out[ob + 2] = b2;
      out[ob + 3] = b3;
    }
    for (; t < T; t++) {
      // rows o … o+3 × the last (or only) token
      const xt = t * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[xt + i]!;
        s0 += w[r0 + i]! * xi;
        s1 += w[r1 + i]! * xi;
        s2 += w[r2 + i]! * xi;
        s3 += w[r3 + i]! * xi;
      }
      const ot = t * d + o;
      out[ot] = s0;
      out[ot + 1] = s1;
      out[ot + 2] = s2;
      out[ot + 3] = s3;
    }
  }
  for (; o < d; o++) {
    // the last d mod 4 rows, one at a time
    const r0 = o * n;
    for (let t = 0; t < T; t++) {
      const xt = t * n;
      let s0 = 0;
      for (let i = 0; i < n; i++) s0 += w[r0 + i]! * x[xt + i]!;
      out[t * d + o] = s0;
    }
  }
}

/** out[t] = x[t] / √(mean(x[t]²) + eps) ⊙ weight, for T rows of n. */
export function rmsnorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  n: number,
  T: number,
  eps: number,
): void {
  for (let t = 0; t < T; t++) {
    const base = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[base + i]! * x[base + i]!;
    const scale = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[base + i] = x[base + i]! * scale * weight[i]!;
  }
}

/** The index of the largest of the first n values (the first one on ties). */
export function argmax(values: Float32Array, n = values.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * Loads a llama-architecture GGUF: hyperparameters from its metadata, every tensor dequantized to
 * float32 (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K), `output` tied to `token_embd` when absent,
 * and its SentencePiece tokenizer when it has one.
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
      `${file.source}: architecture '${hp.arch}' is not llama; this forward pass runs llama only`,
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
    ropeType: 'normal',
    rmsEps: hp.rmsEps,
  };
  checkConfig(config, file.source, 'GGUF_INVALID');
  const { dim, hiddenDim, nHeads, nKvHeads, headDim } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;

  /** A tensor of ne = dims, as float32. */
  const load = async (name: string, dims: number[]): Promise<Float32Array> => {
    const info = file.tensor(name);
    checkDims(info, dims, file.source);
    return file.tensorFloat32(info);
  };

  const tokenEmbd = await load('token_embd.weight', [dim, vocabSize]);
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const name = (tensor: string): string => `blk.${l}.${tensor}.weight`;
    layers.push({
      attnNorm: await load(name('attn_norm'), [dim]),
      attnQ: await load(name('attn_q'), [dim, qDim]),
      attnK: await load(name('attn_k'), [dim, kvDim]),
      attnV: await load(name('attn_v'), [dim, kvDim]),
      attnOutput: await load(name('attn_output'), [qDim, dim]),
      ffnNorm: await load(name('ffn_norm'), [dim]),
      ffnGate: await load(name('ffn_gate'), [dim, hiddenDim]),
      ffnUp: await load(name('ffn_up'), [dim, hiddenDim]),
      ffnDown: await load(name('ffn_down'), [hiddenDim, dim]),
    });
  }
  const outputNorm = await load('output_norm.weight', [dim]);
  const output =
    file.findTensor('output.weight') === undefined
      ? tokenEmbd
      : await load('output.weight', [dim, vocabSize]);

  const tokenizer =
    options.tokenizer ??
    (file.metadata.has('tokenizer.ggml.tokens') &&
    file.metadata.get('tokenizer.ggml.model')?.value === 'llama'
      ? SentencePieceTokenizer.fromGguf(file.metadata)
      : undefined);
  return new LlamaModel(
    config,
    { tokenEmbd, layers, outputNorm, output },
    { ...options, tokenizer },
  );
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
}

function checkDims(info: GgufTensorInfo, dims: number[], source: string): void {
  const same = info.dims.length === dims.length && info.dims.every((ne, i) => ne === dims[i]);
  if (!same) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `${source}: tensor '${info.name}' (${ggmlTypeName(info.type)}) has ne [${info.dims.join(', ')}], expected [${dims.join(', ')}]`,
      { details: { tensor: info.name, found: info.dims, expected: dims } },
    );
  }
}

function invalidWeights(message: string): OpenLedgerError {
  return new OpenLedgerError('VALIDATION_FAILED', `llama model: ${message}`);
}
