/**
 * Writing GGUF v3 files: the layout of reader.ts, produced the way llama.cpp's own writer does
 * (gguf.cpp `gguf_write_to_buf`): header, metadata, tensor infos, zero padding to the alignment,
 * then each tensor's data followed by zero padding to the alignment. Tensor offsets are therefore
 * consecutive multiples of the alignment, which is what llama.cpp's loader requires.
 *
 * Files are written atomically (temporary file beside the target, fsync, rename), so a reader sees
 * the old file or the whole new one, never a part.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { OpenLedgerError } from '../../errors.ts';
import { temporaryPath } from '../../util/fs.ts';
import { ggmlByteLength, quantize } from './quants.ts';
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  alignUp,
} from './reader.ts';
import { GGUF_VALUE_TYPE, ggmlTypeLayout, ggmlTypeName } from './types.ts';
import type { GgmlType, GgufArrayValue, GgufMetadata, GgufValue } from './types.ts';

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();

export interface GgufTensorInput {
  name: string;
  /** ne[]: fastest-varying dimension first (a [out][in] row-major matrix is [in, out]). */
  dims: readonly number[];
  type: GgmlType;
  /** The tensor's bytes already encoded as `type`, or float32 values to encode here. */
  data: Uint8Array | Float32Array;
}

export interface GgufWriteInput {
  /** Written in iteration order. `general.alignment` (a uint32), when present, sets the alignment. */
  metadata: GgufMetadata | Iterable<readonly [string, GgufValue]> | Record<string, GgufValue>;
  tensors?: readonly GgufTensorInput[];
}

export interface GgufWriteResult {
  /** Bytes written. */
  size: number;
  dataOffset: number;
  alignment: number;
}

/** Encodes a whole GGUF v3 file in memory. */
export function encodeGguf(input: GgufWriteInput): Uint8Array {
  const plan = planGguf(input);
  const out = new Uint8Array(plan.size);
  out.set(plan.header, 0);
  let at = plan.dataOffset;
  for (const { data, padded } of plan.tensors) {
    out.set(data, at); // the padding is already zero
    at += padded;
  }
  return out;
}

