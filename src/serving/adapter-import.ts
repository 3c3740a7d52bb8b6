/**
 * Hugging Face PEFT LoRA adapters as llama.cpp LoRA GGUF files: the inverse of the `peft` export
 * (src/factory/exports.ts), and what llama.cpp's convert_lora_to_gguf.py does, for the bases the
 * serving engine runs (llama, including Mistral converted as llama; qwen2; gpt2).
 *
 * A PEFT folder is `adapter_config.json` + `adapter_model.safetensors`, keyed
 * `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` (GPT-2:
 * `base_model.model.transformer.h.N.attn.c_attn.lora_A.weight`), lora_A [r, in] and lora_B
 * [out, r] row-major: exactly llama.cpp's `blk.N.attn_q.weight.lora_a` ne = [in, r] and
 * `.lora_b` ne = [r, out], so the values go over unchanged but for two things:
 *
 * - q/k rows. For a `llama` base, Hugging Face's q_proj/k_proj rows are in rotate-half order and
 *   the GGUF's in llama.cpp's interleaved order (src/engine/hf/permute.ts), so lora_B of q_proj
 *   and k_proj is permuted by the heads (kv heads for k) of the base GGUF, as convert_hf_to_gguf
 *   permutes W. qwen2 (NeoX RoPE) and gpt2 (no RoPE) keep their rows.
 * - the scale. PEFT scales each module by lora_alpha / r (lora_alpha / √r with `use_rslora`),
 *   per module with `alpha_pattern` / `rank_pattern`; llama.cpp by one `adapter.lora.alpha`
 *   divided by each tensor's own rank. The GGUF's alpha is chosen so that the common case is
 *   exact with B untouched, and B of a module whose scale would differ is multiplied by the
 *   ratio.
 *
 * `fan_in_fan_out` changes nothing here: it only says how PEFT merges B·A into a Conv1D weight
 * (GPT-2's, stored [in, out]); lora_A and lora_B are nn.Linear weights either way.
 *
 * What llama.cpp cannot run is refused with ADAPTER_INVALID: DoRA (`use_dora`, magnitude
 * vectors), `modules_to_save` (whole replaced modules), LoRA of the embeddings or lm_head, LoRA
 * biases, and pickled `adapter_model.bin` files (reading a pickle runs code).
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  GGML_TYPE,
  encodeGguf,
  gguf,
  ggufNumber,
  ggufString,
  type GgufFile,
  type GgufTensorInput,
  type GgufValue,
} from '../engine/gguf/index.ts';
import { hfToGgufRows } from '../engine/hf/permute.ts';
import { readSafetensors, type SafetensorsFile } from '../engine/safetensors.ts';
import {
  ALL_LORA_TARGETS,
  type AnyLoraTarget,
  type Gpt2LoraTarget,
  type LoraTarget,
} from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { PEFT_GPT2_MODULES, PEFT_MODULES, peftPermutesQk } from '../factory/exports.ts';

export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
const PEFT_PICKLE_FILE = 'adapter_model.bin';

/** The base the adapter is imported for: its catalogue name and its GGUF header. */
export interface ImportBase {
  name: string;
  file: GgufFile;
}

export interface PeftImportOptions {
  /**
   * 'hf' (default): the folder's q/k lora_B rows are in Hugging Face order (what PEFT trains on
   * a transformers model); 'gguf': already in the GGUF's order (our export's `--rope-layout gguf`).
   */
  ropeLayout?: 'hf' | 'gguf';
}

export interface PeftImport {
  /** The llama.cpp LoRA GGUF file. */
  bytes: Uint8Array;
  /** PEFT's `base_model_name_or_path`, when the config names one. */
  baseModelNameOrPath: string | undefined;
  rank: number;
  alpha: number;
  /** GGUF names of the adapted weights, e.g. `blk.0.attn_q.weight`. */
  targets: string[];
}

/** The fields of adapter_config.json the import reads (PEFT's LoraConfig). */
interface PeftConfig {
  peft_type?: unknown;
  r?: unknown;
  lora_alpha?: unknown;
  use_rslora?: unknown;
  use_dora?: unknown;
  modules_to_save?: unknown;
  target_modules?: unknown;
  rank_pattern?: unknown;
  alpha_pattern?: unknown;
  base_model_name_or_path?: unknown;
  lora_bias?: unknown;
}

function invalid(message: string, hint?: string): OpenLedgerError {
  return new OpenLedgerError('ADAPTER_INVALID', `The PEFT adapter is not importable: ${message}.`, {
    ...(hint === undefined ? {} : { hint }),
  });
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}

