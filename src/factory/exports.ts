/**
 * Exports of a finished training job's adapter, in three formats:
 *
 * - `gguf`: the adapter as llama.cpp loads it (`--lora`): the job's result blob itself.
 * - `peft`: `adapter_config.json` + `adapter_model.safetensors` for Hugging Face PEFT on the
 *   Hugging Face version of the base model, with PEFT's key names and shapes.
 * - `merged`: the base model GGUF with W + (alpha/r)·B·A in place of each adapted weight, every
 *   other tensor and all metadata (tokenizer included) copied as they are.
 *
 * The q/k rule of the PEFT export: a llama GGUF holds q and k rows in llama.cpp's interleaved
 * RoPE order whatever made it (convert_hf_to_gguf permutes Hugging Face checkpoints into it;
 * llama2.c and Meta checkpoints are in it already), while Hugging Face's LlamaForCausalLM holds
 * them in half-split order (see src/engine/hf/permute.ts). transformers itself un-permutes q/k
 * when it loads a llama GGUF. So for architecture `llama` the export un-permutes the rows of
 * lora_B of q_proj and k_proj (A is unchanged); `ropeLayout: 'gguf'` keeps GGUF order instead,
 * for a consumer that runs the GGUF's rows as they are. Architectures whose llama.cpp RoPE is
 * already half-split (qwen2: NeoX RoPE) are not permuted by convert_hf_to_gguf, nor here.
 *
 * GPT-2: Hugging Face's GPT2LMHeadModel holds its projections as Conv1D, weight [in, out], the
 * transpose of the GGUF's W [out][in] (convert_hf_to_gguf transposes them). PEFT still makes
 * lora_A and lora_B nn.Linear ([r, in] and [out, r]) and adds x·Aᵀ·Bᵀ, the same delta B·A as
 * ours; only the merged delta is transposed onto the Conv1D weight (`fan_in_fan_out: true`). So A
 * and B go out as they are; c_attn's q, k, v column blocks are in the GGUF's order (no RoPE).
 */
import { OpenLedgerError } from '../errors.ts';
import type { GgufFile, Gpt2LoraTarget, LoraAdapter } from '../engine/index.ts';
import {
  GGML_TYPE,
  encodeGguf,
  ggufString,
  llamaHyperparams,
  loadLoraGguf,
  readGguf,
  type GgufTensorInput,
  type AnyLoraTarget,
  type LoraPair,
  type LoraTarget,
} from '../engine/index.ts';
import { ggufToHfRows } from '../engine/hf/permute.ts';
import { encodeSafetensors, type SafetensorsTensorInput } from '../engine/safetensors.ts';
import type { BlobStore } from '../blobs/index.ts';
import type { JobRow } from '../jobs/index.ts';
import type { ModelCatalog } from './models.ts';
import { TRAIN_JOB_KIND, type TrainResult } from './train-job.ts';

