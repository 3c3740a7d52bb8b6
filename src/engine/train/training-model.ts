/**
 * The llama forward and backward passes for LoRA training, llm.c style: every activation the
 * backward needs is kept in a named buffer, each layer's forward and backward are spelled out,
 * and gradients are computed only for the LoRA matrices A and B (the base weights are frozen;
 * the backward propagates through them, through RMSNorm, RoPE, softmax attention with
 * grouped-query heads and SwiGLU, down to the first layer).
 *
 * Notation: B sequences of T tokens, BT = B·T rows; C = dim, H = hidden, V = vocab, nH / nKV
 * heads of hd, qDim = nH·hd, kvDim = nKV·hd, L layers, r = LoRA rank, s = alpha / r.
 *
 * One layer (x = resid[l], the residual stream entering it):
 *
 *     ln1   = rmsnorm(x) ⊙ attn_norm                       [BT][C]      (rstd1 [BT])
 *     q     = lin_q(ln1), k = lin_k(ln1), v = lin_v(ln1)   [BT][qDim], [BT][kvDim] ×2
 *     q, k ← RoPE(q, k)                                    (kept rotated)
 *     att   = softmax(q·kᵀ/√hd, causal)                    [B][nH][T][T]
 *     atty  = att·v                                        [BT][qDim]
 *     res2  = x + lin_o(atty)                              [BT][C]
 *     ln2   = rmsnorm(res2) ⊙ ffn_norm                     [BT][C]      (rstd2 [BT])
 *     gate  = lin_gate(ln2), up = lin_up(ln2)              [BT][H] ×2
 *     act   = silu(gate) ⊙ up                              [BT][H]
 *     resid[l+1] = res2 + lin_down(act)                    [BT][C]
 *
 * where lin_t(x) = W_t·x + s·B_t·(A_t·drop(x)) for an adapted target (u_t = A_t·drop(x),
 * [BT][r], is kept) and W_t·x otherwise. Then lnf = rmsnorm(resid[L]) ⊙ output_norm and
 * logits = W_output·lnf [BT][V]; the loss is the mean of −log p(target) over unmasked targets.
 */
import { OpenLedgerError } from '../../errors.ts';
import type { LlamaConfig, LlamaModel, LlamaWeights } from '../model/index.ts';
import {
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
import type { Floats, RopeTable } from './kernels.ts';
import { LORA_TARGETS, LORA_TARGET_WEIGHT, loraTargetShape } from './lora.ts';
import type { LoraAdapter, LoraPair, LoraTarget } from './lora.ts';
import { Prng } from './prng.ts';

/** B token sequences of T, with their next-token targets and the loss mask. */
export interface TrainBatch {
  B: number;
  T: number;
  /** [B][T] input tokens */
  inputs: Int32Array;
  /** [B][T] the token that should follow each input */
  targets: Int32Array;
  /** [B][T] 1 where the target counts in the loss, 0 for prompt and padding */
  mask: Float32Array;
}

/** One training sequence: `tokens[0 … promptLength)` are context only (not predicted). */
export interface TrainExample {
  tokens: readonly number[];
  /** Tokens at the start that are not trained on (default 1: the first token has no context). */
  promptLength?: number;
  /**
   * Per token of `tokens`: 0 to leave it out of the loss as a target (a prompt turn inside a
   * chat), anything else to train on it; combined with promptLength. Default: all trained.
   */
  lossMask?: ArrayLike<number>;
}

/**
 * A batch of examples, right-padded to T (default: the longest example − 1): row b has inputs
 * tokens[0 … n−2] and targets tokens[1 … n−1]; a target counts when its index in `tokens` is
 * at least promptLength and its `lossMask` entry (if any) is not 0. Padding (token `padToken`, mask 0) comes after each sequence, where
 * causal attention keeps it from touching the real positions.
 */
export function makeTrainBatch(
  examples: readonly TrainExample[],
  options: { T?: number; padToken?: number } = {},
): TrainBatch {
  if (examples.length === 0) {
    throw new OpenLedgerError('VALIDATION_FAILED', 'a training batch needs at least one example');
  }
  const longest = Math.max(...examples.map((e) => e.tokens.length));
  const T = options.T ?? longest - 1;
  if (!Number.isSafeInteger(T) || T < 1) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `a training batch needs T ≥ 1; the longest example has ${longest} tokens`,
      { hint: 'each example needs at least two tokens: one of context and one to predict' },
    );
  }
  const B = examples.length;
  const inputs = new Int32Array(B * T).fill(options.padToken ?? 0);
  const targets = new Int32Array(B * T).fill(options.padToken ?? 0);
  const mask = new Float32Array(B * T);
  examples.forEach((example, b) => {
    const { tokens } = example;
    if (tokens.length - 1 > T) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `example ${b} has ${tokens.length} tokens; a batch of T = ${T} holds at most ${T + 1}`,
        { hint: 'truncate or split long examples, or raise T' },
      );
    }
    const promptLength = example.promptLength ?? 1;
    const lossMask = example.lossMask;
    if (lossMask !== undefined && lossMask.length !== tokens.length) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `example ${b} has ${tokens.length} tokens but a loss mask of ${lossMask.length}`,
      );
    }
    for (let t = 0; t + 1 < tokens.length; t++) {
      inputs[b * T + t] = tokens[t]!;
      targets[b * T + t] = tokens[t + 1]!;
      mask[b * T + t] = t + 1 >= promptLength && (lossMask?.[t + 1] ?? 1) !== 0 ? 1 : 0;
    }
  });
  return { B, T, inputs, targets, mask };
}

