/**
 * What the training models of every architecture share (training-model.ts: the llama family;
 * gpt2-training-model.ts: GPT-2): the batch format, the LoRA path of a linear layer with its
 * dropout, causal attention forward and backward (loops on the TypeScript backend, batched
 * products on native ones), the loss, and the bookkeeping of parameters and gradients. Each
 * architecture supplies its forward and backward passes on top of these.
 *
 * Notation as in training-model.ts: B sequences of T tokens, BT = B·T rows, r = LoRA rank,
 * s = alpha / r, nH / nKV heads of hd.
 */
import { OpenLedgerError } from '../../errors.ts';
import { TypeScriptBackend } from '../kernels/index.ts';
import type { MatmulBackend } from '../kernels/index.ts';
import {
  attentionBackward,
  attentionForward,
  causalSoftmax,
  causalSoftmaxBackward,
  crossEntropyBackward,
  crossEntropyForward,
  mergeHeads,
  splitHeads,
} from './kernels.ts';
import type { Floats } from './kernels.ts';
import { ALL_LORA_TARGETS, loraTargetShape } from './lora.ts';
import type { AnyLoraTarget, LoraAdapter, LoraModelShape, LoraPair } from './lora.ts';
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
  /**
   * [B][T] the position of each token inside its own example, for rows that pack several
   * examples (see makePackedBatch); absent: token t of a row is at position t. A token at
   * position p attends only to the p + 1 tokens ending at it, and RoPE / learned position
   * embeddings use p, so each example trains exactly as it would alone in its row.
   */
  positions?: Int32Array;
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

/**
 * Packed rows: row b is the examples of rows[b] one after the other, each taking n − 1 positions
 * (inputs tokens[0 … n−2], targets tokens[1 … n−1], its loss mask as in makeTrainBatch) with
 * positions restarting at 0, then padding (its own segment, mask 0) up to T. No target crosses
 * an example boundary, and with the positions the attention and position encodings of the
 * models keep each example apart, so a packed row trains exactly as its examples would in
 * separate rows. T defaults to the longest row.
 */
export function makePackedBatch(
  rows: readonly (readonly TrainExample[])[],
  options: { T?: number; padToken?: number } = {},
): TrainBatch {
  if (rows.length === 0 || rows.some((row) => row.length === 0)) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'a packed batch needs rows of at least one example',
    );
  }
  const span = (e: TrainExample, where: string): number => {
    if (e.tokens.length < 2) {
      throw new OpenLedgerError('VALIDATION_FAILED', `${where} has ${e.tokens.length} tokens`, {
        hint: 'each example needs at least two tokens: one of context and one to predict',
      });
    }
    return e.tokens.length - 1;
  };
  const used = rows.map((row, b) =>
    row.reduce((n, e, j) => n + span(e, `row ${b} example ${j}`), 0),
  );
  const T = options.T ?? Math.max(...used);
  if (!Number.isSafeInteger(T) || T < 1) {
    throw new OpenLedgerError('VALIDATION_FAILED', `a packed batch needs T ≥ 1, not ${T}`);
  }
  const B = rows.length;
  const pad = options.padToken ?? 0;
  const inputs = new Int32Array(B * T).fill(pad);
  const targets = new Int32Array(B * T).fill(pad);
  const mask = new Float32Array(B * T);
  const positions = new Int32Array(B * T);
  rows.forEach((row, b) => {
    if (used[b]! > T) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `packed row ${b} needs ${used[b]} positions; a batch of T = ${T} holds ${T}`,
        { hint: 'put fewer examples in the row, or raise T' },
      );
    }
    let at = b * T;
    row.forEach((example) => {
      const one = makeTrainBatch([example]); // its targets, mask and their checks
      inputs.set(one.inputs, at);
      targets.set(one.targets, at);
      mask.set(one.mask, at);
      for (let t = 0; t < one.T; t++) positions[at + t] = t;
      at += one.T;
    });
    for (let t = 0; at < (b + 1) * T; t++, at++) positions[at] = t; // padding: a segment of its own
  });
  return { B, T, inputs, targets, mask, positions };
}

