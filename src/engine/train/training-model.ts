/**
 * The llama-family forward and backward passes for training (Llama, Mistral, Qwen2), llm.c style: every activation the
 * backward needs is kept in a named buffer, and each layer's forward and backward are spelled
 * out. Two uses:
 *
 * - LoRA (and QLoRA): gradients only for the adapter's A and B; the base weights are frozen
 *   (float32, or quantized blocks that each product dequantizes) and the backward propagates
 *   through them, through RMSNorm, RoPE, softmax attention with grouped-query heads and SwiGLU,
 *   down to the first layer.
 * - Full training (`trainBase`, how the built-in base model is made): gradients for every base
 *   weight too, down to the token embeddings.
 *
 * Matrix products run on a `MatmulBackend` (onnxruntime or TypeScript), so forward and backward
 * are async.
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
 * where lin_t(x) = W_t·x (+ b_t) + s·B_t·(A_t·drop(x)) for an adapted target (u_t = A_t·drop(x),
 * [BT][r], is kept) and W_t·x (+ b_t) otherwise. Biases b_t exist where the weights have them:
 * Qwen2 has them on q, k and v (llama.cpp also reads one on the attention output); they are frozen
 * under LoRA and trained under `trainBase`. RoPE rotates the pairs of `config.ropeType`: 'normal'
 * for llama, 'neox' for Qwen2. Then lnf = rmsnorm(resid[L]) ⊙ output_norm and
 * logits = W_output·lnf (+ output.bias) [BT][V]; the loss is the mean of −log p(target) over
 * unmasked targets.
 */
import { OpenLedgerError } from '../../errors.ts';
import { isQuantized } from '../kernels/index.ts';
import type { Matrix } from '../kernels/index.ts';
import { LLAMA_LAYER_TENSORS } from '../model/index.ts';
import type { LlamaConfig, LlamaLayerBiases, LlamaLayerWeights } from '../model/index.ts';
import {
  rmsnormBackward,
  rmsnormForward,
  ropeBackward,
  ropeForward,
  ropeTable,
  swigluBackward,
  swigluForward,
} from './kernels.ts';
import type { Floats, RopeTable } from './kernels.ts';
import { LORA_TARGET_WEIGHT, loraTargetShape } from './lora.ts';
import type { LoraAdapter, LoraTarget } from './lora.ts';
import {
  TrainingNetworkBase,
  addBiasRows,
  biasBackward,
  expectWeight,
  refuseUnknownKeys,
} from './network.ts';
import type {
  AttentionActivations,
  ForwardOptions,
  ForwardResult,
  TrainBatch,
  TrainableParameter,
  TrainingModelOptions,
} from './network.ts';
import type { TrainingWeights } from './weights.ts';

export { makePackedBatch, makeTrainBatch } from './network.ts';
export type {
  ForwardOptions,
  ForwardResult,
  LoraGradPair,
  TrainBatch,
  TrainExample,
  TrainableParameter,
  TrainingModelOptions,
  TrainingNetwork,
} from './network.ts';

/** Gradients of the base weights under full training (`output` null when tied to the embedding). */
interface BaseGrads {
  tokenEmbd: Float64Array;
  layers: Record<keyof LlamaLayerWeights, Float64Array>[];
  layerBiases: Partial<Record<keyof LlamaLayerBiases, Float64Array>>[];
  outputNorm: Float64Array;
  output: Float64Array | null;
  outputBias: Float64Array | null;
}

/** Saved activations of one layer. */
interface LayerActivations extends AttentionActivations {
  ln1: Floats; // [BT][C]
  rstd1: Floats; // [BT]
  res2: Floats; // [BT][C] residual after attention
  ln2: Floats; // [BT][C]
  rstd2: Floats; // [BT]
  gate: Floats; // [BT][H] before silu
  up: Floats; // [BT][H]
  act: Floats; // [BT][H] silu(gate) ⊙ up
}

/** The layer weights and biases this model computes (anything else is refused). */
const LAYER_KEYS = Object.keys(LLAMA_LAYER_TENSORS);
const BIAS_KEYS: readonly (keyof LlamaLayerBiases)[] = ['attnQ', 'attnK', 'attnV', 'attnOutput'];
const WEIGHT_KEYS = ['tokenEmbd', 'layers', 'outputNorm', 'output', 'layerBiases', 'outputBias'];

