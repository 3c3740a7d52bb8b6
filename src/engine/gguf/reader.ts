/**
 * Reading GGUF files (versions 2 and 3), after ggml's docs/gguf.md and gguf.cpp.
 *
 * Layout, all little-endian:
 *
 *     offset  field
 *     0       uint32 magic             "GGUF" = 47 47 55 46
 *     4       uint32 version           2 or 3 (v1 used 32-bit counts and is not read here;
 *                                      v3 only added big-endian files, which are refused)
 *     8       uint64 tensor_count
 *     16      uint64 metadata_kv_count
 *     24      metadata_kv_count × { gguf_string key, uint32 value_type, value }   (see types.ts)
 *             tensor_count × {
 *                 gguf_string name         at most 63 bytes, unique
 *                 uint32 n_dims            at most 4
 *                 uint64 ne[n_dims]        ne[0] is the fastest-varying (row) dimension
 *                 uint32 type              a ggml_type
 *                 uint64 offset            from the start of the data section; a multiple of
 *                                          the alignment
 *             }
 *             padding to a multiple of `alignment` (the uint32 `general.alignment`, default 32)
 *     dataOffset  tensor data
 *
 * A gguf_string is a uint64 byte length followed by UTF-8 bytes, without a terminating NUL.
 *
 * Counts, lengths and offsets are uint64: they are read as bigints and refused when they exceed
 * Number.MAX_SAFE_INTEGER (2^53 − 1, 8 PiB), so every number handed out is exact.
 *
 * From a path, only the header is read (a growing prefix of the file, doubling from 1 MiB); tensor
 * bytes are read when asked for with `tensorData`.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { OpenLedgerError } from '../../errors.ts';
import { dequantize } from './quants.ts';
import { GGUF_VALUE_SIZE, GGUF_VALUE_TYPE_NAME, ggmlTypeLayout } from './types.ts';
import type {
  GgmlType,
  GgmlTypeName,
  GgufArrayValue,
  GgufMetadata,
  GgufValue,
  GgufValueType,
} from './types.ts';

/** "GGUF" read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS and GGML_MAX_NAME (names are NUL-terminated in 64 bytes). */
export const GGML_MAX_DIMS = 4;
export const GGML_MAX_NAME = 64;

/** How deep arrays of arrays may nest before the file is refused (each level costs 12 bytes). */
const MAX_ARRAY_NESTING = 32;
const DEFAULT_INITIAL_READ = 1 << 20;
const DEFAULT_MAX_HEADER = 256 * (1 << 20);
/** fs reads are limited to 2 GiB each; large tensors are read in 1 GiB pieces. */
const MAX_READ_CHUNK = 1 << 30;

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

export interface GgufTensorInfo {
  name: string;
  /** ne[]: the extent of each dimension, fastest-varying first, exactly as stored. */
  dims: number[];
  type: GgmlType;
  typeName: GgmlTypeName;
  /** The product of `dims`. */
  elementCount: number;
  /** Where the data starts, relative to the data section (as stored in the file). */
  offset: number;
  /** Where the data starts in the file: dataOffset + offset. */
  fileOffset: number;
  byteLength: number;
}

export interface GgufHeader {
  version: 2 | 3;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  /** `general.alignment`, or 32. */
  alignment: number;
  /** Where the data section starts: the end of the tensor infos, padded to `alignment`. */
  dataOffset: number;
}

export interface ReadGgufOptions {
  /** Bytes read first when reading a header from a path (default 1 MiB; it doubles as needed). */
  initialReadBytes?: number;
  /** A header larger than this is refused (default 256 MiB). */
  maxHeaderBytes?: number;
}

/** A parsed GGUF file: its header, and its tensors' bytes on demand. */
export class GgufFile implements GgufHeader {
  readonly version: 2 | 3;
  readonly metadata: GgufMetadata;
  readonly tensors: GgufTensorInfo[];
  readonly alignment: number;
  readonly dataOffset: number;
  private readonly byName: Map<string, GgufTensorInfo>;

