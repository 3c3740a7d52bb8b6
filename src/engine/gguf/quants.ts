/**
 * Tensor data ⇄ float32: dequantization of the types the trainer reads (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K, Q6_K) and quantization to the types it writes (F32, F16, BF16, Q8_0, Q4_0, Q4_K).
 *
 * Each block layout below is ggml's (ggml-common.h), and each loop follows ggml's reference C
 * (ggml-quants.c) line by line. Dequantization gives bit-identical floats to ggml's: every product
 * of a float16 scale and a small integer is exact in float32. Quantization follows the `_ref`
 * functions, which llama-quantize uses when it has no importance matrix; float32 arithmetic is
 * emulated with `Math.fround` after each operation, so the bytes match a ggml build that does not
 * fuse multiply-adds (FMA-contracting builds may differ in the last bit of a scale, and then rarely
 * in one quant).
 */
import { OpenLedgerError } from '../../errors.ts';
import { HALF_TO_FLOAT, floatToBf16, floatToHalf } from './half.ts';
import { GGML_TYPE, QK_K, ggmlTypeLayout, ggmlTypeName } from './types.ts';
import type { GgmlType } from './types.ts';

const fround = Math.fround;

/** Typed-array views read and write in the host's byte order; GGUF is little-endian. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The tensor types `dequantize` reads. */
export const DEQUANTIZE_TYPES: readonly GgmlType[] = [
  GGML_TYPE.F32,
  GGML_TYPE.F16,
  GGML_TYPE.BF16,
  GGML_TYPE.Q8_0,
  GGML_TYPE.Q4_0,
  GGML_TYPE.Q4_K,
  GGML_TYPE.Q6_K,
];

/** The tensor types `quantize` writes. */
export const QUANTIZE_TYPES: readonly GgmlType[] = [
  GGML_TYPE.F32,
  GGML_TYPE.F16,
  GGML_TYPE.BF16,
  GGML_TYPE.Q8_0,
  GGML_TYPE.Q4_0,
  GGML_TYPE.Q4_K,
];

/** Bytes that `count` elements of `type` take; throws unless `count` fills whole blocks. */
export function ggmlByteLength(type: number, count: number): number {
  const layout = ggmlTypeLayout(type);
  if (layout === undefined) {
    throw new OpenLedgerError('GGUF_UNSUPPORTED', `ggml type ${type} is not a known tensor type`);
  }
  if (!Number.isSafeInteger(count) || count < 0 || count % layout.blockSize !== 0) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `${count} elements of ${layout.name} do not fill whole blocks of ${layout.blockSize}`,
    );
  }
  return (count / layout.blockSize) * layout.typeSize;
}

/**
 * Decodes tensor data of `type` into float32. `data` holds whole blocks; the result has
 * blocks × blockSize elements. `out`, when given, must have exactly that length.
 */
export function dequantize(type: number, data: Uint8Array, out?: Float32Array): Float32Array {
  const layout = ggmlTypeLayout(type);
  if (layout === undefined || !DEQUANTIZE_TYPES.includes(type as GgmlType)) {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `cannot dequantize ${ggmlTypeName(type)}: supported types are ${DEQUANTIZE_TYPES.map(ggmlTypeName).join(', ')}`,
    );
  }
  if (data.length % layout.typeSize !== 0) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `${layout.name} data of ${data.length} bytes is not a whole number of ${layout.typeSize}-byte blocks`,
    );
  }
  const blocks = data.length / layout.typeSize;
  const count = blocks * layout.blockSize;
  if (out !== undefined && out.length !== count) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `output has ${out.length} elements, the data holds ${count}`,
    );
  }
  const y = out ?? new Float32Array(count);
  switch (type) {
    case GGML_TYPE.F32:
      dequantizeF32(data, y);
      break;
    case GGML_TYPE.F16:
      for (let i = 0; i < count; i++) y[i] = HALF_TO_FLOAT[data[2 * i]! | (data[2 * i + 1]! << 8)]!;
      break;
    case GGML_TYPE.BF16:
      dequantizeBf16(data, y);
      break;
    case GGML_TYPE.Q8_0:
      dequantizeQ8_0(data, blocks, y);
      break;
    case GGML_TYPE.Q4_0:
      dequantizeQ4_0(data, blocks, y);
      break;
    case GGML_TYPE.Q4_K:
      dequantizeQ4_K(data, blocks, y);
      break;
    case GGML_TYPE.Q6_K:
      dequantizeQ6_K(data, blocks, y);
      break;
  }
  return y;
}