/** The bias field of each target that may have one (Qwen2's q, k, v; llama.cpp allows wo's). */
const TARGET_BIAS: Partial<Record<LoraTarget, keyof LlamaLayerBiases>> = {
  attn_q: 'attnQ',
  attn_k: 'attnK',
  attn_v: 'attnV',
  attn_output: 'attnOutput',
};

/**
 * A llama-family model ready to train (Llama, Mistral, Qwen2): forward (loss) and backward
 * (gradients of the adapter's A and B and, under `trainBase`, of every base weight). Weights are
 * read at every forward, so an optimizer updates them in place; frozen base weights are never
 * written. Weights it does not compute (another architecture's, unknown biases) are refused.
 */
export class TrainingModel extends TrainingNetworkBase<LlamaConfig> {
  readonly weights: TrainingWeights;

  private readonly baseGrads: BaseGrads | null;
  private rope: RopeTable;

  // ---- activations (the forward fills them, the backward reads them)
  private resid: Floats[] = []; // L+1 × [BT][C]: resid[l] enters layer l; resid[L] leaves the last
  private layers: LayerActivations[] = [];
  private lnf: Floats = new Float64Array(0); // [BT][C]
  private rstdf: Floats = new Float64Array(0); // [BT]

  // ---- gradients of activations (reused by every layer)
  private dresid: Floats = new Float64Array(0); // [BT][C] gradient of the residual stream
  private dln: Floats = new Float64Array(0); // [BT][C]
  private dact: Floats = new Float64Array(0); // [BT][H]
  private dgate: Floats = new Float64Array(0); // [BT][H]
  private dup: Floats = new Float64Array(0); // [BT][H]

  constructor(
    model: { config: LlamaConfig; weights: TrainingWeights },
    adapter: LoraAdapter | null,
    options: TrainingModelOptions = {},
  ) {
    checkTrainingWeights(model.config, model.weights);
    super(model.config, adapter, options);
    this.weights = model.weights;
    this.rope = ropeTable(0, this.config.ropeDim, this.config.ropeFreqBase, this.config.ropeType);
    this.baseGrads = this.trainBase ? this.makeBaseGrads() : null;
  }