  constructor(
    header: GgufHeader,
    /** The size of the whole file in bytes. */
    readonly fileSize: number,
    /** The path, or "GGUF buffer": it prefixes every error message. */
    readonly source: string,
    private readonly contents: { bytes: Uint8Array } | { path: string },
  ) {
    this.version = header.version;
    this.metadata = header.metadata;
    this.tensors = header.tensors;
    this.alignment = header.alignment;
    this.dataOffset = header.dataOffset;
    this.byName = new Map(header.tensors.map((tensor) => [tensor.name, tensor]));
  }

  findTensor(name: string): GgufTensorInfo | undefined {
    return this.byName.get(name);
  }

  /** The tensor called `name`; throws GGUF_INVALID when there is none. */
  tensor(name: string): GgufTensorInfo {
    const tensor = this.byName.get(name);
    if (tensor === undefined) {
      throw new OpenLedgerError('GGUF_INVALID', `${this.source}: no tensor named '${name}'`);
    }
    return tensor;
  }

  /**
   * The raw bytes of a tensor. From a buffer this is a view into it (no copy); from a path the
   * bytes are read now, and only those.
   */
  async tensorData(tensor: GgufTensorInfo | string): Promise<Uint8Array> {
    const info = typeof tensor === 'string' ? this.tensor(tensor) : tensor;
    if ('bytes' in this.contents) {
      return this.contents.bytes.subarray(info.fileOffset, info.fileOffset + info.byteLength);
    }
    const handle = await open(this.contents.path, 'r');
    try {
      const out = new Uint8Array(info.byteLength);
      const got = await readFully(handle, out, 0, info.byteLength, info.fileOffset);
      if (got < info.byteLength) {
        throw invalid(
          this.source,
          `the file ended at offset ${info.fileOffset + got} while reading tensor '${info.name}' (${info.byteLength} bytes at ${info.fileOffset}); did it change after its header was read?`,
          { offset: info.fileOffset + got },
        );
      }
      return out;
    } finally {
      await handle.close();
    }
  }

  /** A tensor's values as float32 (dequantized when stored quantized). */
  async tensorFloat32(tensor: GgufTensorInfo | string): Promise<Float32Array> {
    const info = typeof tensor === 'string' ? this.tensor(tensor) : tensor;
    return dequantize(info.type, await this.tensorData(info));
  }
}

/**
 * Reads a GGUF file from its bytes or from a path. From a path only the header is read now; see
 * `GgufFile.tensorData`. Throws GGUF_INVALID (with the offset and what was expected) for a file
 * that breaks the format, GGUF_UNSUPPORTED for a valid one this reader does not handle.
 */
export async function readGguf(
  input: Uint8Array | string,
  options: ReadGgufOptions = {},
): Promise<GgufFile> {
  if (typeof input !== 'string') {
    const header = parseGgufHeader(input);
    return new GgufFile(header, input.length, 'GGUF buffer', { bytes: input });
  }
  const initial = options.initialReadBytes ?? DEFAULT_INITIAL_READ;
  const maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER;
  const handle = await open(input, 'r');
  try {
    const { size } = await handle.stat();
    let prefix: Uint8Array = new Uint8Array(0);
    let want = Math.min(size, initial);
    for (;;) {
      if (want > prefix.length) prefix = await extendPrefix(handle, prefix, want, input);
      try {
        const header = parseGgufHeader(prefix, { fileSize: size, source: input });
        return new GgufFile(header, size, input, { path: input });
      } catch (error) {
        if (!(error instanceof NeedMoreBytes)) throw error;
        if (error.upTo > maxHeader) {
          throw new OpenLedgerError(
            'GGUF_UNSUPPORTED',
            `${input}: the GGUF header goes on past ${maxHeader} bytes (it needs byte ${error.upTo}); refusing to read it`,
            { details: { offset: error.upTo } },
          );
        }
        want = Math.min(size, Math.max(error.upTo, 2 * prefix.length));
      }
    }
  } finally {
    await handle.close();
  }
}

/**
 * Parses a GGUF header from `bytes`. `bytes` may be just the start of a file of `fileSize` bytes:
 * parsing past its end throws `NeedMoreBytes` (readGguf reads more and tries again), while
 * running past `fileSize` is a truncated file.
 */
