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
import { byteChar } from '../../src/engine/tokenizer/index.ts';

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

// ---------------------------------------------------------------------------------------------
// Qwen2 and GPT-2: random-weight models with a byte-level BPE vocabulary

/** A model shape for the architectures beyond llama (dim and hidden multiples of 32 for Q8_0). */
export interface ArchShape {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  context: number;
  /** Share token_embd as the output matrix (no `output.weight`). */
  tied: boolean;
}

/** Strings where pre-tokenizers and byte-level BPE tend to go wrong. */
export const BPE_TRICKY_TEXTS: readonly string[] = [
  '',
  'Hello world!',
  "I'm here, it's 2024! Don't   stop... They'll've we'd",
  "CAPS'S IT'S WE'LL I'M",
  '  leading and trailing spaces  ',
  'a  b   c    d     e',
  'tabs\tand\nnewlines\r\n\n  indented\n\n\n',
  'naïve café résumé — “quotes” ‘single’ «guillemets»',
  '日本語のテキスト 中文 한국어 Ελληνικά русский',
  'emoji 😀👍🏽 and symbols ©®™ ∑∫ ½ ² ٣',
  'numbers 1234567890 3.14159 1,000,000 007',
  'NBSP\u00a0here, em\u2003space, ideographic\u3000space, next\u0085line, bom\ufeffmark x \ufeffy',
  "'''quotes'' ' s 'S 'll' x'd",
  'mixed123abc ABC_def-ghi.jkl/mno\\pqr',
  'def forward(self, x):\n    return self.linear(x) + 1  # comment',
  'special <|endoftext|> in text and <|tool|> too',
];

/**
 * Text the synthetic BPE vocabulary learns its merges from: English with contractions, digits,
 * punctuation, accented, CJK and emoji text (merges across UTF-8 bytes), and the tricky texts.
 */
const BPE_CORPUS = [
  "Once upon a time there was a little model. It didn't know much, but it's learning: they'll see.",
  "The quick brown fox jumps over the lazy dog; the dog wasn't amused, and we'd laughed.",
  'In 2024 there were 1,234,567 tokens and 3.14159 reasons to count them again in 1999.',
  'naïve café résumé déjà vu — “quoted” words and ‘single’ ones, über straße',
  '日本語のテキストと中文的句子, 한국어 문장 😀👍 emoji.',
  'def forward(self, x):\n    return self.linear(x) + 1  # a comment\n\n',
  "THE CAPITALS SHOUT, IT'S LOUD; WE'LL HEAR.   Spaces   and\ttabs\tand\r\nnewlines.",
  ...BPE_TRICKY_TEXTS,
];

/**
 * A deterministic byte-level BPE vocabulary, learnt here from `BPE_CORPUS`: the 256 byte
 * characters, `merges` merges (most frequent pair first, ties by the pair's text), then
 * `<|endoftext|>` (control; BOS and EOS) and `<|tool|>` (user-defined). GGUF tokenizer metadata
 * with `tokenizer.ggml.pre` = pre.
 *
 * The merges are learnt on whole texts, not on pre-tokenized words, so they also join characters
 * across the boundaries a pre-tokenizer draws ("e Ġ", "' S", "Ġ Ġ"): a tokenizer that splits a
 * text differently from llama.cpp then gives different tokens, which the parity tests would see.
 */
export function syntheticBpeVocab(
  pre: 'gpt-2' | 'qwen2' | 'llama-bpe',
  merges = 400,
): { metadata: [string, GgufValue][]; size: number } {
  const tokens: string[] = Array.from({ length: 256 }, (_, b) => byteChar(b));
  const encoder = new TextEncoder();
  // Texts as arrays of symbols; merge the most frequent adjacent pair, `merges` times.
  let corpus = BPE_CORPUS.map((text) => Array.from(encoder.encode(text), byteChar));
  const mergeList: string[] = [];
  for (let m = 0; m < merges; m++) {
    const counts = new Map<string, number>();
    for (const symbols of corpus) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    let best: string | undefined;
    for (const [key, count] of counts) {
      const bestCount = best === undefined ? -1 : counts.get(best)!;
      if (count > bestCount || (count === bestCount && key < best!)) best = key;
    }
    if (best === undefined) break;
    mergeList.push(best);
    const [left, right] = best.split(' ') as [string, string];
    if (!tokens.includes(left + right)) tokens.push(left + right);
    corpus = corpus.map((symbols) => {
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else merged.push(symbols[i]!);
      }
      return merged;
    });
  }
  const eot = tokens.length;
  tokens.push('<|endoftext|>', '<|tool|>');
  const types = tokens.map((_, i) => (i === eot ? 3 : i === eot + 1 ? 4 : 1));
  return {
    size: tokens.length,
    metadata: [
      ['tokenizer.ggml.model', gguf.string('gpt2')],
      ['tokenizer.ggml.pre', gguf.string(pre)],
      ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
      ['tokenizer.ggml.token_type', gguf.array('int32', types)],
      ['tokenizer.ggml.merges', gguf.array('string', mergeList)],
      ['tokenizer.ggml.bos_token_id', gguf.uint32(eot)],
      ['tokenizer.ggml.eos_token_id', gguf.uint32(eot)],
    ],
  };
}