  private makeBaseGrads(): BaseGrads {
    const w = this.weights;
    const zeros = (m: Matrix, name: string): Float64Array => {
      if (isQuantized(m) || !(m instanceof Float32Array)) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `full training needs float32 base weights; ${name} is ${isQuantized(m) ? 'quantized' : 'float64'}`,
          { hint: 'quantized (QLoRA) bases train adapters only' },
        );
      }
      return new Float64Array(m.length);
    };
    return {
      tokenEmbd: zeros(w.tokenEmbd, 'token_embd'),
      layers: w.layers.map((layer, l) => {
        const out = {} as Record<keyof LlamaLayerWeights, Float64Array>;
        for (const key of Object.keys(layer) as (keyof LlamaLayerWeights)[]) {
          out[key] = zeros(layer[key], `blk.${l}.${key}`);
        }
        return out;
      }),
      layerBiases: w.layers.map((_, l) => {
        const out: Partial<Record<keyof LlamaLayerBiases, Float64Array>> = {};
        const biases = w.layerBiases?.[l] ?? {};
        for (const key of BIAS_KEYS) {
          const bias = biases[key];
          if (bias !== undefined) out[key] = new Float64Array(bias.length);
        }
        return out;
      }),
      outputNorm: zeros(w.outputNorm, 'output_norm'),
      output: w.output === w.tokenEmbd ? null : zeros(w.output, 'output'),
      outputBias: w.outputBias === undefined ? null : new Float64Array(w.outputBias.length),
    };
  }

  /** The base weights under `trainBase`, in GGUF tensor order (a layer's biases after it). */
  protected baseParameters(): TrainableParameter[] {
    const bg = this.baseGrads;
    if (bg === null) return [];
    const out: TrainableParameter[] = [];
    const w = this.weights;
    // makeBaseGrads checked that every base weight is a Float32Array
    const f32 = (m: Matrix): Float32Array => m as Float32Array;
    out.push({ name: 'token_embd.weight', value: w.tokenEmbd, grad: bg.tokenEmbd });
    w.layers.forEach((layer, l) => {
      for (const key of Object.keys(layer) as (keyof LlamaLayerWeights)[]) {
        const name = `blk.${l}.${LLAMA_LAYER_TENSORS[key]}.weight`;
        out.push({ name, value: f32(layer[key]), grad: bg.layers[l]![key] });
      }
      for (const key of BIAS_KEYS) {
        const grad = bg.layerBiases[l]![key];
        if (grad === undefined) continue;
        const name = `blk.${l}.${LLAMA_LAYER_TENSORS[key]}.bias`;
        out.push({ name, value: w.layerBiases![l]![key]!, grad });
      }
    });
    out.push({ name: 'output_norm.weight', value: w.outputNorm, grad: bg.outputNorm });
    if (bg.output !== null)
      out.push({ name: 'output.weight', value: f32(w.output), grad: bg.output });
    if (bg.outputBias !== null)
      out.push({ name: 'output.bias', value: w.outputBias!, grad: bg.outputBias });
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Forward

  /** Runs the batch and returns its loss; keeps every activation for `backward`. */
  async forward(batch: TrainBatch, options: ForwardOptions = {}): Promise<ForwardResult> {
    this.checkBatch(batch);
    const { B, T } = batch;
    const BT = B * T;
    const { dim: C, nLayers: L, nHeads: nH, nKvHeads: nKV, headDim: hd, rmsEps } = this.config;
    const { hiddenDim: H, vocabSize: V } = this.config;
    this.ensure(B, T);
    const { p, prng } = this.dropoutOf(options);
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
      const linear = async (target: LoraTarget, out: Floats, inp: Floats): Promise<void> => {
        const [inDim, outDim] = loraTargetShape(this.config, target);
        await this.backend.forward(out, inp, lw[LORA_TARGET_WEIGHT[target]], BT, inDim, outDim);
        const biasKey = TARGET_BIAS[target];
        const bias = biasKey === undefined ? undefined : w.layerBiases?.[l]?.[biasKey];
        if (bias !== undefined) addBiasRows(out, bias, BT, outDim);
        await this.loraForward(l, target, out, inp, BT, prng, p);
      };

      // attention block
      rmsnormForward(a.ln1, a.rstd1, x, lw.attnNorm, BT, C, rmsEps); // [BT][C]
      await linear('attn_q', a.q, a.ln1); // [BT][C] → [BT][qDim]
      await linear('attn_k', a.k, a.ln1); // [BT][C] → [BT][kvDim]
      await linear('attn_v', a.v, a.ln1); // [BT][C] → [BT][kvDim]
      ropeForward(a.q, this.rope, BT, T, nH, hd, batch.positions);
      ropeForward(a.k, this.rope, BT, T, nKV, hd, batch.positions);
      await this.attentionForward(a, B, T, batch.positions); // → atty [BT][qDim]
      await linear('attn_output', this.proj, a.atty); // → [BT][C]
      for (let i = 0; i < BT * C; i++) a.res2[i] = x[i]! + this.proj[i]!;

      // feed-forward block
      rmsnormForward(a.ln2, a.rstd2, a.res2, lw.ffnNorm, BT, C, rmsEps); // [BT][C]
      await linear('ffn_gate', a.gate, a.ln2); // → [BT][H]
      await linear('ffn_up', a.up, a.ln2); // → [BT][H]
      swigluForward(a.act, a.gate, a.up, BT * H);
      await linear('ffn_down', this.proj, a.act); // [BT][H] → [BT][C]
      for (let i = 0; i < BT * C; i++) xNext[i] = a.res2[i]! + this.proj[i]!;
    }

    // classifier and loss
    rmsnormForward(this.lnf, this.rstdf, this.resid[L]!, w.outputNorm, BT, C, rmsEps);
    await this.backend.forward(this.logitsBuf, this.lnf, w.output, BT, C, V); // → [BT][V]
    if (w.outputBias !== undefined) addBiasRows(this.logitsBuf, w.outputBias, BT, V);
    return this.finishForward(batch);
  }

  // -------------------------------------------------------------------------------------------
  // Backward

  /**
   * Adds the gradient of the last forward's loss to the gradients: of `lossSum · scale`, where
   * scale defaults to 1 / count (the gradient of the mean loss). Give scale = 1 / (targets of
   * the whole step) to accumulate micro-batches into the gradient of the step's mean loss.
   */
  async backward(scale?: number): Promise<void> {
    const batch = this.startBackward(scale); // logitsBuf now holds dlogits [BT][V]
    const { B, T } = batch;
    const BT = B * T;
    const { dim: C, nLayers: L, nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const { hiddenDim: H, vocabSize: V } = this.config;
    const w = this.weights;
    const bg = this.baseGrads;
    const { dresid, dln, datty, dq, dk, dv, dact, dgate, dup } = this;

    // logits = W_output·lnf (+ b) → dlnf [BT][C] (and dW_output, which is d token_embd when tied)
    const dlogits = this.logitsBuf;
    if (bg?.outputBias) biasBackward(bg.outputBias, dlogits, BT, V);
    dln.fill(0, 0, BT * C);
    const dOutput = bg === null ? null : (bg.output ?? bg.tokenEmbd);
    await this.backend.backward(dln, dOutput, dlogits, this.lnf, w.output, BT, C, V);
    // lnf = rmsnorm(resid[L]) → dresid
    dresid.fill(0, 0, BT * C);
    rmsnormBackward(dresid, dln, this.resid[L]!, w.outputNorm, this.rstdf, BT, C, bg?.outputNorm);

    for (let l = L - 1; l >= 0; l--) {
      const lw = w.layers[l]!;
      const lg = bg?.layers[l];
      const a = this.layers[l]!;
      // dresid holds d resid[l+1]

      // feed-forward block: resid[l+1] = res2 + lin_down(act)
      dact.fill(0, 0, BT * H);
      await this.linearBackward(l, 'ffn_down', dact, dresid, a.act, BT); // → dact [BT][H]
      swigluBackward(dgate, dup, dact, a.gate, a.up, BT * H);
      dln.fill(0, 0, BT * C);
      await this.linearBackward(l, 'ffn_gate', dln, dgate, a.ln2, BT); // → dln2 [BT][C]
      await this.linearBackward(l, 'ffn_up', dln, dup, a.ln2, BT);
      rmsnormBackward(dresid, dln, a.res2, lw.ffnNorm, a.rstd2, BT, C, lg?.ffnNorm); // d res2

      // attention block: res2 = resid[l] + lin_o(atty)
      datty.fill(0, 0, BT * nH * hd);
      await this.linearBackward(l, 'attn_output', datty, dresid, a.atty, BT); // → datty
      await this.attentionBackward(a, B, T); // → dq, dk, dv
      ropeBackward(dq, this.rope, BT, T, nH, hd, batch.positions); // d(q before RoPE)
      ropeBackward(dk, this.rope, BT, T, nKV, hd, batch.positions);
      // The first layer's input is the embedding: when it is frozen its gradient is not
      // needed, so layer 0 then skips the three dln1 products and the RMSNorm backward.
      const needInput = l > 0 || bg !== null;
      const dln1 = needInput ? dln : null;
      dln.fill(0, 0, BT * C);
      await this.linearBackward(l, 'attn_q', dln1, dq, a.ln1, BT); // → dln1 [BT][C]
      await this.linearBackward(l, 'attn_k', dln1, dk, a.ln1, BT);
      await this.linearBackward(l, 'attn_v', dln1, dv, a.ln1, BT);
      if (needInput) {
        rmsnormBackward(dresid, dln, this.resid[l]!, lw.attnNorm, a.rstd1, BT, C, lg?.attnNorm);
      }
    }

    if (bg !== null) {
      // resid[0] = token_embd[inputs]: scatter dresid into the embedding rows
      const demb = bg.tokenEmbd;
      for (let i = 0; i < BT; i++) {
        const row = batch.inputs[i]! * C;
        for (let c = 0; c < C; c++) demb[row + c] = demb[row + c]! + dresid[i * C + c]!;
      }
    }
  }

  /**
   * dinp [BT][in] += Wᵀ-product of dout [BT][out] (when dinp is not null); under full training
   * dW += doutᵀ·inp and d bias += Σ dout; and, for an adapted target, its LoRA gradients.
   */
  private async linearBackward(
    l: number,
    target: LoraTarget,
    dinp: Floats | null,
    dout: Floats,
    inp: Floats,
    BT: number,
  ): Promise<void> {
    const [C, OC] = loraTargetShape(this.config, target);
    const key = LORA_TARGET_WEIGHT[target];
    const W = this.weights.layers[l]![key];
    const dW = this.baseGrads?.layers[l]![key] ?? null;
    const biasKey = TARGET_BIAS[target];
    const dBias = biasKey === undefined ? undefined : this.baseGrads?.layerBiases[l]![biasKey];
    if (dBias !== undefined) biasBackward(dBias, dout, BT, OC);
    if (dinp !== null || dW !== null)
      await this.backend.backward(dinp, dW, dout, inp, W, BT, C, OC);
    await this.loraBackward(l, target, dinp, dout, BT);
  }

  // -------------------------------------------------------------------------------------------

  /** Allocates the buffers for B sequences of T (kept when large enough). */
  private ensure(B: number, T: number): void {
    const { dim: C, hiddenDim: H, nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const { nLayers: L, ropeDim, ropeFreqBase, ropeType } = this.config;
    if (this.rope.cos.length < T * (ropeDim / 2)) {
      this.rope = ropeTable(T, ropeDim, ropeFreqBase, ropeType); // positions 0 … T−1
    }
    const qDim = nH * hd;
    const kvDim = nKV * hd;
    const grown = this.growShared(B, T, Math.max(C, H, qDim, kvDim));
    if (grown === null) return;
    const { R, A } = grown;
    const F = this.Float;
    this.resid = Array.from({ length: L + 1 }, () => new F(R * C));
    this.layers = Array.from({ length: L }, (): LayerActivations => ({
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
    }));
    this.lnf = new F(R * C);
    this.rstdf = new F(R);
    this.dresid = new F(R * C);
    this.dln = new F(R * C);
    this.dact = new F(R * H);
    this.dgate = new F(R * H);
    this.dup = new F(R * H);
  }
}

/**
 * Throws VALIDATION_FAILED unless the weights are exactly what this model computes: llama's
 * layer weights, optional biases on q, k, v and the attention output, an optional output bias,
 * each of its size (matrices may be quantized; norms, embeddings and biases are float32).
 * Anything else (GPT-2's position embeddings, a fused qkv, an unknown bias) would otherwise be
 * silently ignored, and the model trained would not be the model served.
 */
function checkTrainingWeights(config: LlamaConfig, weights: TrainingWeights): void {
  const model = 'llama';
  if ((config as { nPositions?: unknown }).nPositions !== undefined) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'llama training: this is a GPT-2 config; train GPT-2 with Gpt2TrainingModel',
    );
  }
  refuseUnknownKeys(model, 'the model', weights, WEIGHT_KEYS);
  const { dim, nHeads, nKvHeads, headDim, vocabSize, nLayers } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  expectWeight(model, 'token_embd', weights.tokenEmbd, vocabSize * dim);
  expectWeight(model, 'output_norm', weights.outputNorm, dim);
  if (weights.layers.length !== nLayers) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `llama training: ${weights.layers.length} layers given, the config has ${nLayers}`,
    );
  }
  weights.layers.forEach((layer, l) => {
    refuseUnknownKeys(model, `layer ${l}`, layer, LAYER_KEYS);
    expectWeight(model, `blk.${l}.attn_norm`, layer.attnNorm, dim);
    expectWeight(model, `blk.${l}.ffn_norm`, layer.ffnNorm, dim);
  });
  if (weights.layerBiases !== undefined) {
    if (weights.layerBiases.length !== nLayers) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `llama training: biases for ${weights.layerBiases.length} layers, the config has ${nLayers}`,
      );
    }
    const sizes: Record<keyof LlamaLayerBiases, number> = {
      attnQ: qDim,
      attnK: kvDim,
      attnV: kvDim,
      attnOutput: dim,
    };
    weights.layerBiases.forEach((biases, l) => {
      refuseUnknownKeys(model, `the biases of layer ${l}`, biases, BIAS_KEYS);
      for (const key of BIAS_KEYS) {
        if (biases[key] === undefined) continue;
        expectWeight(model, `blk.${l}.${LLAMA_LAYER_TENSORS[key]}.bias`, biases[key], sizes[key]);
      }
    });
  }
  if (weights.outputBias !== undefined) {
    expectWeight(model, 'output.bias', weights.outputBias, vocabSize);
  }
}