export const EXPORT_FORMATS = ['gguf', 'peft', 'merged'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function isExportFormat(value: unknown): value is ExportFormat {
  return (EXPORT_FORMATS as readonly unknown[]).includes(value);
}

/** The PEFT module path of each target inside a LlamaForCausalLM decoder layer. */
export const PEFT_MODULES: Readonly<Record<LoraTarget, string>> = {
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};

/** The PEFT module path of each target inside a GPT2LMHeadModel block (`transformer.h.N`). */
export const PEFT_GPT2_MODULES: Readonly<Record<Gpt2LoraTarget, string>> = {
  attn_qkv: 'attn.c_attn',
  attn_output: 'attn.c_proj',
  ffn_up: 'mlp.c_fc',
  ffn_down: 'mlp.c_proj',
};

/** What the PEFT export needs to know of the base model. */
export interface PeftBaseModel {
  architecture: string;
  nHeads: number;
  nKvHeads: number;
  /** `base_model_name_or_path` of adapter_config.json. */
  nameOrPath: string;
}

export interface PeftExportOptions {
  /**
   * 'hf' (default): q/k lora_B rows in Hugging Face order for a `llama` base; 'gguf': as stored
   * in the GGUF. See the module comment.
   */
  ropeLayout?: 'hf' | 'gguf';
}

export interface ExportFile {
  name: string;
  contentType: string;
  bytes: Uint8Array;
}

/** Whether the PEFT export of an adapter of `architecture` un-permutes q/k (the rule above). */
export function peftPermutesQk(architecture: string, options: PeftExportOptions = {}): boolean {
  return (options.ropeLayout ?? 'hf') === 'hf' && architecture === 'llama';
}

/** `base_model.model.model.layers.{layer}.{module}.lora_{A|B}.weight`, as PEFT saves it. */
export function peftKey(layer: number, target: LoraTarget, kind: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${PEFT_MODULES[target]}.lora_${kind}.weight`;
}

/** `base_model.model.transformer.h.{layer}.{module}.lora_{A|B}.weight`, PEFT's GPT-2 keys. */
export function peftGpt2Key(layer: number, target: Gpt2LoraTarget, kind: 'A' | 'B'): string {
  return `base_model.model.transformer.h.${layer}.${PEFT_GPT2_MODULES[target]}.lora_${kind}.weight`;
}

/**
 * PEFT's `target_modules` for GPT-2 targets. PEFT matches a module whose name ends with
 * `.<entry>`, and `c_proj` names both attn.c_proj and mlp.c_proj: the bare name when both are
 * adapted, else the one adapted with its parent, so PEFT wraps no module the adapter lacks.
 */
function gpt2TargetModules(targets: readonly Gpt2LoraTarget[]): string[] {
  const names = new Set(targets.map((t) => PEFT_GPT2_MODULES[t]));
  if (names.has('attn.c_proj') && names.has('mlp.c_proj')) {
    names.delete('attn.c_proj');
    names.delete('mlp.c_proj');
    names.add('c_proj');
  }
  return [...names].map((n) => (n.endsWith('c_proj') ? n : n.split('.')[1]!)).sort();
}

/**
 * adapter_config.json and adapter_model.safetensors of `adapter`: A as [r, in], B as [out, r],
 * F32, keyed as PEFT keys them; the config with PEFT's LoraConfig fields (sorted, 2-space
 * indented, as PEFT's `save_pretrained` writes them).
 */
export function peftFiles(
  adapter: LoraAdapter,
  base: PeftBaseModel,
  options: PeftExportOptions = {},
): ExportFile[] {
  const r = adapter.config.rank;
  const gpt2 = base.architecture === 'gpt2';
  const modules: Readonly<Partial<Record<AnyLoraTarget, string>>> = gpt2
    ? PEFT_GPT2_MODULES
    : PEFT_MODULES;
  const unmapped = adapter.config.targets.filter((t) => !(t in modules));
  if (unmapped.length > 0)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `The PEFT export of a ${base.architecture} base has no module for ${unmapped.join(', ')}.`,
      { hint: 'export with the base model the adapter was trained on, or as gguf or merged' },
    );
  const keyOf = (layer: number, target: AnyLoraTarget, kind: 'A' | 'B'): string =>
    gpt2
      ? peftGpt2Key(layer, target as Gpt2LoraTarget, kind)
      : peftKey(layer, target as LoraTarget, kind);
  const permute = peftPermutesQk(base.architecture, options);
  const tensors: SafetensorsTensorInput[] = [];
  for (const [layer, pairs] of adapter.layers.entries()) {
    for (const [target, pair] of Object.entries(pairs) as [AnyLoraTarget, LoraPair][]) {
      let b = pair.b;
      if (permute && (target === 'attn_q' || target === 'attn_k'))
        b = ggufToHfRows(b, pair.outDim, r, target === 'attn_q' ? base.nHeads : base.nKvHeads);
      tensors.push(
        { name: keyOf(layer, target, 'A'), dtype: 'F32', shape: [r, pair.inDim], data: pair.a },
        { name: keyOf(layer, target, 'B'), dtype: 'F32', shape: [pair.outDim, r], data: b },
      );
    }
  }
  const config = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: base.nameOrPath,
    bias: 'none',
    // GPT-2's Conv1D weights are [in, out] (see the module comment).
    fan_in_fan_out: gpt2,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: adapter.config.alpha,
    lora_dropout: adapter.config.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r,
    rank_pattern: {},
    revision: null,
    target_modules: gpt2
      ? gpt2TargetModules(adapter.config.targets as Gpt2LoraTarget[])
      : adapter.config.targets.map((t) => PEFT_MODULES[t as LoraTarget].split('.')[1]!).sort(),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
  return [
    {
      name: 'adapter_config.json',
      contentType: 'application/json',
      bytes: Buffer.from(`${JSON.stringify(config, null, 2)}\n`, 'utf8'),
    },
    {
      name: 'adapter_model.safetensors',
      contentType: 'application/octet-stream',
      bytes: encodeSafetensors(tensors, { format: 'pt' }),
    },
  ];
}

/** The PEFT facts of a base GGUF: heads for the permutation, and its Hugging Face name. */
export function peftBaseOf(file: GgufFile, fallbackName: string): PeftBaseModel {
  const hp = llamaHyperparams(file.metadata);
  const meta = file.metadata;
  // Where convert_hf_to_gguf (and our Hugging Face import) record the source repository.
  const nameOrPath =
    ggufString(meta, 'general.source.huggingface.repository', '') ||
    ggufString(meta, 'general.base_model.0.repo_url', '').replace(
      /^https:\/\/huggingface\.co\//,
      '',
    ) ||
    fallbackName;
  return { architecture: hp.arch, nHeads: hp.headCount, nKvHeads: hp.headCountKv, nameOrPath };
}

export interface MergeOptions {
  /** The type of the merged weights (default F32, which keeps them exactly). */
  type?: 'F32' | 'F16';
  /** Multiplies alpha / r (default 1). */
  scale?: number;
}

/**
 * W + scale · B·A for one weight W [out][in] (float32), in the arithmetic of `mergeLora`: each
 * row of B·A summed in float64, added to W in float64, stored as float32.
 */
export function mergePair(
  w: Float32Array,
  pair: LoraPair,
  rank: number,
  scale: number,
): Float32Array {
  const { inDim, outDim, a, b } = pair;
  if (w.length !== inDim * outDim)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `the weight has ${w.length} values; the LoRA pair adapts [${outDim}][${inDim}]`,
    );
  const out = w.slice();
  const row = new Float64Array(inDim);
  for (let o = 0; o < outDim; o++) {
    row.fill(0);
    for (let k = 0; k < rank; k++) {
      const bk = b[o * rank + k]!;
      if (bk === 0) continue;
      const ak = k * inDim;
      for (let i = 0; i < inDim; i++) row[i] = row[i]! + bk * a[ak + i]!;
    }
    const wo = o * inDim;
    for (let i = 0; i < inDim; i++) out[wo + i] = out[wo + i]! + scale * row[i]!;
  }
  return out;
}

/**
 * The merged model as a whole GGUF file in memory: the base's metadata in its order, every
 * tensor in its order; the adapted ones dequantized, merged and written as `type`, the others'
 * bytes copied unchanged.
 */
export async function mergedGguf(
  base: GgufFile,
  adapter: LoraAdapter,
  options: MergeOptions = {},
): Promise<Uint8Array> {
  const type = options.type ?? 'F32';
  const scale = adapter.scale * (options.scale ?? 1);
  const hp = llamaHyperparams(base.metadata);
  if (adapter.layers.length !== hp.blockCount)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `the adapter has ${adapter.layers.length} layers, the base model ${hp.blockCount}`,
      { hint: 'export with the base model the adapter was trained on' },
    );
  const adapted = new Map<string, LoraPair>();
  for (const [layer, pairs] of adapter.layers.entries())
    for (const [target, pair] of Object.entries(pairs) as [LoraTarget, LoraPair][])
      adapted.set(`blk.${layer}.${target}.weight`, pair);
  const tensors: GgufTensorInput[] = [];
  for (const info of base.tensors) {
    const pair = adapted.get(info.name);
    if (pair === undefined) {
      tensors.push({
        name: info.name,
        dims: info.dims,
        type: info.type,
        data: await base.tensorData(info),
      });
      continue;
    }
    if (info.dims.length !== 2 || info.dims[0] !== pair.inDim || info.dims[1] !== pair.outDim)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `${info.name} has ne [${info.dims.join(', ')}]; the adapter's pair is for [${pair.inDim}, ${pair.outDim}]`,
        { hint: 'export with the base model the adapter was trained on' },
      );
    adapted.delete(info.name);
    const merged = mergePair(await base.tensorFloat32(info), pair, adapter.config.rank, scale);
    tensors.push({ name: info.name, dims: info.dims, type: GGML_TYPE[type], data: merged });
  }
  if (adapted.size > 0)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `the base model has no tensor ${[...adapted.keys()][0]} that the adapter adapts`,
    );
  return encodeGguf({ metadata: base.metadata, tensors });
}