/** Whether `dir` looks like a PEFT adapter folder (it has adapter_config.json). */
export async function isPeftFolder(dir: string): Promise<boolean> {
  return isFile(path.join(dir, PEFT_CONFIG_FILE));
}

/** The module path of each GGUF target in a llama-family / GPT-2 layer, and back. */
const LLAMA_TARGET_OF = new Map(
  Object.entries(PEFT_MODULES).map(([target, module]) => [module, target as LoraTarget]),
);
const GPT2_TARGET_OF = new Map(
  Object.entries(PEFT_GPT2_MODULES).map(([target, module]) => [module, target as Gpt2LoraTarget]),
);
const LLAMA_KEY =
  /^base_model\.model\.(model\.layers\.(\d+)\.([a-z_]+\.[a-z_]+))\.lora_([AB])\.weight$/;
const GPT2_KEY =
  /^base_model\.model\.(transformer\.h\.(\d+)\.([a-z_]+\.[a-z_]+))\.lora_([AB])\.weight$/;
/** Modules LoRA may adapt in PEFT but llama.cpp's LoRA cannot (token embeddings, output head). */
const UNSUPPORTED_MODULES = /(^|\.)(embed_tokens|lm_head|wte|wpe)$/;

/** Numbers of a PEFT `rank_pattern` / `alpha_pattern` ({ regex-suffix: number }). */
function patternOf(value: unknown, field: string): [RegExp, number][] {
  if (value === undefined || value === null) return [];
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(`${field} is not an object`);
  return Object.entries(value as Record<string, unknown>).map(([key, n]) => {
    if (typeof n !== 'number' || !Number.isFinite(n))
      throw invalid(`${field}["${key}"] is not a number`);
    try {
      // PEFT matches a pattern key against the end of the module's dotted name.
      return [new RegExp(`(^|\\.)(?:${key})$`), n];
    } catch {
      throw invalid(`${field} key "${key}" is not a regular expression`);
    }
  });
}

async function readConfig(dir: string): Promise<PeftConfig> {
  const file = path.join(dir, PEFT_CONFIG_FILE);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined)
    throw invalid(
      `the folder has no ${PEFT_CONFIG_FILE}`,
      'A PEFT adapter folder holds adapter_config.json and adapter_model.safetensors (save_pretrained writes both).',
    );
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw invalid(`${PEFT_CONFIG_FILE} is not JSON (${(error as Error).message})`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw invalid(`${PEFT_CONFIG_FILE} is not a JSON object`);
  return config as PeftConfig;
}

/** adapter_config.json's `base_model_name_or_path`; undefined when absent or unreadable. */
export async function peftBaseModelName(dir: string): Promise<string | undefined> {
  const config = await readConfig(dir).catch(() => undefined);
  const name = config?.base_model_name_or_path;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** The checks of adapter_config.json that do not need the weights. */
function checkConfig(config: PeftConfig): { r: number; alpha: number; rslora: boolean } {
  if (config.peft_type !== undefined && config.peft_type !== 'LORA')
    throw invalid(`peft_type is ${JSON.stringify(config.peft_type)}; only LORA adapters import`);
  if (config.use_dora === true)
    throw invalid(
      'it is a DoRA adapter (use_dora: true)',
      'llama.cpp applies plain LoRA only; merge the DoRA adapter into the base model instead.',
    );
  const saved = config.modules_to_save;
  if (saved !== undefined && saved !== null && !(Array.isArray(saved) && saved.length === 0))
    throw invalid(
      `it replaces whole modules (modules_to_save: ${JSON.stringify(saved)})`,
      'llama.cpp LoRA adapters only add low-rank deltas; merge the adapter into the base model instead.',
    );
  if (config.lora_bias === true) throw invalid('it trains LoRA biases (lora_bias: true)');
  const targets = Array.isArray(config.target_modules) ? config.target_modules : [];
  const unsupported = targets.filter(
    (t): t is string => typeof t === 'string' && UNSUPPORTED_MODULES.test(t),
  );
  if (unsupported.length > 0)
    throw invalid(
      `it adapts ${unsupported.join(', ')}; llama.cpp LoRA adapts the layers' linear weights only`,
    );
  const r = config.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1)
    throw invalid(`r is ${JSON.stringify(r)}, not a positive integer`);
  const alpha = config.lora_alpha ?? 8; // PEFT's LoraConfig default
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha === 0)
    throw invalid(`lora_alpha is ${JSON.stringify(alpha)}, not a non-zero number`);
  return { r, alpha, rslora: config.use_rslora === true };
}