export interface TrainingModelOptions {
  /**
   * Storage of activations and gradients: 'float32' to train, 'float64' for gradient checks
   * (every stored value then keeps float64 precision). Default 'float32'.
   */
  precision?: 'float32' | 'float64';
  /** Seed of the dropout stream (default 0). */
  seed?: number;
}

export interface ForwardOptions {
  /** Apply LoRA dropout (default false: the adapter as used for inference). */
  train?: boolean;
  /** Draw this forward's dropout masks from a fresh stream of this seed (for gradient checks). */
  dropoutSeed?: number;
}

export interface ForwardResult {
  /** Mean of −log p(target) over unmasked targets (0 when there are none). */
  loss: number;
  /** Σ mask · −log p(target). */
  lossSum: number;
  /** Σ mask: the number of targets in the loss. */
  count: number;
}

/** The gradient of one adapted weight: dA [r][in], dB [out][r], in float64. */
export interface LoraGradPair {
  a: Float64Array;
  b: Float64Array;
}

/** Saved activations of one LoRA path: its (dropped-out) input and u = A·input. */
interface LoraActivation {
  /** [BT][in] the input after dropout: `dropped`, or the layer input itself without dropout */
  xd: Floats;
  /** [BT][in] the dropout mask (1 kept, 0 dropped); null when no dropout was applied */
  mask: Uint8Array | null;
  /** [BT][r] */
  u: Floats;
  /** The buffers of xd and mask under dropout (allocated on the first dropout forward). */
  dropped: Floats | null;
  keep: Uint8Array | null;
}

/** Saved activations of one layer. */
interface LayerActivations {
  ln1: Floats; // [BT][C]
  rstd1: Floats; // [BT]
  q: Floats; // [BT][qDim] after RoPE
  k: Floats; // [BT][kvDim] after RoPE
  v: Floats; // [BT][kvDim]
  att: Floats; // [B][nH][T][T] probabilities
  atty: Floats; // [BT][qDim] attention output, heads concatenated
  res2: Floats; // [BT][C] residual after attention
  ln2: Floats; // [BT][C]
  rstd2: Floats; // [BT]
  gate: Floats; // [BT][H] before silu
  up: Floats; // [BT][H]
  act: Floats; // [BT][H] silu(gate) ⊙ up
  lora: Partial<Record<LoraTarget, LoraActivation>>;
}

