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
 * Every matrix product goes through `matmulForward` / `matmulBackward`, so that one place can
 * later hand them to another backend (onnxruntime).
 */

/** Storage of activations and gradients. */
export type Floats = Float32Array | Float64Array;

let scratch = new Float64Array(0);
/** A float64 scratch of at least n values (reused; contents undefined). */
function scratch64(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, 2 * scratch.length));
  return scratch;
}

// ---------------------------------------------------------------------------------------------
// Matmul

/**
 * Rows of inp (and of dinp's float64 sums) per tile: about 128 KiB of float64, so a tile stays
 * in the L2 cache while every weight row streams past it once.
 */
function tileRows(C: number): number {
  return Math.max(2, 2 * Math.floor(8192 / C));
}

/**
 * out [BT][OC] = inp [BT][C] · weight [OC][C]ᵀ, i.e. out[t][o] = Σ_c inp[t][c] · W[o][c].
 *
 * Each output is one sequential float64 sum over c (the order of the inference `matmul`, so a
 * float32 result is the same bit for bit). Blocking, for speed only: a tile of inp rows stays in
 * cache while the weight goes by once per tile, 4 weight rows at a time (in L1), each against 2
 * rows of inp, so that every loaded weight serves two rows and eight independent sums keep the
 * CPU busy.
 */
export function matmulForward(
  out: Floats,
  inp: Floats,
  weight: Floats,
  BT: number,
  C: number,
  OC: number,
): void {
  const oc4 = OC - (OC % 4);
  const TB = tileRows(C);
  for (let t0 = 0; t0 < BT; t0 += TB) {
    const t1 = Math.min(BT, t0 + TB);
    let o = 0;
    for (; o < oc4; o += 4) {
      const r0 = o * C;
      const r1 = r0 + C;
      const r2 = r1 + C;
      const r3 = r2 + C;
      let t = t0;
      for (; t + 1 < t1; t += 2) {
        // rows o … o+3 × rows t, t+1 of inp
        const xa = t * C;
        const xb = xa + C;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        let b0 = 0;
        let b1 = 0;
        let b2 = 0;
        let b3 = 0;
        for (let c = 0; c < C; c++) {
          const u = inp[xa + c]!;
          const v = inp[xb + c]!;
          const w0 = weight[r0 + c]!;
          const w1 = weight[r1 + c]!;
          const w2 = weight[r2 + c]!;
          const w3 = weight[r3 + c]!;
          a0 += w0 * u;
          a1 += w1 * u;
          a2 += w2 * u;
          a3 += w3 * u;
          b0 += w0 * v;
          b1 += w1 * v;
          b2 += w2 * v;
          b3 += w3 * v;
        }
        const oa = t * OC + o;
        const ob = oa + OC;
        out[oa] = a0;
        out[oa + 1] = a1;
        out[oa + 2] = a2;
        out[oa + 3] = a3;
        out[ob] = b0;
        out[ob + 1] = b1;
        out[ob + 2] = b2;
        out[ob + 3] = b3;
      }
      if (t < t1) {
        // the tile's last row when it has an odd number
        const xa = t * C;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        for (let c = 0; c < C; c++) {
          const u = inp[xa + c]!;
          a0 += weight[r0 + c]! * u;
          a1 += weight[r1 + c]! * u;
          a2 += weight[r2 + c]! * u;
          a3 += weight[r3 + c]! * u;
        }
        const oa = t * OC + o;
        out[oa] = a0;
        out[oa + 1] = a1;
        out[oa + 2] = a2;
        out[oa + 3] = a3;
      }
    }
    for (; o < OC; o++) {
      // the last OC mod 4 weight rows, one at a time
      const r0 = o * C;
      for (let t = t0; t < t1; t++) {
        const xa = t * C;
        let a0 = 0;
        for (let c = 0; c < C; c++) a0 += weight[r0 + c]! * inp[xa + c]!;
        out[t * OC + o] = a0;
      }
    }
  }
}

/**
 * The backward of `matmulForward`, accumulating:
 *
 *     dinp    [BT][C]  += dout [BT][OC] · weight [OC][C]
 *     dweight [OC][C]  += dout [BT][OC]ᵀ · inp [BT][C]
 *
 * Either output may be null when it is not wanted (a frozen weight needs no dweight; the first
 * layer's input needs no dinp). Sums run in float64 and are added to the outputs once. dinp is
 * blocked like the forward: a tile of float64 rows stays in cache while the weight streams past
 * once, 4 weight rows × 2 rows of dout at a time.
 */