type Tensor = { name: string; dims: number[]; data: Float32Array };

function randomFactory(seed: number) {
  const normal = normals(seed);
  return {
    /** ne = [inDim, out]: N(0, 1/inDim), so activations stay O(1). */
    matrix: (name: string, inDim: number, out: number): Tensor => ({
      name,
      dims: [inDim, out],
      data: Float32Array.from({ length: inDim * out }, () => normal() / Math.sqrt(inDim)),
    }),
    /** A norm weight near 1. */
    norm: (name: string, n: number): Tensor => ({
      name,
      dims: [n],
      data: Float32Array.from({ length: n }, () => 1 + 0.1 * normal()),
    }),
    /** A vector N(0, scale²): biases. */
    vector: (name: string, n: number, scale: number): Tensor => ({
      name,
      dims: [n],
      data: Float32Array.from({ length: n }, () => scale * normal()),
    }),
    /** ne = [dim, rows]: N(0, scale²) rows (embeddings). */
    rows: (name: string, dim: number, rows: number, scale: number): Tensor => ({
      name,
      dims: [dim, rows],
      data: Float32Array.from({ length: dim * rows }, () => scale * normal()),
    }),
  };
}

/** Matrices as `typeOf(ne)`, vectors (norms, biases) F32, as llama.cpp's quantized files keep them. */
function typed(tensors: Tensor[], typeOf: (dims: number[]) => GgmlType): GgufTensorInput[] {
  return tensors.map((t) => ({ ...t, type: t.dims.length === 2 ? typeOf(t.dims) : GGML_TYPE.F32 }));
}

/**
 * A random Qwen2 (llama.cpp arch `qwen2`): llama's tensors plus biases on attn_q/k/v, NeoX RoPE
 * with base 1e6, RMSNorm eps 1e-6, and the synthetic BPE vocabulary (pre-tokenizer 'qwen2', or
 * 'llama-bpe' to test Llama 3's).
 */
export async function writeRandomQwen2(
  file: string,
  shape: ArchShape,
  typeOf: (dims: number[]) => GgmlType,
  seed = 11,
  pre: 'qwen2' | 'llama-bpe' = 'qwen2',
): Promise<void> {
  const { dim, hidden, layers, heads, kvHeads, context, tied } = shape;
  const vocab = syntheticBpeVocab(pre);
  const kvDim = (dim / heads) * kvHeads;
  const r = randomFactory(seed);
  const tensors: Tensor[] = [r.rows('token_embd.weight', dim, vocab.size, 1)];
  for (let l = 0; l < layers; l++) {
    const b = `blk.${l}.`;
    tensors.push(
      r.norm(`${b}attn_norm.weight`, dim),
      r.matrix(`${b}attn_q.weight`, dim, dim),
      r.vector(`${b}attn_q.bias`, dim, 0.3),
      r.matrix(`${b}attn_k.weight`, dim, kvDim),
      r.vector(`${b}attn_k.bias`, kvDim, 0.3),
      r.matrix(`${b}attn_v.weight`, dim, kvDim),
      r.vector(`${b}attn_v.bias`, kvDim, 0.3),
      r.matrix(`${b}attn_output.weight`, dim, dim),
      r.norm(`${b}ffn_norm.weight`, dim),
      r.matrix(`${b}ffn_gate.weight`, dim, hidden),
      r.matrix(`${b}ffn_down.weight`, hidden, dim),
      r.matrix(`${b}ffn_up.weight`, dim, hidden),
    );
  }
  tensors.push(r.norm('output_norm.weight', dim));
  if (!tied) tensors.push(r.matrix('output.weight', dim, vocab.size));
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('qwen2')],
    ['qwen2.context_length', gguf.uint32(context)],
    ['qwen2.embedding_length', gguf.uint32(dim)],
    ['qwen2.feed_forward_length', gguf.uint32(hidden)],
    ['qwen2.block_count', gguf.uint32(layers)],
    ['qwen2.attention.head_count', gguf.uint32(heads)],
    ['qwen2.attention.head_count_kv', gguf.uint32(kvHeads)],
    ['qwen2.rope.freq_base', gguf.float32(1e6)],
    ['qwen2.attention.layer_norm_rms_epsilon', gguf.float32(1e-6)],
    ...vocab.metadata,
  ];
  await writeGguf(file, { metadata, tensors: typed(tensors, typeOf) });
}