export function parseGgufHeader(
  bytes: Uint8Array,
  { fileSize = bytes.length, source = 'GGUF buffer' }: { fileSize?: number; source?: string } = {},
): GgufHeader {
  const c = new Cursor(bytes, fileSize, source);
  const version = readMagicAndVersion(c);
  const tensorCount = c.count('the tensor count');
  const kvCount = c.count('the metadata count');
  // Each metadata entry takes at least 8 + 4 bytes, each tensor info 8 + 4 + 4 + 8.
  c.requireRemaining(
    kvCount * 12 + tensorCount * 24,
    `${kvCount} metadata entries and ${tensorCount} tensor infos`,
  );
  const metadata = readMetadata(c, kvCount);
  const alignment = alignmentOf(metadata, source);
  const tensors = readTensorInfos(c, tensorCount, alignment);
  const dataOffset = alignUp(c.pos, alignment);
  placeTensors(tensors, dataOffset, fileSize, source);
  return { version, metadata, tensors, alignment, dataOffset };
}

function readMagicAndVersion(c: Cursor): 2 | 3 {
  const at = c.take(4, 'the magic "GGUF"');
  if (c.u32At(at) !== GGUF_MAGIC) {
    const got = c.bytesAt(at, 4);
    throw invalid(
      c.source,
      `not a GGUF file: expected the magic "GGUF" (47 47 55 46) at offset 0, found ${JSON.stringify(latin1(got))} (${hex(got)})`,
      { offset: 0, expected: 'GGUF', found: hex(got) },
    );
  }
  const version = c.u32('the version');
  if (version !== 0 && (version & 0xffff) === 0) {
    // v3 files may be big-endian; then the version 3 reads as 0x03000000 here.
    throw unsupported(
      c.source,
      `the version reads as 0x${version.toString(16)}: this is a big-endian GGUF file, and only little-endian files are supported`,
      { offset: 4 },
    );
  }
  if (version === 1) {
    throw unsupported(
      c.source,
      'GGUF version 1 (32-bit counts) is not supported; convert the file again with a current llama.cpp',
      { offset: 4 },
    );
  }
  if (version !== 2 && version !== 3) {
    throw unsupported(c.source, `GGUF version ${version} is not supported (2 and 3 are)`, {
      offset: 4,
    });
  }
  return version;
}

function readMetadata(c: Cursor, count: number): GgufMetadata {
  const metadata: GgufMetadata = new Map();
  for (let i = 0; i < count; i++) {
    const at = c.pos;
    const key = c.string(`the key of metadata entry ${i}`);
    if (key.length === 0) {
      throw invalid(c.source, `metadata entry ${i} at offset ${at} has an empty key`, {
        offset: at,
      });
    }
    if (metadata.has(key)) {
      throw invalid(c.source, `metadata key '${key}' appears twice (again at offset ${at})`, {
        offset: at,
      });
    }
    const type = c.valueType(`the value type of '${key}'`);
    metadata.set(key, readValue(c, type, `'${key}'`, 0));
  }
  return metadata;
}

