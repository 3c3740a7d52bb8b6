/**
 * The matrix products of the engine in plain TypeScript: the reference every other backend is
 * checked against, and the fallback where onnxruntime is not available (or for products too
 * small to be worth a native call).
 *
 * A weight W is [OC][C] row-major (GGUF ne = [C, OC]); activations are [BT][C]. Every sum runs in
 * float64 (JavaScript numbers) whatever the storage, so a float32 result does not depend on the
 * blocking below, only on the order of the terms, which is that of a plain loop over c.
 */

/** Storage of activations and gradients. */
export type Floats = Float32Array | Float64Array;

let scratch = new Float64Array(0);
/** A float64 scratch of at least n values (reused; contents undefined). */
export function scratch64(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, 2 * scratch.length));
  return scratch;
}

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
 * Each output is one sequential float64 sum over c, so a result does not depend on BT or on the
 * blocking (training and inference agree bit for bit). Blocking, for speed only: one row (a
 * token being generated) walks 8 weight rows at once, so that independent sums keep the CPU busy
 * and each input value is loaded once per block; otherwise a tile of inp rows stays in
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
  if (BT === 1) {
    matvecForward(out, inp, weight, C, OC);
    return;
  }
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

/** out [OC] = weight [OC][C] · inp [C], 8 rows at a time (the rest one by one). */
function matvecForward(out: Floats, inp: Floats, weight: Floats, C: number, OC: number): void {
  const oc8 = OC - (OC % 8);
  let o = 0;
  for (; o < oc8; o += 8) {
    const r0 = o * C;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let s5 = 0;
    let s6 = 0;
    let s7 = 0;
    for (let c = 0; c < C; c++) {
      const x = inp[c]!;
      s0 += weight[r0 + c]! * x;
      s1 += weight[r0 + C + c]! * x;
      s2 += weight[r0 + 2 * C + c]! * x;
      s3 += weight[r0 + 3 * C + c]! * x;
      s4 += weight[r0 + 4 * C + c]! * x;
      s5 += weight[r0 + 5 * C + c]! * x;
      s6 += weight[r0 + 6 * C + c]! * x;
      s7 += weight[r0 + 7 * C + c]! * x;
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
  for (; o < OC; o++) {
    const r0 = o * C;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += weight[r0 + c]! * inp[c]!;
    out[o] = sum;
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
