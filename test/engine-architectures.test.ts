import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  getLlama,
  type Llama,
  type LlamaModel as NodeLlamaModel,
  type Token,
} from 'node-llama-cpp';
import {
  GGML_TYPE,
  encodeGguf,
  gguf,
  readGguf,
  type GgmlType,
  type GgufValue,
} from '../src/engine/gguf/index.ts';
import {
  BpeTokenizer,
  Gpt2Model,
  LlamaModel,
  loadLlamaGguf,
  loadModelGguf,
  type GgufModel,
} from '../src/engine/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';
import {
  BPE_TRICKY_TEXTS,
  gpt2FixtureVocab,
  writeRandomGpt2,
  writeRandomModel,
  writeRandomQwen2,
  type ArchShape,
} from './helpers/models.ts';

/**
 * Qwen2 and GPT-2 (and the byte-level BPE tokenizer they use) against llama.cpp (node-llama-cpp,
 * the engine that serves models) on the same generated GGUF files: the logits at every position,
 * the token ids, and greedy continuations. As in engine-llamacpp.test.ts, llama.cpp computes in
 * float32 with its own summation order (quantizing the activations too for Q8_0), so logits
 * agree within a tolerance relative to the largest logit: max |ours − llama.cpp| / max |logit|.
 */

const hasCode =
  (code: string, message?: RegExp) =>
  (error: unknown): boolean => {
    const e = error as OpenLedgerError;
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  };

const QWEN2_SHAPES: Record<string, ArchShape> = {
  'GQA 4/2 heads, tied output': {
    dim: 64,
    hidden: 192,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    context: 64,
    tied: true,
  },
  'one kv head for 4, head dim 32, untied output': {
    dim: 128,
    hidden: 320,
    layers: 3,
    heads: 4,
    kvHeads: 1,
    context: 96,
    tied: false,
  },
};

const GPT2_SHAPES: Record<string, ArchShape> = {
  '4 heads, tied output': {
    dim: 64,
    hidden: 256,
    layers: 2,
    heads: 4,
    kvHeads: 4,
    context: 64,
    tied: true,
  },
  '3 heads of 32, untied output': {
    dim: 96,
    hidden: 384,
    layers: 3,
    heads: 3,
    kvHeads: 3,
    context: 96,
    tied: false,
  },
};

const FORMATS: [string, GgmlType][] = [
  ['F32', GGML_TYPE.F32],
  ['F16', GGML_TYPE.F16],
  ['Q8_0', GGML_TYPE.Q8_0],
];

/**
 * The tolerances on max |Δlogit| / max |logit|, 2.5-3 times the largest measured (see
 * docs/benchmarks.md, "Engine correctness"): F32 and F16 up to 7.8e-4, Q8_0 up to 7.8e-3 (for
 * Q8_0 llama.cpp also rounds the activations to 8 bits before each matmul; we do not).
 */
const TOLERANCE: Record<string, number> = { F32: 2e-3, F16: 2e-3, Q8_0: 2e-2 };

const PROMPT = "Once upon a time, the model didn't know 2024 café 日本語 — it's learning!";

const TRICKY = BPE_TRICKY_TEXTS;

async function tokenizeBoth(
  model: NodeLlamaModel,
  ours: GgufModel,
  text: string,
  special: boolean,
) {
  const tokenizer = ours.tokenizer as BpeTokenizer;
  return {
    theirs: [...model.tokenize(text, special)],
    mine: tokenizer.encode(text, { addBos: false, parseSpecial: special }),
  };
}

