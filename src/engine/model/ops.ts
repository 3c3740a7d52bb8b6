/**
 * The arithmetic the forward passes share (Llama, Qwen2, GPT-2): matrix-vector products,
 * normalisations, activations and causal attention over a KV cache. Row-major [out][in] matrices,
 * float64 accumulation, float32 storage; nothing here allocates.
 */

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
