/**
 * Reading and writing safetensors files (Hugging Face's tensor format,
 * github.com/huggingface/safetensors), the format of Hugging Face checkpoints and of PEFT's
 * `adapter_model.safetensors`:
 *
 *     offset   field
 *     0        uint64 N, little-endian: the byte length of the header
 *     8        N bytes of UTF-8 JSON:
 *                { "__metadata__": { "<key>": "<string>", … },          (optional)
 *                  "<tensor name>": { "dtype": "F32", "shape": [rows, cols],
 *                                     "data_offsets": [begin, end] }, … }
 *              padded with spaces so that the data starts at a multiple of 8
 *     8 + N    the data: each tensor's bytes, row-major, little-endian, at [begin, end) of it
 *
 * The data is exactly the tensors' bytes, contiguous, with no gap or overlap (the reference
 * implementation refuses anything else, and so does this reader).
 *
 * The writer produces what the Python/Rust library writes (safetensors `serialize`): tensors
 * ordered by dtype, widest first, then by name; the header compact JSON with `__metadata__`
 * first and the tensors in data order; padding spaces to 8 bytes. The same tensors therefore
 * give the same bytes here and there.
 *
 * Written here rather than taken from npm: no npm package reads and writes safetensors files on
 * disk (@huggingface/hub only parses the headers of files on the Hub, over HTTP), and the format
 * is small enough to own.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { OpenLedgerError } from '../errors.ts';
import { temporaryPath } from '../util/fs.ts';
import { GGML_TYPE, dequantize, quantize } from './gguf/index.ts';

/**
 * The dtypes of the format, in the reference implementation's declaration order: the writer
 * sorts by it, last first (its `Dtype` derives `Ord`), so F64 tensors come before F32 ones.
 */
const DTYPE_ORDER = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;

export type SafetensorsDtype = (typeof DTYPE_ORDER)[number];

const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The dtypes `tensorFloat32` converts and `encodeSafetensors` encodes from float32 values. */
export const SAFETENSORS_FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type SafetensorsFloatDtype = (typeof SAFETENSORS_FLOAT_DTYPES)[number];

/** The ggml type with the same bytes as each float dtype (both little-endian IEEE / bfloat16). */
const GGML_OF: Readonly<Record<SafetensorsFloatDtype, number>> = {
  F32: GGML_TYPE.F32,
  F16: GGML_TYPE.F16,
  BF16: GGML_TYPE.BF16,
};

/** The reference implementation refuses headers over 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;
const MAX_READ_CHUNK = 1 << 30;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  /** Row-major: the last dimension varies fastest (the reverse of GGUF's ne[]). */
  shape: number[];
  elementCount: number;
  /** [begin, end) relative to the data section, as stored. */
  dataOffsets: [number, number];
  /** Where the bytes start in the file. */
  fileOffset: number;
  byteLength: number;
}

/** A parsed safetensors file: its header, and its tensors' bytes on demand. */
export class SafetensorsFile {
  private readonly byName: Map<string, SafetensorsTensorInfo>;