function readTensorInfos(c: Cursor, count: number, alignment: number): GgufTensorInfo[] {
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < count; i++) {
    const at = c.pos;
    const name = c.string(`the name of tensor ${i}`);
    if (utf8Encoder.encode(name).length >= GGML_MAX_NAME) {
      const message = `tensor ${i} at offset ${at} has a name of more than ${GGML_MAX_NAME - 1} bytes: '${name}'`;
      throw invalid(c.source, message, { offset: at });
    }
    if (names.has(name)) {
      throw invalid(c.source, `tensor name '${name}' appears twice (again at offset ${at})`, {
        offset: at,
      });
    }
    names.add(name);

    const dimsAt = c.pos;
    const nDims = c.u32(`the dimension count of '${name}'`);
    if (nDims > GGML_MAX_DIMS) {
      const message = `tensor '${name}' has ${nDims} dimensions (offset ${dimsAt}); ggml allows at most ${GGML_MAX_DIMS}`;
      throw invalid(c.source, message, { offset: dimsAt });
    }
    const dims: number[] = [];
    for (let j = 0; j < nDims; j++) dims.push(c.count(`dimension ${j} of '${name}'`));

    const typeAt = c.pos;
    const typeId = c.u32(`the type of '${name}'`);
    const layout = ggmlTypeLayout(typeId);
    if (layout === undefined) {
      const message = `tensor '${name}' has ggml type ${typeId} (offset ${typeAt}), which this reader does not know`;
      throw unsupported(c.source, message, { offset: typeAt });
    }
    const rowLength = dims[0] ?? 1;
    if (rowLength % layout.blockSize !== 0) {
      const message = `tensor '${name}' (${layout.name}) has rows of ${rowLength} elements, not a multiple of its block size ${layout.blockSize}`;
      throw invalid(c.source, message, { offset: dimsAt });
    }
    const elements = dims.reduce((product, ne) => product * BigInt(ne), 1n);
    const byteLength = (elements / BigInt(layout.blockSize)) * BigInt(layout.typeSize);
    if (byteLength > BigInt(Number.MAX_SAFE_INTEGER)) {
      const message = `tensor '${name}' with dims [${dims.join(', ')}] would take ${byteLength} bytes`;
      throw invalid(c.source, message, { offset: dimsAt });
    }

    const offsetAt = c.pos;
    const offset = c.count(`the data offset of '${name}'`);
    if (offset % alignment !== 0) {
      const message = `tensor '${name}' has data offset ${offset} (stored at ${offsetAt}), not a multiple of the alignment ${alignment}`;
      throw invalid(c.source, message, {
        offset: offsetAt,
        expected: `a multiple of ${alignment}`,
        found: offset,
      });
    }
    tensors.push({
      name,
      dims,
      type: typeId as GgmlType,
      typeName: layout.name,
      elementCount: Number(elements),
      offset,
      fileOffset: 0, // set by placeTensors, once the data section is known
      byteLength: Number(byteLength),
    });
  }
  return tensors;
}

/** Sets each tensor's file offset and checks that the tensors lie in the file, apart. */
function placeTensors(
  tensors: GgufTensorInfo[],
  dataOffset: number,
  fileSize: number,
  source: string,
): void {
  for (const tensor of tensors) {
    tensor.fileOffset = dataOffset + tensor.offset;
    const end = tensor.fileOffset + tensor.byteLength;
    if (end > fileSize) {
      const message = `tensor '${tensor.name}' (${tensor.byteLength} bytes at offset ${tensor.fileOffset}) ends at ${end}, beyond the end of the file at ${fileSize}`;
      throw invalid(source, message, { offset: tensor.fileOffset, expected: end, found: fileSize });
    }
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const previous = byOffset[i - 1]!;
    const next = byOffset[i]!;
    if (previous.offset + previous.byteLength > next.offset) {
      const range = (t: GgufTensorInfo): string =>
        `[${t.fileOffset}, ${t.fileOffset + t.byteLength})`;
      const message = `tensors '${previous.name}' ${range(previous)} and '${next.name}' ${range(next)} overlap`;
      throw invalid(source, message, { offset: next.fileOffset });
    }
  }
}

/** Rounds `offset` up to a multiple of `alignment` (GGML_PAD). */
export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

// ---------------------------------------------------------------------------------------------

/** Thrown by the cursor when the header continues past the bytes read so far. */
class NeedMoreBytes extends Error {
  constructor(readonly upTo: number) {
    super(`need bytes up to ${upTo}`);
  }
}

/** Reads little-endian fields from the header bytes, checking each against the file's end. */
class Cursor {
  pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly fileSize: number,
    readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Claims the next `n` bytes for `what` and returns where they start. */
  take(n: number, what: string): number {
    const start = this.pos;
    const end = start + n;
    if (end > this.fileSize) {
      throw invalid(
        this.source,
        `truncated: ${what} needs ${n} bytes at offset ${start}, but the file ends at ${this.fileSize}`,
        { offset: start, expected: n, found: Math.max(0, this.fileSize - start) },
      );
    }
    if (end > this.bytes.length) throw new NeedMoreBytes(end);
    this.pos = end;
    return start;
  }

