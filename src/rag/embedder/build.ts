/**
 * Builds the built-in embedding model, `openledger-embed-static`: a static (bag-of-tokens) sentence
 * embedder written as a BERT GGUF that llama.cpp runs like any BERT-family model. `npm install`
 * builds it after the base model (`models build-embedder`, in about 10–20 s on one core); it is
 * kept while its card says it was built from the same recipe and corpus and the file's hash still
 * matches.
 *
 * From the built-in public-domain corpus (corpus.ts), deterministically:
 *
 * 1. a WordPiece vocabulary (vocab.ts) and the corpus's tokens in it;
 * 2. co-occurrence counts of the tokens seen at least `minCount` times within ±`window` tokens of a
 *    document, their PPMI with context smoothing α = 0.75, and a randomized truncated SVD of it
 *    (svd.ts); a token's vector is its row of U·Σ^½, centred over the tokens, at unit length;
 * 3. each token's row of `token_embd` is [w·(α·h, β·r), ±c, ∓c]: h is the unit vector moved, by a
 *    fixed Householder reflection, into the zero-mean subspace of one more dimension (an isometry,
 *    so cosines are unchanged), with the corpus's common direction projected out (Arora et al.'s
 *    common component removal, on the tokens since pooling is linear); r is the token's random
 *    ±1 "identity" vector (random indexing), so shared exact tokens — names, numbers, words the
 *    corpus never saw, which have no h (α = 0, β = 1) — match like in a sparse lexical model;
 *    w = a / (a + p(token)) is its SIF weight (Arora, Liang & Ma 2017; a = 1e-4, which keeps
 *    "what", "tell", "did" from outweighing the words a question is about); and the two "sink"
 *    dimensions take the rest of the unit norm, c = √((1 − |row|²) / 2), with a sign that
 *    alternates by token id. The row has mean 0 and norm 1, so BERT's embedding LayerNorm only
 *    scales it by √n_embd: the weighted part keeps its norm, and frequent tokens (the, of,
 *    punctuation) weigh little in the mean. Special tokens are 0.
 * 4. One transformer layer whose attention and feed-forward weights are all zero (llama.cpp
 *    refuses a BERT without layers), so the block is the identity on LayerNorm'd rows; mean
 *    pooling then gives the SIF-weighted mean of the token vectors. The GGUF key
 *    `openledger.embedding.dimensions` says how many leading outputs are semantic: the embedder
 *    keeps those (dropping the sinks) and L2-normalises them.
 *
 * What it is: a lexical/topical embedding (LSA-class, like GloVe), not a trained sentence encoder.
 */
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { encodeGguf, gguf, GGML_TYPE } from '../../engine/gguf/index.ts';
import type { GgufTensorInput, GgufValue } from '../../engine/gguf/index.ts';
import { WordPieceTokenizer, toPhantomSpace, TOKEN_TYPE } from '../../engine/tokenizer/index.ts';
import { loadBuiltinCorpus, type CorpusSource } from '../../factory/builtin/corpus.ts';
import { BUILTIN_MODELS_DIR } from '../../factory/builtin/paths.ts';
import { writeFileAtomic } from '../../util/fs.ts';
import { cooccurrence, ppmi, randomizedSvd } from './svd.ts';
import { buildEmbedderVocab, EMBEDDER_SPECIAL_TOKENS, SPECIAL_IDS } from './vocab.ts';

/** The built-in embedder's name: its GGUF `general.name` and file name. */
export const BUILTIN_EMBEDDER_NAME = 'openledger-embed-static';

/** GGUF key: how many leading outputs of the model are the embedding (the rest are sinks). */
export const EMBEDDING_DIMENSIONS_KEY = 'openledger.embedding.dimensions';