export interface TrainingModelOptions {
  /**
   * Storage of activations and gradients: 'float32' to train, 'float64' for gradient checks
   * (every stored value then keeps float64 precision). Default 'float32'.
   */
  precision?: 'float32' | 'float64';
  /** Seed of the dropout stream (default 0). */
  seed?: number;
  /**
   * Where matrix products run (default: the TypeScript loops; see `createMatmulBackend` for
   * onnxruntime). The model does not close it.
   */
  backend?: MatmulBackend;
  /** Train every base weight too (full training); they must be float32, not quantized. */
  trainBase?: boolean;
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

/** A trainable array and its gradient (float64), named as in GGUF files. */
export interface TrainableParameter {
  name: string;
  value: Float32Array;
  grad: Float64Array;
}

/** What the Trainer needs of a training model, whatever its architecture. */
export interface TrainingNetwork {
  readonly adapter: LoraAdapter | null;
  readonly trainBase: boolean;
  /** Everything trained, each with its gradient (adapter first, then base weights). */
  parameters(): TrainableParameter[];
  gradientList(): Float64Array[];
  zeroGrad(): void;
  forward(batch: TrainBatch, options?: ForwardOptions): Promise<ForwardResult>;
  backward(scale?: number): Promise<void>;
  /** The logits [B·T][V] of the last forward. */
  readonly logits: Floats;
}

/** Saved activations of one LoRA path: its (dropped-out) input and u = A·input. */
export interface LoraActivation {
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

/** The attention activations of one layer that the shared attention code reads and writes. */
export interface AttentionActivations {
  q: Floats; // [BT][nH·hd] (after RoPE where there is one)
  k: Floats; // [BT][kvDim]
  v: Floats; // [BT][kvDim]
  att: Floats; // [B][nH][T][T] probabilities
  atty: Floats; // [BT][nH·hd] attention output, heads concatenated
}

/** The model dimensions the shared code reads. */
export interface NetworkConfig extends LoraModelShape {
  vocabSize: number;
  contextLength: number;
}

/** Adds bias [n] to each of the `rows` rows of out [rows][n] (as the inference `addBias`). */
export function addBiasRows(out: Floats, bias: Float32Array, rows: number, n: number): void {
  for (let t = 0; t < rows; t++) {
    const base = t * n;
    for (let i = 0; i < n; i++) out[base + i] = out[base + i]! + bias[i]!;
  }
}

/** dbias [n] += Σ_rows dout [rows][n]. */
export function biasBackward(dbias: Float64Array, dout: Floats, rows: number, n: number): void {
  for (let t = 0; t < rows; t++) {
    const base = t * n;
    for (let i = 0; i < n; i++) dbias[i] = dbias[i]! + dout[base + i]!;
  }
}

/**
 * The base of the training models: the state and the passes every architecture shares. Weights
 * are read at every forward, so an optimizer updates them in place.
 */
export abstract class TrainingNetworkBase<Cfg extends NetworkConfig> implements TrainingNetwork {
  readonly config: Cfg;
  readonly adapter: LoraAdapter | null;
  readonly precision: 'float32' | 'float64';
  readonly backend: MatmulBackend;
  readonly trainBase: boolean;
  /** Adapter gradients, accumulated by `backward` until `zeroGrad`; `grads[l][target]`. */
  readonly grads: Partial<Record<AnyLoraTarget, LoraGradPair>>[];

  protected readonly Float: Float32ArrayConstructor | Float64ArrayConstructor;
  protected readonly dropoutPrng: Prng;
  // capacity of the buffers: rows (B·T) and attention entries (B·T·T)
  protected capRows = 0;
  protected capAtt = 0;

