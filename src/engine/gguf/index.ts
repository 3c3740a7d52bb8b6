/**
 * The GGUF layer of the engine: read GGUF v2/v3 files (header now, tensor bytes on demand),
 * convert tensor data to and from float32, write GGUF v3 files atomically, and read typed
 * metadata and model hyperparameters.
 */
export { GgufFile, readGguf, parseGgufHeader, alignUp } from './reader.ts';
export {
  GGUF_MAGIC,
  GGUF_VERSION,
  GGUF_DEFAULT_ALIGNMENT,
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
} from './reader.ts';
export type { GgufHeader, GgufTensorInfo, ReadGgufOptions } from './reader.ts';
export { encodeGguf, writeGguf } from './writer.ts';
export type { GgufTensorInput, GgufWriteInput, GgufWriteResult } from './writer.ts';
export {
  DEQUANTIZE_TYPES,
  QUANTIZE_TYPES,
  dequantize,
  ggmlByteLength,
  quantize,
} from './quants.ts';
export { HALF_TO_FLOAT, bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from './half.ts';
export { gguf, ggufArray, ggufBool, ggufNumber, ggufString, llamaHyperparams } from './metadata.ts';
export type { ModelArchitecture, ModelHyperparams } from './metadata.ts';
export {
  GGML_TYPE,
  GGUF_VALUE_TYPE,
  QK_K,
  ggmlTypeLayout,
  ggmlTypeName,
  isGgmlType,
} from './types.ts';
export type {
  GgmlType,
  GgmlTypeLayout,
  GgmlTypeName,
  GgufArrayItems,
  GgufArrayValue,
  GgufItemType,
  GgufMetadata,
  GgufNumberType,
  GgufValue,
  GgufValueType,
} from './types.ts';