/**
 * Encodes float32 values as tensor data of `type`. The count must fill whole blocks (32 for Q8_0
 * and Q4_0, 256 for Q4_K). Quantized types refuse NaN and ±Inf, which ggml would turn into garbage.
 */
export function quantize(type: number, values: Float32Array | ArrayLike<number>): Uint8Array {
  const x = values instanceof Float32Array ? values : Float32Array.from(values);
  if (!QUANTIZE_TYPES.includes(type as GgmlType)) {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `cannot quantize to ${ggmlTypeName(type)}: supported types are ${QUANTIZE_TYPES.map(ggmlTypeName).join(', ')}`,
    );
  }
  const out = new Uint8Array(ggmlByteLength(type, x.length));
  if (type === GGML_TYPE.F32) {
    quantizeF32(x, out);
    return out;
  }
  if (type === GGML_TYPE.F16 || type === GGML_TYPE.BF16) {
    const encode = type === GGML_TYPE.F16 ? floatToHalf : floatToBf16;
    for (let i = 0; i < x.length; i++) writeU16(out, 2 * i, encode(x[i]!));
    return out;
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new OpenLedgerError(
        'GGUF_INVALID',
        `cannot quantize to ${ggmlTypeName(type)}: element ${i} is ${x[i]}`,
      );
    }
  }
  if (type === GGML_TYPE.Q8_0) quantizeQ8_0(x, out);
  else if (type === GGML_TYPE.Q4_0) quantizeQ4_0(x, out);
  else quantizeQ4_K(x, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function readHalf(data: Uint8Array, offset: number): number {
  return HALF_TO_FLOAT[data[offset]! | (data[offset + 1]! << 8)]!;
}

function writeU16(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value & 0xff;
  out[offset + 1] = value >>> 8;
}

/** C's `roundf`: to nearest, ties away from zero (`Math.round` sends -2.5 to -2, not -3). */
function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/**
 * ggml's `nearest_int`: adding 1.5·2^23 in float32 leaves round-to-nearest-even(v) in the low
 * mantissa bits, so this is round-half-to-even for |v| ≤ 2^22.
 */
function nearestInt(v: number): number {
  return fround(v + 12582912) - 12582912;
}

function dequantizeF32(data: Uint8Array, y: Float32Array): void {
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(y.buffer, y.byteOffset, y.byteLength).set(data);
    return;
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < y.length; i++) y[i] = view.getFloat32(4 * i, true);
}

function quantizeF32(x: Float32Array, out: Uint8Array): void {
  if (HOST_IS_LITTLE_ENDIAN) {
    out.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < x.length; i++) view.setFloat32(4 * i, x[i]!, true);
}

