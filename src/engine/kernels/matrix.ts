/**
 * A frozen weight matrix as the trainer holds it: plain float32, or the raw ggml blocks of a
 * quantized type (QLoRA keeps the base this way, 8-bit or 4-bit, and a matmul dequantizes it
 * into a scratch just before the product).
 */
import { OpenLedgerError } from '../../errors.ts';
import { dequantize, ggmlByteLength, quantize } from '../gguf/quants.ts';
import { GGML_TYPE, ggmlTypeName } from '../gguf/types.ts';
import type { Floats } from './matmul.ts';

/** W [rows][cols] row-major in ggml blocks of `type` (blocks run along a row). */
export interface QuantizedMatrix {
  readonly kind: 'quantized';
  /** A ggml type (Q8_0, Q4_0, …). */
  readonly type: number;
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
}

/** A weight a matmul reads: float values [rows][cols], or quantized blocks. */
export type Matrix = Floats | QuantizedMatrix;

/** The quantized types QLoRA keeps a frozen base in. */
export const QLORA_TYPES = { q8_0: GGML_TYPE.Q8_0, q4_0: GGML_TYPE.Q4_0 } as const;
export type QloraBits = keyof typeof QLORA_TYPES;

export function isQuantized(m: Matrix): m is QuantizedMatrix {
  return !(m instanceof Float32Array) && !(m instanceof Float64Array);
}

/** Encodes W [rows][cols] as `type`; cols must fill whole blocks. */
export function quantizeMatrix(
  values: Float32Array,
  rows: number,
  cols: number,
  type: number,
): QuantizedMatrix {
  if (values.length !== rows * cols) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `a ${rows}×${cols} matrix needs ${rows * cols} values, not ${values.length}`,
    );
  }
  return { kind: 'quantized', type, rows, cols, data: quantize(type, values) };
}

/** True when a row of `cols` values fills whole blocks of `type` (what quantizeMatrix needs). */
export function canQuantizeRows(cols: number, type: number): boolean {
  try {
    ggmlByteLength(type, cols);
    return true;
  } catch {
    return false;
  }
}

/** Bytes the matrix takes in memory. */
export function matrixBytes(m: Matrix): number {
  return isQuantized(m) ? m.data.byteLength : m.byteLength;
}

/** A readable name of the storage, e.g. "Q4_0" or "F32". */
export function matrixTypeName(m: Matrix): string {
  if (isQuantized(m)) return ggmlTypeName(m.type);
  return m instanceof Float64Array ? 'F64' : 'F32';
}

/** A reusable float32 buffer that grows to the largest size asked for. */
export class Float32Scratch {
  private buffer = new Float32Array(0);

  /** A view of n values (contents undefined). */
  get(n: number): Float32Array {
    if (this.buffer.length < n) this.buffer = new Float32Array(Math.max(n, this.buffer.length * 2));
    return this.buffer.subarray(0, n);
  }
}

/**
 * The float values of W: the array itself when it is not quantized, otherwise its blocks
 * dequantized into the scratch (valid until the scratch is used again).
 */
export function matrixValues(m: Matrix, scratch: Float32Scratch): Floats {
  if (!isQuantized(m)) return m;
  const out = scratch.get(m.rows * m.cols);
  dequantize(m.type, m.data, out);
  return out;
}