export function matmulBackward(
  dinp: Floats | null,
  dweight: Floats | null,
  dout: Floats,
  inp: Floats,
  weight: Floats,
  BT: number,
  C: number,
  OC: number,
): void {
  if (dinp !== null) {
    // dinp[t][:] += Σ_o dout[t][o] · W[o][:]
    const TB = tileRows(C);
    const acc = scratch64(TB * C);
    const oc4 = OC - (OC % 4);
    for (let t0 = 0; t0 < BT; t0 += TB) {
      const t1 = Math.min(BT, t0 + TB);
      acc.fill(0, 0, (t1 - t0) * C);
      let o = 0;
      for (; o < oc4; o += 4) {
        const r0 = o * C;
        const r1 = r0 + C;
        const r2 = r1 + C;
        const r3 = r2 + C;
        for (let t = t0; t < t1; t += 2) {
          const ia = (t - t0) * C;
          const da = t * OC + o;
          const a0 = dout[da]!;
          const a1 = dout[da + 1]!;
          const a2 = dout[da + 2]!;
          const a3 = dout[da + 3]!;
          if (t + 1 < t1) {
            // rows t, t+1 × weight rows o … o+3
            const ib = ia + C;
            const db = da + OC;
            const b0 = dout[db]!;
            const b1 = dout[db + 1]!;
            const b2 = dout[db + 2]!;
            const b3 = dout[db + 3]!;
            for (let c = 0; c < C; c++) {
              const w0 = weight[r0 + c]!;
              const w1 = weight[r1 + c]!;
              const w2 = weight[r2 + c]!;
              const w3 = weight[r3 + c]!;
              acc[ia + c] = acc[ia + c]! + (a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3);
              acc[ib + c] = acc[ib + c]! + (b0 * w0 + b1 * w1 + b2 * w2 + b3 * w3);
            }
          } else {
            // the tile's last row when it has an odd number
            for (let c = 0; c < C; c++) {
              const sum =
                a0 * weight[r0 + c]! +
                a1 * weight[r1 + c]! +
                a2 * weight[r2 + c]! +
                a3 * weight[r3 + c]!;
              acc[ia + c] = acc[ia + c]! + sum;
            }
          }
        }
      }
      for (; o < OC; o++) {
        const r0 = o * C;
        for (let t = t0; t < t1; t++) {
          const d = dout[t * OC + o]!;
          const ia = (t - t0) * C;
          for (let c = 0; c < C; c++) acc[ia + c] = acc[ia + c]! + d * weight[r0 + c]!;
        }
      }
      const base = t0 * C;
      const n = (t1 - t0) * C;
      for (let i = 0; i < n; i++) dinp[base + i] = dinp[base + i]! + acc[i]!;
    }
  }
  if (dweight !== null) {
    // dweight[o][:] += Σ_t dout[t][o] · inp[t][:]
    const acc = scratch64(C);
    for (let o = 0; o < OC; o++) {
      acc.fill(0, 0, C);
      for (let t = 0; t < BT; t++) {
        const d = dout[t * OC + o]!;
        if (d === 0) continue;
        const it = t * C;
        for (let c = 0; c < C; c++) acc[c] = acc[c]! + d * inp[it + c]!;
      }
      const wo = o * C;
      for (let c = 0; c < C; c++) dweight[wo + c] = dweight[wo + c]! + acc[c]!;
    }
  }
}

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
 * dinp [BT][C] += backward of rmsnorm (the weight is frozen, so no dweight):
 * with x̂ = inp·rstd and g = dout ⊙ weight, dinp = rstd · (g − x̂ · mean(g ⊙ x̂)).
 */
export function rmsnormBackward(
  dinp: Floats,
  dout: Floats,
  inp: Floats,
  weight: Floats,
  rstd: Floats,
  BT: number,
  C: number,
): void {
  for (let t = 0; t < BT; t++) {
    const base = t * C;
    const s = rstd[t]!;
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
 * b·T + t is at position t. Pairs (a, b) = (2i, 2i+1) for 'normal', (i, i + ropeDim/2) for
 * 'neox':  x_a' = x_a·cos − x_b·sin,  x_b' = x_a·sin + x_b·cos.
 */
export function ropeForward(
  x: Floats,
  rope: RopeTable,
  BT: number,
  T: number,
  nh: number,
  hd: number,
): void {
  rotate(x, rope, BT, T, nh, hd, 1);
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
): void {
  rotate(dx, rope, BT, T, nh, hd, -1);
}

function rotate(
  x: Floats,
  rope: RopeTable,
  BT: number,
  T: number,
  nh: number,
  hd: number,
  sign: 1 | -1,
): void {
  const half = rope.ropeDim / 2;
  const step = rope.type === 'normal' ? 2 : 1;
  const partner = rope.type === 'normal' ? 1 : half;
  for (let bt = 0; bt < BT; bt++) {
    const angles = (bt % T) * half;
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
 *     att[b][h][t][t2] = softmax_{t2 ≤ t}(q[b,t,h] · k[b,t2,kvh] / √hd)   (0 for t2 > t)
 *     out[b,t,h]       = Σ_{t2 ≤ t} att[b][h][t][t2] · v[b,t2,kvh]
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
        // scores and their max
        let max = -Infinity;
        for (let t2 = 0; t2 <= t; t2++) {
          const kt = (b * T + t2) * kvDim + kvh;
          let score = 0;
          for (let i = 0; i < hd; i++) score += q[qt + i]! * k[kt + i]!;
          score *= scale;
          att[row + t2] = score;
          if (score > max) max = score;
        }
        // exponentials and their sum
        let sum = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const e = Math.exp(att[row + t2]! - max);
          att[row + t2] = e;
          sum += e;
        }
        // out = Σ e·v / sum
        acc.fill(0, 0, hd);
        for (let t2 = 0; t2 <= t; t2++) {
          const e = att[row + t2]!;
          const vt = (b * T + t2) * kvDim + kvh;
          for (let i = 0; i < hd; i++) acc[i] = acc[i]! + e * v[vt + i]!;
        }
        for (let i = 0; i < hd; i++) out[qt + i] = acc[i]! / sum;
        // keep the probabilities
        for (let t2 = 0; t2 <= t; t2++) att[row + t2] = att[row + t2]! / sum;
        for (let t2 = t + 1; t2 < T; t2++) att[row + t2] = 0;
      }
    }
  }
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