/** Everything the file is a function of, besides the corpus. */
export const EMBEDDER_RECIPE = {
  /** Bump when the code changes what is written (the card check only sees the recipe). */
  recipeVersion: 3,
  vocab: { size: 16_384, minWordCount: 5, suffixChars: [2, 6] as [number, number] },
  cooccurrence: { window: 5, minCount: 5, contextSmoothing: 0.75 },
  svd: { rank: 189, oversample: 12, powerIterations: 3, seed: 7 },
  /** SIF's a: weights a / (a + p(token)). */
  sif: 1e-4,
  /**
   * Each token's random ±1 "identity" vector of this many dimensions (random indexing): shared
   * exact tokens — names, numbers, words the corpus never saw — match even where the topical
   * vectors know nothing of them, as in a sparse lexical model.
   */
  identity: { dimensions: 128, seed: 11 },
  /** Of a token's weight, the share (squared) its topical vector gets; the identity the rest. */
  semanticShare: 0.5,
  /** n_embd = rank + 1 (the zero-mean reflection) + identity + 2 sinks. */
  sinkDimensions: 2,
  model: { contextLength: 512, heads: 4, feedForward: 64, layerNormEpsilon: 1e-12 },
  /** token_embd and position_embd; the layer's zero matrices are Q4_0 (exact zeros, fastest). */
  tensorType: 'F16',
  zeroMatrixType: 'Q4_0',
} as const;

export interface EmbedderCard {
  name: string;
  /** sha256 of the recipe and the corpus's hash: what the file is a function of. */
  recipeSha256: string;
  recipe: typeof EMBEDDER_RECIPE;
  corpusSha256: string;
  vocabSha256: string;
  vocabSize: number;
  vocabGroups: { special: number; characters: number; words: number; suffixes: number };
  sources: CorpusSource[];
  /** Semantic dimensions (`openledger.embedding.dimensions`). */
  dimensions: number;
  /** The model's n_embd (semantic + 1 + sinks). */
  embeddingLength: number;
  /** Corpus tokens, and the vocabulary entries that got a vector (seen ≥ minCount times). */
  corpusTokens: number;
  tokensWithVectors: number;
  /** Non-zero PPMI entries. */
  ppmiEntries: number;
  /** The largest and the smallest kept singular value. */
  singularValues: [number, number];
  gguf: { file: string; bytes: number; sha256: string };
  buildSeconds: number;
  builtAt: string;
  node: string;
}

export interface EmbedderBuildProgress {
  phase: 'vocabulary' | 'tokens' | 'cooccurrence' | 'ppmi' | 'svd' | 'gguf';
  /** A line for people. */
  message: string;
  /** Seconds since the build started. */
  seconds: number;
}

export interface EmbedderBuildOptions {
  /** Folder to write into (default BUILTIN_MODELS_DIR). */
  dir?: string;
  /** Rebuild even when the card says the file is current. */
  force?: boolean;
  onProgress?: (progress: EmbedderBuildProgress) => void;
}

export interface EmbedderBuildResult {
  path: string;
  cardPath: string;
  card: EmbedderCard;
  /** False when an up-to-date build was found and kept. */
  built: boolean;
}

export function builtinEmbedderPath(dir = BUILTIN_MODELS_DIR): string {
  return path.join(dir, `${BUILTIN_EMBEDDER_NAME}.gguf`);
}

function cardPathOf(dir: string): string {
  return path.join(dir, `${BUILTIN_EMBEDDER_NAME}.json`);
}

/** What the build is a function of: the recipe and the corpus. */
export function embedderRecipeSha256(): string {
  return createHash('sha256')
    .update(JSON.stringify({ recipe: EMBEDDER_RECIPE, corpus: loadBuiltinCorpus().sha256 }))
    .digest('hex');
}

/** The card of the current build in `dir`, when the GGUF beside it is intact. */
export async function readEmbedderCard(
  dir = BUILTIN_MODELS_DIR,
): Promise<EmbedderCard | undefined> {
  const card = await readFile(cardPathOf(dir), 'utf8')
    .then((text) => JSON.parse(text) as EmbedderCard)
    .catch(() => undefined);
  if (card === undefined) return undefined;
  const bytes = await readFile(builtinEmbedderPath(dir)).catch(() => undefined);
  if (bytes === undefined) return undefined;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return sha256 === card.gguf.sha256 ? card : undefined;
}

