/**
 * Hugging Face model folders (config.json, *.safetensors, tokenizer.json) to GGUF, the way
 * llama.cpp's convert_hf_to_gguf.py converts a LlamaForCausalLM (and MistralForCausalLM, the same
 * architecture there):
 *
 *     model.embed_tokens.weight                   token_embd.weight
 *     model.layers.N.input_layernorm.weight       blk.N.attn_norm.weight
 *     model.layers.N.self_attn.q_proj.weight      blk.N.attn_q.weight     rows permuted (permute.ts)
 *     model.layers.N.self_attn.k_proj.weight      blk.N.attn_k.weight     rows permuted, kv heads
 *     model.layers.N.self_attn.v_proj.weight      blk.N.attn_v.weight
 *     model.layers.N.self_attn.o_proj.weight      blk.N.attn_output.weight
 *     model.layers.N.post_attention_layernorm…    blk.N.ffn_norm.weight
 *     model.layers.N.mlp.{gate,up,down}_proj…     blk.N.ffn_{gate,up,down}.weight
 *     model.norm.weight                           output_norm.weight
 *     lm_head.weight                              output.weight           (absent when tied)
 *
 * and a Qwen2ForCausalLM (arch `qwen2`) the same way, with three more tensors a layer and no row
 * permutation, since llama.cpp's qwen2 applies NeoX RoPE (halves), as Hugging Face does:
 *
 *     model.layers.N.self_attn.{q,k,v}_proj.bias  blk.N.attn_{q,k,v}.bias
 *
 * Its byte-level BPE tokenizer becomes `tokenizer.ggml.model` "gpt2", pre "qwen2"; the `qwen2.*`
 * keys are those the script's Qwen2Model writes (no vocab_size nor rope.dimension_count).
 *
 * Tensors are taken shard by shard (sorted file names), each in its header order, as the script
 * does; 1-D tensors become F32, others keep their dtype (F32, F16, BF16) unless `outType` asks
 * for one. The script's default is F16; keeping the dtype here loses nothing. Metadata keys and
 * their order follow the script (general.*, llama.* or qwen2.*, tokenizer.*,
 * general.quantization_version).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { OpenLedgerError } from '../../errors.ts';
import { GGML_TYPE, gguf, writeGguf, type GgufTensorInput, type GgufValue } from '../gguf/index.ts';
import { readSafetensors, type SafetensorsFile } from '../safetensors.ts';
import { hfToGgufRows } from './permute.ts';
import {
  ggufBpeVocabFromTokenizerJson,
  ggufVocabFromTokenizerJson,
  type TokenizerConfig,
} from './tokenizer.ts';

export const HF_LLAMA_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM'] as const;
/** Every architecture `convertHfFolder` converts. */
export const HF_ARCHITECTURES = [...HF_LLAMA_ARCHITECTURES, 'Qwen2ForCausalLM'] as const;

export interface HfLlamaConfig {
  architectures?: string[];
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  max_position_embeddings?: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  rope_scaling?: { type?: string; rope_type?: string; factor?: number } | null;
  vocab_size: number;
  head_dim?: number;
  tie_word_embeddings?: boolean;
  bos_token_id?: number;
  eos_token_id?: number;
  pad_token_id?: number;
}

export interface ConvertHfOptions {
  /** `general.name` (default: the folder's name). */
  name?: string;
  /** The Hugging Face repository, recorded as `general.source.huggingface.repository`. */
  repository?: string;
  /** The type of 2-D weights: 'auto' keeps each tensor's dtype (default). */
  outType?: 'auto' | 'F32' | 'F16';
}

export interface ConvertHfResult {
  path: string;
  tensors: number;
  bytes: number;
}

const GGUF_NAME: Record<string, string> = {
  input_layernorm: 'attn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  post_attention_layernorm: 'ffn_norm',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};

function unsupported(message: string, hint?: string): OpenLedgerError {
  return new OpenLedgerError('MODEL_UNSUPPORTED', message, hint ? { hint } : {});
}

async function readJson<T>(file: string, required: boolean): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OpenLedgerError(
      'FILE_INVALID',
      `${file}: cannot be read (${(error as Error).message})`,
    );
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new OpenLedgerError('FILE_INVALID', `${file}: not JSON (${(error as Error).message})`);
  }
}

