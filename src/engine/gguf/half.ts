/**
 * 16-bit floats, written out by hand: `Math.f16round` and `Float16Array` are not in Node 20.
 *
 * IEEE binary16 ("half", ggml_fp16_t):   bfloat16 (ggml_bf16_t):
 *
 *     15 14    10 9          0               15 14       7 6      0
 *     [s][ exp:5 ][ mantissa:10 ]            [s][  exp:8  ][ mant:7 ]
 *
 * half: bias 15; exp 0 is zero/subnormal (mantissa · 2^-24), exp 31 is Inf/NaN; largest finite
 * 65504. bf16 is simply the top 16 bits of a float32, so it keeps float32's range with 8 bits of
 * precision.
 *
 * Rounding is round-to-nearest-even in both directions, which is what ggml does: F16C's
 * `_cvtss_sh(x, 0)` and its portable `ggml_compute_fp32_to_fp16` for half, and
 * `ggml_compute_fp32_to_bf16` (add 0x7fff plus the lowest kept bit, then truncate) for bf16.
 */

// One float32 seen as its bits: how we get at the sign, exponent and mantissa of a number.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 bits of a number (rounded to float32 first). */
export function float32Bits(value: number): number {
  f32[0] = value;
  return u32[0]!;
}

/** The number whose float32 bits are `bits`. */
export function float32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0]!;
}

/** Decodes one half (given as its 16 bits). Exact: every half is a float32. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero or subnormal
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25); // (1.mantissa) · 2^(exponent-15)
}

/**
 * All 65,536 halves decoded once (256 KiB), as ggml's `ggml_table_f32_f16`: dequantizing a block
 * then costs one table load per scale instead of the bit twiddling above.
 */
export const HALF_TO_FLOAT: Float32Array = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = halfToFloat(h);
  return table;
})();

/** Encodes a number as a half, round-to-nearest-even; overflow gives ±Inf, NaN stays NaN. */
export function floatToHalf(value: number): number {
  const x = float32Bits(value); // ggml converts from float32, so round to float32 first
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;

  if (exponent === 0xff) {
    // Inf stays Inf; NaN keeps its top mantissa bits and is made quiet (bit 9) so it stays NaN.
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const e = exponent - 127 + 15; // the half's biased exponent
  if (e >= 31) return sign | 0x7c00; // too large: Inf
  if (e <= 0) {
    // A half subnormal (or zero): the value is m · 2^-24 with m = the full 24-bit significand
    // shifted right by 14 - e. Values below 2^-25 round to zero.
    if (e < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    let half = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half += 1; // may become the smallest normal: right
    return sign | half;
  }
  // Normal: keep the top 10 of 23 mantissa bits and round on the 13 dropped ones. A carry out of
  // the mantissa correctly bumps the exponent (and 65520 and up become Inf).
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1;
  return sign | half;
}

/** Decodes one bfloat16 (its 16 bits). */
export function bf16ToFloat(h: number): number {
  return float32FromBits((h << 16) >>> 0);
}

/** Encodes a number as bfloat16 exactly as ggml's `ggml_compute_fp32_to_bf16`. */
export function floatToBf16(value: number): number {
  const x = float32Bits(value);
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 64; // NaN: force quiet
  // Round to nearest even on the 16 dropped bits. (x + 0x8000 cannot pass 2^32: that needs a NaN.)
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}