/** Builds (or keeps) the built-in embedder. */
export async function buildBuiltinEmbedder(
  options: EmbedderBuildOptions = {},
): Promise<EmbedderBuildResult> {
  const dir = options.dir ?? BUILTIN_MODELS_DIR;
  const recipeSha256 = embedderRecipeSha256();
  const file = builtinEmbedderPath(dir);
  const cardPath = cardPathOf(dir);
  if (options.force !== true) {
    const existing = await readEmbedderCard(dir);
    if (existing?.recipeSha256 === recipeSha256) {
      return { path: file, cardPath, card: existing, built: false };
    }
  }
  const started = performance.now();
  const built = computeEmbedder(options.onProgress, started);
  options.onProgress?.({
    phase: 'gguf',
    message: 'writing the GGUF',
    seconds: (performance.now() - started) / 1000,
  });
  const bytes = encodeGguf({
    metadata: embedderMetadata(built, recipeSha256),
    tensors: embedderTensors(built),
  });
  const card: EmbedderCard = {
    name: BUILTIN_EMBEDDER_NAME,
    recipeSha256,
    recipe: EMBEDDER_RECIPE,
    corpusSha256: built.corpusSha256,
    vocabSha256: built.vocabSha256,
    vocabSize: built.tokens.length,
    vocabGroups: built.vocabGroups,
    sources: built.sources,
    dimensions: built.dimensions,
    embeddingLength: built.embeddingLength,
    corpusTokens: built.corpusTokens,
    tokensWithVectors: built.tokensWithVectors,
    ppmiEntries: built.ppmiEntries,
    singularValues: built.singularValues,
    gguf: {
      file: path.basename(file),
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    },
    buildSeconds: Math.round((performance.now() - started) / 100) / 10,
    builtAt: new Date().toISOString(),
    node: process.version,
  };
  // the card goes last, so a card always describes a complete file
  await rm(cardPath, { force: true });
  await writeFileAtomic(file, bytes);
  await writeFileAtomic(cardPath, JSON.stringify(card, null, 2) + '\n');
  return { path: file, cardPath, card, built: true };
}

/** The embedder's numbers, before they become a GGUF. */
export interface EmbedderWeights {
  tokens: string[];
  vocabSha256: string;
  vocabGroups: EmbedderCard['vocabGroups'];
  corpusSha256: string;
  sources: CorpusSource[];
  dimensions: number;
  embeddingLength: number;
  /** tokens × embeddingLength, row-major. */
  embeddings: Float32Array;
  corpusTokens: number;
  tokensWithVectors: number;
  ppmiEntries: number;
  singularValues: [number, number];
}