/** Whether `dir` looks like a Hugging Face model folder (has config.json). */
export async function isHfFolder(dir: string): Promise<boolean> {
  const info = await stat(path.join(dir, 'config.json')).catch(() => undefined);
  return info?.isFile() ?? false;
}

/** The safetensors shards of a folder: the index's files, else model*.safetensors, sorted. */
export async function hfShards(dir: string): Promise<string[]> {
  const index = await readJson<{ weight_map?: Record<string, string> }>(
    path.join(dir, 'model.safetensors.index.json'),
    false,
  );
  if (index !== undefined) {
    if (typeof index.weight_map !== 'object' || index.weight_map === null)
      throw new OpenLedgerError(
        'FILE_INVALID',
        `${dir}/model.safetensors.index.json has no weight_map`,
      );
    return [...new Set(Object.values(index.weight_map))].sort();
  }
  const names = (await readdir(dir)).filter(
    (n) => n.startsWith('model') && n.endsWith('.safetensors'),
  );
  if (names.length === 0)
    throw unsupported(
      `${dir} has no model*.safetensors`,
      'PyTorch .bin checkpoints are not read; convert them to safetensors first',
    );
  return names.sort();
}

/**
 * Converts a Hugging Face LlamaForCausalLM (or Qwen2ForCausalLM) folder to a GGUF file at `out`
 * (atomically). Throws MODEL_UNSUPPORTED for another architecture or an unsupported feature,
 * FILE_INVALID for broken files.
 */