  /** Refuses early (before allocating) when the rest of the file cannot hold `n` more bytes. */
  requireRemaining(n: number, what: string): void {
    if (this.pos + n > this.fileSize) {
      throw invalid(
        this.source,
        `truncated: ${what} need at least ${n} bytes from offset ${this.pos}, but the file ends at ${this.fileSize}`,
        { offset: this.pos, expected: n, found: this.fileSize - this.pos },
      );
    }
  }

  u32At(offset: number): number {
    return this.view.getUint32(offset, true);
  }

  bytesAt(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(offset, offset + length);
  }

  u8(what: string): number {
    return this.view.getUint8(this.take(1, what));
  }
  i8(what: string): number {
    return this.view.getInt8(this.take(1, what));
  }
  u16(what: string): number {
    return this.view.getUint16(this.take(2, what), true);
  }
  i16(what: string): number {
    return this.view.getInt16(this.take(2, what), true);
  }
  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }
  i32(what: string): number {
    return this.view.getInt32(this.take(4, what), true);
  }
  f32(what: string): number {
    return this.view.getFloat32(this.take(4, what), true);
  }
  f64(what: string): number {
    return this.view.getFloat64(this.take(8, what), true);
  }
  u64(what: string): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }
  i64(what: string): bigint {
    return this.view.getBigInt64(this.take(8, what), true);
  }

  bool(what: string): boolean {
    const at = this.pos;
    const byte = this.u8(what);
    if (byte > 1) {
      throw invalid(
        this.source,
        `${what} at offset ${at} is a bool stored as ${byte}; expected 0 or 1`,
        {
          offset: at,
          expected: '0 or 1',
          found: byte,
        },
      );
    }
    return byte === 1;
  }

  /** A uint64 count, length or offset, as an exact number. */
  count(what: string): number {
    const at = this.pos;
    const value = this.u64(what);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalid(
        this.source,
        `${what} at offset ${at} is ${value}, beyond 2^53 - 1 (Number.MAX_SAFE_INTEGER); the file is corrupt or not meant for this reader`,
        { offset: at, found: value.toString() },
      );
    }
    return Number(value);
  }

  string(what: string): string {
    const at = this.pos;
    const length = this.count(`the length of ${what}`);
    const start = this.take(length, what);
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch (cause) {
      throw invalid(
        this.source,
        `${what} (${length} bytes at offset ${at}) is not valid UTF-8`,
        { offset: at },
        cause,
      );
    }
  }

  valueType(what: string): GgufValueType {
    const at = this.pos;
    const id = this.u32(what);
    const type = GGUF_VALUE_TYPE_NAME.get(id);
    if (type === undefined) {
      throw invalid(this.source, `${what} at offset ${at} is ${id}; value types are 0 to 12`, {
        offset: at,
        expected: '0..12',
        found: id,
      });
    }
    return type;
  }

  /** `count` items of `size` bytes as an ArrayBuffer in host byte order, for a typed array. */
  items(count: number, size: number, what: string): ArrayBuffer {
    const start = this.take(count * size, what);
    const copy = this.bytes.slice(start, start + count * size);
    if (!HOST_IS_LITTLE_ENDIAN) {
      for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
    }
    return copy.buffer;
  }
}

function readValue(c: Cursor, type: GgufValueType, what: string, depth: number): GgufValue {
  switch (type) {
    case 'uint8':
      return { type, value: c.u8(what) };
    case 'int8':
      return { type, value: c.i8(what) };
    case 'uint16':
      return { type, value: c.u16(what) };
    case 'int16':
      return { type, value: c.i16(what) };
    case 'uint32':
      return { type, value: c.u32(what) };
    case 'int32':
      return { type, value: c.i32(what) };
    case 'float32':
      return { type, value: c.f32(what) };
    case 'float64':
      return { type, value: c.f64(what) };
    case 'uint64':
      return { type, value: c.u64(what) };
    case 'int64':
      return { type, value: c.i64(what) };
    case 'bool':
      return { type, value: c.bool(what) };
    case 'string':
      return { type, value: c.string(what) };
    case 'array':
      return readArray(c, what, depth);
  }
}

