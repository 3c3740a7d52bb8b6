/**
 * The GPT-2 forward and backward passes for training, in the manner of llm.c's `train_gpt2.c`
 * (and of training-model.ts for the llama family): every activation the backward needs is kept
 * in a named buffer, each layer's forward and backward spelled out. LoRA on GPT-2's targets
 * (attn_qkv, attn_output, ffn_up, ffn_down), and under `trainBase` every base weight too.
 *
 * Notation: B sequences of T tokens, BT = B·T rows; C = dim, H = hidden, V = vocab, nH / nKV
 * heads of hd, qDim = nH·hd, kvDim = nKV·hd, qkvDim = qDim + 2·kvDim, L layers.
 *
 *     resid[0] = token_embd[inputs] + position_embd[t]               learned positions, no RoPE
 *   one layer (x = resid[l]):
 *     ln1  = layernorm(x) ⊙ attn_norm + attn_norm.bias     [BT][C]   (mean1, rstd1 [BT])
 *     qkv  = lin_qkv(ln1)                                   [BT][qkvDim] → q, k, v
 *     att  = softmax(q·kᵀ/√hd, causal), atty = att·v        [B][nH][T][T], [BT][qDim]
 *     res2 = x + lin_o(atty)                                [BT][C]
 *     ln2  = layernorm(res2) ⊙ ffn_norm + ffn_norm.bias     [BT][C]   (mean2, rstd2 [BT])
 *     fch  = lin_up(ln2), fchg = gelu(fch)                  [BT][H] ×2 (tanh approximation)
 *     resid[l+1] = res2 + lin_down(fchg)                    [BT][C]
 *   lnf = layernorm(resid[L]) ⊙ output_norm + output_norm.bias; logits = W_output·lnf [BT][V]
 *
 * where lin_t(x) = W_t·x + b_t + s·B_t·(A_t·drop(x)) for an adapted target, W_t·x + b_t
 * otherwise. The operations are those of the inference Gpt2Model in its order, so with B = 0 the
 * float32 logits are identical on the TypeScript backend. The four projections W_t may be
 * quantized blocks (QLoRA, quantizeGpt2Base), which the backend dequantizes for each product.
 */
import { OpenLedgerError } from '../../errors.ts';
import { isQuantized } from '../kernels/index.ts';
import type { Matrix } from '../kernels/index.ts';
import { GPT2_LAYER_TENSORS } from '../model/index.ts';
import type { Gpt2Config, Gpt2LayerWeights } from '../model/index.ts';
import { geluBackward, geluForward, layernormBackward, layernormForward } from './kernels.ts';
import type { Floats } from './kernels.ts';
import { GPT2_LORA_TARGETS, GPT2_LORA_TARGET_WEIGHT, loraTargetShape } from './lora.ts';
import type { Gpt2LoraTarget, LoraAdapter } from './lora.ts';
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
import type { Gpt2TrainingWeights } from './weights.ts';

/** Gradients of the base weights under full training (`output` null when tied). */
interface Gpt2BaseGrads {
  tokenEmbd: Float64Array;
  positionEmbd: Float64Array;
  layers: Record<keyof Gpt2LayerWeights, Float64Array>[];
  outputNorm: Float64Array;
  outputNormBias: Float64Array;
  output: Float64Array | null;
}

/** Saved activations of one layer. */
interface Gpt2LayerActivations extends AttentionActivations {
  ln1: Floats; // [BT][C]
  mean1: Floats; // [BT]
  rstd1: Floats; // [BT]
  res2: Floats; // [BT][C] residual after attention
  ln2: Floats; // [BT][C]
  mean2: Floats; // [BT]
  rstd2: Floats; // [BT]
  fch: Floats; // [BT][H] before GELU
  fchg: Floats; // [BT][H] after GELU
}

const LAYER_KEYS = Object.keys(GPT2_LAYER_TENSORS) as (keyof Gpt2LayerWeights)[];
const WEIGHT_KEYS = [
  'tokenEmbd',
  'positionEmbd',
  'layers',
  'outputNorm',
  'outputNormBias',
  'output',
];

