/**
 * ONNX models of matrix products, built in code as protobuf bytes. One Gemm: Y [M][N] = A′·B′ with A′ = A or
 * Aᵀ and B′ = B or Bᵀ (the `transA` / `transB` attributes), M, N and K left symbolic so that one
 * session serves every shape.
 *
 * Why by hand: the only packaged ONNX schema for JavaScript (`onnx-proto`) drags in protobufjs 6
 * (22 MB) to encode four small messages; the protobuf wire format for them (varints and
 * length-delimited fields, onnx.proto field numbers noted below) fits in this file.
 */

/** onnx.proto TensorProto.DataType.FLOAT */
const ONNX_FLOAT = 1;
/** onnx.proto AttributeProto.AttributeType.INT */
const ATTRIBUTE_INT = 2;
/** The IR version and opset the model declares (supported by every onnxruntime ≥ 1.14). */
const IR_VERSION = 8;
const OPSET = 17;

type Bytes = number[];

function varint(value: number): Bytes {
  const out: Bytes = [];
  let v = value;
  while (v > 127) {
    out.push((v & 127) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A varint field (wire type 0). */
function intField(field: number, value: number): Bytes {
  return [...varint(field * 8), ...varint(value)];
}

/** A length-delimited field (wire type 2): a string or an embedded message. */
function bytesField(field: number, bytes: Bytes): Bytes {
  return [...varint(field * 8 + 2), ...varint(bytes.length), ...bytes];
}

function stringField(field: number, text: string): Bytes {
  return bytesField(field, [...new TextEncoder().encode(text)]);
}

/** ValueInfoProto of a float tensor with symbolic dimensions. */
function matrixInfo(name: string, ...dims: string[]): Bytes {
  // TensorShapeProto.Dimension { dim_param = 2 }, TensorShapeProto { dim = 1 }
  const shape = dims.flatMap((d) => bytesField(1, stringField(2, d)));
  // TypeProto.Tensor { elem_type = 1, shape = 2 }, TypeProto { tensor_type = 1 }
  const tensorType = [...intField(1, ONNX_FLOAT), ...bytesField(2, shape)];
  // ValueInfoProto { name = 1, type = 2 }
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/** AttributeProto { name = 1, i = 3, type = 20 } of an INT. */
function intAttribute(name: string, value: number): Bytes {
  return [...stringField(1, name), ...intField(3, value), ...intField(20, ATTRIBUTE_INT)];
}

/** The serialized ModelProto of Y = A′·B′ with inputs "A", "B" and output "Y". */
export function gemmModel(transA: boolean, transB: boolean): Uint8Array {
  // NodeProto { input = 1, output = 2, op_type = 4, attribute = 5 }
  const node = [
    ...stringField(1, 'A'),
    ...stringField(1, 'B'),
    ...stringField(2, 'Y'),
    ...stringField(4, 'Gemm'),
    ...bytesField(5, intAttribute('transA', transA ? 1 : 0)),
    ...bytesField(5, intAttribute('transB', transB ? 1 : 0)),
  ];
  // GraphProto { node = 1, name = 2, input = 11, output = 12 }
  const graph = [
    ...bytesField(1, node),
    ...stringField(2, 'gemm'),
    ...bytesField(11, transA ? matrixInfo('A', 'K', 'M') : matrixInfo('A', 'M', 'K')),
    ...bytesField(11, transB ? matrixInfo('B', 'N', 'K') : matrixInfo('B', 'K', 'N')),
    ...bytesField(12, matrixInfo('Y', 'M', 'N')),
  ];
  // OperatorSetIdProto { domain = 1, version = 2 }
  const opset = [...stringField(1, ''), ...intField(2, OPSET)];
  // ModelProto { ir_version = 1, graph = 7, opset_import = 8 }
  return Uint8Array.from([
    ...intField(1, IR_VERSION),
    ...bytesField(7, graph),
    ...bytesField(8, opset),
  ]);
}

/** AttributeProto { name = 1, ints = 8, type = 20 } of INTS. */
function intsAttribute(name: string, values: number[]): Bytes {
  return [...stringField(1, name), ...values.flatMap((v) => intField(8, v)), ...intField(20, 7)];
}

/** NodeProto { input = 1, output = 2, op_type = 4, attribute = 5 } */
function node(inputs: string[], output: string, op: string, attributes: Bytes[] = []): Bytes {
  return [
    ...inputs.flatMap((i) => stringField(1, i)),
    ...stringField(2, output),
    ...stringField(4, op),
    ...attributes.flatMap((a) => bytesField(5, a)),
  ];
}

/**
 * The serialized ModelProto of a batch of products, Y [n][M][N] = A′[n]·B′[n], where A′ = A
 * ([n][M][K]) or its per-item transpose (A is then [n][K][M]), likewise B ([n][K][N] or
 * [n][N][K]): Transpose nodes (perm 0, 2, 1) feed one MatMul.
 */
export function batchedMatmulModel(transA: boolean, transB: boolean): Uint8Array {
  const nodes: Bytes[] = [];
  let a = 'A';
  let b = 'B';
  if (transA) {
    nodes.push(node(['A'], 'At', 'Transpose', [intsAttribute('perm', [0, 2, 1])]));
    a = 'At';
  }
  if (transB) {
    nodes.push(node(['B'], 'Bt', 'Transpose', [intsAttribute('perm', [0, 2, 1])]));
    b = 'Bt';
  }
  nodes.push(node([a, b], 'Y', 'MatMul'));
  // GraphProto { node = 1, name = 2, input = 11, output = 12 }
  const graph = [
    ...nodes.flatMap((n) => bytesField(1, n)),
    ...stringField(2, 'batched_matmul'),
    ...bytesField(11, transA ? matrixInfo('A', 'n', 'K', 'M') : matrixInfo('A', 'n', 'M', 'K')),
    ...bytesField(11, transB ? matrixInfo('B', 'n', 'N', 'K') : matrixInfo('B', 'n', 'K', 'N')),
    ...bytesField(12, matrixInfo('Y', 'n', 'M', 'N')),
  ];
  const opset = [...stringField(1, ''), ...intField(2, OPSET)];
  return Uint8Array.from([
    ...intField(1, IR_VERSION),
    ...bytesField(7, graph),
    ...bytesField(8, opset),
  ]);
}
