import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';
import { GGML_TYPE, gguf, ggufString, readGguf, writeGguf } from '../src/engine/gguf/index.ts';
import type { GgufFile, GgufTensorInput, GgufValue } from '../src/engine/gguf/index.ts';
import { WordPieceTokenizer, toPhantomSpace } from '../src/engine/tokenizer/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';
import { loadBuiltinCorpus } from '../src/factory/builtin/corpus.ts';
import { normals } from './helpers/models.ts';
import {
  EMBEDDING_DIMENSIONS_KEY,
  approximateSpans,
  builtinEmbedderPath,
  openEmbedder,
} from '../src/rag/embedder/index.ts';
import { EMBEDDER_RECIPE } from '../src/rag/embedder/build.ts';
import { buildEmbedderVocab, SPECIAL_IDS } from '../src/rag/embedder/vocab.ts';
import type { Embedder } from '../src/rag/types.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIXTURES = path.resolve(ROOT, '..', 'shared', 'fixtures');
const MINILM_VOCAB = path.join(FIXTURES, 'tokenizers', 'minilm', 'vocab.txt');
const BUILTIN = builtinEmbedderPath();
const skipWithout = (file: string, why: string): false | string =>
  existsSync(file) ? false : `${path.relative(ROOT, file)} is absent (${why})`;
const NO_MODEL = skipWithout(BUILTIN, 'run `npm run build:model`');

/** Texts that exercise the basic tokenizer's rules (accents, controls, CJK, symbols, spaces). */
const TRICKY = [
  'Café naïve CAFÉ',
  'İstanbul and ÅNGSTRÖM',
  'hello\u200bworld soft\u00adhyphen',
  'a\u00a0b x\u2028y tab\there\r\nnewline x\u0085y',
  '£5 ©2020 °C $3+4=7 <tag> a^b `q` ~x|y',
  "don't—stop (really) [sic] {braces}",
  '中文字 and 日本語',
  'ﬁne Ⅻ straße e\u0301 ǖ',
  '\u0000a\ufffdb',
  'AΣΑ 😀 emoji 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '   leading and trailing   ',
  '',
];

