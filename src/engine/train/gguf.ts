/**
 * LoRA adapters as GGUF files, in the format llama.cpp loads (`--lora`, llama-adapter.cpp):
 *
 *     general.architecture = "llama"    must match the base model's ("qwen2", "gpt2", …)
 *     general.type         = "adapter"
 *     adapter.type         = "lora"
 *     adapter.lora.alpha   = alpha      FLOAT32 (llama.cpp aborts on another type)
 *     blk.N.<target>.weight.lora_a     F32, ne = [in, r]   (A, row-major [r][in])
 *                                      (GPT-2's targets: attn_qkv, attn_output, ffn_up, ffn_down)
 *     blk.N.<target>.weight.lora_b     F32, ne = [r, out]  (B, row-major [out][r])
 *
 * llama.cpp then uses W + (alpha / r) · scale · B·A, with r = ne[1] of lora_a and scale the
 * user's `--lora-scaled` factor (1 by default).
 */
import { OpenLedgerError } from '../../errors.ts';
import {
  GGML_TYPE,
  GgufFile,
  gguf,
  ggufNumber,
  ggufString,
  readGguf,
  writeGguf,
} from '../gguf/index.ts';
import type { GgufTensorInput, GgufValue, GgufWriteResult } from '../gguf/index.ts';
import { ALL_LORA_TARGETS, GPT2_LORA_TARGETS, LORA_TARGETS, LoraAdapter } from './lora.ts';
import type { AnyLoraTarget, LoraModelShape, LoraPair } from './lora.ts';

/** The architectures whose adapters we read, and the targets of each. */
const ADAPTER_TARGETS: Readonly<Record<string, readonly AnyLoraTarget[]>> = {
  llama: LORA_TARGETS,
  qwen2: LORA_TARGETS,
  gpt2: GPT2_LORA_TARGETS,
};

export interface SaveLoraOptions {
  /** alpha written to `adapter.lora.alpha` (default: the adapter's). */
  alpha?: number;
  /** The base model's name, written as `general.base_model.0.name`. */
  baseModelName?: string;
  /** `general.name` of the adapter. */
  name?: string;
  /** `general.architecture` (default 'llama'); llama.cpp refuses an adapter of another. */
  architecture?: string;
}

/** The GGUF contents of an adapter (metadata and F32 tensors), for `writeGguf`/`encodeGguf`. */
export function loraGgufInput(
  adapter: LoraAdapter,
  options: SaveLoraOptions = {},
): { metadata: [string, GgufValue][]; tensors: GgufTensorInput[] } {
  const r = adapter.config.rank;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string(options.architecture ?? 'llama')],
    ['general.type', gguf.string('adapter')],
  ];
  if (options.name !== undefined) metadata.push(['general.name', gguf.string(options.name)]);
  if (options.baseModelName !== undefined) {
    metadata.push(
      ['general.base_model.count', gguf.uint32(1)],
      ['general.base_model.0.name', gguf.string(options.baseModelName)],
    );
  }
  metadata.push(
    ['adapter.type', gguf.string('lora')],
    ['adapter.lora.alpha', gguf.float32(options.alpha ?? adapter.config.alpha)],
  );
  const tensors: GgufTensorInput[] = [];
  for (const p of adapter.parameters()) {
    const pair = adapter.layers[p.layer]![p.target]!;
    tensors.push({
      name: p.name,
      dims: p.kind === 'a' ? [pair.inDim, r] : [r, pair.outDim],
      type: GGML_TYPE.F32,
      data: p.value,
    });
  }
  return { metadata, tensors };
}

/** Writes `adapter` as a llama.cpp GGUF LoRA file (F32), atomically. */
export async function saveLoraGguf(
  file: string,
  adapter: LoraAdapter,
  options: SaveLoraOptions = {},
): Promise<GgufWriteResult> {
  return writeGguf(file, loraGgufInput(adapter, options));
}

export interface LoadLoraOptions {
  /** Check the adapter against this base model and give it all of its layers. */
  modelConfig?: LoraModelShape;
  /** The dropout of the returned config (not stored in GGUF; default 0). */
  dropout?: number;
}

const TENSOR_NAME = /^blk\.(\d+)\.([a-z_]+)\.weight\.lora_([ab])$/;

/**
 * Reads a GGUF LoRA adapter (any tensor type the GGUF reader dequantizes). A missing or zero
 * `adapter.lora.alpha` means alpha = r, as llama.cpp then applies B·A unscaled.
 */
