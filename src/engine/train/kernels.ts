/**
 * The kernels of the training forward and backward passes, in the manner of llm.c's
 * `train_gpt2.c`: one function per layer kind and direction, shapes in comments, nothing hidden.
 *
 * Notation: B = sequences in the batch, T = tokens per sequence, BT = B·T rows, C = input
 * channels, OC = output channels, nH / nKV = query / key-value heads, hd = head dim, V = vocab.
 * Matrices are row-major; a weight W is [OC][C] (GGUF ne = [C, OC]).
 *
 * Buffers are `Floats`: Float32Array for training, Float64Array when a gradient check wants
 * exact-ish arithmetic. Every sum accumulates in float64 (JavaScript numbers) whatever the
 * storage. Backward functions ADD into their gradient outputs (`+=`), as llm.c's do, so a
 * buffer that receives several contributions (dx of q, k and v) must be zeroed first.
 *
 * Matrix products are not here: they go through a `MatmulBackend` (src/engine/kernels), which
 * runs them on onnxruntime or in plain TypeScript.
 */
import { scratch64 } from '../kernels/matmul.ts';
import type { Floats } from '../kernels/matmul.ts';

export type { Floats };

// ---------------------------------------------------------------------------------------------
// RMSNorm

/**
 * out [BT][C] = inp · rstd ⊙ weight, rstd [BT] = 1 / √(mean(inp²) + eps) (saved for backward).
 * The operations of the inference `rmsnorm`, in its order.
 */
export function rmsnormForward(
  out: Floats,
  rstd: Floats,
  inp: Floats,
  weight: Floats,
  BT: number,
  C: number,
  eps: number,
): void {
  for (let t = 0; t < BT; t++) {
    const base = t * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += inp[base + c]! * inp[base + c]!;
    const s = 1 / Math.sqrt(ss / C + eps);
    rstd[t] = s;
    for (let c = 0; c < C; c++) out[base + c] = inp[base + c]! * s * weight[c]!;
  }
}

/**
 * dinp [BT][C] += backward of rmsnorm: with x̂ = inp·rstd and g = dout ⊙ weight,
 * dinp = rstd · (g − x̂ · mean(g ⊙ x̂)); and dweight [C] += Σ_t dout ⊙ x̂ when the weight trains.
 */