/** Vocabulary, statistics and token rows of the built-in embedder (the slow part, ~10–20 s). */
export function computeEmbedder(
  onProgress?: (progress: EmbedderBuildProgress) => void,
  started = performance.now(),
): EmbedderWeights {
  const recipe = EMBEDDER_RECIPE;
  const report = (phase: EmbedderBuildProgress['phase'], message: string): void =>
    onProgress?.({ phase, message, seconds: (performance.now() - started) / 1000 });
  const corpus = loadBuiltinCorpus();
  const documents = [...corpus.train, ...corpus.validation];

  report('vocabulary', 'building the WordPiece vocabulary from the corpus');
  const vocab = buildEmbedderVocab(documents, recipe.vocab);
  const size = vocab.tokens.length;

  report('tokens', `tokenizing the corpus (${size.toLocaleString('en')} entries)`);
  const tokenizer = new WordPieceTokenizer(vocab.tokens, {
    maxWordChars: Infinity,
    unkId: SPECIAL_IDS.unk,
  });
  const sequences = documents.map((doc) => Int32Array.from(tokenizer.encode(doc)));
  const counts = new Float64Array(size);
  let corpusTokens = 0;
  for (const seq of sequences) {
    for (const id of seq) counts[id] = (counts[id] ?? 0) + 1;
    corpusTokens += seq.length;
  }
  // the tokens that get a vector: seen often enough, and not special
  const rowOf = new Int32Array(size).fill(-1);
  const tokenOfRow: number[] = [];
  for (let id = EMBEDDER_SPECIAL_TOKENS.length; id < size; id++) {
    if ((counts[id] ?? 0) >= recipe.cooccurrence.minCount) {
      rowOf[id] = tokenOfRow.length;
      tokenOfRow.push(id);
    }
  }
  const rows = tokenOfRow.length;

  report('cooccurrence', `counting co-occurrences of ${rows.toLocaleString('en')} tokens`);
  const rowSequences = sequences.map((seq) => seq.map((id) => rowOf[id] ?? -1));
  const pairCounts = cooccurrence(rowSequences, rows, recipe.cooccurrence.window);

  report('ppmi', `PPMI of ${pairCounts.values.length.toLocaleString('en')} pairs`);
  const matrix = ppmi(pairCounts, recipe.cooccurrence.contextSmoothing);

  const rank = recipe.svd.rank;
  report('svd', `randomized SVD to ${rank} dimensions`);
  const svd = randomizedSvd(matrix, {
    ...recipe.svd,
    onStep: (step, of) => report('svd', `randomized SVD: step ${step}/${of}`),
  });

  // U·Σ^½, centred over the tokens
  const vectors = new Float64Array(rows * rank);
  const mean = new Float64Array(rank);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < rank; j++) {
      const value = (svd.u[r * rank + j] ?? 0) * Math.sqrt(svd.s[j] ?? 0);
      vectors[r * rank + j] = value;
      mean[j] = (mean[j] ?? 0) + value;
    }
  }
  for (let j = 0; j < rank; j++) mean[j] = (mean[j] ?? 0) / Math.max(rows, 1);

  const semantic = rank + 1;
  const q = recipe.identity.dimensions;
  const dimensions = semantic + q;
  const embeddingLength = dimensions + recipe.sinkDimensions;
  const embeddings = new Float32Array(size * embeddingLength);
  const alpha = Math.sqrt(recipe.semanticShare);
  const beta = Math.sqrt(1 - recipe.semanticShare);
  // the Householder reflection H = I − 2vvᵀ/(vᵀv), v = e_last − 1/√m, maps R^rank × {0} onto the
  // zero-mean vectors of R^m (m = rank + 1) without changing lengths or angles
  const m = semantic;
  const inv = 1 / Math.sqrt(m);
  const vv = (1 - inv) ** 2 + (m - 1) * inv * inv;
  const h = new Float64Array(m);
  const hasTopic = new Uint8Array(size);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let j = 0; j < rank; j++) {
      const x = (vectors[r * rank + j] ?? 0) - (mean[j] ?? 0);
      h[j] = x;
      norm += x * x;
    }
    h[m - 1] = 0;
    if (!(norm > 0)) continue;
    norm = Math.sqrt(norm);
    // v·x with x = (h / norm, 0): only the first rank components of v (= −1/√m) meet x
    let dot = 0;
    for (let j = 0; j < rank; j++) {
      h[j] = (h[j] ?? 0) / norm;
      dot -= (h[j] ?? 0) * inv;
    }
    const factor = (2 * dot) / vv;
    for (let j = 0; j < m; j++) {
      const vj = (j === m - 1 ? 1 : 0) - inv;
      h[j] = (h[j] ?? 0) - factor * vj;
    }
    const id = tokenOfRow[r] ?? 0;
    hasTopic[id] = 1;
    const o = id * embeddingLength;
    for (let j = 0; j < m; j++) embeddings[o + j] = alpha * (h[j] ?? 0);
  }
  // The common direction of the corpus's (SIF-weighted) text vectors: every text leans on it, so
  // it only adds the same offset to every cosine. Projected out of every token (Arora et al.'s
  // "common component removal", done on the tokens because pooling is linear).
  const weightOf = (id: number) => recipe.sif / (recipe.sif + (counts[id] ?? 0) / corpusTokens);
  const common = new Float64Array(m);
  for (let id = 0; id < size; id++) {
    if (!hasTopic[id]) continue;
    const scale = (counts[id] ?? 0) * weightOf(id);
    for (let j = 0; j < m; j++)
      common[j] = (common[j] ?? 0) + scale * (embeddings[id * embeddingLength + j] ?? 0);
  }
  let commonNorm = 0;
  for (let j = 0; j < m; j++) commonNorm += (common[j] ?? 0) ** 2;
  commonNorm = Math.sqrt(commonNorm);
  for (let j = 0; j < m; j++) common[j] = commonNorm > 0 ? (common[j] ?? 0) / commonNorm : 0;
  // Every token but the specials: its identity vector (all of it when it has no topical vector),
  // the row scaled by its SIF weight w, and the sinks taking the rest of the unit norm.
  const identity = new Float64Array(q);
  for (let id = EMBEDDER_SPECIAL_TOKENS.length; id < size; id++) {
    const o = id * embeddingLength;
    let along = 0;
    for (let j = 0; j < m; j++) along += (embeddings[o + j] ?? 0) * (common[j] ?? 0);
    for (let j = 0; j < m; j++)
      embeddings[o + j] = (embeddings[o + j] ?? 0) - along * (common[j] ?? 0);
    identityVector(recipe.identity.seed, id, identity);
    const share = hasTopic[id] ? beta : 1;
    for (let j = 0; j < q; j++) embeddings[o + m + j] = share * (identity[j] ?? 0);
    const w = weightOf(id);
    let norm = 0;
    for (let j = 0; j < dimensions; j++) {
      embeddings[o + j] = w * (embeddings[o + j] ?? 0);
      norm += (embeddings[o + j] ?? 0) ** 2;
    }
    const c = Math.sqrt(Math.max(0, 1 - norm) / 2);
    const sign = id % 2 === 0 ? 1 : -1;
    embeddings[o + dimensions] = sign * c;
    embeddings[o + dimensions + 1] = -sign * c;
  }
  return {
    tokens: vocab.tokens,
    vocabSha256: vocab.sha256,
    vocabGroups: vocab.groups,
    corpusSha256: corpus.sha256,
    sources: corpus.sources,
    dimensions,
    embeddingLength,
    embeddings,
    corpusTokens,
    tokensWithVectors: rows,
    ppmiEntries: matrix.values.length,
    singularValues: [svd.s[0] ?? 0, svd.s[rank - 1] ?? 0],
  };
}