/**
 * A llama model with a LoRA adapter, ready to train: forward (loss), backward (gradients of the
 * adapter's A and B). Base weights are read from `model` and never written; A and B are read
 * from `adapter` at every forward, so an optimizer updates them in place.
 */
export class LoraTrainingModel {
  readonly config: LlamaConfig;
  readonly weights: LlamaWeights;
  readonly adapter: LoraAdapter;
  readonly precision: 'float32' | 'float64';
  /** Gradients, accumulated by `backward` until `zeroGrad`; `grads[l][target]`. */
  readonly grads: Partial<Record<LoraTarget, LoraGradPair>>[];

  private readonly Float: Float32ArrayConstructor | Float64ArrayConstructor;
  private readonly dropoutPrng: Prng;
  private rope: RopeTable;
  // capacity of the buffers below: rows (B·T) and attention entries (B·T·T)
  private capRows = 0;
  private capAtt = 0;

  // ---- activations (the forward fills them, the backward reads them)
  private resid: Floats[] = []; // L+1 × [BT][C]: resid[l] enters layer l; resid[L] leaves the last
  private layers: LayerActivations[] = [];
  private lnf: Floats = new Float64Array(0); // [BT][C]
  private rstdf: Floats = new Float64Array(0); // [BT]
  private logitsBuf: Floats = new Float64Array(0); // [BT][V], dlogits after backward
  private lse = new Float64Array(0); // [BT] log Σ exp(logits)

  // ---- gradients of activations and scratch (reused by every layer)
  private dresid: Floats = new Float64Array(0); // [BT][C] gradient of the residual stream
  private dln: Floats = new Float64Array(0); // [BT][C]
  private datty: Floats = new Float64Array(0); // [BT][qDim]
  private dq: Floats = new Float64Array(0); // [BT][qDim]
  private dk: Floats = new Float64Array(0); // [BT][kvDim]
  private dv: Floats = new Float64Array(0); // [BT][kvDim]
  private dact: Floats = new Float64Array(0); // [BT][H]
  private dgate: Floats = new Float64Array(0); // [BT][H]
  private dup: Floats = new Float64Array(0); // [BT][H]
  private proj: Floats = new Float64Array(0); // [BT][max(C, H, qDim)] a projection, a LoRA term
  private du: Floats = new Float64Array(0); // [BT][r]
  private dxd: Floats = new Float64Array(0); // [BT][max(C, H, qDim)] gradient of a dropped input

  // ---- the last forward
  private last: { batch: TrainBatch; result: ForwardResult; backwardDone: boolean } | undefined;

  constructor(model: LlamaModel, adapter: LoraAdapter, options: TrainingModelOptions = {}) {
    adapter.checkFits(model.config);
    this.config = model.config;
    this.weights = model.weights;
    this.adapter = adapter;
    this.precision = options.precision ?? 'float32';
    this.Float = this.precision === 'float64' ? Float64Array : Float32Array;
    this.dropoutPrng = new Prng(options.seed ?? 0, 1);
    this.rope = ropeTable(0, this.config.ropeDim, this.config.ropeFreqBase, this.config.ropeType);
    this.grads = adapter.layers.map((layer) => {
      const grads: Partial<Record<LoraTarget, LoraGradPair>> = {};
      for (const [target, pair] of Object.entries(layer) as [LoraTarget, LoraPair][]) {
        grads[target] = { a: new Float64Array(pair.a.length), b: new Float64Array(pair.b.length) };
      }
      return grads;
    });
  }

  /** The gradients in the order of `adapter.parameters()` (A before B, layer by layer). */
  gradientList(): Float64Array[] {
    const out: Float64Array[] = [];
    for (const p of this.adapter.parameters()) {
      const g = this.grads[p.layer]![p.target]!;
      out.push(p.kind === 'a' ? g.a : g.b);
    }
    return out;
  }

  /** Sets every gradient to zero. */
  zeroGrad(): void {
    for (const layer of this.grads) {
      for (const g of Object.values(layer)) {
        g.a.fill(0);
        g.b.fill(0);
      }
    }
  }