async function openWeights(dir: string): Promise<SafetensorsFile> {
  const file = path.join(dir, PEFT_WEIGHTS_FILE);
  if (!(await isFile(file))) {
    if (await isFile(path.join(dir, PEFT_PICKLE_FILE)))
      throw invalid(
        `it holds its weights as ${PEFT_PICKLE_FILE} (a Python pickle), which is never read here`,
        'Save it as safetensors: PeftModel.from_pretrained(...).save_pretrained(dir, safe_serialization=True).',
      );
    throw invalid(`the folder has no ${PEFT_WEIGHTS_FILE}`);
  }
  try {
    return await readSafetensors(file);
  } catch (error) {
    throw new OpenLedgerError(
      'ADAPTER_INVALID',
      `The PEFT adapter's ${PEFT_WEIGHTS_FILE} is not readable: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** One adapted weight: where it goes, and its two tensors' names in the safetensors file. */
interface Module {
  layer: number;
  target: AnyLoraTarget;
  /** The dotted module name PEFT's patterns match, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  a?: string;
  b?: string;
}

/**
 * The llama.cpp LoRA GGUF of the PEFT adapter in `dir`, for `base`: checked against the base's
 * architecture and tensor shapes (ADAPTER_BASE_MISMATCH), its refusals ADAPTER_INVALID.
 */
export async function importPeftAdapter(
  dir: string,
  base: ImportBase,
  options: PeftImportOptions = {},
): Promise<PeftImport> {
  const config = await readConfig(dir);
  const { r, alpha, rslora } = checkConfig(config);
  const rankPattern = patternOf(config.rank_pattern, 'rank_pattern');
  const alphaPattern = patternOf(config.alpha_pattern, 'alpha_pattern');
  const weights = await openWeights(dir);

  const meta = base.file.metadata;
  const architecture = ggufString(meta, 'general.architecture', 'unknown');
  const gpt2 = architecture === 'gpt2';
  if (!gpt2 && architecture !== 'llama' && architecture !== 'qwen2')
    throw new OpenLedgerError(
      'MODEL_UNSUPPORTED',
      `PEFT adapters import for llama, qwen2 and gpt2 bases; base model "${base.name}" is ${architecture}.`,
      { hint: 'Convert the adapter with llama.cpp convert_lora_to_gguf.py and load the GGUF.' },
    );
  const keyPattern = gpt2 ? GPT2_KEY : LLAMA_KEY;
  const targetOf: ReadonlyMap<string, AnyLoraTarget> = gpt2 ? GPT2_TARGET_OF : LLAMA_TARGET_OF;

  const modules = new Map<string, Module>();
  for (const info of weights.tensors) {
    const match = keyPattern.exec(info.name);
    const target = match ? targetOf.get(match[3]!) : undefined;
    if (!match || target === undefined) {
      if (/lora_magnitude_vector/.test(info.name)) throw invalid('it is a DoRA adapter');
      if (/lora_embedding_[AB]|(embed_tokens|lm_head|wte|wpe)\./.test(info.name))
        throw invalid(`"${info.name}" adapts the embeddings or the output head`);
      if (/\.(original_module|modules_to_save)\./.test(info.name))
        throw invalid(`"${info.name}" is a whole replaced module (modules_to_save)`);
      const other = gpt2 ? LLAMA_KEY : GPT2_KEY;
      if (other.test(info.name))
        throw new OpenLedgerError(
          'ADAPTER_BASE_MISMATCH',
          `The PEFT adapter's "${info.name}" is for a ${gpt2 ? 'llama-family' : 'GPT-2'} model; base model "${base.name}" is ${architecture}.`,
          { hint: 'Use the base model the adapter was trained on.' },
        );
      throw invalid(
        `"${info.name}" is not a LoRA of a layer's linear weight`,
        gpt2
          ? `Expected base_model.model.transformer.h.N.{${[...GPT2_TARGET_OF.keys()].join(',')}}.lora_{A,B}.weight.`
          : `Expected base_model.model.model.layers.N.{${[...LLAMA_TARGET_OF.keys()].join(',')}}.lora_{A,B}.weight.`,
      );
    }
    if (info.shape.length !== 2) throw invalid(`"${info.name}" is not 2-D`);
    const key = `${match[2]}.${target}`;
    const entry = modules.get(key) ?? { layer: Number(match[2]), target, module: match[1]! };
    entry[match[4] === 'A' ? 'a' : 'b'] = info.name;
    modules.set(key, entry);
  }
  if (modules.size === 0) throw invalid(`${PEFT_WEIGHTS_FILE} has no LoRA tensors`);

  const permute = peftPermutesQk(architecture, options);
  const heads = ggufNumber(meta, `${architecture}.attention.head_count`, 0);
  const kvHeads = ggufNumber(meta, `${architecture}.attention.head_count_kv`, heads);
  // llama.cpp scales each pair by alpha / (its rank); this alpha makes that PEFT's scale for a
  // module of rank r without a pattern: alpha / r, or alpha / √r with rsLoRA.
  const ggufAlpha = Math.fround(rslora ? alpha * Math.sqrt(r) : alpha);

  const ordered = [...modules.values()].sort(
    (x, y) =>
      x.layer - y.layer || ALL_LORA_TARGETS.indexOf(x.target) - ALL_LORA_TARGETS.indexOf(y.target),
  );
  const tensors: GgufTensorInput[] = [];
  for (const m of ordered) {
    const name = `blk.${m.layer}.${m.target}.weight`;
    if (m.a === undefined || m.b === undefined)
      throw invalid(
        `${m.module} has lora_${m.a === undefined ? 'B' : 'A'} without lora_${m.a === undefined ? 'A' : 'B'}`,
      );
    const a = weights.tensor(m.a);
    const b = weights.tensor(m.b);
    const [rank, inDim] = a.shape as [number, number];
    const [outDim, rankB] = b.shape as [number, number];
    if (rankB !== rank) throw invalid(`${m.module} has lora_A of rank ${rank}, lora_B of ${rankB}`);
    const expectedRank = rankPattern.find(([re]) => re.test(m.module))?.[1] ?? r;
    if (rank !== expectedRank)
      throw invalid(`${m.module} has rank ${rank}; adapter_config.json says ${expectedRank}`);
    const weight = base.file.findTensor(name);
    if (
      !weight ||
      weight.dims.length !== 2 ||
      weight.dims[0] !== inDim ||
      weight.dims[1] !== outDim
    )
      throw new OpenLedgerError(
        'ADAPTER_BASE_MISMATCH',
        weight
          ? `The PEFT adapter's ${m.module} is [${outDim}, ${inDim}] (out, in); base model "${base.name}" has ${name} of [${weight.dims[1]}, ${weight.dims[0]}].`
          : `The PEFT adapter adapts ${m.module}; base model "${base.name}" has no ${name}.`,
        { hint: 'Use the base model the adapter was trained on.' },
      );
    let bValues = await weights.tensorFloat32(b).catch((error: unknown) => {
      throw invalid(`${m.b}: ${(error as Error).message}`);
    });
    const aValues = await weights.tensorFloat32(a).catch((error: unknown) => {
      throw invalid(`${m.a}: ${(error as Error).message}`);
    });
    const moduleAlpha = alphaPattern.find(([re]) => re.test(m.module))?.[1] ?? alpha;
    const want = rslora ? moduleAlpha / Math.sqrt(rank) : moduleAlpha / rank;
    const factor = (want * rank) / ggufAlpha;
    if (Math.abs(factor - 1) > 1e-6) bValues = bValues.map((v) => v * factor);
    if (permute && (m.target === 'attn_q' || m.target === 'attn_k'))
      bValues = hfToGgufRows(bValues, outDim, rank, m.target === 'attn_q' ? heads : kvHeads);
    tensors.push(
      { name: `${name}.lora_a`, dims: [inDim, rank], type: GGML_TYPE.F32, data: aValues },
      { name: `${name}.lora_b`, dims: [rank, outDim], type: GGML_TYPE.F32, data: bValues },
    );
  }

  const nameOrPath =
    typeof config.base_model_name_or_path === 'string' && config.base_model_name_or_path
      ? config.base_model_name_or_path
      : undefined;
  // The same keys and order as saveLoraGguf writes; general.base_model.0.name is the base it
  // was imported for, which the engine reads to pick that base when none is named.
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string(architecture)],
    ['general.type', gguf.string('adapter')],
    ['general.base_model.count', gguf.uint32(1)],
    ['general.base_model.0.name', gguf.string(base.name)],
    ['adapter.type', gguf.string('lora')],
    ['adapter.lora.alpha', gguf.float32(ggufAlpha)],
  ];
  return {
    bytes: encodeGguf({ metadata, tensors }),
    baseModelNameOrPath: nameOrPath,
    rank: r,
    alpha: ggufAlpha,
    targets: ordered.map((m) => `blk.${m.layer}.${m.target}.weight`),
  };
}
