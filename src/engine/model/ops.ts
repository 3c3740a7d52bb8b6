/**
 * The arithmetic the forward passes share (Llama, Qwen2, GPT-2): matrix-vector products,
 * normalisations, activations and causal attention over a KV cache. Row-major [out][in] matrices,
 * float64 accumulation, float32 storage; nothing here allocates.
 */
import { matmulForward } from '../kernels/matmul.ts';

/**
 * out[t][o] = Σ_i w[o][i] · x[t][i]: x [T][n], w [d][n] row-major, out [T][d]. The engine's one
 * TypeScript matmul (src/engine/kernels), in the argument order of the forward passes.
 */
export function matmul(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  n: number,
  d: number,
  T: number,
): void {
  matmulForward(out, x, w, T, n, d);
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

/**
 * LayerNorm (GPT-2): out[t] = (x[t] − mean) / √(var + eps) ⊙ weight + bias, for T rows of n,
 * with the variance of the centred values, as ggml's `norm` computes it.
 */
export function layernorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  n: number,
  T: number,
  eps: number,
): void {
  for (let t = 0; t < T; t++) {
    const base = t * n;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x[base + i]!;
    const mean = sum / n;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const d = x[base + i]! - mean;
      ss += d * d;
    }
    const scale = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++)
      out[base + i] = (x[base + i]! - mean) * scale * weight[i]! + bias[i]!;
  }
}

/** out[t] += bias, for T rows of n. */
export function addBias(out: Float32Array, bias: Float32Array, n: number, T: number): void {
  for (let t = 0; t < T; t++) {
    const base = t * n;
    for (let i = 0; i < n; i++) out[base + i] = out[base + i]! + bias[i]!;
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation (GPT-2's `gelu_new`, ggml's `gelu`), in place on the first n values:
 * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 */
export function gelu(x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    x[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v)));
  }
}

/**
 * Multi-head causal attention of one query token at position pos:
 * out[h·hd …] = Σ_{t ≤ pos} softmax_t(q_h · k_t / √hd) · v_t, with kv head h / (nH/nKV).
 * `att` [≥ pos+1] and `acc` [hd] are scratch.
 */
export function causalAttention(
  out: Float32Array,
  outOffset: number,
  q: Float32Array,
  qOffset: number,
  keyCache: Float32Array, // [ctx][kvDim]
  valueCache: Float32Array, // [ctx][kvDim]
  pos: number,
  nHeads: number,
  nKvHeads: number,
  headDim: number,
  att: Float32Array,
  acc: Float64Array,
): void {
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads; // query heads per kv head
  const scale = 1 / Math.sqrt(headDim);
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