/** Writes a GGUF v3 file atomically, creating its folder if needed. */
export async function writeGguf(file: string, input: GgufWriteInput): Promise<GgufWriteResult> {
  const plan = planGguf(input);
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = temporaryPath(file);
  try {
    const handle = await open(tmp, 'w', 0o644);
    try {
      let position = 0;
      const write = async (bytes: Uint8Array): Promise<void> => {
        for (let done = 0; done < bytes.length;) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position);
          done += bytesWritten;
          position += bytesWritten;
        }
      };
      await write(plan.header);
      const zeros = new Uint8Array(plan.alignment);
      for (const { data, padded } of plan.tensors) {
        await write(data);
        await write(zeros.subarray(0, padded - data.length));
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return { size: plan.size, dataOffset: plan.dataOffset, alignment: plan.alignment };
}

// ---------------------------------------------------------------------------------------------

interface Plan {
  /** Everything before the data section, padding included. */
  header: Uint8Array;
  dataOffset: number;
  alignment: number;
  /** Each tensor's encoded bytes and the room it takes with its padding. */
  tensors: { data: Uint8Array; padded: number }[];
  size: number;
}

/** Validates the input and lays the file out. */
function planGguf(input: GgufWriteInput): Plan {
  const entries: [string, GgufValue][] = [
    ...(input.metadata instanceof Map || Symbol.iterator in input.metadata
      ? (input.metadata as Iterable<readonly [string, GgufValue]>)
      : Object.entries(input.metadata as Record<string, GgufValue>)),
  ].map(([key, value]) => [key, value]);
  const tensors = input.tensors ?? [];

  const keys = new Set<string>();
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (const [key, value] of entries) {
    if (typeof key !== 'string' || key.length === 0) fail('a metadata key is empty');
    if (keys.has(key)) fail(`metadata key '${key}' is given twice`);
    keys.add(key);
    if (key === 'general.alignment') {
      if (value.type !== 'uint32' || value.value === 0 || (value.value & (value.value - 1)) !== 0) {
        fail(`'general.alignment' must be a uint32 power of two`);
      }
      alignment = value.value;
    }
  }

  const names = new Set<string>();
  const encoded: { data: Uint8Array; padded: number }[] = [];
  for (const tensor of tensors) {
    const { name, dims, type } = tensor;
    const what = `tensor '${name}'`;
    const nameBytes = utf8.encode(name);
    if (nameBytes.length === 0 || nameBytes.length >= GGML_MAX_NAME) {
      fail(`${what}: a name must have 1 to ${GGML_MAX_NAME - 1} bytes`);
    }
    if (names.has(name)) fail(`${what} is given twice`);
    names.add(name);
    if (dims.length < 1 || dims.length > GGML_MAX_DIMS) {
      fail(`${what} has ${dims.length} dimensions; give 1 to ${GGML_MAX_DIMS}`);
    }
    if (!dims.every((ne) => Number.isSafeInteger(ne) && ne >= 0)) {
      fail(`${what} has dims [${dims.join(', ')}]; each must be a whole number ≥ 0`);
    }
    const layout = ggmlTypeLayout(type);
    if (layout === undefined) fail(`${what} has unknown ggml type ${type}`);
    if (dims[0]! % layout.blockSize !== 0) {
      fail(
        `${what} (${layout.name}) has rows of ${dims[0]} elements, not a multiple of ${layout.blockSize}`,
      );
    }
    const count = dims.reduce((product, ne) => product * ne, 1);
    if (!Number.isSafeInteger(count)) fail(`${what} has too many elements`);
    const byteLength = ggmlByteLength(type, count);
    let data: Uint8Array;
    if (tensor.data instanceof Float32Array) {
      if (tensor.data.length !== count) {
        fail(
          `${what} has ${tensor.data.length} values for dims [${dims.join(', ')}] (${count} elements)`,
        );
      }
      data = quantize(type, tensor.data);
    } else if (tensor.data instanceof Uint8Array) {
      if (tensor.data.length !== byteLength) {
        fail(
          `${what} has ${tensor.data.length} bytes; ${count} elements of ${ggmlTypeName(type)} take ${byteLength}`,
        );
      }
      data = tensor.data;
    } else {
      fail(`${what}: data must be a Uint8Array (encoded) or a Float32Array (values)`);
    }
    encoded.push({ data, padded: alignUp(data.length, alignment) });
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(entries.length));
  for (const [key, value] of entries) {
    w.string(key);
    w.u32(GGUF_VALUE_TYPE[value.type]);
    writeValue(w, value, `metadata '${key}'`);
  }
  let offset = 0;
  tensors.forEach((tensor, i) => {
    w.string(tensor.name);
    w.u32(tensor.dims.length);
    for (const ne of tensor.dims) w.u64(BigInt(ne));
    w.u32(tensor.type);
    w.u64(BigInt(offset));
    offset += encoded[i]!.padded;
  });
  const dataOffset = alignUp(w.length, alignment);
  w.zeros(dataOffset - w.length);
  return { header: w.finish(), dataOffset, alignment, tensors: encoded, size: dataOffset + offset };
}

const INTEGER_RANGE = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
} as const;

const BIGINT_RANGE = {
  uint64: [0n, 2n ** 64n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
} as const;

function writeValue(w: ByteWriter, value: GgufValue, what: string): void {
  // Values may come from untyped code (JSON, tests): check each against its declared type.
  const v: unknown = value.value;
  switch (value.type) {
    case 'uint8':
    case 'int8':
    case 'uint16':
    case 'int16':
    case 'uint32':
    case 'int32': {
      const [lo, hi] = INTEGER_RANGE[value.type];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
        fail(`${what}: ${String(v)} is not a valid ${value.type}`);
      }
      w[value.type](v);
      return;
    }
    case 'float32':
    case 'float64':
      if (typeof v !== 'number') fail(`${what}: ${String(v)} is not a number`);
      w[value.type](v);
      return;
    case 'uint64':
    case 'int64': {
      const [lo, hi] = BIGINT_RANGE[value.type];
      if (typeof v !== 'bigint' || v < lo || v > hi) {
        fail(`${what}: ${String(v)} is not a ${value.type} (give a bigint)`);
      }
      w[value.type](v);
      return;
    }
    case 'bool':
      if (typeof v !== 'boolean') fail(`${what}: ${String(v)} is not a bool`);
      w.u8(v ? 1 : 0);
      return;
    case 'string':
      if (typeof v !== 'string') fail(`${what}: ${String(v)} is not a string`);
      w.string(v);
      return;
    case 'array':
      writeArray(w, value, what);
      return;
  }
  fail(`${what}: unknown value type '${String((value as { type: unknown }).type)}'`);
}