  /** Per layer, the saved activations of each adapted target's LoRA path. */
  protected loraActs: Partial<Record<AnyLoraTarget, LoraActivation>>[] = [];
  protected logitsBuf: Floats = new Float64Array(0); // [BT][V], dlogits after backward
  protected lse = new Float64Array(0); // [BT] log Σ exp(logits)
  // scratch of any width (the widest in or out of a linear layer)
  protected proj: Floats = new Float64Array(0); // [BT][wide] a projection, a LoRA term
  protected du: Floats = new Float64Array(0); // [BT][r]
  protected dxd: Floats = new Float64Array(0); // [BT][wide] gradient of a dropped input
  // attention gradients (the shared attention backward reads datty and writes dq, dk, dv)
  protected datty: Floats = new Float64Array(0); // [BT][qDim]
  protected dq: Floats = new Float64Array(0); // [BT][qDim]
  protected dk: Floats = new Float64Array(0); // [BT][kvDim]
  protected dv: Floats = new Float64Array(0); // [BT][kvDim]
  // head-major scratch of the batched attention (native backends only): [B·nH][T][hd] each,
  // and datt [B·nH][T][T]
  private qh: Floats = new Float64Array(0);
  private kh: Floats = new Float64Array(0);
  private vh: Floats = new Float64Array(0);
  private yh: Floats = new Float64Array(0);
  private dqh: Floats = new Float64Array(0);
  private dkh: Floats = new Float64Array(0);
  private dvh: Floats = new Float64Array(0);
  private datt: Floats = new Float64Array(0);

  /** The last forward. */
  protected last: { batch: TrainBatch; result: ForwardResult; backwardDone: boolean } | undefined;

  protected constructor(
    config: Cfg,
    adapter: LoraAdapter | null,
    options: TrainingModelOptions = {},
  ) {
    adapter?.checkFits(config);
    this.config = config;
    this.adapter = adapter;
    this.precision = options.precision ?? 'float32';
    this.Float = this.precision === 'float64' ? Float64Array : Float32Array;
    this.backend = options.backend ?? new TypeScriptBackend();
    this.trainBase = options.trainBase ?? false;
    if (adapter === null && !this.trainBase) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'nothing to train: give an adapter or trainBase',
      );
    }
    this.dropoutPrng = new Prng(options.seed ?? 0, 1);
    this.grads = (adapter?.layers ?? []).map((layer) => {
      const grads: Partial<Record<AnyLoraTarget, LoraGradPair>> = {};
      for (const [target, pair] of Object.entries(layer) as [AnyLoraTarget, LoraPair][]) {
        grads[target] = { a: new Float64Array(pair.a.length), b: new Float64Array(pair.b.length) };
      }
      return grads;
    });
  }

  /** The base weights trained under `trainBase`, each with its gradient, in GGUF order. */
  protected abstract baseParameters(): TrainableParameter[];

  abstract forward(batch: TrainBatch, options?: ForwardOptions): Promise<ForwardResult>;

  abstract backward(scale?: number): Promise<void>;

  /**
   * Everything this model trains, each with its gradient: the adapter's A and B (layer by
   * layer, A before B), then under `trainBase` the base weights in GGUF tensor order.
   */
  parameters(): TrainableParameter[] {
    const out: TrainableParameter[] = [];
    for (const p of this.adapter?.parameters() ?? []) {
      const g = this.grads[p.layer]![p.target]!;
      out.push({ name: p.name, value: p.value, grad: p.kind === 'a' ? g.a : g.b });
    }
    if (this.trainBase) out.push(...this.baseParameters());
    return out;
  }

  /** The gradients in the order of `parameters()`. */
  gradientList(): Float64Array[] {
    return this.parameters().map((p) => p.grad);
  }

