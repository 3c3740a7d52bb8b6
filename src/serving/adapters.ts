import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ggufString, readGguf, type GgufFile } from '../engine/gguf/index.ts';
import { OpenLedgerError } from '../errors.ts';

/** An adapter the node can attach: a llama.cpp LoRA GGUF file, named by the sha256 of its bytes. */
export interface AdapterRecord {
  /** sha256 of the file (64 hex digits): the adapter's identity everywhere (blobs, receipts). */
  id: string;
  /** Where llama.cpp reads it: the blob store's file, or the operator's file. */
  path: string;
  bytes: number;
  /** The catalogue name of the base model it was checked against. */
  baseModel: string;
  /** Operator-given names (`load_lora_adapter`); empty for adapters called by hash or Model ID. */
  names: Set<string>;
  source: 'blob' | 'file';
  /** Pinned adapters are attached again at once after a model recycle and never dropped. */
  pinned: boolean;
  lastUsedAt: number;
  uses: number;
}

/** A base model's tensor shapes, read once from its GGUF header. */
export interface BaseShape {
  architecture: string;
  tensors: Map<string, number[]>;
}

export async function readBaseShape(file: string): Promise<BaseShape> {
  const header = await readGguf(file);
  return {
    architecture: ggufString(header.metadata, 'general.architecture', 'unknown'),
    tensors: new Map(header.tensors.map((t) => [t.name, t.dims])),
  };
}

const LORA_TENSOR = /^(.+)\.lora_([ab])$/;

/**
 * Checks that a file is a LoRA adapter llama.cpp can attach to this base, before llama.cpp
 * sees it: llama.cpp aborts the whole process on some malformed adapters (a non-float alpha)
 * and only says "failed to initialize" on others, so the node judges the file itself and
 * gives the caller a precise reason.
 */
export async function checkAdapterFile(
  file: string,
  base: { name: string; shape: BaseShape },
): Promise<{ header: GgufFile; rank: number }> {
  let header: GgufFile;
  try {
    header = await readGguf(file);
  } catch (error) {
    throw new OpenLedgerError(
      'ADAPTER_INVALID',
      `The adapter is not a readable GGUF file: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const invalid = (message: string, hint?: string) =>
    new OpenLedgerError('ADAPTER_INVALID', `The adapter is malformed: ${message}.`, {
      ...(hint === undefined ? {} : { hint }),
    });
  const meta = header.metadata;
  if (meta.get('general.type')?.value !== 'adapter' || meta.get('adapter.type')?.value !== 'lora') {
    throw invalid(
      'general.type must be "adapter" and adapter.type "lora"',
      'Pass a llama.cpp LoRA GGUF (what the Model Factory produces), not a base model.',
    );
  }
  const alpha = meta.get('adapter.lora.alpha');
  if (alpha !== undefined && alpha.type !== 'float32') {
    throw invalid(`adapter.lora.alpha is ${alpha.type}, llama.cpp needs float32`);
  }
  const architecture = ggufString(meta, 'general.architecture', '');
  if (architecture !== base.shape.architecture) {
    throw new OpenLedgerError(
      'ADAPTER_BASE_MISMATCH',
      `The adapter is for architecture "${architecture}", base model "${base.name}" is "${base.shape.architecture}".`,
    );
  }
  const pairs = new Map<string, { a?: number[]; b?: number[] }>();
  for (const tensor of header.tensors) {
    const match = LORA_TENSOR.exec(tensor.name);
    if (!match) throw invalid(`tensor "${tensor.name}" is not a lora_a or lora_b tensor`);
    if (tensor.dims.length !== 2) throw invalid(`tensor "${tensor.name}" is not 2-D`);
    const pair = pairs.get(match[1]!) ?? {};
    pair[match[2] as 'a' | 'b'] = tensor.dims;
    pairs.set(match[1]!, pair);
  }
  if (pairs.size === 0) throw invalid('it has no tensors');
  let rank = 0;
  for (const [target, { a, b }] of pairs) {
    if (!a || !b) throw invalid(`"${target}" lacks its lora_${a ? 'b' : 'a'} tensor`);
    const weight = base.shape.tensors.get(target);
    // A: ne = [in, r]; B: ne = [r, out]; the base weight: ne = [in, out].
    if (!weight || weight.length !== 2 || a[0] !== weight[0] || b[1] !== weight[1]) {
      throw new OpenLedgerError(
        'ADAPTER_BASE_MISMATCH',
        weight
          ? `The adapter's "${target}" is [${a[0]}, ${b[1]}]; base model "${base.name}" has [${weight.join(', ')}].`
          : `The adapter changes "${target}", which base model "${base.name}" does not have.`,
        { hint: 'Use the base model the adapter was trained on.' },
      );
    }
    if (a[1] !== b[0]) throw invalid(`"${target}" has ranks ${a[1]} and ${b[0]}`);
    rank = Math.max(rank, a[1]!);
  }
  return { header, rank };
}

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A `lora_path`: a GGUF file, or a folder holding exactly one `.gguf` (vLLM's paths are
 * folders). Operators only: it reads the node's own disk.
 */
export async function resolveAdapterPath(lora: string): Promise<string> {
  const full = path.resolve(lora);
  const info = await stat(full).catch(() => undefined);
  if (!info) {
    throw new OpenLedgerError('ADAPTER_NOT_FOUND', `There is no file or folder "${lora}".`);
  }
  if (info.isFile()) return full;
  const ggufs = (await readdir(full)).filter((n) => n.toLowerCase().endsWith('.gguf'));
  if (ggufs.length !== 1) {
    throw new OpenLedgerError(
      'ADAPTER_INVALID',
      `The folder "${lora}" holds ${ggufs.length} .gguf files; it must hold exactly one.`,
      { hint: 'Pass the adapter file itself.' },
    );
  }
  return path.join(full, ggufs[0]!);
}

/** Names operators may give adapters: not ones that look like the other schemes. */
export function checkAdapterName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/]{0,127}$/.test(name) || /^(model|adapter):/.test(name)) {
    throw new OpenLedgerError('VALIDATION_FAILED', `"${name}" is not a valid adapter name.`, {
      hint: 'Use 1-128 letters, digits, ".", "_", "-" or "/", starting with a letter or digit.',
      details: { field: 'lora_name' },
    });
  }
}