/**
 * A token's identity vector: ±1 signs from a 32-bit mix of (seed, id, j), centred and scaled to
 * unit length. Integer arithmetic and one square root only, so every machine writes the same.
 */
function identityVector(seed: number, id: number, out: Float64Array): void {
  let sum = 0;
  for (let j = 0; j < out.length; j++) {
    let x = Math.imul(seed ^ Math.imul(id, 0x9e3779b1), 0x85ebca6b) ^ Math.imul(j + 1, 0xc2b2ae35);
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    out[j] = x & 1 ? 1 : -1;
    sum += out[j]!;
  }
  const mean = sum / out.length;
  let norm = 0;
  for (let j = 0; j < out.length; j++) {
    out[j] = out[j]! - mean;
    norm += out[j]! * out[j]!;
  }
  norm = Math.sqrt(norm);
  for (let j = 0; j < out.length; j++) out[j] = norm > 0 ? out[j]! / norm : 0;
}

/** The GGUF metadata: a BERT with mean pooling and a WordPiece vocabulary (phantom-space form). */
function embedderMetadata(built: EmbedderWeights, recipeSha256: string): [string, GgufValue][] {
  const { model } = EMBEDDER_RECIPE;
  return [
    ['general.architecture', gguf.string('bert')],
    ['general.name', gguf.string(BUILTIN_EMBEDDER_NAME)],
    [
      'general.description',
      gguf.string(
        'Static lexical/topical sentence embedder: PPMI-SVD token vectors of a public-domain corpus, SIF-weighted mean pooling (OpenLedger built-in)',
      ),
    ],
    ['general.license', gguf.string('Apache-2.0')],
    ['bert.context_length', gguf.uint32(model.contextLength)],
    ['bert.embedding_length', gguf.uint32(built.embeddingLength)],
    ['bert.feed_forward_length', gguf.uint32(model.feedForward)],
    ['bert.block_count', gguf.uint32(1)],
    ['bert.attention.head_count', gguf.uint32(model.heads)],
    ['bert.attention.layer_norm_epsilon', gguf.float32(model.layerNormEpsilon)],
    ['bert.attention.causal', gguf.bool(false)],
    ['bert.pooling_type', gguf.uint32(1)], // mean
    ['tokenizer.ggml.model', gguf.string('bert')],
    ['tokenizer.ggml.token_type_count', gguf.uint32(2)],
    ['tokenizer.ggml.tokens', gguf.array('string', built.tokens.map(toPhantomSpace))],
    [
      'tokenizer.ggml.token_type',
      gguf.array(
        'int32',
        built.tokens.map((_t, id) =>
          id < EMBEDDER_SPECIAL_TOKENS.length ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.NORMAL,
        ),
      ),
    ],
    // llama.cpp's WordPiece takes [CLS] from bos_token_id (default 101, BERT's), not cls_token_id
    ['tokenizer.ggml.bos_token_id', gguf.uint32(SPECIAL_IDS.cls)],
    ['tokenizer.ggml.padding_token_id', gguf.uint32(SPECIAL_IDS.pad)],
    ['tokenizer.ggml.unknown_token_id', gguf.uint32(SPECIAL_IDS.unk)],
    ['tokenizer.ggml.cls_token_id', gguf.uint32(SPECIAL_IDS.cls)],
    ['tokenizer.ggml.seperator_token_id', gguf.uint32(SPECIAL_IDS.sep)],
    ['tokenizer.ggml.mask_token_id', gguf.uint32(SPECIAL_IDS.mask)],
    ['tokenizer.ggml.normalizer.lowercase', gguf.bool(true)],
    ['tokenizer.ggml.normalizer.strip_accents', gguf.bool(true)],
    [EMBEDDING_DIMENSIONS_KEY, gguf.uint32(built.dimensions)],
    ['openledger.embedding.sink_dimensions', gguf.uint32(EMBEDDER_RECIPE.sinkDimensions)],
    ['openledger.recipe_sha256', gguf.string(recipeSha256)],
    ['openledger.corpus_sha256', gguf.string(built.corpusSha256)],
    ['openledger.vocab_sha256', gguf.string(built.vocabSha256)],
  ];
}