/**
 * A random GPT-2 (llama.cpp arch `gpt2`): token and position embeddings, LayerNorms with biases,
 * fused attn_qkv, biased projections, and the synthetic 'gpt-2' BPE vocabulary (or the metadata
 * given, e.g. the real GPT-2 vocabulary).
 */
export async function writeRandomGpt2(
  file: string,
  shape: ArchShape,
  typeOf: (dims: number[]) => GgmlType,
  seed = 13,
  vocab = syntheticBpeVocab('gpt-2'),
): Promise<void> {
  const { dim, hidden, layers, heads, context, tied } = shape;
  const r = randomFactory(seed);
  const tensors: Tensor[] = [
    r.rows('token_embd.weight', dim, vocab.size, 1),
    r.rows('position_embd.weight', dim, context, 0.5),
  ];
  for (let l = 0; l < layers; l++) {
    const b = `blk.${l}.`;
    tensors.push(
      r.norm(`${b}attn_norm.weight`, dim),
      r.vector(`${b}attn_norm.bias`, dim, 0.1),
      r.matrix(`${b}attn_qkv.weight`, dim, 3 * dim),
      r.vector(`${b}attn_qkv.bias`, 3 * dim, 0.1),
      r.matrix(`${b}attn_output.weight`, dim, dim),
      r.vector(`${b}attn_output.bias`, dim, 0.1),
      r.norm(`${b}ffn_norm.weight`, dim),
      r.vector(`${b}ffn_norm.bias`, dim, 0.1),
      r.matrix(`${b}ffn_up.weight`, dim, hidden),
      r.vector(`${b}ffn_up.bias`, hidden, 0.1),
      r.matrix(`${b}ffn_down.weight`, hidden, dim),
      r.vector(`${b}ffn_down.bias`, dim, 0.1),
    );
  }
  tensors.push(r.norm('output_norm.weight', dim), r.vector('output_norm.bias', dim, 0.1));
  if (!tied) tensors.push(r.matrix('output.weight', dim, vocab.size));
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('gpt2')],
    ['gpt2.context_length', gguf.uint32(context)],
    ['gpt2.embedding_length', gguf.uint32(dim)],
    ['gpt2.feed_forward_length', gguf.uint32(hidden)],
    ['gpt2.block_count', gguf.uint32(layers)],
    ['gpt2.attention.head_count', gguf.uint32(heads)],
    ['gpt2.attention.layer_norm_epsilon', gguf.float32(1e-5)],
    ...vocab.metadata,
  ];
  await writeGguf(file, { metadata, tensors: typed(tensors, typeOf) });
}

/**
 * The real GPT-2 vocabulary (50,257 tokens, 50,000 merges) from the tokenizer fixture as GGUF
 * metadata, as llama.cpp's converter writes it; undefined when the fixture is absent.
 */
export const GPT2_TOKENIZER_DIR = path.join(FIXTURE_MODELS, '..', 'tokenizers', 'gpt2');

export async function gpt2FixtureVocab(): Promise<
  { metadata: [string, GgufValue][]; size: number } | undefined
> {
  if (!existsSync(path.join(GPT2_TOKENIZER_DIR, 'vocab.json'))) return undefined;
  const { readFile } = await import('node:fs/promises');
  const vocab = JSON.parse(
    await readFile(path.join(GPT2_TOKENIZER_DIR, 'vocab.json'), 'utf8'),
  ) as Record<string, number>;
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(vocab)) tokens[id] = token;
  const merges = (await readFile(path.join(GPT2_TOKENIZER_DIR, 'merges.txt'), 'utf8'))
    .split('\n')
    .filter((line) => line.length > 0 && !line.startsWith('#version'));
  const eot = tokens.indexOf('<|endoftext|>');
  return {
    size: tokens.length,
    metadata: [
      ['tokenizer.ggml.model', gguf.string('gpt2')],
      ['tokenizer.ggml.pre', gguf.string('gpt-2')],
      ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
      [
        'tokenizer.ggml.token_type',
        gguf.array(
          'int32',
          tokens.map((_, i) => (i === eot ? 3 : 1)),
        ),
      ],
      ['tokenizer.ggml.merges', gguf.array('string', merges)],
      ['tokenizer.ggml.bos_token_id', gguf.uint32(eot)],
      ['tokenizer.ggml.eos_token_id', gguf.uint32(eot)],
    ],
  };
}