// ---------------------------------------------------------------------------------------------
// Exports of a job, for the API and the CLI.

export interface ExportDeps {
  blobs: BlobStore;
  models: ModelCatalog;
}

export interface JobExportOptions extends PeftExportOptions {
  /** For `merged`: the type of the merged weights (default F16, half the size of F32). */
  mergedType?: 'F32' | 'F16';
}

/** The adapter blob and the base model of a succeeded training job; NOT_FOUND/CONFLICT else. */
function trainedOf(job: JobRow): { result: TrainResult; baseModel: string } {
  if (job.kind !== TRAIN_JOB_KIND)
    throw new OpenLedgerError('NOT_FOUND', `Job ${job.id} is not a training job.`);
  if (job.status !== 'succeeded' || job.result === null)
    throw new OpenLedgerError(
      'CONFLICT',
      `Job ${job.id} is ${job.status}; only a succeeded training job has an adapter to export.`,
      { details: { status: job.status } },
    );
  return {
    result: job.result as TrainResult,
    baseModel: String((job.params as { baseModel?: unknown }).baseModel ?? ''),
  };
}

/** A file-system-safe stem for the export's file names. */
function stemOf(job: JobRow, baseModel: string): string {
  return `${baseModel.replace(/[^A-Za-z0-9._-]+/g, '_')}-lora-${job.id.slice(0, 8)}`;
}

