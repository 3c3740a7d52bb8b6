/**
 * Matrix products for the engine: plain TypeScript loops, onnxruntime-node Gemms behind the same
 * surface, and weights kept quantized until the product (QLoRA).
 */
export { matmulBackward, matmulForward, scratch64 } from './matmul.ts';
export type { Floats } from './matmul.ts';
export {
  Float32Scratch,
  QLORA_TYPES,
  canQuantizeRows,
  isQuantized,
  matrixBytes,
  matrixTypeName,
  matrixValues,
  quantizeMatrix,
} from './matrix.ts';
export type { Matrix, QloraBits, QuantizedMatrix } from './matrix.ts';
export { TypeScriptBackend, createMatmulBackend } from './backend.ts';
export type { MatmulBackend, MatmulBackendName, MatmulBackendOptions } from './backend.ts';
