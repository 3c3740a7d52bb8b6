/**
 * Reading a model's weights out of a GGUF file: each tensor checked against the shape the
 * architecture expects and dequantized to float32, and every tensor of the file accounted for,
 * so that a file with weights this engine would ignore (a bias, RoPE frequency factors, a fused
 * projection) is refused instead of run wrongly.
 */
import { OpenLedgerError } from '../../errors.ts';
import { ggmlTypeName } from '../gguf/index.ts';
import type { GgufFile, GgufTensorInfo } from '../gguf/index.ts';

export class GgufTensorLoader {
  private readonly used = new Set<string>();

  constructor(readonly file: GgufFile) {}

  /** The tensor `name` of ne = dims, as float32; GGUF_INVALID when absent or of another shape. */
  async load(name: string, dims: number[]): Promise<Float32Array> {
    const info = this.file.tensor(name);
    checkDims(info, dims, this.file.source);
    this.used.add(name);
    return this.file.tensorFloat32(info);
  }

  /** As `load`, or undefined when the file has no such tensor. */
  async optional(name: string, dims: number[]): Promise<Float32Array | undefined> {
    return this.file.findTensor(name) === undefined ? undefined : this.load(name, dims);
  }

  /** GGUF_UNSUPPORTED when the file has tensors that were not loaded. */
  checkAllUsed(arch: string): void {
    const unused = this.file.tensors.map((t) => t.name).filter((name) => !this.used.has(name));
    if (unused.length > 0) {
      const shown = unused.slice(0, 5).join(', ') + (unused.length > 5 ? ', …' : '');
      throw new OpenLedgerError(
        'GGUF_UNSUPPORTED',
        `${this.file.source}: ${unused.length} tensor(s) that this engine's ${arch} forward pass does not use: ${shown}`,
        {
          details: { arch, unused },
          hint: 'the model has parts (biases, RoPE factors, fused projections, experts) that are not supported',
        },
      );
    }
  }
}

export function checkDims(info: GgufTensorInfo, dims: number[], source: string): void {
  const same = info.dims.length === dims.length && info.dims.every((ne, i) => ne === dims[i]);
  if (!same) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `${source}: tensor '${info.name}' (${ggmlTypeName(info.type)}) has ne [${info.dims.join(', ')}], expected [${dims.join(', ')}]`,
      { details: { tensor: info.name, found: info.dims, expected: dims } },
    );
  }
}
