import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readGguf } from '../src/engine/gguf/index.ts';
import {
  SentencePieceTokenizer,
  TOKEN_TYPE,
  loadLlama2cTokenizer,
  parseLlama2cTokenizer,
} from '../src/engine/tokenizer/index.ts';
import type { SentencePieceVocab } from '../src/engine/tokenizer/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIXTURES = path.resolve(ROOT, '..', 'shared', 'fixtures');
const LLAMA2_TOKENIZER = path.join(FIXTURES, 'tokenizers', 'llama2', 'tokenizer.bin');
const AIDREAMS_GGUF = path.join(FIXTURES, 'models', 'aidreams260K.gguf');
const AIDREAMS_TOKENIZER = path.join(FIXTURES, 'models', 'aidreams-tok512.bin');
const skipWithout = (...files: string[]): false | string => {
  const absent = files.find((file) => !existsSync(file));
  return absent === undefined ? false : `fixture absent: ${path.relative(ROOT, absent)}`;
};

const ROUND_TRIP = [
  'Once upon a time',
  'naïve café',
  'hi 😀 there', // the emoji is not in the vocabulary: four byte tokens
  '  two  spaces ',
  '日本語のテキスト',
  'Hello\nworld\t!',
  '"quoted", (parenthesised) and 1234.5',
];

const hasCode = (code: string) => (error: OpenLedgerError) => {
  assert.equal(error.code, code, error.message);
  return true;
};

/** A small vocabulary: specials, the 256 byte tokens, and the given pieces with their scores. */
function vocab(pieces: Record<string, number>, extra: Partial<SentencePieceVocab> = {}) {
  const tokens = ['<unk>', '<s>', '</s>'];
  const scores = [0, 0, 0];
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    scores.push(0);
    types.push(TOKEN_TYPE.BYTE);
  }
  for (const [piece, score] of Object.entries(pieces)) {
    tokens.push(piece);
    scores.push(score);
    types.push(TOKEN_TYPE.NORMAL);
  }
  const spec: SentencePieceVocab = {
    tokens,
    scores,
    tokenTypes: types,
    bosId: 1,
    eosId: 2,
    unkId: 0,
    addBos: false,
    addEos: false,
    addSpacePrefix: false,
    ...extra,
  };
  return new SentencePieceTokenizer(spec);
}

const pieces = (tokenizer: SentencePieceTokenizer, ids: number[]): string[] =>
  ids.map((id) => tokenizer.piece(id));

describe('SentencePiece BPE: merges and byte fallback', () => {
  it('merges the pair with the highest score first, not left to right', () => {
    const t = vocab({ a: -10, b: -10, c: -10, ab: -2, bc: -1 });
    assert.deepEqual(pieces(t, t.encode('abc')), ['a', 'bc']);
  });

  it('breaks ties between equal scores by taking the leftmost pair', () => {
    const t = vocab({ a: -10, b: -10, c: -10, ab: -1, bc: -1 });
    assert.deepEqual(pieces(t, t.encode('abc')), ['ab', 'c']);
    assert.deepEqual(pieces(t, t.encode('bcab')), ['bc', 'ab']);
  });

  it('keeps merging merged pieces while the result is a token', () => {
    const t = vocab({ a: -10, b: -10, ab: -1, abab: -3, ababa: -4 });
    assert.deepEqual(pieces(t, t.encode('ababa')), ['ababa']);
    assert.deepEqual(pieces(t, t.encode('abababab')), ['abab', 'abab']);
  });

  it('writes spaces as ▁, prepends one with addSpacePrefix, and strips it when decoding', () => {
    const t = vocab(
      { '▁': -10, h: -10, i: -10, '▁h': -1, '▁hi': -2 },
      { addSpacePrefix: true, addBos: true },
    );
    const ids = t.encode('hi hi');
    assert.deepEqual(pieces(t, ids), ['<s>', '▁hi', '▁hi']);
    assert.equal(t.decode(ids), 'hi hi');
    assert.equal(t.decode(ids, { special: true }), '<s>hi hi');
    assert.equal(t.decode(ids, { stripLeadingSpace: false }), ' hi hi');
    assert.deepEqual(t.encode(''), [1]);
    assert.deepEqual(t.encode('', { addBos: false }), []);
    assert.deepEqual(t.encode('hi', { addBos: false, addEos: true }).at(-1), 2);
  });

  it('falls back to <0xXX> byte tokens, and to UNK without them', () => {
    const t = vocab({ a: -1 });
    assert.deepEqual(pieces(t, t.encode('aé')), ['a', '<0xC3>', '<0xA9>']);
    assert.equal(t.decode(t.encode('aé€😀')), 'aé€😀');

    const noBytes = new SentencePieceTokenizer({
      tokens: ['<unk>', '<s>', '</s>', 'a'],
      scores: [0, 0, 0, -1],
      tokenTypes: [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.NORMAL],
      bosId: 1,
      eosId: 2,
      unkId: 0,
      addBos: false,
      addEos: false,
      addSpacePrefix: false,
    });
    assert.deepEqual(noBytes.encode('aé'), [3, 0, 0]); // é is two UTF-8 bytes
    assert.equal(noBytes.decode([3, 0]), 'a▅'); // llama.cpp prints UNK as ▅
  });

  it('never merges into control or byte tokens', () => {
    const t = vocab({ '<': -1, s: -1, '>': -1, '<s': -1 });
    assert.deepEqual(pieces(t, t.encode('<s>')), ['<s', '>']);
  });

  it('refuses ids outside the vocabulary and inconsistent vocabularies', () => {
    const t = vocab({ a: -1 });
    assert.throws(() => t.decode([t.vocabSize]), hasCode('VALIDATION_FAILED'));
    assert.throws(() => t.piece(-1), hasCode('VALIDATION_FAILED'));
    assert.throws(() => vocab({ a: -1 }, { scores: [0] }), /one score and one type per token/);
    assert.throws(() => vocab({ a: -1 }, { bosId: 9999 }), /BOS token id 9999/);
  });

  it('encodes a long text in linear-logarithmic time', () => {
    const t = vocab({ a: -3, b: -3, ab: -1, ba: -2, abab: -4 });
    const text = 'ab'.repeat(50_000);
    const started = performance.now();
    const ids = t.encode(text);
    assert.equal(t.decode(ids), text);
    assert.ok(performance.now() - started < 5000, 'encoding 100k characters took over 5 s');
  });
});

