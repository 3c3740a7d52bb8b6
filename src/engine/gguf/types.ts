/**
 * The two type systems of a GGUF file.
 *
 * 1. Metadata values (`gguf_type` in ggml's gguf.h): the key/value pairs of the header. Each value
 *    is stored as a uint32 type id followed by the value itself, little-endian:
 *
 *        id  name      bytes         id  name      bytes
 *         0  uint8     1              7  bool      1 (0 or 1)
 *         1  int8      1              8  string    uint64 length + UTF-8 bytes (no NUL)
 *         2  uint16    2              9  array     uint32 item type + uint64 count + items
 *         3  int16     2             10  uint64    8
 *         4  uint32    4             11  int64     8
 *         5  int32     4             12  float64   8
 *         6  float32   4
 *
 *    The spec allows arrays of arrays (each inner array carries its own item type and count);
 *    llama.cpp itself refuses them, so a file meant for llama.cpp should not use them.
 *
 * 2. Tensor types (`ggml_type` in ggml.h): how the numbers of a tensor are laid out. A tensor row
 *    of ne[0] elements is cut into blocks of `blockSize` elements, each block stored in `typeSize`
 *    bytes, so ne[0] must be a multiple of `blockSize`. The ids are fixed forever (removed types
 *    leave holes: 4, 5, 31..33, 36..38).
 */

/** Metadata value type ids, as stored in the file. */
export const GGUF_VALUE_TYPE = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

export type GgufValueType = keyof typeof GGUF_VALUE_TYPE;

/** Type id → name, for reading. */
export const GGUF_VALUE_TYPE_NAME: ReadonlyMap<number, GgufValueType> = new Map(
  Object.entries(GGUF_VALUE_TYPE).map(([name, id]) => [id, name as GgufValueType]),
);

/** What the items of an array of each item type are, once read. */
export interface GgufArrayItems {
  uint8: Uint8Array;
  int8: Int8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  uint32: Uint32Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
  uint64: BigUint64Array;
  int64: BigInt64Array;
  bool: boolean[];
  string: string[];
  array: GgufArrayValue[];
}

export type GgufItemType = keyof GgufArrayItems;

/** An array value: `itemType` says what `value` holds (a typed array for numbers). */
export type GgufArrayValue = {
  [K in GgufItemType]: { type: 'array'; itemType: K; value: GgufArrayItems[K] };
}[GgufItemType];

/** The numeric scalar types that fit a JavaScript number exactly. */
export type GgufNumberType =
  'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

/**
 * One metadata value, tagged with its GGUF type so that writing it back gives the same bytes
 * (llama.cpp checks the type of every key it reads: `llama.block_count` must be a uint32).
 * 64-bit integers are bigints, so no value is silently rounded.
 */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArrayValue;

/** A GGUF file's metadata, in file order. */
export type GgufMetadata = Map<string, GgufValue>;

/** Bytes per item of the fixed-size value types. */
export const GGUF_VALUE_SIZE: Readonly<Partial<Record<GgufValueType, number>>> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  uint64: 8,
  int64: 8,
  float64: 8,
};

/** ggml tensor type ids (ggml.h `enum ggml_type`). */
export const GGML_TYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
  Q2_0: 42,
} as const;

export type GgmlTypeName = keyof typeof GGML_TYPE;
export type GgmlType = (typeof GGML_TYPE)[GgmlTypeName];

export interface GgmlTypeLayout {
  name: GgmlTypeName;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** QK_K: the super-block size of the k-quants. */
export const QK_K = 256;

/**
 * Block layouts, as gguf-py's GGML_QUANT_SIZES and ggml's `type_traits` give them. The sums spell
 * out the block structs of ggml-common.h (d and dmin are float16 "ggml_half", 2 bytes each).
 */
const LAYOUTS: Record<GgmlTypeName, [blockSize: number, typeSize: number]> = {
  F32: [1, 4],
  F16: [1, 2],
  Q4_0: [32, 2 + 16], // d, 32 4-bit quants
  Q4_1: [32, 2 + 2 + 16], // d, m, 32 4-bit quants
  Q5_0: [32, 2 + 4 + 16], // d, 32 high bits, 32 low nibbles
  Q5_1: [32, 2 + 2 + 4 + 16],
  Q8_0: [32, 2 + 32], // d, 32 int8
  Q8_1: [32, 2 + 2 + 32], // d, s, 32 int8
  Q2_K: [QK_K, 2 + 2 + QK_K / 16 + QK_K / 4],
  Q3_K: [QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  Q4_K: [QK_K, 2 + 2 + 12 + QK_K / 2], // d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
  Q5_K: [QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2],
  Q6_K: [QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2], // ql, qh, int8 scales, d
  Q8_K: [QK_K, 4 + QK_K + (QK_K / 16) * 2], // float d, 256 int8, 16 int16 block sums
  IQ2_XXS: [QK_K, 2 + QK_K / 4],
  IQ2_XS: [QK_K, 2 + QK_K / 4 + QK_K / 32],
  IQ3_XXS: [QK_K, 2 + QK_K / 4 + QK_K / 8],
  IQ1_S: [QK_K, 2 + QK_K / 8 + QK_K / 16],
  IQ4_NL: [32, 2 + 16],
  IQ3_S: [QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4],
  IQ2_S: [QK_K, 2 + QK_K / 4 + QK_K / 16],
  IQ4_XS: [QK_K, 2 + 2 + QK_K / 2 + QK_K / 64],
  I8: [1, 1],
  I16: [1, 2],
  I32: [1, 4],
  I64: [1, 8],
  F64: [1, 8],
  IQ1_M: [QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  BF16: [1, 2],
  TQ1_0: [QK_K, 2 + 4 * 13],
  TQ2_0: [QK_K, 2 + 64],
  MXFP4: [32, 1 + 16],
  NVFP4: [64, 4 + 32],
  Q1_0: [128, 2 + 16],
  Q2_0: [64, 2 + 16],
};

const LAYOUT_BY_ID: ReadonlyMap<number, GgmlTypeLayout> = new Map(
  (Object.keys(GGML_TYPE) as GgmlTypeName[]).map((name) => {
    const [blockSize, typeSize] = LAYOUTS[name];
    return [GGML_TYPE[name], { name, blockSize, typeSize }];
  }),
);

export function isGgmlType(id: number): id is GgmlType {
  return LAYOUT_BY_ID.has(id);
}

/** The block layout of a tensor type; undefined for an id ggml does not define. */
export function ggmlTypeLayout(type: number): GgmlTypeLayout | undefined {
  return LAYOUT_BY_ID.get(type);
}

export function ggmlTypeName(type: number): string {
  return LAYOUT_BY_ID.get(type)?.name ?? `type ${type}`;
}