  constructor(
    /** `__metadata__`: string keys and values (empty when absent). */
    readonly metadata: Record<string, string>,
    /** In data order. */
    readonly tensors: SafetensorsTensorInfo[],
    /** The path, or "safetensors buffer": it prefixes every error message. */
    readonly source: string,
    private readonly contents: { bytes: Uint8Array } | { path: string },
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  findTensor(name: string): SafetensorsTensorInfo | undefined {
    return this.byName.get(name);
  }

  tensor(name: string): SafetensorsTensorInfo {
    const info = this.byName.get(name);
    if (info === undefined)
      throw new OpenLedgerError('FILE_INVALID', `${this.source}: no tensor named '${name}'`);
    return info;
  }

  /** A tensor's raw bytes: a view into the buffer, or read from the file now (only those). */
  async tensorData(tensor: SafetensorsTensorInfo | string): Promise<Uint8Array> {
    const info = typeof tensor === 'string' ? this.tensor(tensor) : tensor;
    if ('bytes' in this.contents)
      return this.contents.bytes.subarray(info.fileOffset, info.fileOffset + info.byteLength);
    const handle = await open(this.contents.path, 'r');
    try {
      const out = new Uint8Array(info.byteLength);
      const got = await readFully(handle, out, info.fileOffset);
      if (got < info.byteLength)
        throw invalid(
          this.source,
          `the file ended while reading tensor '${info.name}'; did it change after its header was read?`,
        );
      return out;
    } finally {
      await handle.close();
    }
  }

  /** A float tensor (F32, F16, BF16) as float32 values. */
  async tensorFloat32(tensor: SafetensorsTensorInfo | string): Promise<Float32Array> {
    const info = typeof tensor === 'string' ? this.tensor(tensor) : tensor;
    if (!(SAFETENSORS_FLOAT_DTYPES as readonly string[]).includes(info.dtype))
      throw new OpenLedgerError(
        'MODEL_UNSUPPORTED',
        `${this.source}: tensor '${info.name}' is ${info.dtype}; only F32, F16 and BF16 convert to float32`,
      );
    return dequantize(GGML_OF[info.dtype as SafetensorsFloatDtype], await this.tensorData(info));
  }
}

/**
 * Reads a safetensors file from its bytes or from a path (then only the header now; tensors on
 * demand). Throws FILE_INVALID for a file that breaks the format.
 */
export async function readSafetensors(input: Uint8Array | string): Promise<SafetensorsFile> {
  if (typeof input !== 'string') {
    const { metadata, tensors } = parseHeader(input, input.length, 'safetensors buffer');
    return new SafetensorsFile(metadata, tensors, 'safetensors buffer', { bytes: input });
  }
  const handle = await open(input, 'r');
  try {
    const { size } = await handle.stat();
    const prefix = new Uint8Array(8);
    if ((await readFully(handle, prefix, 0)) < 8)
      throw invalid(input, `the file has ${size} bytes; a safetensors file starts with 8`);
    const n = headerLength(prefix, size, input);
    const header = new Uint8Array(8 + n);
    header.set(prefix);
    await readFully(handle, header.subarray(8), 8);
    const { metadata, tensors } = parseHeader(header, size, input);
    return new SafetensorsFile(metadata, tensors, input, { path: input });
  } finally {
    await handle.close();
  }
}

function headerLength(bytes: Uint8Array, fileSize: number, source: string): number {
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw invalid(source, `the header claims ${n} bytes; at most ${MAX_HEADER_BYTES} are allowed`);
  if (8 + Number(n) > fileSize)
    throw invalid(source, `the header claims ${n} bytes; the file has only ${fileSize}`);
  return Number(n);
}

function parseHeader(
  bytes: Uint8Array,
  fileSize: number,
  source: string,
): { metadata: Record<string, string>; tensors: SafetensorsTensorInfo[] } {
  if (bytes.length < 8)
    throw invalid(source, `the file has ${bytes.length} bytes; a safetensors file starts with 8`);
  const n = headerLength(bytes, fileSize, source);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (cause) {
    throw invalid(source, `the header is not UTF-8 JSON (${(cause as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalid(source, 'the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw invalid(source, '__metadata__ is not an object');
      for (const [key, text] of Object.entries(value))
        if (typeof text !== 'string') throw invalid(source, `__metadata__.${key} is not a string`);
      metadata = value as Record<string, string>;
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const what = `tensor '${name}'`;
    if (typeof entry !== 'object' || entry === null)
      throw invalid(source, `${what} is not an object`);
    if (!(DTYPE_ORDER as readonly unknown[]).includes(entry.dtype))
      throw invalid(source, `${what} has unknown dtype ${JSON.stringify(entry.dtype)}`);
    const dtype = entry.dtype as SafetensorsDtype;
    if (
      !Array.isArray(entry.shape) ||
      !entry.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
    )
      throw invalid(source, `${what} has shape ${JSON.stringify(entry.shape)}`);
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    )
      throw invalid(source, `${what} has data_offsets ${JSON.stringify(offsets)}`);
    const shape = entry.shape as number[];
    const elementCount = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets as [number, number];
    if (end - begin !== elementCount * DTYPE_BYTES[dtype])
      throw invalid(
        source,
        `${what}: ${dtype} of shape [${shape.join(', ')}] takes ${elementCount * DTYPE_BYTES[dtype]} bytes, its offsets span ${end - begin}`,
      );
    tensors.push({
      name,
      dtype,
      shape,
      elementCount,
      dataOffsets: [begin, end],
      fileOffset: dataStart + begin,
      byteLength: end - begin,
    });
  }
  // Contiguous, in order, covering the data exactly: what the reference reader demands.
  tensors.sort(
    (a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  let at = 0;
  for (const t of tensors) {
    if (t.dataOffsets[0] !== at)
      throw invalid(
        source,
        `tensor '${t.name}' starts at ${t.dataOffsets[0]}; the previous tensor ends at ${at} (tensors must be contiguous)`,
      );
    at = t.dataOffsets[1];
  }
  if (at !== dataLength)
    throw invalid(source, `the tensors take ${at} bytes; the data section has ${dataLength}`);
  return { metadata, tensors };
}

// ---------------------------------------------------------------------------------------------

export interface SafetensorsTensorInput {
  name: string;
  dtype: SafetensorsDtype;
  /** Row-major, last dimension fastest. */
  shape: readonly number[];
  /** The bytes already encoded as `dtype`, or float32 values to encode (F32, F16, BF16 only). */
  data: Uint8Array | Float32Array;
}

interface Planned {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** The header (length prefix and padding included) and the tensors in data order. */
function plan(
  tensors: readonly SafetensorsTensorInput[],
  metadata: Record<string, string> | undefined,
): { header: Uint8Array; tensors: Planned[]; size: number } {
  const names = new Set<string>();
  const planned: Planned[] = tensors.map((t) => {
    const what = `safetensors tensor '${t.name}'`;
    const fail = (message: string): never => {
      throw new OpenLedgerError('VALIDATION_FAILED', `${what}: ${message}`);
    };
    if (t.name.length === 0 || t.name === '__metadata__') fail('a reserved or empty name');
    if (names.has(t.name)) fail('given twice');
    names.add(t.name);
    if (!(DTYPE_ORDER as readonly string[]).includes(t.dtype)) fail(`unknown dtype ${t.dtype}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`shape [${t.shape.join(', ')}]`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    let bytes: Uint8Array;
    if (t.data instanceof Float32Array) {
      if (!(SAFETENSORS_FLOAT_DTYPES as readonly string[]).includes(t.dtype))
        fail(`float32 values encode only to F32, F16 or BF16, not ${t.dtype}`);
      if (t.data.length !== count) fail(`${t.data.length} values for ${count} elements`);
      bytes = quantize(GGML_OF[t.dtype as SafetensorsFloatDtype], t.data);
    } else {
      bytes = t.data;
      if (bytes.length !== count * DTYPE_BYTES[t.dtype])
        fail(
          `${bytes.length} bytes; ${count} elements of ${t.dtype} take ${count * DTYPE_BYTES[t.dtype]}`,
        );
    }
    return { name: t.name, dtype: t.dtype, shape: t.shape, bytes };
  });
  // The reference `serialize`: dtype descending (widest alignment first), then name.
  const rank = (d: SafetensorsDtype) => DTYPE_ORDER.indexOf(d);
  planned.sort(
    (a, b) => rank(b.dtype) - rank(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of planned) {
    header[t.name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + t.bytes.length],
    };
    offset += t.bytes.length;
  }
  // JSON.stringify keeps insertion order for non-integer keys; a tensor named like an integer
  // ("0") would be moved first by JavaScript, so build the text by hand.
  const parts = Object.entries(header).map(
    ([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`,
  );
  let json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return { header: out, tensors: planned, size: out.length + offset };
}

/** Encodes a whole safetensors file in memory. */
export function encodeSafetensors(
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): Uint8Array {
  const p = plan(tensors, metadata);
  const out = new Uint8Array(p.size);
  out.set(p.header, 0);
  let at = p.header.length;
  for (const t of p.tensors) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically (temporary file beside it, fsync, rename), creating its
 * folder if needed. Answers its size in bytes.
 */
export async function writeSafetensors(
  file: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): Promise<{ size: number }> {
  const p = plan(tensors, metadata);
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = temporaryPath(file);
  try {
    const handle = await open(tmp, 'w', 0o644);
    try {
      let position = 0;
      for (const bytes of [p.header, ...p.tensors.map((t) => t.bytes)]) {
        for (let done = 0; done < bytes.length;) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position);
          done += bytesWritten;
          position += bytesWritten;
        }
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
  return { size: p.size };
}

async function readFully(handle: FileHandle, out: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < out.length) {
    const length = Math.min(out.length - done, MAX_READ_CHUNK);
    const { bytesRead } = await handle.read(out, done, length, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

function invalid(source: string, message: string): OpenLedgerError {
  return new OpenLedgerError('FILE_INVALID', `${source}: ${message}`, {
    hint: 'is this a complete safetensors file?',
  });
}
