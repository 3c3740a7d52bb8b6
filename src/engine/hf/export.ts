/**
 * The inverse of convert.ts: a llama GGUF as a Hugging Face LlamaForCausalLM folder (a qwen2 one
 * as Qwen2ForCausalLM, q/k/v biases included, rows unmoved, byte-level BPE tokenizer) (config.json,
 * model.safetensors or shards with model.safetensors.index.json, tokenizer.json,
 * tokenizer_config.json), q/k rows back in Hugging Face order. F32, F16 and BF16 tensors keep
 * their bytes; quantized ones are written as F32.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../util/fs.ts';
import type { GgufFile } from '../gguf/index.ts';
import { GGML_TYPE, ggufString, llamaHyperparams, readGguf } from '../gguf/index.ts';
import { writeSafetensors, type SafetensorsTensorInput } from '../safetensors.ts';
import { ggufToHfRows } from './permute.ts';
import { bpeTokenizerJsonFromGguf, tokenizerJsonFromGguf } from './tokenizer.ts';

const HF_NAME: Record<string, string> = {
  attn_norm: 'input_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};

function hfName(name: string): string {
  if (name === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (name === 'output_norm.weight') return 'model.norm.weight';
  if (name === 'output.weight') return 'lm_head.weight';
  const match = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(name);
  const mapped = match ? HF_NAME[match[2]!] : undefined;
  if (!match || !mapped) throw new Error(`no Hugging Face name for GGUF tensor '${name}'`);
  return `model.layers.${match[1]}.${mapped}.${match[3]}`;
}

/** Writes `input` (a llama or qwen2 GGUF) as a Hugging Face folder in `dir`, in `shards` files (default 1). */
export async function ggufToHfFolder(
  input: string | GgufFile,
  dir: string,
  options: { shards?: number } = {},
): Promise<void> {
  const file = typeof input === 'string' ? await readGguf(input) : input;
  const meta = file.metadata;
  const hp = llamaHyperparams(meta);
  if (hp.arch !== 'llama' && hp.arch !== 'qwen2')
    throw new Error(`a ${hp.arch} GGUF has no Hugging Face export here`);
  const qwen2 = hp.arch === 'qwen2';
  const tensors: SafetensorsTensorInput[] = [];
  for (const info of file.tensors) {
    const name = hfName(info.name);
    const shape = [...info.dims].reverse();
    const heads = qwen2
      ? 0
      : info.name.endsWith('.attn_q.weight')
        ? hp.headCount
        : info.name.endsWith('.attn_k.weight')
          ? hp.headCountKv
          : 0;
    const keeps = {
      [GGML_TYPE.F32]: 'F32',
      [GGML_TYPE.F16]: 'F16',
      [GGML_TYPE.BF16]: 'BF16',
    } as const;
    const dtype = keeps[info.type as keyof typeof keeps];
    if (heads === 0 && dtype !== undefined) {
      tensors.push({ name, dtype, shape, data: await file.tensorData(info) });
    } else {
      const values = await file.tensorFloat32(info);
      const data = heads > 0 ? ggufToHfRows(values, shape[0]!, shape[1]!, heads) : values;
      tensors.push({ name, dtype: dtype ?? 'F32', shape, data });
    }
  }
  const tied = file.findTensor('output.weight') === undefined;
  const config = {
    architectures: [qwen2 ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: hp.arch,
    hidden_size: hp.embeddingLength,
    intermediate_size: hp.feedForwardLength,
    num_hidden_layers: hp.blockCount,
    num_attention_heads: hp.headCount,
    num_key_value_heads: hp.headCountKv,
    max_position_embeddings: hp.contextLength,
    rms_norm_eps: hp.rmsEps,
    rope_theta: hp.ropeFreqBase,
    vocab_size: hp.vocabSize,
    tie_word_embeddings: tied,
    hidden_act: 'silu',
    torch_dtype: 'float32',
    bos_token_id: meta.has('tokenizer.ggml.bos_token_id')
      ? Number(meta.get('tokenizer.ggml.bos_token_id')!.value)
      : 1,
    eos_token_id: meta.has('tokenizer.ggml.eos_token_id')
      ? Number(meta.get('tokenizer.ggml.eos_token_id')!.value)
      : 2,
  };
  await mkdir(dir, { recursive: true });
  const shards = Math.max(1, Math.min(options.shards ?? 1, tensors.length));
  if (shards === 1) {
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  } else {
    const weightMap: Record<string, string> = {};
    const per = Math.ceil(tensors.length / shards);
    for (let s = 0; s < shards; s++) {
      const part = tensors.slice(s * per, (s + 1) * per);
      const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      for (const t of part) weightMap[t.name] = name;
      await writeSafetensors(path.join(dir, name), part, { format: 'pt' });
    }
    await writeFileAtomic(
      path.join(dir, 'model.safetensors.index.json'),
      `${JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2)}\n`,
    );
  }
  const { tokenizer, config: tokenizerConfig } = qwen2
    ? bpeTokenizerJsonFromGguf(meta)
    : tokenizerJsonFromGguf(meta);
  tokenizerConfig.model_max_length = hp.contextLength;
  await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeFile(
    path.join(dir, 'tokenizer_config.json'),
    `${JSON.stringify({ ...tokenizerConfig, name_or_path: ggufString(meta, 'general.name', '') }, null, 2)}\n`,
  );
}