/**
 * token_embd from the built rows; the rest identity LayerNorms and zero weights. token_embd and
 * position_embd are F16, the layer's (zero) matrices Q4_0, vectors and token_types F32 (llama.cpp
 * adds token_types' row as it is, and its CPU add wants F32).
 */
function embedderTensors(built: EmbedderWeights): GgufTensorInput[] {
  const d = built.embeddingLength;
  const { contextLength, feedForward } = EMBEDDER_RECIPE.model;
  const matrixType = GGML_TYPE[EMBEDDER_RECIPE.tensorType];
  const zeroType = GGML_TYPE[EMBEDDER_RECIPE.zeroMatrixType];
  const zeros = (dims: number[], type: number = zeroType): GgufTensorInput => ({
    name: '',
    dims,
    type: type as GgufTensorInput['type'],
    data: new Float32Array(dims.reduce((a, b) => a * b, 1)),
  });
  const ones = (n: number): Float32Array => new Float32Array(n).fill(1);
  const tensors: GgufTensorInput[] = [
    {
      name: 'token_embd.weight',
      dims: [d, built.tokens.length],
      type: matrixType,
      data: built.embeddings,
    },
    { ...zeros([d, 2], GGML_TYPE.F32), name: 'token_types.weight' },
    { ...zeros([d, contextLength], matrixType), name: 'position_embd.weight' },
    { name: 'token_embd_norm.weight', dims: [d], type: GGML_TYPE.F32, data: ones(d) },
    { ...zeros([d], GGML_TYPE.F32), name: 'token_embd_norm.bias' },
  ];
  const p = 'blk.0.';
  for (const n of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) {
    tensors.push({ ...zeros([d, d]), name: `${p}${n}.weight` });
    tensors.push({ ...zeros([d], GGML_TYPE.F32), name: `${p}${n}.bias` });
  }
  tensors.push({
    name: `${p}attn_output_norm.weight`,
    dims: [d],
    type: GGML_TYPE.F32,
    data: ones(d),
  });
  tensors.push({ ...zeros([d], GGML_TYPE.F32), name: `${p}attn_output_norm.bias` });
  tensors.push({ ...zeros([d, feedForward]), name: `${p}ffn_up.weight` });
  tensors.push({ ...zeros([feedForward], GGML_TYPE.F32), name: `${p}ffn_up.bias` });
  tensors.push({ ...zeros([feedForward, d]), name: `${p}ffn_down.weight` });
  tensors.push({ ...zeros([d], GGML_TYPE.F32), name: `${p}ffn_down.bias` });
  tensors.push({
    name: `${p}layer_output_norm.weight`,
    dims: [d],
    type: GGML_TYPE.F32,
    data: ones(d),
  });
  tensors.push({ ...zeros([d], GGML_TYPE.F32), name: `${p}layer_output_norm.bias` });
  return tensors;
}
