import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  GGML_TYPE,
  gguf,
  readGguf,
  writeGguf,
  type GgmlType,
  type GgufTensorInput,
  type GgufValue,
} from '../../src/engine/gguf/index.ts';

/** Fixture models beside the repository (never copied into it); tests skip when absent. */
export const FIXTURE_MODELS = path.resolve(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'shared',
  'fixtures',
  'models',
);
export const AIDREAMS_GGUF = path.join(FIXTURE_MODELS, 'aidreams260K.gguf');

/** A deterministic generator (LCG + Box–Muller) of normal numbers. */
export function normals(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * dim 96 and hidden 256 (rows of multiples of 32, so Q8_0/Q4_0 apply; ffn_down's rows of 256 also
 * take Q4_K), 6 heads of 16, 2 kv heads: groups of 3.
 */
export const SHAPE = { dim: 96, hidden: 256, layers: 3, heads: 6, kvHeads: 2, context: 64 };

/** The tensors of a random llama with an untied output, as float32 values. */
export function randomTensors(
  vocab: number,
  seed = 7,
): { name: string; dims: number[]; data: Float32Array }[] {
  const normal = normals(seed);
  const { dim, hidden, layers, heads, kvHeads } = SHAPE;
  const headDim = dim / heads;
  const kvDim = kvHeads * headDim;
  /** ne = [inDim, out]: N(0, 1/inDim), so activations stay O(1). */
  const matrix = (name: string, inDim: number, out: number) => ({
    name,
    dims: [inDim, out],
    data: Float32Array.from({ length: inDim * out }, () => normal() / Math.sqrt(inDim)),
  });
  const norm = (name: string) => ({
    name,
    dims: [dim],
    data: Float32Array.from({ length: dim }, () => 1 + 0.1 * normal()),
  });
  const tensors = [
    {
      name: 'token_embd.weight',
      dims: [dim, vocab],
      data: Float32Array.from({ length: dim * vocab }, normal),
    },
  ];
  for (let l = 0; l < layers; l++) {
    tensors.push(
      norm(`blk.${l}.attn_norm.weight`),
      matrix(`blk.${l}.attn_q.weight`, dim, dim),
      matrix(`blk.${l}.attn_k.weight`, dim, kvDim),
      matrix(`blk.${l}.attn_v.weight`, dim, kvDim),
      matrix(`blk.${l}.attn_output.weight`, dim, dim),
      norm(`blk.${l}.ffn_norm.weight`),
      matrix(`blk.${l}.ffn_gate.weight`, dim, hidden),
      matrix(`blk.${l}.ffn_down.weight`, hidden, dim),
      matrix(`blk.${l}.ffn_up.weight`, dim, hidden),
    );
  }
  tensors.push(norm('output_norm.weight'), matrix('output.weight', dim, vocab));
  return tensors;
}

/** A synthetic SentencePiece vocabulary of 512: specials, 256 bytes, ▁ and letters, and pairs. */
export function syntheticVocab(): [string, GgufValue][] {
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const letters = '▁abcdefghijklmnopqrstuvwxyz'.split('');
  tokens.push(...letters);
  for (const a of letters) for (const b of letters) if (tokens.length < 512) tokens.push(a + b);
  const types = tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1));
  return [
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    [
      'tokenizer.ggml.scores',
      gguf.array(
        'float32',
        tokens.map((_, i) => -i),
      ),
    ],
    ['tokenizer.ggml.token_type', gguf.array('int32', types)],
    ['tokenizer.ggml.bos_token_id', gguf.uint32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.uint32(2)],
  ];
}

/** The aidreams vocabulary when its fixture is here, else the synthetic one. */
async function tokenizerMetadata(): Promise<[string, GgufValue][]> {
  if (!existsSync(AIDREAMS_GGUF)) return syntheticVocab();
  const file = await readGguf(AIDREAMS_GGUF);
  return [...file.metadata].filter(([key]) => key.startsWith('tokenizer.'));
}

/**
 * Writes the random model with its matrices stored as `typeOf(ne)` (norms stay F32, as in
 * llama.cpp's quantized files).
 */
export async function writeRandomModel(
  file: string,
  typeOf: (dims: number[]) => GgmlType,
): Promise<void> {
  const { dim, hidden, layers, heads, kvHeads, context } = SHAPE;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['llama.context_length', gguf.uint32(context)],
    ['llama.embedding_length', gguf.uint32(dim)],
    ['llama.feed_forward_length', gguf.uint32(hidden)],
    ['llama.block_count', gguf.uint32(layers)],
    ['llama.attention.head_count', gguf.uint32(heads)],
    ['llama.attention.head_count_kv', gguf.uint32(kvHeads)],
    ['llama.rope.dimension_count', gguf.uint32(dim / heads)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.float32(1e-5)],
    ...(await tokenizerMetadata()),
  ];
  const tensors: GgufTensorInput[] = randomTensors(512).map((t) => ({
    ...t,
    type: t.dims.length === 2 ? typeOf(t.dims) : GGML_TYPE.F32,
  }));
  await writeGguf(file, { metadata, tensors });
}