/**
 * A GPT-2 model ready to train: forward (loss) and backward (gradients of the adapter's A and B
 * and, under `trainBase`, of every base weight, which must then all be float32).
 */
export class Gpt2TrainingModel extends TrainingNetworkBase<Gpt2Config> {
  readonly weights: Gpt2TrainingWeights;

  private readonly baseGrads: Gpt2BaseGrads | null;

  // ---- activations
  private resid: Floats[] = []; // L+1 × [BT][C]
  private layers: Gpt2LayerActivations[] = [];
  private lnf: Floats = new Float64Array(0); // [BT][C]
  private meanf: Floats = new Float64Array(0); // [BT]
  private rstdf: Floats = new Float64Array(0); // [BT]

  // ---- gradients of activations (reused by every layer)
  private dresid: Floats = new Float64Array(0); // [BT][C]
  private dln: Floats = new Float64Array(0); // [BT][C]
  private dqkv: Floats = new Float64Array(0); // [BT][qkvDim]
  private dfch: Floats = new Float64Array(0); // [BT][H]
  private dfchg: Floats = new Float64Array(0); // [BT][H]

  constructor(
    model: { config: Gpt2Config; weights: Gpt2TrainingWeights },
    adapter: LoraAdapter | null,
    options: TrainingModelOptions = {},
  ) {
    checkGpt2TrainingWeights(model.config, model.weights);
    super(model.config, adapter, options);
    this.weights = model.weights;
    this.baseGrads = this.trainBase ? this.makeBaseGrads() : null;
  }