function readArray(c: Cursor, what: string, depth: number): GgufArrayValue {
  const at = c.pos;
  if (depth >= MAX_ARRAY_NESTING) {
    throw invalid(
      c.source,
      `${what} nests arrays more than ${MAX_ARRAY_NESTING} deep (offset ${at})`,
      { offset: at },
    );
  }
  const itemType = c.valueType(`the item type of ${what}`);
  const count = c.count(`the item count of ${what}`);
  // Check the count against the rest of the file before allocating anything for it.
  const minItemSize = GGUF_VALUE_SIZE[itemType] ?? (itemType === 'string' ? 8 : 12);
  c.requireRemaining(count * minItemSize, `${what} (${count} items of ${itemType})`);
  const item = `an item of ${what}`;
  switch (itemType) {
    case 'uint8':
      return { type: 'array', itemType, value: new Uint8Array(c.items(count, 1, item)) };
    case 'int8':
      return { type: 'array', itemType, value: new Int8Array(c.items(count, 1, item)) };
    case 'uint16':
      return { type: 'array', itemType, value: new Uint16Array(c.items(count, 2, item)) };
    case 'int16':
      return { type: 'array', itemType, value: new Int16Array(c.items(count, 2, item)) };
    case 'uint32':
      return { type: 'array', itemType, value: new Uint32Array(c.items(count, 4, item)) };
    case 'int32':
      return { type: 'array', itemType, value: new Int32Array(c.items(count, 4, item)) };
    case 'float32':
      return { type: 'array', itemType, value: new Float32Array(c.items(count, 4, item)) };
    case 'float64':
      return { type: 'array', itemType, value: new Float64Array(c.items(count, 8, item)) };
    case 'uint64':
      return { type: 'array', itemType, value: new BigUint64Array(c.items(count, 8, item)) };
    case 'int64':
      return { type: 'array', itemType, value: new BigInt64Array(c.items(count, 8, item)) };
    case 'bool': {
      const value: boolean[] = new Array<boolean>(count);
      for (let i = 0; i < count; i++) value[i] = c.bool(item);
      return { type: 'array', itemType, value };
    }
    case 'string': {
      const value: string[] = new Array<string>(count);
      for (let i = 0; i < count; i++) value[i] = c.string(item);
      return { type: 'array', itemType, value };
    }
    case 'array': {
      const value: GgufArrayValue[] = new Array<GgufArrayValue>(count);
      for (let i = 0; i < count; i++) value[i] = readArray(c, item, depth + 1);
      return { type: 'array', itemType, value };
    }
  }
}

function alignmentOf(metadata: GgufMetadata, source: string): number {
  const value = metadata.get('general.alignment');
  if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (value.type !== 'uint32') {
    throw invalid(
      source,
      `'general.alignment' has type ${describeType(value)}; it must be a uint32`,
    );
  }
  const alignment = value.value;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
    throw invalid(source, `'general.alignment' is ${alignment}, not a power of two`);
  }
  return alignment;
}

/** "uint32", or "array of string" for an array. */
export function describeType(value: GgufValue): string {
  return value.type === 'array' ? `array of ${value.itemType}` : value.type;
}

async function extendPrefix(
  handle: FileHandle,
  prefix: Uint8Array,
  length: number,
  source: string,
): Promise<Uint8Array> {
  const longer = new Uint8Array(length);
  longer.set(prefix);
  const got = await readFully(handle, longer, prefix.length, length - prefix.length, prefix.length);
  if (prefix.length + got < length) {
    throw invalid(
      source,
      `the file ended at offset ${prefix.length + got} while its header was being read`,
      {
        offset: prefix.length + got,
      },
    );
  }
  return longer;
}

/** Reads until `length` bytes are in or the file ends; returns how many were read. */
async function readFully(
  handle: FileHandle,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(
      buffer,
      offset + done,
      Math.min(length - done, MAX_READ_CHUNK),
      position + done,
    );
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

function invalid(
  source: string,
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): OpenLedgerError {
  return new OpenLedgerError('GGUF_INVALID', `${source}: ${message}`, { details, cause });
}

function unsupported(
  source: string,
  message: string,
  details?: Record<string, unknown>,
): OpenLedgerError {
  return new OpenLedgerError('GGUF_UNSUPPORTED', `${source}: ${message}`, { details });
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join(' ');
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}