/** About 50 sentences of the corpus (validation paragraphs, cut at sentence ends). */
function corpusSentences(): string[] {
  const sentences = loadBuiltinCorpus()
    .validation.flatMap((doc) => doc.split(/(?<=[.!?]["')]*)\s+/))
    .filter((s) => s.length > 20);
  const step = Math.max(1, Math.floor(sentences.length / 50));
  return sentences.filter((_s, i) => i % step === 0).slice(0, 50);
}

/** The normalized text of some characters (what a token's span should spell). */
function normalizedText(basic: WordPieceTokenizer, text: string): string {
  return basic
    .words(text)
    .map((w) => w.text)
    .join('');
}

function readVocabTxt(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] ?? 0) * (b[i] ?? 0);
    na += (a[i] ?? 0) ** 2;
    nb += (b[i] ?? 0) ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

describe('WordPiece tokenizer', () => {
  const vocab = ['[PAD]', '[UNK]', 'un', 'aff', '##aff', '##able', 'able', 'a', '##a', '.', '!'];
  const wp = new WordPieceTokenizer(vocab);

  it('cuts words greedily into the longest pieces, [UNK] for a word it cannot spell', () => {
    assert.deepEqual(wp.encode('Unaffable!'), [2, 4, 5, 10]);
    assert.deepEqual(wp.encode('able unable zzz a.'), [6, 2, 5, 1, 7, 9]);
    assert.equal(wp.decode(wp.encode('unaffable able')), 'unaffable able');
  });

  it('gives each token its characters in the original text', () => {
    const text = '  UNAFFÄBLE\u200b… able';
    const { ids, spans } = wp.encodeWithSpans(text);
    assert.deepEqual(ids, [2, 4, 5, 1, 6]);
    assert.deepEqual(
      spans.map((s) => text.slice(s.start, s.end)),
      ['UN', 'AFF', 'ÄBLE\u200b', '…', 'able'],
    );
  });

  it('makes a word longer than maxWordChars one [UNK] (BERT), unless told otherwise (llama.cpp)', () => {
    const long = 'a'.repeat(101);
    assert.deepEqual(wp.encode(long), [1]);
    assert.equal(
      new WordPieceTokenizer(vocab, { maxWordChars: Infinity }).encode(long).length,
      101,
    );
  });

  it('round-trips spans on the corpus and on tricky texts', () => {
    const tokens = buildEmbedderVocab(loadBuiltinCorpus().validation, {
      size: 4000,
      minWordCount: 2,
      suffixChars: [2, 6],
    }).tokens;
    const tokenizer = new WordPieceTokenizer(tokens, { maxWordChars: Infinity });
    for (const text of [...TRICKY, ...corpusSentences()]) {
      const { ids, spans } = tokenizer.encodeWithSpans(text);
      assert.equal(ids.length, spans.length);
      let previous = 0;
      ids.forEach((id, i) => {
        const span = spans[i]!;
        assert.ok(span.start >= previous && span.end > span.start && span.end <= text.length);
        previous = span.end;
        const token = tokens[id]!;
        if (id === SPECIAL_IDS.unk) return;
        const piece = token.startsWith('##') ? token.slice(2) : token;
        assert.equal(normalizedText(tokenizer, text.slice(span.start, span.end)), piece, text);
      });
    }
  });
});

describe('the built-in embedder vocabulary', () => {
  it('is a deterministic function of the corpus', () => {
    const docs = loadBuiltinCorpus().train.slice(0, 800);
    const recipe = { size: 3000, minWordCount: 3, suffixChars: [2, 6] as [number, number] };
    const a = buildEmbedderVocab(docs, recipe);
    const b = buildEmbedderVocab([...docs], recipe);
    assert.equal(a.tokens.length, 3000);
    assert.deepEqual(a.tokens.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    assert.equal(a.sha256, b.sha256);
    assert.deepEqual(a.tokens, b.tokens);
    assert.equal(new Set(a.tokens).size, a.tokens.length, 'no duplicates');
    assert.ok(a.tokens.includes('the') && a.tokens.includes('##e') && a.tokens.includes('e'));
  });
});

describe('the built-in embedding model', { skip: NO_MODEL }, () => {
  let llama: Llama;
  let embedder: Embedder;
  let header: GgufFile;
  let model: LlamaModel;

  before(async () => {
    llama = await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: 1,
      logLevel: 'error' as never,
    });
    embedder = await openEmbedder({ threads: 1, llama });
    header = await readGguf(BUILTIN);
    model = await llama.loadModel({ modelPath: BUILTIN });
  });
  after(async () => {
    await embedder?.close();
    await model?.dispose();
    await llama?.dispose();
  });

  it('has the vocabulary the corpus gives, and the declared shape', () => {
    const tokens = buildEmbedderVocab(
      [...loadBuiltinCorpus().train, ...loadBuiltinCorpus().validation],
      EMBEDDER_RECIPE.vocab,
    ).tokens;
    const stored = header.metadata.get('tokenizer.ggml.tokens');
    assert.ok(stored?.type === 'array');
    assert.deepEqual(stored.value, tokens.map(toPhantomSpace));
    assert.equal(ggufString(header.metadata, 'general.architecture'), 'bert');
    assert.ok(header.metadata.has(EMBEDDING_DIMENSIONS_KEY));
    assert.equal(embedder.name, 'openledger-embed-static');
    assert.match(embedder.sha256, /^[0-9a-f]{64}$/);
    assert.equal(embedder.maxTokens, EMBEDDER_RECIPE.model.contextLength - 3);
    assert.equal(
      embedder.dimensions,
      EMBEDDER_RECIPE.svd.rank + 1 + EMBEDDER_RECIPE.identity.dimensions,
    );
  });

  it('tokenizes as llama.cpp does (ids of ~50 corpus sentences and tricky texts)', () => {
    const wp = WordPieceTokenizer.fromGguf(header.metadata, { maxWordChars: Infinity });
    for (const text of [...TRICKY, ...corpusSentences()]) {
      assert.deepEqual(wp.encode(text), [...model.tokenize(text)], text);
    }
    const text = corpusSentences()[7]!;
    assert.deepEqual(embedder.tokenSpans(text), wp.tokenSpans(text));
  });

  it('embeds to unit vectors of the declared size: the SIF-weighted mean of the token rows', async () => {
    const texts = ['The whale swam in the sea.', 'Taxes on working families must be cut.', ''];
    const vectors = await embedder.embed(texts);
    assert.equal(vectors.length, 3);
    for (const v of vectors) assert.equal(v.length, embedder.dimensions);
    assert.ok(Math.abs(Math.hypot(...vectors[0]!) - 1) < 1e-5);
    assert.ok(Math.abs(Math.hypot(...vectors[1]!) - 1) < 1e-5);
    assert.ok(
      vectors[2]!.every((x) => x === 0),
      'an empty text is the zero vector',
    );
    // what the GGUF's rows say: LayerNorm(row) at every token ([CLS] and [SEP] are zero), mean,
    // the semantic dimensions only
    const rows = await header.tensorFloat32('token_embd.weight');
    const n = (header.tensor('token_embd.weight').dims[0] ?? 0) as number;
    const wp = WordPieceTokenizer.fromGguf(header.metadata, { maxWordChars: Infinity });
    for (const [i, text] of texts.slice(0, 2).entries()) {
      const sum = new Float64Array(n);
      for (const id of wp.encode(text)) {
        const row = rows.subarray(id * n, (id + 1) * n);
        const mean = row.reduce((s, x) => s + x, 0) / n;
        const variance = row.reduce((s, x) => s + (x - mean) ** 2, 0) / n;
        const scale = 1 / Math.sqrt(variance + 1e-12);
        row.forEach((x, j) => (sum[j] = (sum[j] ?? 0) + (x - mean) * scale));
      }
      const expected = sum.subarray(0, embedder.dimensions);
      assert.ok(cosine(expected, vectors[i]!) > 0.999, `llama.cpp's vector for ${text}`);
    }
    // the sinks keep stopwords light: "the" weighs far less than "whale"
    const [the, whale, theWhale] = await embedder.embed(['the', 'whale', 'the the whale']);
    assert.ok(cosine(theWhale!, whale!) > 0.95);
    assert.ok(cosine(theWhale!, the!) < cosine(theWhale!, whale!));
  });

  it('ranks the paragraph that shares the key words first (retrieval sanity)', async () => {
    const train = loadBuiltinCorpus().train;
    const picks: number[] = [];
    for (let i = 100; i < train.length && picks.length < 30; i += 211) {
      if (train[i]!.length >= 300) picks.push(i);
    }
    const queries: [string, number][] = [
      ['the landlady would not allow a harpoon in her chambers at bedtime', 311],
      ['enforcing the antitrust laws against monopoly after the war', 2632],
      ['Stubb tied to the harpooneer by the monkey-rope', 1366],
      [
        'banning assault weapons and high-capacity magazines; what responsible gun owners say',
        6641,
      ],
      ['a Trans-Pacific Partnership to boost American exports and trade', 6219],
    ];
    const paragraphs = await embedder.embed(picks.map((i) => train[i]!));
    const embedded = await embedder.embed(queries.map(([q]) => q));
    queries.forEach(([query, expected], qi) => {
      const scores = paragraphs.map((p) => cosine(p, embedded[qi]!));
      const best = scores.indexOf(Math.max(...scores));
      assert.equal(
        picks[best],
        expected,
        `${query}: ${JSON.stringify(scores.map((s) => +s.toFixed(2)))}`,
      );
    });
  });

  it('cuts long texts to maxTokens and stops between texts when aborted', async () => {
    const long = 'whale '.repeat(2000);
    const [v] = await embedder.embed([long]);
    assert.equal(v!.length, embedder.dimensions);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(embedder.embed(['a', 'b'], controller.signal), { name: 'AbortError' });
  });
});

describe('openEmbedder with other GGUFs', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-embedder-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a missing file with EMBEDDER_MISSING', async () => {
    await assert.rejects(
      openEmbedder({ file: path.join(dir, 'none.gguf'), threads: 1 }),
      (error: OpenLedgerError) => error.code === 'EMBEDDER_MISSING' && error.hint !== undefined,
    );
  });

  it(
    'runs a BERT GGUF without openledger keys (the MiniLM vocabulary, random weights): full vectors, the same ids as llama.cpp',
    { skip: skipWithout(MINILM_VOCAB, 'shared fixtures') },
    async () => {
      const vocab = readVocabTxt(MINILM_VOCAB);
      const file = path.join(dir, 'minilm-random.gguf');
      await writeGguf(file, randomBert(vocab, 32));
      const llama = await getLlama({
        gpu: false,
        build: 'never',
        maxThreads: 1,
        logLevel: 'error' as never,
      });
      const embedder = await openEmbedder({ file, threads: 1, llama });
      const model = await llama.loadModel({ modelPath: file });
      try {
        assert.equal(embedder.dimensions, 32);
        assert.equal(embedder.name, 'minilm-random');
        const [v] = await embedder.embed(['hello world']);
        assert.equal(v!.length, 32);
        assert.ok(Math.abs(Math.hypot(...v!) - 1) < 1e-5);
        const wp = new WordPieceTokenizer(vocab, { maxWordChars: Infinity });
        assert.deepEqual(wp.encode('hello world'), [7592, 2088]);
        for (const text of [...TRICKY, ...corpusSentences()]) {
          assert.deepEqual(wp.encode(text), [...model.tokenize(text)], text);
        }
      } finally {
        await embedder.close();
        await model.dispose();
        await llama.dispose();
      }
    },
  );

  it('loads any BERT-family GGUF in ../shared/fixtures/models, and refuses other models', async (t) => {
    const folder = path.join(FIXTURES, 'models');
    if (!existsSync(folder)) return t.skip('../shared/fixtures/models is absent');
    const encoders: string[] = [];
    for (const name of readdirSync(folder)
      .filter((f) => f.endsWith('.gguf'))
      .sort()) {
      const file = path.join(folder, name);
      const arch = ggufString((await readGguf(file)).metadata, 'general.architecture', '');
      const pooled = (await readGguf(file)).metadata.has(`${arch}.pooling_type`);
      if (/bert|t5encoder|gemma-embedding/.test(arch) || pooled) {
        encoders.push(file);
      } else {
        await assert.rejects(
          openEmbedder({ file, threads: 1 }),
          (error: OpenLedgerError) => error.code === 'MODEL_UNSUPPORTED',
          `${name} (${arch}) is no embedding model`,
        );
      }
    }
    if (encoders.length === 0) {
      return t.skip(
        'no BERT-family GGUF in ../shared/fixtures/models (its README lists only llama models)',
      );
    }
    for (const file of encoders) {
      const embedder = await openEmbedder({ file, threads: 1 });
      try {
        const [v] = await embedder.embed(['The whale swam in the sea.']);
        assert.equal(v!.length, embedder.dimensions);
        assert.ok(Math.abs(Math.hypot(...v!) - 1) < 1e-4);
        assert.ok(embedder.tokenSpans('The whale swam.').length >= 3);
      } finally {
        await embedder.close();
      }
    }
  });

  it('approximates spans for vocabularies other than WordPiece', () => {
    const text = "Ahab's whale, 1851!";
    assert.deepEqual(
      approximateSpans(text).map((s) => text.slice(s.start, s.end)),
      ['Ahab', "'", 's', 'whale', ',', '1851', '!'],
    );
  });
});