export function rmsnormBackward(
  dinp: Floats,
  dout: Floats,
  inp: Floats,
  weight: Floats,
  rstd: Floats,
  BT: number,
  C: number,
  dweight?: Floats,
): void {
  for (let t = 0; t < BT; t++) {
    const base = t * C;
    const s = rstd[t]!;
    if (dweight !== undefined) {
      for (let c = 0; c < C; c++) dweight[c] = dweight[c]! + dout[base + c]! * inp[base + c]! * s;
    }
    let dot = 0; // Σ g ⊙ x̂
    for (let c = 0; c < C; c++) dot += dout[base + c]! * weight[c]! * inp[base + c]! * s;
    const mean = dot / C;
    for (let c = 0; c < C; c++) {
      const g = dout[base + c]! * weight[c]!;
      const xhat = inp[base + c]! * s;
      dinp[base + c] = dinp[base + c]! + s * (g - xhat * mean);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm (GPT-2)

/**
 * out [BT][C] = (inp − mean) · rstd ⊙ weight + bias, with rstd = 1 / √(var + eps) of the centred
 * values; mean and rstd [BT] are saved for backward. The operations of the inference
 * `layernorm`, in its order (so float32 results are identical).
 */
export function layernormForward(
  out: Floats,
  mean: Floats,
  rstd: Floats,
  inp: Floats,
  weight: Floats,
  bias: Floats,
  BT: number,
  C: number,
  eps: number,
): void {
  for (let t = 0; t < BT; t++) {
    const base = t * C;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += inp[base + c]!;
    const m = sum / C;
    let ss = 0;
    for (let c = 0; c < C; c++) {
      const d = inp[base + c]! - m;
      ss += d * d;
    }
    const s = 1 / Math.sqrt(ss / C + eps);
    mean[t] = m;
    rstd[t] = s;
    for (let c = 0; c < C; c++) out[base + c] = (inp[base + c]! - m) * s * weight[c]! + bias[c]!;
  }
}

/**
 * dinp [BT][C] += backward of layernorm (llm.c's `layernorm_backward`): with x̂ = (inp − mean)·rstd
 * and g = dout ⊙ weight, dinp = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)); and, when the weight and
 * bias train, dweight += Σ_t dout ⊙ x̂, dbias += Σ_t dout.
 */
export function layernormBackward(
  dinp: Floats,
  dout: Floats,
  inp: Floats,
  weight: Floats,
  mean: Floats,
  rstd: Floats,
  BT: number,
  C: number,
  dweight?: Floats,
  dbias?: Floats,
): void {
  for (let t = 0; t < BT; t++) {
    const base = t * C;
    const m = mean[t]!;
    const s = rstd[t]!;
    let gMean = 0;
    let gxMean = 0;
    for (let c = 0; c < C; c++) {
      const g = dout[base + c]! * weight[c]!;
      gMean += g;
      gxMean += g * (inp[base + c]! - m) * s;
    }
    gMean /= C;
    gxMean /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (inp[base + c]! - m) * s;
      const d = dout[base + c]!;
      if (dweight !== undefined) dweight[c] = dweight[c]! + d * xhat;
      if (dbias !== undefined) dbias[c] = dbias[c]! + d;
      dinp[base + c] = dinp[base + c]! + s * (d * weight[c]! - gMean - xhat * gxMean);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GELU (tanh approximation, GPT-2's `gelu_new`)

const GELU_C = Math.sqrt(2 / Math.PI);

/** out [N] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), the inference `gelu`'s formula. */
export function geluForward(out: Floats, inp: Floats, N: number): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i]!;
    out[i] = 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
  }
}

/**
 * dinp [N] += dout · gelu′(x), gelu′(x) = 0.5·(1 + tanh u) + 0.5·x·sech²(u)·√(2/π)·(1 + 3·0.044715·x²)
 * with u = √(2/π)·(x + 0.044715·x³) (llm.c's `gelu_backward`).
 */
export function geluBackward(dinp: Floats, inp: Floats, dout: Floats, N: number): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i]!;
    const u = GELU_C * (x + 0.044715 * x * x * x);
    const th = Math.tanh(u);
    const sech2 = 1 - th * th;
    const local = 0.5 * (1 + th) + 0.5 * x * sech2 * GELU_C * (1 + 3 * 0.044715 * x * x);
    dinp[i] = dinp[i]! + local * dout[i]!;
  }
}

// ---------------------------------------------------------------------------------------------
// RoPE

export interface RopeTable {
  ropeDim: number;
  type: 'normal' | 'neox';
  /** cos and sin of pos · base^(−2i/ropeDim): [T][ropeDim/2] */
  cos: Float64Array;
  sin: Float64Array;
}

/** The angles of positions 0 … T−1 (as the inference model computes them). */
export function ropeTable(
  T: number,
  ropeDim: number,
  base: number,
  type: 'normal' | 'neox',
): RopeTable {
  const half = ropeDim / 2;
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let i = 0; i < half; i++) {
    const invFreq = Math.pow(base, (-2 * i) / ropeDim);
    for (let pos = 0; pos < T; pos++) {
      const theta = pos * invFreq;
      cos[pos * half + i] = Math.cos(theta);
      sin[pos * half + i] = Math.sin(theta);
    }
  }
  return { ropeDim, type, cos, sin };
}

/**
 * Rotates, in place, the first ropeDim dims of each of nh heads of hd in x [BT][nh·hd]; row
 * b·T + t is at position positions[b·T + t] (t when absent: one example per row). Pairs (a, b) = (2i, 2i+1) for 'normal', (i, i + ropeDim/2) for
 * 'neox':  x_a' = x_a·cos − x_b·sin,  x_b' = x_a·sin + x_b·cos.
 */
export function ropeForward(
  x: Floats,
  rope: RopeTable,
  BT: number,
  T: number,
  nh: number,
  hd: number,
  positions?: Int32Array,
): void {
  rotate(x, rope, BT, T, nh, hd, 1, positions);
}

/**
 * The backward of `ropeForward`, in place on dx (a rotation's transpose is the rotation by −θ):
 * dx_a = dx_a'·cos + dx_b'·sin,  dx_b = −dx_a'·sin + dx_b'·cos.
 */
export function ropeBackward(
  dx: Floats,
  rope: RopeTable,
  BT: number,
  T: number,
  nh: number,
  hd: number,
  positions?: Int32Array,
): void {
  rotate(dx, rope, BT, T, nh, hd, -1, positions);
}