  private makeBaseGrads(): Gpt2BaseGrads {
    const w = this.weights;
    const zeros = (m: Matrix, name = ''): Float64Array => {
      if (isQuantized(m)) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `full training needs float32 base weights; ${name} is quantized`,
          { hint: 'quantized (QLoRA) bases train adapters only' },
        );
      }
      return new Float64Array(m.length);
    };
    return {
      tokenEmbd: zeros(w.tokenEmbd),
      positionEmbd: zeros(w.positionEmbd),
      layers: w.layers.map((layer, l) => {
        const out = {} as Record<keyof Gpt2LayerWeights, Float64Array>;
        for (const key of LAYER_KEYS)
          out[key] = zeros(layer[key], `blk.${l}.${GPT2_LAYER_TENSORS[key]}`);
        return out;
      }),
      outputNorm: zeros(w.outputNorm),
      outputNormBias: zeros(w.outputNormBias),
      output: w.output === w.tokenEmbd ? null : zeros(w.output),
    };
  }

  /** The base weights under `trainBase`, in GGUF tensor order. */
  protected baseParameters(): TrainableParameter[] {
    const bg = this.baseGrads;
    if (bg === null) return [];
    const w = this.weights;
    const out: TrainableParameter[] = [
      { name: 'token_embd.weight', value: w.tokenEmbd, grad: bg.tokenEmbd },
      { name: 'position_embd.weight', value: w.positionEmbd, grad: bg.positionEmbd },
    ];
    w.layers.forEach((layer, l) => {
      for (const key of LAYER_KEYS) {
        const name = `blk.${l}.${GPT2_LAYER_TENSORS[key]}`;
        // makeBaseGrads refused quantized weights, so every one is float32 here
        out.push({ name, value: layer[key] as Float32Array, grad: bg.layers[l]![key] });
      }
    });
    out.push(
      { name: 'output_norm.weight', value: w.outputNorm, grad: bg.outputNorm },
      { name: 'output_norm.bias', value: w.outputNormBias, grad: bg.outputNormBias },
    );
    if (bg.output !== null) out.push({ name: 'output.weight', value: w.output, grad: bg.output });
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Forward

  /** Runs the batch and returns its loss; keeps every activation for `backward`. */
  async forward(batch: TrainBatch, options: ForwardOptions = {}): Promise<ForwardResult> {
    this.checkBatch(batch);
    const { B, T } = batch;
    const BT = B * T;
    const { dim: C, nLayers: L, nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const { hiddenDim: H, vocabSize: V, normEps } = this.config;
    const qDim = nH * hd;
    const kvDim = nKV * hd;
    const qkvDim = qDim + 2 * kvDim;
    this.ensure(B, T);
    const { p, prng } = this.dropoutOf(options);
    const w = this.weights;

    // resid[0] [BT][C] = token_embd[inputs] + position_embd[position]
    const x0 = this.resid[0]!;
    const positions = batch.positions;
    for (let i = 0; i < BT; i++) {
      const te = batch.inputs[i]! * C;
      const pe = (positions === undefined ? i % T : positions[i]!) * C;
      for (let c = 0; c < C; c++) x0[i * C + c] = w.tokenEmbd[te + c]! + w.positionEmbd[pe + c]!;
    }

    for (let l = 0; l < L; l++) {
      const lw = w.layers[l]!;
      const a = this.layers[l]!;
      const x = this.resid[l]!;
      const xNext = this.resid[l + 1]!;
      const linear = async (target: Gpt2LoraTarget, out: Floats, inp: Floats): Promise<void> => {
        const [inDim, outDim] = loraTargetShape(this.config, target);
        const { weight, bias } = GPT2_LORA_TARGET_WEIGHT[target];
        await this.backend.forward(out, inp, lw[weight], BT, inDim, outDim);
        addBiasRows(out, lw[bias] as Float32Array, BT, outDim); // biases are never quantized
        await this.loraForward(l, target, out, inp, BT, prng, p);
      };

      // attention block
      layernormForward(a.ln1, a.mean1, a.rstd1, x, lw.attnNorm, lw.attnNormBias, BT, C, normEps);
      const qkv = this.proj;
      await linear('attn_qkv', qkv, a.ln1); // [BT][C] → [BT][qkvDim]
      for (let i = 0; i < BT; i++) {
        const row = i * qkvDim;
        for (let j = 0; j < qDim; j++) a.q[i * qDim + j] = qkv[row + j]!;
        for (let j = 0; j < kvDim; j++) {
          a.k[i * kvDim + j] = qkv[row + qDim + j]!;
          a.v[i * kvDim + j] = qkv[row + qDim + kvDim + j]!;
        }
      }
      await this.attentionForward(a, B, T, batch.positions); // → atty [BT][qDim]
      await linear('attn_output', this.proj, a.atty); // → [BT][C]
      for (let i = 0; i < BT * C; i++) a.res2[i] = x[i]! + this.proj[i]!;

      // feed-forward block
      layernormForward(a.ln2, a.mean2, a.rstd2, a.res2, lw.ffnNorm, lw.ffnNormBias, BT, C, normEps);
      await linear('ffn_up', a.fch, a.ln2); // → [BT][H]
      geluForward(a.fchg, a.fch, BT * H);
      await linear('ffn_down', this.proj, a.fchg); // [BT][H] → [BT][C]
      for (let i = 0; i < BT * C; i++) xNext[i] = a.res2[i]! + this.proj[i]!;
    }

    // classifier and loss
    const xL = this.resid[L]!;
    layernormForward(
      this.lnf,
      this.meanf,
      this.rstdf,
      xL,
      w.outputNorm,
      w.outputNormBias,
      BT,
      C,
      normEps,
    );
    await this.backend.forward(this.logitsBuf, this.lnf, w.output, BT, C, V); // → [BT][V]
    return this.finishForward(batch);
  }

  // -------------------------------------------------------------------------------------------
  // Backward

  /** As TrainingModel.backward: adds the gradient of the last forward's lossSum · scale. */
  async backward(scale?: number): Promise<void> {
    const batch = this.startBackward(scale); // logitsBuf now holds dlogits [BT][V]
    const { B, T } = batch;
    const BT = B * T;
    const { dim: C, nLayers: L, nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const { hiddenDim: H, vocabSize: V } = this.config;
    const qDim = nH * hd;
    const kvDim = nKV * hd;
    const qkvDim = qDim + 2 * kvDim;
    const w = this.weights;
    const bg = this.baseGrads;
    const { dresid, dln, datty, dq, dk, dv, dqkv, dfch, dfchg } = this;

    // logits = W_output·lnf → dlnf (and dW_output, d token_embd when tied)
    dln.fill(0, 0, BT * C);
    const dOutput = bg === null ? null : (bg.output ?? bg.tokenEmbd);
    await this.backend.backward(dln, dOutput, this.logitsBuf, this.lnf, w.output, BT, C, V);
    dresid.fill(0, 0, BT * C);
    layernormBackward(
      dresid,
      dln,
      this.resid[L]!,
      w.outputNorm,
      this.meanf,
      this.rstdf,
      BT,
      C,
      bg?.outputNorm,
      bg?.outputNormBias,
    );

    for (let l = L - 1; l >= 0; l--) {
      const lw = w.layers[l]!;
      const lg = bg?.layers[l];
      const a = this.layers[l]!;
      // dresid holds d resid[l+1]

      // feed-forward block: resid[l+1] = res2 + lin_down(gelu(lin_up(ln2)))
      dfchg.fill(0, 0, BT * H);
      await this.linearBackward(l, 'ffn_down', dfchg, dresid, a.fchg, BT);
      dfch.fill(0, 0, BT * H);
      geluBackward(dfch, a.fch, dfchg, BT * H);
      dln.fill(0, 0, BT * C);
      await this.linearBackward(l, 'ffn_up', dln, dfch, a.ln2, BT);
      layernormBackward(
        dresid,
        dln,
        a.res2,
        lw.ffnNorm,
        a.mean2,
        a.rstd2,
        BT,
        C,
        lg?.ffnNorm,
        lg?.ffnNormBias,
      ); // dresid: d res2

      // attention block: res2 = resid[l] + lin_o(attention(lin_qkv(ln1)))
      datty.fill(0, 0, BT * qDim);
      await this.linearBackward(l, 'attn_output', datty, dresid, a.atty, BT);
      await this.attentionBackward(a, B, T); // → dq, dk, dv
      for (let i = 0; i < BT; i++) {
        const row = i * qkvDim;
        for (let j = 0; j < qDim; j++) dqkv[row + j] = dq[i * qDim + j]!;
        for (let j = 0; j < kvDim; j++) {
          dqkv[row + qDim + j] = dk[i * kvDim + j]!;
          dqkv[row + qDim + kvDim + j] = dv[i * kvDim + j]!;
        }
      }
      // As in TrainingModel: a frozen embedding needs no gradient, so layer 0 skips dln1.
      const needInput = l > 0 || bg !== null;
      dln.fill(0, 0, BT * C);
      await this.linearBackward(l, 'attn_qkv', needInput ? dln : null, dqkv, a.ln1, BT);
      if (needInput) {
        layernormBackward(
          dresid,
          dln,
          this.resid[l]!,
          lw.attnNorm,
          a.mean1,
          a.rstd1,
          BT,
          C,
          lg?.attnNorm,
          lg?.attnNormBias,
        );
      }
    }

    if (bg !== null) {
      // resid[0] = token_embd[inputs] + position_embd[position]: scatter dresid into both
      const { tokenEmbd: demb, positionEmbd: dpos } = bg;
      const positions = batch.positions;
      for (let i = 0; i < BT; i++) {
        const row = batch.inputs[i]! * C;
        const pos = (positions === undefined ? i % T : positions[i]!) * C;
        for (let c = 0; c < C; c++) {
          const d = dresid[i * C + c]!;
          demb[row + c] = demb[row + c]! + d;
          dpos[pos + c] = dpos[pos + c]! + d;
        }
      }
    }
  }

  /**
   * dinp [BT][in] += Wᵀ-product of dout (when dinp is not null); under full training
   * dW += doutᵀ·inp and d bias += Σ dout; and the LoRA gradients of an adapted target.
   */
  private async linearBackward(
    l: number,
    target: Gpt2LoraTarget,
    dinp: Floats | null,
    dout: Floats,
    inp: Floats,
    BT: number,
  ): Promise<void> {
    const [C, OC] = loraTargetShape(this.config, target);
    const { weight, bias } = GPT2_LORA_TARGET_WEIGHT[target];
    const lg = this.baseGrads?.layers[l];
    if (lg !== undefined) biasBackward(lg[bias], dout, BT, OC);
    const dW = lg?.[weight] ?? null;
    const W = this.weights.layers[l]![weight];
    if (dinp !== null || dW !== null)
      await this.backend.backward(dinp, dW, dout, inp, W, BT, C, OC);
    await this.loraBackward(l, target, dinp, dout, BT);
  }

  // -------------------------------------------------------------------------------------------

  /** Allocates the buffers for B sequences of T (kept when large enough). */
  private ensure(B: number, T: number): void {
    const { dim: C, hiddenDim: H, nHeads: nH, nKvHeads: nKV, headDim: hd } = this.config;
    const L = this.config.nLayers;
    const qDim = nH * hd;
    const kvDim = nKV * hd;
    const qkvDim = qDim + 2 * kvDim;
    const grown = this.growShared(B, T, Math.max(C, H, qkvDim));
    if (grown === null) return;
    const { R, A } = grown;
    const F = this.Float;
    this.resid = Array.from({ length: L + 1 }, () => new F(R * C));
    this.layers = Array.from({ length: L }, (): Gpt2LayerActivations => ({
      ln1: new F(R * C),
      mean1: new F(R),
      rstd1: new F(R),
      q: new F(R * qDim),
      k: new F(R * kvDim),
      v: new F(R * kvDim),
      att: new F(A * nH),
      atty: new F(R * qDim),
      res2: new F(R * C),
      ln2: new F(R * C),
      mean2: new F(R),
      rstd2: new F(R),
      fch: new F(R * H),
      fchg: new F(R * H),
    }));
    this.lnf = new F(R * C);
    this.meanf = new F(R);
    this.rstdf = new F(R);
    this.dresid = new F(R * C);
    this.dln = new F(R * C);
    this.dqkv = new F(R * qkvDim);
    this.dfch = new F(R * H);
    this.dfchg = new F(R * H);
  }
}

/**
 * Throws VALIDATION_FAILED unless the weights are exactly GPT-2's and of their sizes (the four
 * projections float32 or quantized [out][in], the rest float32): a weight this model would not
 * read must not be silently dropped from what is trained.
 */
function checkGpt2TrainingWeights(config: Gpt2Config, weights: Gpt2TrainingWeights): void {
  const model = 'gpt2';
  refuseUnknownKeys(model, 'the model', weights, WEIGHT_KEYS);
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize, nLayers, nPositions } = config;
  if (config.contextLength > nPositions) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `gpt2 training: contextLength ${config.contextLength} is beyond the ${nPositions} positions`,
    );
  }
  const qDim = nHeads * headDim;
  const qkvDim = qDim + 2 * nKvHeads * headDim;
  expectWeight(model, 'token_embd', weights.tokenEmbd, vocabSize * dim);
  expectWeight(model, 'position_embd', weights.positionEmbd, nPositions * dim);
  expectWeight(model, 'output_norm.weight', weights.outputNorm, dim);
  expectWeight(model, 'output_norm.bias', weights.outputNormBias, dim);
  expectWeight(model, 'output', weights.output, vocabSize * dim);
  if (weights.layers.length !== nLayers) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `gpt2 training: ${weights.layers.length} layers given, the config has ${nLayers}`,
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
  const shapes = new Map(
    GPT2_LORA_TARGETS.map((t) => [GPT2_LORA_TARGET_WEIGHT[t].weight, loraTargetShape(config, t)]),
  );
  weights.layers.forEach((layer, l) => {
    refuseUnknownKeys(model, `layer ${l}`, layer, LAYER_KEYS);
    for (const key of LAYER_KEYS) {
      const name = `blk.${l}.${GPT2_LAYER_TENSORS[key]}`;
      const value: Matrix = layer[key];
      const shape = shapes.get(key);
      if (!isQuantized(value) || shape === undefined) {
        expectWeight(model, name, value, sizes[key]);
        continue;
      }
      const [cols, rows] = shape;
      if (value.rows !== rows || value.cols !== cols) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `${model} training: quantized weight ${name} is ${value.rows}×${value.cols}, not ${rows}×${cols}`,
        );
      }
    }
  });
}
