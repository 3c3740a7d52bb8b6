// Models the benchmarks generate: seeded, so every run measures the same weights.
import { GGML_TYPE, gguf, writeGguf, type GgufValue } from '../src/engine/index.ts';

/** Seeded normal numbers (LCG + Box–Muller): the same model every run. */
export function normals(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * A random llama of the stories15M shape with a byte-level 32000-token vocabulary. With
 * `neverEos`, the end-of-sequence row of the (tied) output embedding is zero: its logit is 0
 * while the largest of the others is surely positive, so greedy generation always runs to
 * max_tokens and throughput counts the same tokens for every adapter.
 */
export async function writeStories15mShape(
  file: string,
  options: { neverEos?: boolean } = {},
): Promise<void> {
  const [dim, hidden, layers, heads, vocab] = [288, 768, 6, 6, 32000];
  const normal = normals(1);
  const matrix = (name: string, inDim: number, out: number) => ({
    name,
    dims: [inDim, out],
    type: GGML_TYPE.F32,
    data: Float32Array.from({ length: inDim * out }, () => normal() / Math.sqrt(inDim)),
  });
  const norm = (name: string) => ({
    name,
    dims: [dim],
    type: GGML_TYPE.F32,
    data: new Float32Array(dim).fill(1),
  });
  const tensors = [matrix('token_embd.weight', dim, vocab)];
  if (options.neverEos) tensors[0]!.data.fill(0, 2 * dim, 3 * dim); // token 2 is EOS
  for (let l = 0; l < layers; l++) {
    tensors.push(
      norm(`blk.${l}.attn_norm.weight`),
      matrix(`blk.${l}.attn_q.weight`, dim, dim),
      matrix(`blk.${l}.attn_k.weight`, dim, dim),
      matrix(`blk.${l}.attn_v.weight`, dim, dim),
      matrix(`blk.${l}.attn_output.weight`, dim, dim),
      norm(`blk.${l}.ffn_norm.weight`),
      matrix(`blk.${l}.ffn_gate.weight`, dim, hidden),
      matrix(`blk.${l}.ffn_down.weight`, hidden, dim),
      matrix(`blk.${l}.ffn_up.weight`, dim, hidden),
    );
  }
  tensors.push(norm('output_norm.weight'));
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let i = tokens.length; i < vocab; i++) tokens.push(`▁t${i}`);
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['general.name', gguf.string('random stories15M shape')],
    ['llama.context_length', gguf.uint32(256)],
    ['llama.embedding_length', gguf.uint32(dim)],
    ['llama.feed_forward_length', gguf.uint32(hidden)],
    ['llama.block_count', gguf.uint32(layers)],
    ['llama.attention.head_count', gguf.uint32(heads)],
    ['llama.attention.head_count_kv', gguf.uint32(heads)],
    ['llama.rope.dimension_count', gguf.uint32(dim / heads)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.float32(1e-5)],
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    [
      'tokenizer.ggml.scores',
      gguf.array(
        'float32',
        tokens.map(() => 0),
      ),
    ],
    [
      'tokenizer.ggml.token_type',
      gguf.array(
        'int32',
        tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
      ),
    ],
    ['tokenizer.ggml.bos_token_id', gguf.uint32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.uint32(2)],
  ];
  await writeGguf(file, { metadata, tensors });
}