  /** Sets every gradient to zero. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad.fill(0);
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
  // Pieces of the forward and backward passes

  /** The dropout of this forward: its probability and the stream of its masks. */
  protected dropoutOf(options: ForwardOptions): { p: number; prng: Prng | undefined } {
    const p = options.train === true ? (this.adapter?.config.dropout ?? 0) : 0;
    const prng =
      p === 0
        ? undefined
        : options.dropoutSeed !== undefined
          ? new Prng(options.dropoutSeed, 1)
          : this.dropoutPrng;
    return { p, prng };
  }

  /** The loss of the logits in logitsBuf; records the forward for `backward`. */
  protected finishForward(batch: TrainBatch): ForwardResult {
    const BT = batch.B * batch.T;
    const { lossSum, count } = crossEntropyForward(
      this.lse,
      this.logitsBuf,
      batch.targets,
      batch.mask,
      BT,
      this.config.vocabSize,
    );
    const result = { loss: count > 0 ? lossSum / count : 0, lossSum, count };
    this.last = { batch, result, backwardDone: false };
    return result;
  }

  /** Turns the logits into dlogits (scaled as `backward` says) and answers the batch. */
  protected startBackward(scale: number | undefined): TrainBatch {
    const last = this.last;
    if (last === undefined || last.backwardDone) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'backward needs a forward first', {
        hint: 'call forward(batch) before each backward()',
      });
    }
    last.backwardDone = true;
    const { batch, result } = last;
    const lossScale = scale ?? (result.count > 0 ? 1 / result.count : 0);
    const BT = batch.B * batch.T;
    const V = this.config.vocabSize;
    crossEntropyBackward(this.logitsBuf, this.lse, batch.targets, batch.mask, lossScale, BT, V);
    return batch;
  }

  /**
   * out [BT][OC] += s·B·(A·drop(inp)) when the target is adapted in layer l (saving drop(inp),
   * its mask and u = A·drop(inp)); nothing otherwise.
   */
  protected async loraForward(
    l: number,
    target: AnyLoraTarget,
    out: Floats,
    inp: Floats,
    BT: number,
    prng: Prng | undefined,
    p: number,
  ): Promise<void> {
    const pair = this.adapter?.layers[l]![target];
    if (this.adapter === null || pair === undefined) return;
    const [C, OC] = loraTargetShape(this.config, target);
    const mm = this.backend;
    const r = this.adapter.config.rank;
    const saved = this.loraActs[l]![target]!;
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
    await mm.forward(saved.u, saved.xd, pair.a, BT, C, r); // [BT][C] → [BT][r]
    const tmp = this.dxd; // free during the forward
    await mm.forward(tmp, saved.u, pair.b, BT, r, OC); // [BT][r] → [BT][OC]
    const s = this.adapter.scale;
    for (let i = 0; i < BT * OC; i++) out[i] = out[i]! + s * tmp[i]!;
  }

  /**
   * The LoRA gradients of an adapted target from dout [BT][OC], and its input gradient added to
   * dinp [BT][in] (when not null):
   *
   *     y += s·B·u, u = A·xd:   dB += s·doutᵀ·u   du = s·dout·B
   *                             dA += duᵀ·xd      dxd = du·A,  dinp += dxd ⊙ mask / (1 − p)
   *
   * Uses `proj` as scratch: callers must not keep anything in it across this call.
   */
  protected async loraBackward(
    l: number,
    target: AnyLoraTarget,
    dinp: Floats | null,
    dout: Floats,
    BT: number,
  ): Promise<void> {
    const pair = this.adapter?.layers[l]![target];
    if (this.adapter === null || pair === undefined) return;
    const [C, OC] = loraTargetShape(this.config, target);
    const mm = this.backend;
    const r = this.adapter.config.rank;
    const saved = this.loraActs[l]![target]!;
    const grad = this.grads[l]![target]!;
    const s = this.adapter.scale;

    const scaled = this.proj; // s·dout [BT][OC]
    for (let i = 0; i < BT * OC; i++) scaled[i] = s * dout[i]!;
    this.du.fill(0, 0, BT * r);
    await mm.backward(this.du, grad.b, scaled, saved.u, pair.b, BT, r, OC); // dB, du [BT][r]
    if (dinp === null) {
      await mm.backward(null, grad.a, this.du, saved.xd, pair.a, BT, C, r); // dA only
    } else if (saved.mask === null) {
      await mm.backward(dinp, grad.a, this.du, saved.xd, pair.a, BT, C, r); // dA, dinp += du·A
    } else {
      const dxd = this.dxd;
      dxd.fill(0, 0, BT * C);
      await mm.backward(dxd, grad.a, this.du, saved.xd, pair.a, BT, C, r); // dA, dxd [BT][C]
      const keepScale = 1 / (1 - this.adapter.config.dropout);
      const mask = saved.mask;
      for (let i = 0; i < BT * C; i++) if (mask[i] === 1) dinp[i] = dinp[i]! + dxd[i]! * keepScale;
    }
  }

  /**
   * Causal attention of one layer: atty and att from q, k, v. On a native backend as batched
   * products over head-major copies (two large calls instead of B·nH·T small loops); on the
   * TypeScript backend with the loops of `attentionForward`, whose float32 results equal the
   * inference forward's bit for bit.
   */
  protected async attentionForward(
    a: AttentionActivations,
    B: number,
    T: number,
    positions?: Int32Array,
  ): Promise<void> {
    const { nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    if (!this.backend.native) {
      attentionForward(a.atty, a.att, a.q, a.k, a.v, B, T, nH, nKV, hd, positions);
      return;
    }
    const { qh, kh, vh, yh } = this;
    const heads = B * nH;
    splitHeads(qh, a.q, B, T, nH, nH, hd);
    splitHeads(kh, a.k, B, T, nKV, nH, hd);
    splitHeads(vh, a.v, B, T, nKV, nH, hd);
    await this.backend.batchedMatmul(a.att, qh, kh, heads, T, T, hd, false, true); // q·kᵀ
    causalSoftmax(a.att, heads * T, T, 1 / Math.sqrt(hd), positions, nH);
    await this.backend.batchedMatmul(yh, a.att, vh, heads, T, hd, T, false, false); // att·v
    a.atty.fill(0, 0, B * T * nH * hd);
    mergeHeads(a.atty, yh, B, T, nH, nH, hd);
  }

  /** dq, dk, dv (zeroed here) from datty, for the layer's saved activations. */
  protected async attentionBackward(a: AttentionActivations, B: number, T: number): Promise<void> {
    const { nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const BT = B * T;
    const { dq, dk, dv, datty } = this;
    dq.fill(0, 0, BT * nH * hd);
    dk.fill(0, 0, BT * nKV * hd);
    dv.fill(0, 0, BT * nKV * hd);
    if (!this.backend.native) {
      attentionBackward(dq, dk, dv, datty, a.q, a.k, a.v, a.att, B, T, nH, nKV, hd);
      return;
    }
    const { qh, kh, vh, yh: dyh, datt, dqh, dkh, dvh } = this;
    const heads = B * nH;
    const mm = this.backend;
    splitHeads(qh, a.q, B, T, nH, nH, hd);
    splitHeads(kh, a.k, B, T, nKV, nH, hd);
    splitHeads(vh, a.v, B, T, nKV, nH, hd);
    splitHeads(dyh, datty, B, T, nH, nH, hd);
    await mm.batchedMatmul(datt, dyh, vh, heads, T, T, hd, false, true); // dy·vᵀ
    await mm.batchedMatmul(dvh, a.att, dyh, heads, T, hd, T, true, false); // attᵀ·dy
    causalSoftmaxBackward(datt, a.att, heads * T, T, 1 / Math.sqrt(hd));
    await mm.batchedMatmul(dqh, datt, kh, heads, T, hd, T, false, false); // dscores·k
    await mm.batchedMatmul(dkh, datt, qh, heads, T, hd, T, true, false); // dscoresᵀ·q
    mergeHeads(dq, dqh, B, T, nH, nH, hd);
    mergeHeads(dk, dkh, B, T, nH, nKV, hd);
    mergeHeads(dv, dvh, B, T, nH, nKV, hd);
  }

  // -------------------------------------------------------------------------------------------

  protected checkBatch(batch: TrainBatch): void {
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
    const { positions } = batch;
    if (positions !== undefined) {
      if (positions.length !== n) {
        fail(`positions must have B·T = ${n} values; it has ${positions.length}`);
      }
      // each row is a run of examples: a position is 0 (an example starts) or one more than
      // the previous token's, so t − positions[t] is always a key of the same row
      for (let i = 0; i < n; i++) {
        const p = positions[i]!;
        const ok = p === 0 || (i % T !== 0 && p === positions[i - 1]! + 1);
        if (!ok)
          fail(
            `position ${p} at ${i} neither starts an example (0) nor follows ${i % T === 0 ? 'a row start' : positions[i - 1]!}`,
          );
      }
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

  /**
   * Whether the buffers hold B sequences of T; when not, records the new capacity (R rows, A
   * attention entries per head) and allocates the shared buffers, `wide` being the widest input
   * or output of a linear layer. The subclass then allocates its own.
   */
  protected growShared(B: number, T: number, wide: number): { R: number; A: number } | null {
    const rows = B * T;
    const attEntries = B * T * T;
    if (rows <= this.capRows && attEntries <= this.capAtt) return null;
    const R = Math.max(rows, this.capRows);
    const A = Math.max(attEntries, this.capAtt);
    this.capRows = R;
    this.capAtt = A;
    const F = this.Float;
    const { nHeads: nH, nKvHeads: nKV, headDim: hd, vocabSize: V, nLayers: L } = this.config;
    const qDim = nH * hd;
    const kvDim = nKV * hd;
    const r = this.adapter?.config.rank ?? 0;
    this.loraActs = Array.from({ length: L }, (_, l) => {
      const lora: Partial<Record<AnyLoraTarget, LoraActivation>> = {};
      for (const target of ALL_LORA_TARGETS) {
        if (this.adapter?.layers[l]![target] === undefined) continue;
        lora[target] = { xd: new F(0), mask: null, u: new F(R * r), dropped: null, keep: null };
      }
      return lora;
    });
    this.logitsBuf = new F(R * V);
    this.lse = new Float64Array(R);
    this.proj = new F(R * wide);
    this.du = new F(R * r);
    this.dxd = new F(R * wide);
    this.datty = new F(R * qDim);
    this.dq = new F(R * qDim);
    this.dk = new F(R * kvDim);
    this.dv = new F(R * kvDim);
    const headRows = this.backend.native ? R * qDim : 0;
    this.qh = new F(headRows);
    this.kh = new F(headRows);
    this.vh = new F(headRows);
    this.yh = new F(headRows);
    this.dqh = new F(headRows);
    this.dkh = new F(headRows);
    this.dvh = new F(headRows);
    this.datt = new F(this.backend.native ? A * nH : 0);
    this.last = undefined;
    return { R, A };
  }
}

/** Throws VALIDATION_FAILED unless `array` is a Float32Array of `length` values. */
export function expectWeight(
  model: string,
  name: string,
  array: unknown,
  length: number,
): asserts array is Float32Array {
  if (!(array instanceof Float32Array) || array.length !== length) {
    const size = ArrayBuffer.isView(array) ? `${(array as Float32Array).length} values` : 'none';
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `${model} training: weight ${name} must be float32 of ${length} values; it has ${size}`,
    );
  }
}

/** Throws VALIDATION_FAILED naming the first key of `object` not in `known`. */
export function refuseUnknownKeys(
  model: string,
  what: string,
  object: object,
  known: readonly string[],
): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `${model} training: ${what} has '${key}', which this training model does not compute`,
        { hint: 'train a model of an architecture the engine supports (llama, qwen2, gpt2)' },
      );
    }
  }
}