const TYPED_ARRAY = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
  uint64: BigUint64Array,
  int64: BigInt64Array,
} as const;

function writeArray(w: ByteWriter, array: GgufArrayValue, what: string): void {
  const itemType = array.itemType;
  if (!(itemType in GGUF_VALUE_TYPE)) fail(`${what}: unknown item type '${String(itemType)}'`);
  w.u32(GGUF_VALUE_TYPE[itemType]);
  w.u64(BigInt(array.value.length));
  switch (array.itemType) {
    case 'bool':
      for (const item of array.value) {
        if (typeof item !== 'boolean') fail(`${what}: ${String(item)} is not a bool`);
        w.u8(item ? 1 : 0);
      }
      return;
    case 'string':
      for (const item of array.value) {
        if (typeof item !== 'string') fail(`${what}: ${String(item)} is not a string`);
        w.string(item);
      }
      return;
    case 'array':
      for (const item of array.value) {
        if (item?.type !== 'array') fail(`${what}: an item of an array of arrays is not an array`);
        writeArray(w, item, `an item of ${what}`);
      }
      return;
    default: {
      // Numbers come as the matching typed array, so they are already in range.
      const Expected = TYPED_ARRAY[array.itemType];
      if (!(array.value instanceof Expected)) {
        fail(`${what}: items of type ${array.itemType} must be given as a ${Expected.name}`);
      }
      w.typed(array.value);
    }
  }
}

/** Little-endian output that grows as needed. */
class ByteWriter {
  length = 0;
  private buffer = new Uint8Array(1 << 16);
  private view = new DataView(this.buffer.buffer);

  /**
   * Makes room for `n` bytes and returns where they go. It may replace `buffer` and `view`, so
   * each writer below takes the offset first and touches them after.
   */
  private reserve(n: number): number {
    const start = this.length;
    if (start + n > this.buffer.length) {
      const bigger = new Uint8Array(Math.max(2 * this.buffer.length, start + n));
      bigger.set(this.buffer.subarray(0, start));
      this.buffer = bigger;
      this.view = new DataView(bigger.buffer);
    }
    this.length = start + n;
    return start;
  }

  uint8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  u8(v: number): void {
    this.uint8(v);
  }
  int8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }
  uint16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  int16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }
  uint32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u32(v: number): void {
    this.uint32(v);
  }
  int32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  float32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  float64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  uint64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v, true);
  }
  u64(v: bigint): void {
    this.uint64(v);
  }
  int64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
  }

  string(s: string): void {
    const bytes = utf8.encode(s);
    this.u64(BigInt(bytes.length));
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
  }

  /** The items of a typed array, each little-endian. */
  typed(items: ArrayBufferView & { length: number; BYTES_PER_ELEMENT: number }): void {
    const size = items.BYTES_PER_ELEMENT;
    const start = this.reserve(items.length * size);
    const bytes = new Uint8Array(items.buffer, items.byteOffset, items.length * size);
    this.buffer.set(bytes, start);
    if (!HOST_IS_LITTLE_ENDIAN) {
      for (let i = start; i < start + bytes.length; i += size)
        this.buffer.subarray(i, i + size).reverse();
    }
  }

  zeros(n: number): void {
    const at = this.reserve(n);
    this.buffer.fill(0, at, at + n);
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

function fail(message: string): never {
  throw new OpenLedgerError('GGUF_INVALID', `cannot write GGUF: ${message}`);
}