/** The base model GGUF the job trained on, still in the node's catalogue. */
async function baseOf(
  deps: ExportDeps,
  baseModel: string,
): Promise<{ file: GgufFile; name: string }> {
  const model = await deps.models.resolve(baseModel).catch((cause: unknown) => {
    throw new OpenLedgerError(
      'NOT_FOUND',
      `The base model "${baseModel}" of this job is no longer on this node.`,
      { hint: 'Put its GGUF file back in a model folder to export PEFT or merged files.', cause },
    );
  });
  return { file: await readGguf(model.path), name: model.name };
}

/**
 * The files of one export of a succeeded training job: one file for `gguf` and `merged`, two for
 * `peft` (a folder's contents).
 */
export async function exportJob(
  deps: ExportDeps,
  job: JobRow,
  format: ExportFormat,
  options: JobExportOptions = {},
): Promise<ExportFile[]> {
  const { result, baseModel } = trainedOf(job);
  const stem = stemOf(job, baseModel);
  const adapterBytes = await deps.blobs.get(result.adapterBlobId);
  if (format === 'gguf')
    return [{ name: `${stem}.gguf`, contentType: 'application/octet-stream', bytes: adapterBytes }];
  const base = await baseOf(deps, baseModel);
  const adapter = await loadLoraGguf(adapterBytes);
  if (format === 'peft') return peftFiles(adapter, peftBaseOf(base.file, base.name), options);
  const type = options.mergedType ?? 'F16';
  return [
    {
      name: `${stem}-merged-${type.toLowerCase()}.gguf`,
      contentType: 'application/octet-stream',
      bytes: await mergedGguf(base.file, adapter, { type }),
    },
  ];
}