export async function loadLoraGguf(
  input: string | Uint8Array | GgufFile,
  options: LoadLoraOptions = {},
): Promise<LoraAdapter> {
  const file = input instanceof GgufFile ? input : await readGguf(input);
  const fail = (message: string, hint?: string): never => {
    throw new OpenLedgerError('GGUF_INVALID', `${file.source}: ${message}`, {
      ...(hint === undefined ? {} : { hint }),
    });
  };
  const meta = file.metadata;
  const generalType = ggufString(meta, 'general.type', '');
  if (generalType !== 'adapter') {
    fail(
      `general.type is '${generalType}', expected 'adapter'`,
      'is this a base model rather than a LoRA adapter?',
    );
  }
  const adapterType = ggufString(meta, 'adapter.type', '');
  if (adapterType !== 'lora') fail(`adapter.type is '${adapterType}', expected 'lora'`);
  const arch = ggufString(meta, 'general.architecture', '');
  const archTargets = ADAPTER_TARGETS[arch];
  if (archTargets === undefined) {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `${file.source}: the adapter is for architecture '${arch}'; supported: ${Object.keys(ADAPTER_TARGETS).join(', ')}`,
    );
  }

  const found = new Map<string, { a?: Float32Array; b?: Float32Array; dims: number[][] }>();
  let rank = 0;
  let nLayers = 0;
  for (const info of file.tensors) {
    const match = TENSOR_NAME.exec(info.name);
    const target = match?.[2] as AnyLoraTarget | undefined;
    if (match === null || !archTargets.includes(target!)) {
      throw new OpenLedgerError(
        'GGUF_UNSUPPORTED',
        `${file.source}: tensor '${info.name}' is not a LoRA of a ${arch} layer weight`,
        { hint: `supported: blk.N.{${archTargets.join(',')}}.weight.lora_{a,b}` },
      );
    }
    const [, layerText, , kind] = match as unknown as [string, string, string, 'a' | 'b'];
    const layer = Number(layerText);
    nLayers = Math.max(nLayers, layer + 1);
    if (info.dims.length !== 2) fail(`tensor '${info.name}' has ne [${info.dims}], expected 2-D`);
    const r = kind === 'a' ? info.dims[1]! : info.dims[0]!;
    if (rank === 0) rank = r;
    if (r !== rank) {
      throw new OpenLedgerError(
        'GGUF_UNSUPPORTED',
        `${file.source}: tensor '${info.name}' has rank ${r}, others rank ${rank}; mixed ranks are not supported`,
      );
    }
    const key = `${layer}.${target}`;
    const entry = found.get(key) ?? { dims: [] };
    entry[kind] = await file.tensorFloat32(info);
    entry.dims[kind === 'a' ? 0 : 1] = info.dims;
    found.set(key, entry);
  }
  if (found.size === 0) fail('the adapter has no LoRA tensors');
  if (options.modelConfig !== undefined) {
    if (nLayers > options.modelConfig.nLayers) {
      fail(`the adapter has layer ${nLayers - 1}; the model has ${options.modelConfig.nLayers}`);
    }
    nLayers = options.modelConfig.nLayers;
  }

  const layers: Partial<Record<AnyLoraTarget, LoraPair>>[] = Array.from(
    { length: nLayers },
    () => ({}),
  );
  const targets = new Set<AnyLoraTarget>();
  for (const [key, entry] of found) {
    const [layerText, target] = key.split('.') as [string, AnyLoraTarget];
    const name = `blk.${layerText}.${target}.weight`;
    if (entry.a === undefined || entry.b === undefined) {
      fail(`${name} has lora_${entry.a === undefined ? 'b' : 'a'} without its partner`);
    }
    const inDim = entry.dims[0]![0]!;
    const outDim = entry.dims[1]![1]!;
    layers[Number(layerText)]![target] = { inDim, outDim, a: entry.a!, b: entry.b! };
    targets.add(target);
  }
  const storedAlpha = ggufNumber(meta, 'adapter.lora.alpha', 0);
  const adapter = new LoraAdapter(
    {
      rank,
      alpha: storedAlpha > 0 ? storedAlpha : rank,
      dropout: options.dropout ?? 0,
      targets: ALL_LORA_TARGETS.filter((t) => targets.has(t)),
    },
    layers,
  );
  if (options.modelConfig !== undefined) adapter.checkFits(options.modelConfig);
  return adapter;
}