/** A 1-layer BERT GGUF with random token rows (zero attention and FFN), as convert_hf_to_gguf writes BERT. */
function randomBert(
  vocab: readonly string[],
  d: number,
): { metadata: [string, GgufValue][]; tensors: GgufTensorInput[] } {
  const ctx = 128;
  const ff = 32;
  const normal = normals(11);
  const special = (t: string): boolean => t.startsWith('[') && t.endsWith(']');
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('bert')],
    ['general.name', gguf.string('minilm-random')],
    ['bert.context_length', gguf.uint32(ctx)],
    ['bert.embedding_length', gguf.uint32(d)],
    ['bert.feed_forward_length', gguf.uint32(ff)],
    ['bert.block_count', gguf.uint32(1)],
    ['bert.attention.head_count', gguf.uint32(2)],
    ['bert.attention.layer_norm_epsilon', gguf.float32(1e-12)],
    ['bert.attention.causal', gguf.bool(false)],
    ['bert.pooling_type', gguf.uint32(1)],
    ['tokenizer.ggml.model', gguf.string('bert')],
    ['tokenizer.ggml.token_type_count', gguf.uint32(2)],
    ['tokenizer.ggml.tokens', gguf.array('string', vocab.map(toPhantomSpace))],
    [
      'tokenizer.ggml.token_type',
      gguf.array(
        'int32',
        vocab.map((t) => (special(t) ? 3 : 1)),
      ),
    ],
    ['tokenizer.ggml.unknown_token_id', gguf.uint32(100)],
    ['tokenizer.ggml.seperator_token_id', gguf.uint32(102)],
    ['tokenizer.ggml.padding_token_id', gguf.uint32(0)],
    ['tokenizer.ggml.cls_token_id', gguf.uint32(101)],
    ['tokenizer.ggml.mask_token_id', gguf.uint32(103)],
  ];
  const f32 = (name: string, dims: number[], fill = 0): GgufTensorInput => ({
    name,
    dims,
    type: GGML_TYPE.F32,
    data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(fill),
  });
  const tensors: GgufTensorInput[] = [
    {
      name: 'token_embd.weight',
      dims: [d, vocab.length],
      type: GGML_TYPE.F16,
      data: Float32Array.from({ length: d * vocab.length }, normal),
    },
    f32('token_types.weight', [d, 2]),
    f32('position_embd.weight', [d, ctx]),
    f32('token_embd_norm.weight', [d], 1),
    f32('token_embd_norm.bias', [d]),
  ];
  for (const n of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) {
    tensors.push(f32(`blk.0.${n}.weight`, [d, d]), f32(`blk.0.${n}.bias`, [d]));
  }
  tensors.push(
    f32('blk.0.attn_output_norm.weight', [d], 1),
    f32('blk.0.attn_output_norm.bias', [d]),
    f32('blk.0.ffn_up.weight', [d, ff]),
    f32('blk.0.ffn_up.bias', [ff]),
    f32('blk.0.ffn_down.weight', [ff, d]),
    f32('blk.0.ffn_down.bias', [d]),
    f32('blk.0.layer_output_norm.weight', [d], 1),
    f32('blk.0.layer_output_norm.bias', [d]),
  );
  return { metadata, tensors };
}