function dequantizeBf16(data: Uint8Array, y: Float32Array): void {
  // A bf16 is the top half of a float32: shift it up and reinterpret. The Uint32Array view shares
  // the host byte order with `y`, so this works on any host.
  const bits = new Uint32Array(y.buffer, y.byteOffset, y.length);
  for (let i = 0; i < y.length; i++)
    bits[i] = ((data[2 * i]! | (data[2 * i + 1]! << 8)) << 16) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Q8_0: 32 elements in 34 bytes.
//
//     offset 0  ggml_half d       the block scale
//     offset 2  int8 qs[32]       element j = qs[j] · d

function dequantizeQ8_0(data: Uint8Array, blocks: number, y: Float32Array): void {
  const qs = new Int8Array(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0, o = 0, i = 0; b < blocks; b++, o += 34, i += 32) {
    const d = readHalf(data, o);
    for (let j = 0; j < 32; j++) y[i + j] = qs[o + 2 + j]! * d;
  }
}

/** quantize_row_q8_0_ref: d = max|x| / 127, q = roundf(x / d). */
function quantizeQ8_0(x: Float32Array, out: Uint8Array): void {
  for (let o = 0, i = 0; i < x.length; o += 34, i += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i + j]!));
    const d = fround(amax / 127);
    const id = d !== 0 ? fround(1 / d) : 0;
    writeU16(out, o, floatToHalf(d));
    for (let j = 0; j < 32; j++) out[o + 2 + j] = roundHalfAway(fround(x[i + j]! * id)) & 0xff;
  }
}

// ---------------------------------------------------------------------------------------------
// Q4_0: 32 elements in 18 bytes.
//
//     offset 0  ggml_half d
//     offset 2  uint8 qs[16]      low nibble of qs[j] is element j, high nibble element j+16;
//                                 element = (nibble - 8) · d

function dequantizeQ4_0(data: Uint8Array, blocks: number, y: Float32Array): void {
  for (let b = 0, o = 0, i = 0; b < blocks; b++, o += 18, i += 32) {
    const d = readHalf(data, o);
    for (let j = 0; j < 16; j++) {
      const byte = data[o + 2 + j]!;
      y[i + j] = ((byte & 0x0f) - 8) * d;
      y[i + j + 16] = ((byte >> 4) - 8) * d;
    }
  }
}

/**
 * quantize_row_q4_0_ref: the element of largest magnitude, `max` (with its sign), maps to -8, so
 * d = max / -8 and q = min(15, trunc(x/d + 8.5)). The other extreme, -max, would be +8 and is
 * clamped to 7: its error is up to |d|, every other element's at most |d|/2.
 */