describe('llama2.c tokenizer.bin', () => {
  it('refuses a truncated file', () => {
    const bytes = new Uint8Array(4 + 8 + 2);
    const view = new DataView(bytes.buffer);
    view.setInt32(0, 8, true);
    view.setInt32(8, 5, true); // says 5 bytes, 2 follow
    assert.throws(() => parseLlama2cTokenizer(bytes), hasCode('FILE_INVALID'));
  });
});

describe(
  'Llama-2 32k vocabulary (llama2.c tokenizer.bin)',
  { skip: skipWithout(LLAMA2_TOKENIZER) },
  () => {
    it('reads 32000 pieces with BOS, EOS, UNK and the byte tokens', async () => {
      const t = await loadLlama2cTokenizer(LLAMA2_TOKENIZER);
      assert.equal(t.vocabSize, 32000);
      assert.deepEqual(pieces(t, [0, 1, 2, 3, 13, 9038]), [
        '<unk>',
        '<s>',
        '</s>',
        '<0x00>',
        '<0x0A>',
        '▁Once',
      ]);
      assert.equal(t.tokenType(1), TOKEN_TYPE.CONTROL);
      assert.equal(t.tokenType(13), TOKEN_TYPE.BYTE);
    });

    it('encodes "Once upon a time" as 9038, 2501, 263, 931', async () => {
      const t = await loadLlama2cTokenizer(LLAMA2_TOKENIZER);
      assert.deepEqual(t.encode('Once upon a time', { addBos: false }), [9038, 2501, 263, 931]);
      assert.deepEqual(t.encode('Once upon a time'), [1, 9038, 2501, 263, 931]);
    });

    it('round-trips text with and without BOS, non-ASCII and emoji included', async () => {
      const t = await loadLlama2cTokenizer(LLAMA2_TOKENIZER);
      for (const text of ROUND_TRIP) {
        assert.equal(t.decode(t.encode(text)), text, JSON.stringify(text));
        assert.equal(t.decode(t.encode(text, { addBos: false })), text, JSON.stringify(text));
      }
      assert.deepEqual(pieces(t, t.encode('naïve café', { addBos: false })), [
        '▁na',
        'ï',
        've',
        '▁c',
        'afé',
      ]);
      const emoji = pieces(t, t.encode('😀', { addBos: false }));
      assert.deepEqual(emoji, ['▁', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
    });
  },
);

describe(
  'aidreams260K vocabulary',
  { skip: skipWithout(AIDREAMS_GGUF, AIDREAMS_TOKENIZER) },
  () => {
    it('tokenizes "Echoes of" from the GGUF metadata and round-trips it', async () => {
      const file = await readGguf(AIDREAMS_GGUF);
      const t = SentencePieceTokenizer.fromGguf(file.metadata);
      assert.equal(t.vocabSize, 512);
      const ids = t.encode('Echoes of');
      assert.deepEqual(ids, [1, 388, 355, 260, 275]);
      assert.deepEqual(pieces(t, ids), ['<s>', '▁E', 'cho', 'es', '▁of']);
      assert.equal(t.decode(ids), 'Echoes of');
      for (const text of ROUND_TRIP) assert.equal(t.decode(t.encode(text)), text);
    });

    it('gives the same ids from the GGUF as from llama2.c tok512.bin', async () => {
      const fromGguf = SentencePieceTokenizer.fromGguf((await readGguf(AIDREAMS_GGUF)).metadata);
      const fromBin = await loadLlama2cTokenizer(AIDREAMS_TOKENIZER);
      for (let id = 0; id < 512; id++) assert.equal(fromBin.piece(id), fromGguf.piece(id));
      for (const text of [...ROUND_TRIP, '"Echoes of vectors unfold, a gentle hum of precision"']) {
        assert.deepEqual(fromBin.encode(text), fromGguf.encode(text), text);
      }
    });
  },
);