export async function convertHfFolder(
  dir: string,
  out: string,
  options: ConvertHfOptions = {},
): Promise<ConvertHfResult> {
  const config = (await readJson<HfLlamaConfig>(path.join(dir, 'config.json'), true))!;
  const arch = config.architectures?.[0] ?? '';
  if (!(HF_ARCHITECTURES as readonly string[]).includes(arch))
    throw unsupported(
      `${dir}: architecture '${arch || 'none'}' cannot be converted`,
      `supported: ${HF_ARCHITECTURES.join(', ')}`,
    );
  const ggufArch = arch === 'Qwen2ForCausalLM' ? 'qwen2' : 'llama';
  const scaling = config.rope_scaling;
  const scalingType = scaling?.rope_type ?? scaling?.type;
  if (scaling && (scalingType !== 'linear' || ggufArch !== 'llama'))
    throw unsupported(`${dir}: rope_scaling of type '${String(scalingType)}' is not supported`);
  const nHead = config.num_attention_heads;
  const nKv = config.num_key_value_heads ?? nHead;
  const headDim = config.head_dim ?? config.hidden_size / nHead;

  const tokenizerJson = await readJson<unknown>(path.join(dir, 'tokenizer.json'), false);
  if (tokenizerJson === undefined)
    throw unsupported(
      `${dir} has no tokenizer.json`,
      'a SentencePiece tokenizer.model alone is not read; save the tokenizer with transformers to get tokenizer.json',
    );
  const tokenizerConfig =
    (await readJson<TokenizerConfig>(path.join(dir, 'tokenizer_config.json'), false)) ?? {};

  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string(ggufArch)],
    ['general.type', gguf.string('model')],
    ['general.name', gguf.string(options.name ?? path.basename(path.resolve(dir)))],
  ];
  if (options.repository)
    metadata.push(['general.source.huggingface.repository', gguf.string(options.repository)]);
  metadata.push([`${ggufArch}.block_count`, gguf.uint32(config.num_hidden_layers)]);
  if (config.max_position_embeddings !== undefined)
    metadata.push([`${ggufArch}.context_length`, gguf.uint32(config.max_position_embeddings)]);
  metadata.push(
    [`${ggufArch}.embedding_length`, gguf.uint32(config.hidden_size)],
    [`${ggufArch}.feed_forward_length`, gguf.uint32(config.intermediate_size)],
    [`${ggufArch}.attention.head_count`, gguf.uint32(nHead)],
  );
  if (config.num_key_value_heads !== undefined)
    metadata.push([`${ggufArch}.attention.head_count_kv`, gguf.uint32(nKv)]);
  if (config.rope_theta !== undefined)
    metadata.push([`${ggufArch}.rope.freq_base`, gguf.float32(config.rope_theta)]);
  if (config.rms_norm_eps !== undefined)
    metadata.push([
      `${ggufArch}.attention.layer_norm_rms_epsilon`,
      gguf.float32(config.rms_norm_eps),
    ]);
  if (config.head_dim !== undefined)
    metadata.push(
      [`${ggufArch}.attention.key_length`, gguf.uint32(headDim)],
      [`${ggufArch}.attention.value_length`, gguf.uint32(headDim)],
    );

  const shards = await hfShards(dir);
  const files: SafetensorsFile[] = [];
  for (const shard of shards) files.push(await readSafetensors(path.join(dir, shard)));
  const tensors: GgufTensorInput[] = [];
  let anyF16 = false;
  let anyBf16 = false;
  for (const file of files) {
    for (const info of file.tensors) {
      if (info.name.endsWith('.rotary_emb.inv_freq')) continue;
      const name = ggufName(info.name, dir, ggufArch);
      const shape = info.shape;
      const dims = [...shape].reverse();
      let type: number;
      if (shape.length <= 1 || name.endsWith('_norm.weight')) type = GGML_TYPE.F32;
      else if (options.outType === 'F32') type = GGML_TYPE.F32;
      else if (options.outType === 'F16') type = GGML_TYPE.F16;
      else if (info.dtype === 'F32' || info.dtype === 'F16' || info.dtype === 'BF16')
        type = GGML_TYPE[info.dtype];
      else
        throw unsupported(`${info.name} is ${info.dtype}; only F32, F16 and BF16 weights convert`);
      if (type === GGML_TYPE.F16) anyF16 = true;
      if (type === GGML_TYPE.BF16) anyBf16 = true;
      const permuteHeads =
        ggufArch !== 'llama'
          ? 0
          : name.endsWith('.attn_q.weight')
            ? nHead
            : name.endsWith('.attn_k.weight')
              ? nKv
              : 0;
      const sameBytes =
        permuteHeads === 0 &&
        ((type === GGML_TYPE.F32 && info.dtype === 'F32') ||
          (type === GGML_TYPE.F16 && info.dtype === 'F16') ||
          (type === GGML_TYPE.BF16 && info.dtype === 'BF16'));
      let data: Uint8Array | Float32Array;
      if (sameBytes) data = await file.tensorData(info);
      else {
        data = await file.tensorFloat32(info);
        if (permuteHeads > 0) data = hfToGgufRows(data, shape[0]!, shape[1]!, permuteHeads);
      }
      tensors.push({ name, dims, type: type as GgufTensorInput['type'], data });
    }
  }
  // general.file_type: llama.cpp's LLAMA_FTYPE of the bulk of the weights.
  metadata.push(['general.file_type', gguf.uint32(anyBf16 ? 32 : anyF16 ? 1 : 0)]);
  if (ggufArch === 'llama')
    metadata.push(
      ['llama.vocab_size', gguf.uint32(config.vocab_size)],
      ['llama.rope.dimension_count', gguf.uint32(headDim)],
    );
  if (scaling && scaling.factor !== undefined)
    metadata.push(
      ['llama.rope.scaling.type', gguf.string('linear')],
      ['llama.rope.scaling.factor', gguf.float32(scaling.factor)],
    );
  metadata.push(
    ...(ggufArch === 'qwen2'
      ? ggufBpeVocabFromTokenizerJson(
          tokenizerJson,
          tokenizerConfig,
          config,
          config.vocab_size,
          'qwen2',
        )
      : ggufVocabFromTokenizerJson(tokenizerJson, tokenizerConfig, config, config.vocab_size)),
  );
  metadata.push(['general.quantization_version', gguf.uint32(2)]);
  const written = await writeGguf(out, { metadata, tensors });
  return { path: out, tensors: tensors.length, bytes: written.size };
}

function ggufName(hfName: string, dir: string, arch: 'llama' | 'qwen2'): string {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  const match = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  const mapped = match ? GGUF_NAME[match[2]!] : undefined;
  const biasOk = arch === 'qwen2' && /^attn_[qkv]$/.test(mapped ?? '');
  if (match === null || mapped === undefined || (match[3] === 'bias' && !biasOk))
    throw unsupported(
      `${dir}: tensor '${hfName}' has no GGUF name`,
      'biases and extra modules of other llama variants are not supported',
    );
  return `blk.${match[1]}.${mapped}.${match[3]}`;
}