function quantizeQ4_0(x: Float32Array, out: Uint8Array): void {
  for (let o = 0, i = 0; i < x.length; o += 18, i += 32) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fround(max / -8);
    const id = d !== 0 ? fround(1 / d) : 0;
    writeU16(out, o, floatToHalf(d));
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fround(fround(x[i + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fround(fround(x[i + j + 16]! * id) + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Q4_K: a super-block of 256 elements in 144 bytes, as 8 sub-blocks of 32.
//
//     offset 0   ggml_half d       scale of the sub-block scales
//     offset 2   ggml_half dmin    scale of the sub-block mins
//     offset 4   uint8 scales[12]  8 six-bit scales and 8 six-bit mins, packed (get_scale_min_k4)
//     offset 16  uint8 qs[128]     4 chunks of 32 bytes; chunk c holds sub-block 2c in the low
//                                  nibbles and sub-block 2c+1 in the high nibbles
//
// Element l of sub-block s = d·scale[s]·q − dmin·min[s].
//
// The 12 scale bytes: sub-blocks 0..3 keep their 6-bit scale in bytes 0..3 and min in bytes 4..7
// (low 6 bits). Sub-blocks 4..7 keep the low 4 bits of scale and min in the two nibbles of bytes
// 8..11, and their top 2 bits in the spare top 2 bits of bytes 0..3 (scale) and 4..7 (min).

/** get_scale_min_k4: the 6-bit scale of sub-block j from the 12 packed bytes at `o`. */
function scaleK4(q: Uint8Array, o: number, j: number): number {
  return j < 4 ? q[o + j]! & 63 : (q[o + j + 4]! & 0xf) | ((q[o + j - 4]! >> 6) << 4);
}

/** get_scale_min_k4: the 6-bit min of sub-block j. */
function minK4(q: Uint8Array, o: number, j: number): number {
  return j < 4 ? q[o + j + 4]! & 63 : (q[o + j + 4]! >> 4) | ((q[o + j]! >> 6) << 4);
}

function dequantizeQ4_K(data: Uint8Array, blocks: number, y: Float32Array): void {
  for (let b = 0, o = 0, i = 0; b < blocks; b++, o += 144, i += QK_K) {
    const d = readHalf(data, o);
    const dmin = readHalf(data, o + 2);
    for (let c = 0; c < 4; c++) {
      const d1 = d * scaleK4(data, o + 4, 2 * c);
      const m1 = dmin * minK4(data, o + 4, 2 * c);
      const d2 = d * scaleK4(data, o + 4, 2 * c + 1);
      const m2 = dmin * minK4(data, o + 4, 2 * c + 1);
      const qs = o + 16 + 32 * c;
      const yy = i + 64 * c;
      for (let l = 0; l < 32; l++) {
        const byte = data[qs + l]!;
        y[yy + l] = d1 * (byte & 0xf) - m1;
        y[yy + 32 + l] = d2 * (byte >> 4) - m2;
      }
    }
  }
}

/**
 * make_qkx2_quants: fits x[0..n) ≈ scale·L − min with L in 0..nmax, minimising the weighted
 * squared error. Start from the plain min/max fit, then try nstep+1 slightly different scales,
 * each followed by a least-squares refit of scale and min; keep the best. Writes L and returns
 * the scale and the (positive) min. Every float operation is rounded to float32 as in C.
 */
function makeQkx2Quants(
  x: Float32Array,
  xo: number,
  n: number,
  nmax: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): { scale: number; min: number } {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = weights[0]!;
  let sumX = fround(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = fround(sumW + w);
    sumX = fround(sumX + fround(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return { scale: 0, min: -min };
  }
  let iscale = fround(nmax / fround(max - min));
  let scale = fround(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fround(iscale * fround(x[xo + i]! - min)))));
    L[lo + i] = l;
    const diff = fround(fround(fround(scale * l) + min) - x[xo + i]!);
    bestError = fround(bestError + fround(weights[i]! * fround(diff * diff)));
  }
  if (nstep < 1) return { scale, min: -min };
  for (let is = 0; is <= nstep; is++) {
    iscale = fround(fround(fround(rmin + fround(rdelta * is)) + nmax) / fround(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fround(iscale * fround(x[xo + i]! - min)))));
      Laux[i] = l;
      const wl = fround(weights[i]! * l);
      sumL = fround(sumL + wl);
      sumL2 = fround(sumL2 + fround(wl * l));
      sumXL = fround(sumXL + fround(wl * x[xo + i]!));
    }
    const D = fround(fround(sumW * sumL2) - fround(sumL * sumL));
    if (D > 0) {
      let thisScale = fround(fround(fround(sumW * sumXL) - fround(sumX * sumL)) / D);
      let thisMin = fround(fround(fround(sumL2 * sumX) - fround(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fround(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = fround(fround(fround(thisScale * Laux[i]!) + thisMin) - x[xo + i]!);
        curError = fround(curError + fround(weights[i]! * fround(diff * diff)));
      }
      if (curError < bestError) {
        L.set(Laux.subarray(0, n), lo);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return { scale, min: -min };
}

/**
 * quantize_row_q4_K_ref: fit each sub-block of 32 with make_qkx2_quants (weights |x| + rms), then
 * quantize the 8 scales and 8 mins to 6 bits against the largest of each (d = maxScale/63,
 * dmin = maxMin/63), and finally requantize every element against the scale and min it will
 * really be decoded with.
 */
function quantizeQ4_K(x: Float32Array, out: Uint8Array): void {
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let o = 0, i = 0; i < x.length; o += 144, i += QK_K) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xo = i + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fround(sumX2 + fround(x[xo + l]! * x[xo + l]!));
      const avX = fround(Math.sqrt(fround(sumX2 / 32))); // = sqrtf: a double sqrt rounds correctly
      for (let l = 0; l < 32; l++) weights[l] = fround(avX + Math.abs(x[xo + l]!));
      const fit = makeQkx2Quants(x, xo, 32, 15, weights, L, 32 * j, Laux, -1, 0.1, 20);
      scales[j] = fit.scale;
      mins[j] = fit.min;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }

    const invScale = maxScale > 0 ? fround(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fround(63 / maxMin) : 0;
    const sc = o + 4;
    out.fill(0, sc, sc + 12);
    for (let j = 0; j < 8; j++) {
      // (uint8_t)nearest_int(...), then MIN(63, ·)
      const ls = Math.min(63, nearestInt(fround(invScale * scales[j]!)) & 0xff);
      const lm = Math.min(63, nearestInt(fround(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        out[sc + j] = ls;
        out[sc + j + 4] = lm;
      } else {
        out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[sc + j - 4]! |= (ls >> 4) << 6;
        out[sc + j]! |= (lm >> 4) << 6;
      }
    }
    const dHalf = floatToHalf(fround(maxScale / 63));
    const dminHalf = floatToHalf(fround(maxMin / 63));
    writeU16(out, o, dHalf);
    writeU16(out, o + 2, dminHalf);

    for (let j = 0; j < 8; j++) {
      const d = fround(HALF_TO_FLOAT[dHalf]! * scaleK4(out, sc, j));
      if (d === 0) continue; // keeps the levels make_qkx2_quants chose, as ggml does
      const dm = fround(HALF_TO_FLOAT[dminHalf]! * minK4(out, sc, j));
      for (let l = 0; l < 32; l++) {
        const q = nearestInt(fround(fround(x[i + 32 * j + l]! + dm) / d));
        L[32 * j + l] = Math.max(0, Math.min(15, q));
      }
    }

    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++)
        out[o + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + 32 + l]! << 4);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Q6_K: a super-block of 256 elements in 210 bytes (read only: Q4_K_M models use it for some
// tensors).
//
//     offset 0    uint8 ql[128]     low 4 bits of the quants
//     offset 128  uint8 qh[64]      high 2 bits of the quants
//     offset 192  int8 scales[16]   one scale per 16 elements
//     offset 208  ggml_half d
//
// Two halves of 128 elements; in half h, for l in 0..31, with ql, qh, scales advanced by 64, 32
// and 8 per half:
//     element l      = d·scales[l/16 + 0]·((ql[l]    & 15 | (qh[l] >> 0 & 3) << 4) − 32)
//     element l + 32 = d·scales[l/16 + 2]·((ql[l+32] & 15 | (qh[l] >> 2 & 3) << 4) − 32)
//     element l + 64 = d·scales[l/16 + 4]·((ql[l]    >> 4 | (qh[l] >> 4 & 3) << 4) − 32)
//     element l + 96 = d·scales[l/16 + 6]·((ql[l+32] >> 4 | (qh[l] >> 6 & 3) << 4) − 32)

function dequantizeQ6_K(data: Uint8Array, blocks: number, y: Float32Array): void {
  const signed = new Int8Array(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0, o = 0, i = 0; b < blocks; b++, o += 210, i += QK_K) {
    const d = readHalf(data, o + 208);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const sc = o + 192 + 8 * h;
      const yy = i + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const high = data[qh + l]!;
        const q1 = ((data[ql + l]! & 0xf) | (((high >> 0) & 3) << 4)) - 32;
        const q2 = ((data[ql + l + 32]! & 0xf) | (((high >> 2) & 3) << 4)) - 32;
        const q3 = ((data[ql + l]! >> 4) | (((high >> 4) & 3) << 4)) - 32;
        const q4 = ((data[ql + l + 32]! >> 4) | (((high >> 6) & 3) << 4)) - 32;
        y[yy + l] = d * signed[sc + is]! * q1;
        y[yy + l + 32] = d * signed[sc + is + 2]! * q2;
        y[yy + l + 64] = d * signed[sc + is + 4]! * q3;
        y[yy + l + 96] = d * signed[sc + is + 6]! * q4;
      }
    }
  }
}