function rotate(
  x: Floats,
  rope: RopeTable,
  BT: number,
  T: number,
  nh: number,
  hd: number,
  sign: 1 | -1,
  positions: Int32Array | undefined,
): void {
  const half = rope.ropeDim / 2;
  const step = rope.type === 'normal' ? 2 : 1;
  const partner = rope.type === 'normal' ? 1 : half;
  for (let bt = 0; bt < BT; bt++) {
    const angles = (positions === undefined ? bt % T : positions[bt]!) * half;
    for (let h = 0; h < nh; h++) {
      const base = (bt * nh + h) * hd;
      for (let i = 0; i < half; i++) {
        const a = base + step * i;
        const b = a + partner;
        const x0 = x[a]!;
        const x1 = x[b]!;
        const c = rope.cos[angles + i]!;
        const s = sign * rope.sin[angles + i]!;
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Causal self-attention with grouped-query heads

/**
 * out [BT][nH·hd]: for each sequence b, head h (kv head h / (nH/nKV)) and position t,
 *
 *     att[b][h][t][t2] = softmax_{s ≤ t2 ≤ t}(q[b,t,h] · k[b,t2,kvh] / √hd)   (0 elsewhere)
 *     out[b,t,h]       = Σ_{s ≤ t2 ≤ t} att[b][h][t][t2] · v[b,t2,kvh]
 *
 * where s = t − positions[b·T + t] is the start of t's example in a packed row (s = 0 when
 * `positions` is absent). Masked entries of att are exactly 0, so `attentionBackward` needs no
 * mask of its own: their probabilities zero every term they would add.
 *
 * q [BT][nH·hd], k, v [BT][nKV·hd]; att [B][nH][T][T] keeps the probabilities for backward.
 * The output is computed as the inference model does (unnormalised exponentials, then divided
 * by their sum), so float32 results agree with it bit for bit.
 */
export function attentionForward(
  out: Floats,
  att: Floats,
  q: Floats,
  k: Floats,
  v: Floats,
  B: number,
  T: number,
  nH: number,
  nKV: number,
  hd: number,
  positions?: Int32Array,
): void {
  const qDim = nH * hd;
  const kvDim = nKV * hd;
  const group = nH / nKV;
  const scale = 1 / Math.sqrt(hd);
  const acc = scratch64(hd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group) * hd;
      for (let t = 0; t < T; t++) {
        const qt = (b * T + t) * qDim + h * hd;
        const row = ((b * nH + h) * T + t) * T; // att[b][h][t][:]
        const start = segmentStart(positions, b * T + t, t);
        for (let t2 = 0; t2 < start; t2++) att[row + t2] = 0;
        // scores and their max
        let max = -Infinity;
        for (let t2 = start; t2 <= t; t2++) {
          const kt = (b * T + t2) * kvDim + kvh;
          let score = 0;
          for (let i = 0; i < hd; i++) score += q[qt + i]! * k[kt + i]!;
          score *= scale;
          att[row + t2] = score;
          if (score > max) max = score;
        }
        // exponentials and their sum
        let sum = 0;
        for (let t2 = start; t2 <= t; t2++) {
          const e = Math.exp(att[row + t2]! - max);
          att[row + t2] = e;
          sum += e;
        }
        // out = Σ e·v / sum
        acc.fill(0, 0, hd);
        for (let t2 = start; t2 <= t; t2++) {
          const e = att[row + t2]!;
          const vt = (b * T + t2) * kvDim + kvh;
          for (let i = 0; i < hd; i++) acc[i] = acc[i]! + e * v[vt + i]!;
        }
        for (let i = 0; i < hd; i++) out[qt + i] = acc[i]! / sum;
        // keep the probabilities
        for (let t2 = start; t2 <= t; t2++) att[row + t2] = att[row + t2]! / sum;
        for (let t2 = t + 1; t2 < T; t2++) att[row + t2] = 0;
      }
    }
  }
}

/**
 * The first key that token t (row index bt of [BT]) may attend to: the start of its example,
 * t − positions[bt], or 0 when the row holds one example.
 */
function segmentStart(positions: Int32Array | undefined, bt: number, t: number): number {
  return positions === undefined ? 0 : t - positions[bt]!;
}

/**
 * The backward of `attentionForward`, accumulating into dq, dk, dv (zero them first):
 *
 *     datt[t2]  = dout[t,h] · v[t2]                     dv[t2] += att[t2] · dout[t,h]
 *     dpre[t2]  = att[t2] · (datt[t2] − Σ_t3 att[t3]·datt[t3])   (softmax backward)
 *     dq[t,h]  += Σ_t2 dpre[t2] · k[t2] / √hd           dk[t2] += dpre[t2] · q[t,h] / √hd
 *
 * Query heads of one group all add into their shared kv head's dk and dv.
 */
export function attentionBackward(
  dq: Floats,
  dk: Floats,
  dv: Floats,
  dout: Floats,
  q: Floats,
  k: Floats,
  v: Floats,
  att: Floats,
  B: number,
  T: number,
  nH: number,
  nKV: number,
  hd: number,
): void {
  const qDim = nH * hd;
  const kvDim = nKV * hd;
  const group = nH / nKV;
  const scale = 1 / Math.sqrt(hd);
  const work = scratch64(T + hd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group) * hd;
      for (let t = 0; t < T; t++) {
        const qt = (b * T + t) * qDim + h * hd;
        const row = ((b * nH + h) * T + t) * T;
        // datt[t2] (in work[0 … t]) and dv
        let dot = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const vt = (b * T + t2) * kvDim + kvh;
          const p = att[row + t2]!;
          let d = 0;
          for (let i = 0; i < hd; i++) {
            const g = dout[qt + i]!;
            d += g * v[vt + i]!;
            dv[vt + i] = dv[vt + i]! + p * g;
          }
          work[t2] = d;
          dot += p * d;
        }
        // dpre, then dq (accumulated in work[T …]) and dk
        const dqAcc = T;
        work.fill(0, dqAcc, dqAcc + hd);
        for (let t2 = 0; t2 <= t; t2++) {
          const dpre = att[row + t2]! * (work[t2]! - dot) * scale;
          if (dpre === 0) continue;
          const kt = (b * T + t2) * kvDim + kvh;
          for (let i = 0; i < hd; i++) {
            work[dqAcc + i] = work[dqAcc + i]! + dpre * k[kt + i]!;
            dk[kt + i] = dk[kt + i]! + dpre * q[qt + i]!;
          }
        }
        for (let i = 0; i < hd; i++) dq[qt + i] = dq[qt + i]! + work[dqAcc + i]!;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU

/** act [N] = silu(gate) ⊙ up, silu(g) = g · σ(g) (the inference model's formula). */
export function swigluForward(act: Floats, gate: Floats, up: Floats, N: number): void {
  for (let i = 0; i < N; i++) {
    const g = gate[i]!;
    act[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

/**
 * dgate, dup [N] = backward of `swigluForward` (overwritten, not accumulated):
 * dgate = dact · up · σ(g)(1 + g(1 − σ(g))),  dup = dact · silu(g).
 */
export function swigluBackward(
  dgate: Floats,
  dup: Floats,
  dact: Floats,
  gate: Floats,
  up: Floats,
  N: number,
): void {
  for (let i = 0; i < N; i++) {
    const g = gate[i]!;
    const sig = 1 / (1 + Math.exp(-g));
    const d = dact[i]!;
    dgate[i] = d * up[i]! * sig * (1 + g * (1 - sig));
    dup[i] = d * g * sig;
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy

/**
 * Per row t of logits [BT][V]: lse[t] = log Σ_v exp(logits[t][v]) (saved for backward), and
 * the masked sum of −log p(target) = lse − logits[target]. Returns the sum and Σ mask.
 */
export function crossEntropyForward(
  lse: Float64Array,
  logits: Floats,
  targets: Int32Array,
  mask: Float32Array,
  BT: number,
  V: number,
): { lossSum: number; count: number } {
  let lossSum = 0;
  let count = 0;
  for (let t = 0; t < BT; t++) {
    const base = t * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (logits[base + v]! > max) max = logits[base + v]!;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[base + v]! - max);
    lse[t] = max + Math.log(sum);
    const m = mask[t]!;
    if (m !== 0) {
      lossSum += m * (lse[t]! - logits[base + targets[t]!]!);
      count += m;
    }
  }
  return { lossSum, count };
}

/**
 * Turns logits [BT][V] into dlogits IN PLACE: d = (softmax − onehot(target)) · mask · scale,
 * where scale = dL/d(lossSum) (1 / the number of unmasked targets of the whole step).
 */
export function crossEntropyBackward(
  logits: Floats,
  lse: Float64Array,
  targets: Int32Array,
  mask: Float32Array,
  scale: number,
  BT: number,
  V: number,
): void {
  for (let t = 0; t < BT; t++) {
    const base = t * V;
    const m = mask[t]! * scale;
    if (m === 0) {
      logits.fill(0, base, base + V);
      continue;
    }
    const l = lse[t]!;
    for (let v = 0; v < V; v++) logits[base + v] = Math.exp(logits[base + v]! - l) * m;
    logits[base + targets[t]!] = logits[base + targets[t]!]! - m;
  }
}

// ---------------------------------------------------------------------------------------------
// Attention as batched products (for native matmul backends)

/**
 * Head-major copy for batched products: dst [B·nDst][T][hd] from src [BT][nSrc·hd], where head h
 * of dst reads head ⌊h / (nDst / nSrc)⌋ of src (so kv heads are repeated for their query group).
 */
export function splitHeads(
  dst: Floats,
  src: Floats,
  B: number,
  T: number,
  nSrc: number,
  nDst: number,
  hd: number,
): void {
  const group = nDst / nSrc;
  const srcDim = nSrc * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nDst; h++) {
      const from = Math.floor(h / group) * hd;
      for (let t = 0; t < T; t++) {
        const s = (b * T + t) * srcDim + from;
        const d = ((b * nDst + h) * T + t) * hd;
        for (let i = 0; i < hd; i++) dst[d + i] = src[s + i]!;
      }
    }
  }
}

/**
 * The inverse of `splitHeads`, accumulating: dst [BT][nDst·hd] += src [B·nSrc][T][hd], head h of
 * src adding into head ⌊h / (nSrc / nDst)⌋ of dst (a query group's gradients sum into its kv head).
 */
export function mergeHeads(
  dst: Floats,
  src: Floats,
  B: number,
  T: number,
  nSrc: number,
  nDst: number,
  hd: number,
): void {
  const group = nSrc / nDst;
  const dstDim = nDst * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nSrc; h++) {
      const to = Math.floor(h / group) * hd;
      for (let t = 0; t < T; t++) {
        const s = ((b * nSrc + h) * T + t) * hd;
        const d = (b * T + t) * dstDim + to;
        for (let i = 0; i < hd; i++) dst[d + i] = dst[d + i]! + src[s + i]!;
      }
    }
  }
}

/**
 * In place over rows [rows][T] of scores (row r is position r mod T): causal softmax of scale·x.
 * With `positions` ([B][T], rows = B·nH·T in head-major order) a row sees only the keys of its own
 * example, t − positions[b·T + t] … t; the others get probability exactly 0.
 */
export function causalSoftmax(
  att: Floats,
  rows: number,
  T: number,
  scale: number,
  positions?: Int32Array,
  nH = 1,
): void {
  for (let r = 0; r < rows; r++) {
    const t = r % T;
    const row = r * T;
    const start = segmentStart(positions, Math.floor(r / (nH * T)) * T + t, t);
    for (let t2 = 0; t2 < start; t2++) att[row + t2] = 0;
    let max = -Infinity;
    for (let t2 = start; t2 <= t; t2++) {
      const x = att[row + t2]! * scale;
      att[row + t2] = x;
      if (x > max) max = x;
    }
    let sum = 0;
    for (let t2 = start; t2 <= t; t2++) {
      const e = Math.exp(att[row + t2]! - max);
      att[row + t2] = e;
      sum += e;
    }
    for (let t2 = start; t2 <= t; t2++) att[row + t2] = att[row + t2]! / sum;
    for (let t2 = t + 1; t2 < T; t2++) att[row + t2] = 0;
  }
}

/**
 * In place: datt [rows][T] becomes d(scores before scaling) = scale · att ⊙ (datt − Σ att ⊙ datt)
 * (the softmax backward; 0 above the diagonal, and wherever att is 0: keys of another example
 * in a packed row).
 */
export function causalSoftmaxBackward(
  datt: Floats,
  att: Floats,
  rows: number,
  T: number,
  scale: number,
): void {
  for (let r = 0; r < rows; r++) {
    const t = r % T;
    const row = r * T;
    let dot = 0;
    for (let t2 = 0; t2 <= t; t2++) dot += att[row + t2]! * datt[row + t2]!;
    for (let t2 = 0; t2 <= t; t2++) {
      datt[row + t2] = scale * att[row + t2]! * (datt[row + t2]! - dot);
    }
    for (let t2 = t + 1; t2 < T; t2++) datt[row + t2] = 0;
  }
}