  /**
   * The logits [B·T][V] of the last forward (row b·T + t predicts the token after
   * inputs[b][t]). `backward` overwrites them with their gradient.
   */
  get logits(): Floats {
    if (this.last === undefined || this.last.backwardDone) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'no logits: run forward (backward turns them into their gradient)',
      );
    }
    const { B, T } = this.last.batch;
    return this.logitsBuf.subarray(0, B * T * this.config.vocabSize);
  }

  // -------------------------------------------------------------------------------------------
  // Forward

  /** Runs the batch and returns its loss; keeps every activation for `backward`. */
  forward(batch: TrainBatch, options: ForwardOptions = {}): ForwardResult {
    this.checkBatch(batch);
    const { B, T } = batch;
    const BT = B * T;
    const { dim: C, nLayers: L, nHeads: nH, nKvHeads: nKV, headDim: hd, rmsEps } = this.config;
    const { hiddenDim: H, vocabSize: V } = this.config;
    this.ensure(B, T);
    const p = options.train === true ? this.adapter.config.dropout : 0;
    const prng =
      p === 0
        ? undefined
        : options.dropoutSeed !== undefined
          ? new Prng(options.dropoutSeed, 1)
          : this.dropoutPrng;
    const w = this.weights;

    // resid[0] [BT][C] = token_embd[inputs]
    const x0 = this.resid[0]!;
    for (let i = 0; i < BT; i++) {
      const token = batch.inputs[i]!;
      for (let c = 0; c < C; c++) x0[i * C + c] = w.tokenEmbd[token * C + c]!;
    }

    for (let l = 0; l < L; l++) {
      const lw = w.layers[l]!;
      const a = this.layers[l]!;
      const x = this.resid[l]!;
      const xNext = this.resid[l + 1]!;

      // attention block
      rmsnormForward(a.ln1, a.rstd1, x, lw.attnNorm, BT, C, rmsEps); // [BT][C]
      this.linearForward(l, 'attn_q', a.q, a.ln1, BT, prng, p); // [BT][C] → [BT][qDim]
      this.linearForward(l, 'attn_k', a.k, a.ln1, BT, prng, p); // [BT][C] → [BT][kvDim]
      this.linearForward(l, 'attn_v', a.v, a.ln1, BT, prng, p); // [BT][C] → [BT][kvDim]
      ropeForward(a.q, this.rope, BT, T, nH, hd);
      ropeForward(a.k, this.rope, BT, T, nKV, hd);
      attentionForward(a.atty, a.att, a.q, a.k, a.v, B, T, nH, nKV, hd); // → [BT][qDim]
      this.linearForward(l, 'attn_output', this.proj, a.atty, BT, prng, p); // → [BT][C]
      for (let i = 0; i < BT * C; i++) a.res2[i] = x[i]! + this.proj[i]!;

      // feed-forward block
      rmsnormForward(a.ln2, a.rstd2, a.res2, lw.ffnNorm, BT, C, rmsEps); // [BT][C]
      this.linearForward(l, 'ffn_gate', a.gate, a.ln2, BT, prng, p); // → [BT][H]
      this.linearForward(l, 'ffn_up', a.up, a.ln2, BT, prng, p); // → [BT][H]
      swigluForward(a.act, a.gate, a.up, BT * H);
      this.linearForward(l, 'ffn_down', this.proj, a.act, BT, prng, p); // [BT][H] → [BT][C]
      for (let i = 0; i < BT * C; i++) xNext[i] = a.res2[i]! + this.proj[i]!;
    }

    // classifier and loss
    rmsnormForward(this.lnf, this.rstdf, this.resid[L]!, w.outputNorm, BT, C, rmsEps);
    matmulForward(this.logitsBuf, this.lnf, w.output, BT, C, V); // [BT][C] → [BT][V]
    const { lossSum, count } = crossEntropyForward(
      this.lse,
      this.logitsBuf,
      batch.targets,
      batch.mask,
      BT,
      V,
    );
    const result = { loss: count > 0 ? lossSum / count : 0, lossSum, count };
    this.last = { batch, result, backwardDone: false };
    return result;
  }

  /**
   * out [BT][OC] = W·inp, plus s·B·(A·drop(inp)) when the target is adapted (saving drop(inp),
   * its mask and u = A·drop(inp)).
   */
  private linearForward(
    l: number,
    target: LoraTarget,
    out: Floats,
    inp: Floats,
    BT: number,
    prng: Prng | undefined,
    p: number,
  ): void {
    const [C, OC] = loraTargetShape(this.config, target);
    matmulForward(out, inp, this.weights.layers[l]![LORA_TARGET_WEIGHT[target]], BT, C, OC);
    const pair = this.adapter.layers[l]![target];
    if (pair === undefined) return;
    const r = this.adapter.config.rank;
    const saved = this.layers[l]!.lora[target]!;
    if (prng === undefined) {
      saved.xd = inp;
      saved.mask = null;
    } else {
      // inverted dropout: keep with probability 1 − p, scaled by 1 / (1 − p)
      const n = BT * C;
      saved.dropped ??= new this.Float(this.capRows * C);
      saved.keep ??= new Uint8Array(this.capRows * C);
      const { dropped, keep } = saved;
      const keepScale = 1 / (1 - p);
      for (let i = 0; i < n; i++) {
        const kept = prng.uniform() >= p ? 1 : 0;
        keep[i] = kept;
        dropped[i] = kept === 1 ? inp[i]! * keepScale : 0;
      }
      saved.xd = dropped;
      saved.mask = keep;
    }
    matmulForward(saved.u, saved.xd, pair.a, BT, C, r); // [BT][C] → [BT][r]
    const tmp = this.dxd; // free during the forward
    matmulForward(tmp, saved.u, pair.b, BT, r, OC); // [BT][r] → [BT][OC]
    const s = this.adapter.scale;
    for (let i = 0; i < BT * OC; i++) out[i] = out[i]! + s * tmp[i]!;
  }

  // -------------------------------------------------------------------------------------------
  // Backward

  /**
   * Adds the gradient of the last forward's loss to `grads`: of `lossSum · scale`, where scale
   * defaults to 1 / count (the gradient of the mean loss). Give scale = 1 / (targets of the
   * whole step) to accumulate micro-batches into the gradient of the step's mean loss.
   */
  backward(scale?: number): void {
    const last = this.last;
    if (last === undefined || last.backwardDone) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'backward needs a forward first', {
        hint: 'call forward(batch) before each backward()',
      });
    }
    last.backwardDone = true;
    const { batch, result } = last;
    const lossScale = scale ?? (result.count > 0 ? 1 / result.count : 0);
    const { B, T } = batch;
    const BT = B * T;
    const { dim: C, nLayers: L, nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const { hiddenDim: H, vocabSize: V } = this.config;
    const w = this.weights;
    const { dresid, dln, datty, dq, dk, dv, dact, dgate, dup } = this;

    // loss → dlogits [BT][V] (in place of the logits)
    const dlogits = this.logitsBuf;
    crossEntropyBackward(dlogits, this.lse, batch.targets, batch.mask, lossScale, BT, V);
    // logits = W_output·lnf → dlnf [BT][C]; lnf = rmsnorm(resid[L]) → dresid
    dln.fill(0, 0, BT * C);
    matmulBackward(dln, null, dlogits, this.lnf, w.output, BT, C, V);
    dresid.fill(0, 0, BT * C);
    rmsnormBackward(dresid, dln, this.resid[L]!, w.outputNorm, this.rstdf, BT, C);

    for (let l = L - 1; l >= 0; l--) {
      const lw = w.layers[l]!;
      const a = this.layers[l]!;
      // dresid holds d resid[l+1]

      // feed-forward block: resid[l+1] = res2 + lin_down(act)
      dact.fill(0, 0, BT * H);
      this.linearBackward(l, 'ffn_down', dact, dresid, a.act, BT); // → dact [BT][H]
      swigluBackward(dgate, dup, dact, a.gate, a.up, BT * H);
      dln.fill(0, 0, BT * C);
      this.linearBackward(l, 'ffn_gate', dln, dgate, a.ln2, BT); // → dln2 [BT][C]
      this.linearBackward(l, 'ffn_up', dln, dup, a.ln2, BT);
      rmsnormBackward(dresid, dln, a.res2, lw.ffnNorm, a.rstd2, BT, C); // dresid = d res2

      // attention block: res2 = resid[l] + lin_o(atty)
      datty.fill(0, 0, BT * nH * hd);
      this.linearBackward(l, 'attn_output', datty, dresid, a.atty, BT); // → datty [BT][qDim]
      dq.fill(0, 0, BT * nH * hd);
      dk.fill(0, 0, BT * nKV * hd);
      dv.fill(0, 0, BT * nKV * hd);
      attentionBackward(dq, dk, dv, datty, a.q, a.k, a.v, a.att, B, T, nH, nKV, hd);
      ropeBackward(dq, this.rope, BT, T, nH, hd); // d(q before RoPE)
      ropeBackward(dk, this.rope, BT, T, nKV, hd);
      // The first layer's input is the (frozen) embedding: its gradient is not needed, so
      // layer 0 skips the three dln1 products and the RMSNorm backward.
      const dln1 = l > 0 ? dln : null;
      dln.fill(0, 0, BT * C);
      this.linearBackward(l, 'attn_q', dln1, dq, a.ln1, BT); // → dln1 [BT][C]
      this.linearBackward(l, 'attn_k', dln1, dk, a.ln1, BT);
      this.linearBackward(l, 'attn_v', dln1, dv, a.ln1, BT);
      if (l > 0) rmsnormBackward(dresid, dln, this.resid[l]!, lw.attnNorm, a.rstd1, BT, C);
    }
  }

  /**
   * dinp [BT][in] += Wᵀ-product of dout [BT][out] (when dinp is not null) and, for an adapted
   * target, its LoRA gradients:
   *
   *     y += s·B·u, u = A·xd:   dB += s·doutᵀ·u   du = s·dout·B
   *                             dA += duᵀ·xd      dxd = du·A,  dinp += dxd ⊙ mask / (1 − p)
   */
  private linearBackward(
    l: number,
    target: LoraTarget,
    dinp: Floats | null,
    dout: Floats,
    inp: Floats,
    BT: number,
  ): void {
    const [C, OC] = loraTargetShape(this.config, target);
    const W = this.weights.layers[l]![LORA_TARGET_WEIGHT[target]];
    if (dinp !== null) matmulBackward(dinp, null, dout, inp, W, BT, C, OC);
    const pair = this.adapter.layers[l]![target];
    if (pair === undefined) return;
    const r = this.adapter.config.rank;
    const saved = this.layers[l]!.lora[target]!;
    const grad = this.grads[l]![target]!;
    const s = this.adapter.scale;

    const scaled = this.proj; // s·dout [BT][OC]
    for (let i = 0; i < BT * OC; i++) scaled[i] = s * dout[i]!;
    this.du.fill(0, 0, BT * r);
    matmulBackward(this.du, grad.b, scaled, saved.u, pair.b, BT, r, OC); // dB, du [BT][r]
    if (dinp === null) {
      matmulBackward(null, grad.a, this.du, saved.xd, pair.a, BT, C, r); // dA only
    } else if (saved.mask === null) {
      matmulBackward(dinp, grad.a, this.du, saved.xd, pair.a, BT, C, r); // dA, dinp += du·A
    } else {
      const dxd = this.dxd;
      dxd.fill(0, 0, BT * C);
      matmulBackward(dxd, grad.a, this.du, saved.xd, pair.a, BT, C, r); // dA, dxd [BT][C]
      const keepScale = 1 / (1 - this.adapter.config.dropout);
      const mask = saved.mask;
      for (let i = 0; i < BT * C; i++) if (mask[i] === 1) dinp[i] = dinp[i]! + dxd[i]! * keepScale;
    }
  }

  // -------------------------------------------------------------------------------------------

  private checkBatch(batch: TrainBatch): void {
    const { B, T } = batch;
    const { contextLength, vocabSize } = this.config;
    const fail = (message: string, hint?: string): never => {
      throw new OpenLedgerError('VALIDATION_FAILED', `training batch: ${message}`, {
        ...(hint === undefined ? {} : { hint }),
      });
    };
    if (!Number.isSafeInteger(B) || B < 1 || !Number.isSafeInteger(T) || T < 1) {
      fail(`B ${B} and T ${T} must be positive integers`);
    }
    if (T > contextLength) {
      fail(`T ${T} exceeds the model's context of ${contextLength}`, 'split long examples');
    }
    const n = B * T;
    if (batch.inputs.length !== n || batch.targets.length !== n || batch.mask.length !== n) {
      fail(
        `inputs, targets and mask must have B·T = ${n} values; they have ${batch.inputs.length}, ${batch.targets.length}, ${batch.mask.length}`,
      );
    }
    for (let i = 0; i < n; i++) {
      const input = batch.inputs[i]!;
      const target = batch.targets[i]!;
      if (input < 0 || input >= vocabSize || target < 0 || target >= vocabSize) {
        fail(
          `token ${input < 0 || input >= vocabSize ? input : target} at ${i} is outside the vocabulary of ${vocabSize}`,
        );
      }
    }
  }

  /** Allocates the buffers for B sequences of T (kept when large enough). */
  private ensure(B: number, T: number): void {
    const { dim: C, hiddenDim: H, nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const { nLayers: L, vocabSize: V } = this.config;
    const { ropeDim, ropeFreqBase, ropeType } = this.config;
    if (this.rope.cos.length < T * (ropeDim / 2)) {
      this.rope = ropeTable(T, ropeDim, ropeFreqBase, ropeType); // positions 0 … T−1
    }
    const rows = B * T;
    const attEntries = B * T * T;
    if (rows <= this.capRows && attEntries <= this.capAtt) return;
    const R = Math.max(rows, this.capRows);
    const A = Math.max(attEntries, this.capAtt);
    this.capRows = R;
    this.capAtt = A;
    const F = this.Float;
    const qDim = nH * hd;
    const kvDim = nKV * hd;
    const r = this.adapter.config.rank;
    const wide = Math.max(C, H, qDim, kvDim);
    this.resid = Array.from({ length: L + 1 }, () => new F(R * C));
    this.layers = Array.from({ length: L }, (_, l): LayerActivations => {
      const lora: Partial<Record<LoraTarget, LoraActivation>> = {};
      for (const target of LORA_TARGETS) {
        if (this.adapter.layers[l]![target] === undefined) continue;
        lora[target] = { xd: new F(0), mask: null, u: new F(R * r), dropped: null, keep: null };
      }
      return {
        ln1: new F(R * C),
        rstd1: new F(R),
        q: new F(R * qDim),
        k: new F(R * kvDim),
        v: new F(R * kvDim),
        att: new F(A * nH),
        atty: new F(R * qDim),
        res2: new F(R * C),
        ln2: new F(R * C),
        rstd2: new F(R),
        gate: new F(R * H),
        up: new F(R * H),
        act: new F(R * H),
        lora,
      };
    });
    this.lnf = new F(R * C);
    this.rstdf = new F(R);
    this.logitsBuf = new F(R * V);
    this.lse = new Float64Array(R);
    this.dresid = new F(R * C);
    this.dln = new F(R * C);
    this.datty = new F(R * qDim);
    this.dq = new F(R * qDim);
    this.dk = new F(R * kvDim);
    this.dv = new F(R * kvDim);
    this.dact = new F(R * H);
    this.dgate = new F(R * H);
    this.dup = new F(R * H);
    this.proj = new F(R * wide);
    this.du = new F(R * r);
    this.dxd = new F(R * wide);
    this.last = undefined;
  }
}