/** Our logits at every position of `text` against llama.cpp's, on the same file. */
async function compare(llama: Llama, file: string, text: string) {
  const ours = await loadModelGguf(file);
  const model = await llama.loadModel({ modelPath: file });
  try {
    // An F32 KV cache: llama.cpp's default F16 cache alone moves logits by ~1e-3.
    const context = await model.createContext({
      threads: 2,
      contextSize: 128,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    const tokens = ours.tokenizer!.encode(text, { addBos: false });
    assert.deepEqual([...model.tokenize(text)], tokens, 'the same tokens as llama.cpp');
    const evaluated = await context
      .getSequence()
      .controlledEvaluate(
        tokens.map((token) => [token, { generateNext: { logits: true } }] as const) as never,
      );
    const mine = ours.forwardSequence(tokens);
    const vocab = ours.config.vocabSize;
    let maxDiff = 0;
    let maxLogit = 0;
    evaluated.forEach((result, position) => {
      const theirs = (result as { next?: { logits?: Map<number, number> } } | undefined)?.next
        ?.logits;
      assert.ok(theirs, `llama.cpp gave logits at position ${position}`);
      assert.equal(theirs.size, vocab);
      for (const [token, logit] of theirs) {
        maxDiff = Math.max(maxDiff, Math.abs(logit - mine[position * vocab + token]!));
        maxLogit = Math.max(maxLogit, Math.abs(logit));
      }
    });
    await context.dispose();
    return { maxDiff, relative: maxDiff / maxLogit, positions: tokens.length };
  } finally {
    await model.dispose();
  }
}

describe('Qwen2 and GPT-2 forward passes against llama.cpp', () => {
  let llama: Llama;
  let dir: string;
  before(async () => {
    // Always pass threads: node-llama-cpp's default of 4 runs hundreds of times slower on 2 cores.
    llama = await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: 2,
      logLevel: 'error' as never,
    });
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-arch-'));
  });
  after(async () => {
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [arch, shapes, write] of [
    ['qwen2', QWEN2_SHAPES, writeRandomQwen2],
    ['gpt2', GPT2_SHAPES, writeRandomGpt2],
  ] as const) {
    Object.entries(shapes).forEach(([shapeName, shape], s) => {
      for (const [format, type] of FORMATS) {
        if (format === 'Q8_0' && s > 0) continue; // Q8_0 on the first shape of each architecture
        it(`${arch} (${shapeName}) stored as ${format} equals llama.cpp`, async () => {
          const file = path.join(dir, `${arch}-${s}-${format}.gguf`);
          await write(file, shape, () => type);
          const result = await compare(llama, file, PROMPT);
          console.log(`${arch} ${shapeName} ${format} vs llama.cpp`, result);
          const bound = TOLERANCE[format]!;
          assert.ok(
            result.relative < bound,
            `relative difference ${result.relative} over ${bound}`,
          );
        });
      }
    });
  }

  it('generates the same greedy tokens as llama.cpp (qwen2 and gpt2, F32)', async () => {
    for (const [arch, shape, write] of [
      ['qwen2', Object.values(QWEN2_SHAPES)[1]!, writeRandomQwen2],
      ['gpt2', Object.values(GPT2_SHAPES)[1]!, writeRandomGpt2],
    ] as const) {
      const file = path.join(dir, `${arch}-greedy.gguf`);
      await write(file, shape, () => GGML_TYPE.F32);
      const ours = await loadModelGguf(file);
      const model = await llama.loadModel({ modelPath: file });
      try {
        const context = await model.createContext({
          threads: 2,
          contextSize: 128,
          experimentalKvCacheKeyType: 'F32',
          experimentalKvCacheValueType: 'F32',
        });
        const prompt = ours.tokenizer!.encode('The quick brown fox', { addBos: false });
        const theirs: number[] = [];
        for await (const token of context
          .getSequence()
          .evaluate(prompt as Token[], { temperature: 0 })) {
          theirs.push(token);
          if (theirs.length === 12) break;
        }
        await context.dispose();
        const mine = ours.generate(prompt, 12, { stopAtEos: false });
        assert.deepEqual(mine.tokens, theirs, `${arch}: the same greedy continuation`);
        assert.equal(mine.text, ours.tokenizer!.decode(mine.tokens));
      } finally {
        await model.dispose();
      }
    }
  });
});

describe('byte-level BPE tokenizer against llama.cpp', () => {
  let llama: Llama;
  let dir: string;
  before(async () => {
    llama = await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: 2,
      logLevel: 'error' as never,
    });
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-bpe-'));
  });
  after(async () => {
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const tiny: ArchShape = {
    dim: 32,
    hidden: 64,
    layers: 1,
    heads: 2,
    kvHeads: 2,
    context: 16,
    tied: true,
  };

  for (const [pre, write] of [
    ['gpt-2', writeRandomGpt2],
    ['qwen2', writeRandomQwen2],
    [
      'llama-bpe',
      (file: string, shape: ArchShape, typeOf: () => GgmlType) =>
        writeRandomQwen2(file, shape, typeOf, 11, 'llama-bpe'),
    ],
  ] as const) {
    it(`gives llama.cpp's token ids on a generated vocabulary with pre-tokenizer '${pre}'`, async () => {
      const file = path.join(dir, `bpe-${pre}.gguf`);
      await write(file, tiny, () => GGML_TYPE.F32);
      const ours = await loadModelGguf(file);
      assert.ok(ours.tokenizer instanceof BpeTokenizer);
      const model = await llama.loadModel({ modelPath: file });
      try {
        for (const text of TRICKY) {
          for (const special of [false, true]) {
            const { theirs, mine } = await tokenizeBoth(model, ours, text, special);
            assert.deepEqual(mine, theirs, `${JSON.stringify(text)} (special: ${special})`);
          }
          // Decoding gives the text back (control tokens dropped unless asked for).
          const ids = ours.tokenizer.encode(text, { addBos: false, parseSpecial: true });
          assert.equal(ours.tokenizer.decode(ids, { special: true }), text);
        }
      } finally {
        await model.dispose();
      }
    });
  }

  it("gives llama.cpp's token ids with the real GPT-2 vocabulary", async (t) => {
    const vocab = await gpt2FixtureVocab();
    if (vocab === undefined) return t.skip('fixture tokenizers/gpt2 absent');
    const file = path.join(dir, 'gpt2-real-vocab.gguf');
    await writeRandomGpt2(file, tiny, () => GGML_TYPE.F16, 5, vocab);
    const ours = await loadModelGguf(file);
    const tokenizer = ours.tokenizer as BpeTokenizer;
    assert.deepEqual(tokenizer.encode('Hello world!'), [15496, 995, 0]); // the fixture's known ids
    const model = await llama.loadModel({ modelPath: file });
    try {
      for (const text of TRICKY) {
        for (const special of [false, true]) {
          const { theirs, mine } = await tokenizeBoth(model, ours, text, special);
          assert.deepEqual(mine, theirs, `${JSON.stringify(text)} (special: ${special})`);
        }
        assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
      }
    } finally {
      await model.dispose();
    }
  });
});

describe('loadModelGguf', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-load-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const shape = Object.values(QWEN2_SHAPES)[0]!;

  it('picks the forward pass and tokenizer by architecture', async () => {
    const llamaFile = path.join(dir, 'llama.gguf');
    const qwenFile = path.join(dir, 'qwen2.gguf');
    const gptFile = path.join(dir, 'gpt2.gguf');
    await writeRandomModel(llamaFile, () => GGML_TYPE.F32);
    await writeRandomQwen2(qwenFile, Object.values(QWEN2_SHAPES)[1]!, () => GGML_TYPE.F32);
    await writeRandomGpt2(gptFile, Object.values(GPT2_SHAPES)[0]!, () => GGML_TYPE.F32);

    const llama = await loadModelGguf(llamaFile);
    assert.ok(llama instanceof LlamaModel);
    assert.equal(llama.arch, 'llama');
    assert.equal(llama.config.ropeType, 'normal');
    assert.equal(llama.weights.layerBiases, undefined);

    const qwen = await loadModelGguf(qwenFile, { contextLength: 16 });
    assert.ok(qwen instanceof LlamaModel);
    assert.equal(qwen.arch, 'qwen2');
    assert.equal(qwen.config.ropeType, 'neox');
    assert.equal(qwen.config.ropeFreqBase, 1e6);
    assert.equal(qwen.config.nKvHeads, 1);
    assert.equal(qwen.config.contextLength, 16);
    assert.notEqual(qwen.weights.output, qwen.weights.tokenEmbd, 'untied output');
    assert.equal(qwen.weights.layerBiases?.[0]?.attnK?.length, 32);
    assert.ok(qwen.tokenizer instanceof BpeTokenizer);
    assert.equal(qwen.tokenizer.preTokenizer, 'qwen2');

    const gpt = await loadModelGguf(gptFile);
    assert.ok(gpt instanceof Gpt2Model);
    assert.equal(gpt.arch, 'gpt2');
    assert.equal(gpt.weights.output, gpt.weights.tokenEmbd, 'tied output');
    assert.equal(gpt.config.nPositions, 64);
    assert.equal((gpt.tokenizer as BpeTokenizer).preTokenizer, 'gpt2');
    const { dim, hidden, layers } = Object.values(GPT2_SHAPES)[0]!;
    const vocab = gpt.config.vocabSize;
    const perLayer = 2 * dim + 3 * dim * dim + 3 * dim + dim * dim + dim + 2 * dim;
    const ffn = dim * hidden + hidden + hidden * dim + dim;
    assert.equal(gpt.parameterCount, vocab * dim + 64 * dim + layers * (perLayer + ffn) + 2 * dim);
  });

  it('runs GPT-2 batched exactly as one token at a time', async () => {
    const file = path.join(dir, 'gpt2-batch.gguf');
    await writeRandomGpt2(file, Object.values(GPT2_SHAPES)[1]!, () => GGML_TYPE.F32);
    const model = await loadModelGguf(file);
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 37) % model.config.vocabSize);
    const batched = model.forwardSequence(tokens);
    const vocab = model.config.vocabSize;
    tokens.forEach((token, pos) => {
      const one = model.forward(token, pos);
      assert.deepEqual(one, batched.subarray(pos * vocab, (pos + 1) * vocab), `position ${pos}`);
    });
    assert.throws(() => model.forwardSequence(new Array(97).fill(0)), hasCode('VALIDATION_FAILED'));
  });

  it('refuses other architectures, tensors it would ignore, and qwen2 in loadLlamaGguf', async () => {
    const file = path.join(dir, 'qwen2-base.gguf');
    await writeRandomQwen2(file, shape, () => GGML_TYPE.F32);
    const parsed = await readGguf(file);
    const metadata = [...parsed.metadata];
    const tensors = await Promise.all(
      parsed.tensors.map(async (t) => ({
        name: t.name,
        dims: t.dims,
        type: t.type,
        data: await parsed.tensorData(t),
      })),
    );

    const phi3 = metadata.map(([key, value]): [string, GgufValue] =>
      key === 'general.architecture' ? [key, gguf.string('phi3')] : [key, value],
    );
    await assert.rejects(
      loadModelGguf(encodeGguf({ metadata: phi3, tensors })),
      hasCode('GGUF_UNSUPPORTED', /'phi3' is not supported/),
    );

    const withUpBias = [
      ...tensors,
      {
        name: 'blk.1.ffn_up.bias',
        dims: [shape.hidden],
        type: GGML_TYPE.F32,
        data: new Uint8Array(4 * shape.hidden),
      },
    ];
    await assert.rejects(
      loadModelGguf(encodeGguf({ metadata, tensors: withUpBias })),
      hasCode('GGUF_UNSUPPORTED', /blk\.1\.ffn_up\.bias/),
    );

    await assert.rejects(loadLlamaGguf(file), hasCode('GGUF_UNSUPPORTED', /loadLlamaGguf/));

    const unknownPre = metadata.map(([key, value]): [string, GgufValue] =>
      key === 'tokenizer.ggml.pre' ? [key, gguf.string('made-up')] : [key, value],
    );
    await assert.rejects(
      loadModelGguf(encodeGguf({ metadata: unknownPre, tensors })),
      hasCode('GGUF_UNSUPPORTED', /pre-tokenizer 'made-up'/),
    );
  });
});
