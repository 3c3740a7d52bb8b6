import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  GGML_TYPE,
  HALF_TO_FLOAT,
  bf16ToFloat,
  dequantize,
  encodeGguf,
  floatToBf16,
  floatToHalf,
  gguf,
  ggufArray,
  ggufBool,
  ggufNumber,
  ggufString,
  halfToFloat,
  llamaHyperparams,
  quantize,
  readGguf,
  writeGguf,
} from '../src/engine/gguf/index.ts';
import type { GgufMetadata, GgufTensorInput, GgufValue } from '../src/engine/gguf/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIXTURES = path.resolve(ROOT, '..', 'shared', 'fixtures', 'models');
const GGUF_FIXTURE = path.join(FIXTURES, 'aidreams260K.gguf');
const BIN_FIXTURE = path.join(FIXTURES, 'aidreams260K.bin');
const skipWithout = (file: string): false | string =>
  existsSync(file) ? false : `fixture absent: ${path.relative(ROOT, file)}`;

/** A deterministic generator (LCG) of uniform and normal numbers. */
function random(seed: number): { uniform: () => number; normal: () => number } {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  const normal = (): number =>
    Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

function rejectsWith(code: string, pattern: RegExp): (error: OpenLedgerError) => boolean {
  return (error) => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('GGUF: the aidreams260K fixture', { skip: skipWithout(GGUF_FIXTURE) }, () => {
  it('reads the header: version, architecture, hyperparameters, vocabulary', async () => {
    const file = await readGguf(GGUF_FIXTURE);
    assert.equal(file.version, 3);
    assert.equal(file.alignment, 32);
    assert.equal(file.dataOffset % 32, 0);
    assert.equal(ggufString(file.metadata, 'general.architecture'), 'llama');
    const hp = llamaHyperparams(file.metadata);
    assert.deepEqual(
      {
        arch: hp.arch,
        dim: hp.embeddingLength,
        layers: hp.blockCount,
        heads: hp.headCount,
        kvHeads: hp.headCountKv,
        hidden: hp.feedForwardLength,
        context: hp.contextLength,
        vocab: hp.vocabSize,
        headDim: hp.headDim,
        ropeFreqBase: hp.ropeFreqBase,
      },
      {
        arch: 'llama',
        dim: 64,
        layers: 4,
        heads: 4,
        kvHeads: 4,
        hidden: 172,
        context: 128,
        vocab: 512,
        headDim: 16,
        ropeFreqBase: 10000,
      },
    );
    assert.equal(hp.rmsEps, Math.fround(1e-5));
    const tokens = ggufArray(file.metadata, 'tokenizer.ggml.tokens', 'string');
    assert.equal(tokens.length, 512);
    assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
    assert.equal(ggufArray(file.metadata, 'tokenizer.ggml.scores', 'float32').length, 512);
    assert.deepEqual(
      [...ggufArray(file.metadata, 'tokenizer.ggml.token_type', 'int32').subarray(0, 4)],
      [2, 3, 3, 6],
    );
    assert.equal(ggufBool(file.metadata, 'tokenizer.ggml.add_bos_token'), true);
    assert.equal(ggufNumber(file.metadata, 'tokenizer.ggml.eos_token_id'), 2);
  });

  it('has the llama tensors, with dims that match the hyperparameters', async () => {
    const file = await readGguf(GGUF_FIXTURE);
    const {
      embeddingLength: dim,
      feedForwardLength: hidden,
      vocabSize,
      blockCount,
    } = llamaHyperparams(file.metadata);
    const kvDim = dim; // 4 heads, 4 kv heads
    const expected: [string, number[]][] = [['token_embd.weight', [dim, vocabSize]]];
    for (let l = 0; l < blockCount; l++) {
      expected.push(
        [`blk.${l}.attn_norm.weight`, [dim]],
        [`blk.${l}.attn_q.weight`, [dim, dim]],
        [`blk.${l}.attn_k.weight`, [dim, kvDim]],
        [`blk.${l}.attn_v.weight`, [dim, kvDim]],
        [`blk.${l}.attn_output.weight`, [dim, dim]],
        [`blk.${l}.ffn_norm.weight`, [dim]],
        [`blk.${l}.ffn_gate.weight`, [dim, hidden]],
        [`blk.${l}.ffn_down.weight`, [hidden, dim]],
        [`blk.${l}.ffn_up.weight`, [dim, hidden]],
      );
    }
    expected.push(['output_norm.weight', [dim]]);
    assert.deepEqual(
      file.tensors.map((t) => [t.name, t.dims]),
      expected,
    );
    let next = 0;
    for (const tensor of file.tensors) {
      assert.equal(tensor.typeName, 'F32');
      assert.equal(tensor.byteLength, tensor.elementCount * 4);
      assert.equal(tensor.offset, next, `${tensor.name} follows the previous tensor`);
      next += Math.ceil(tensor.byteLength / 32) * 32;
    }
    assert.equal(file.dataOffset + next, file.fileSize);
  });

  it('holds finite weights of plausible magnitude', async () => {
    const file = await readGguf(GGUF_FIXTURE);
    for (const tensor of file.tensors) {
      const values = await file.tensorFloat32(tensor);
      let max = 0;
      let squares = 0;
      for (const v of values) {
        assert.ok(Number.isFinite(v), `${tensor.name} has a non-finite value`);
        max = Math.max(max, Math.abs(v));
        squares += v * v;
      }
      const rms = Math.sqrt(squares / values.length);
      assert.ok(max < 10, `${tensor.name}: max |w| = ${max}`);
      assert.ok(rms > 1e-3 && rms < 5, `${tensor.name}: rms = ${rms}`);
    }
  });

  it(
    'matches the llama2.c checkpoint bit for bit',
    { skip: skipWithout(BIN_FIXTURE) },
    async () => {
      const file = await readGguf(GGUF_FIXTURE);
      const bin = await readFile(BIN_FIXTURE);
      // llama2.c header: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len)
      const [dim, hidden, layers, heads, kvHeads, vocab] = Array.from({ length: 7 }, (_, i) =>
        bin.readInt32LE(4 * i),
      ) as [number, number, number, number, number, number, number];
      assert.deepEqual([dim, hidden, layers, heads, kvHeads, vocab], [64, 172, 4, 4, 4, 512]);
      const kvDim = (dim * kvHeads) / heads;

      // Then float32 arrays in this order, each stacked over the layers.
      let at = 28;
      const take = (count: number): Buffer => bin.subarray(at, (at += 4 * count));
      const token = take(vocab * dim);
      const perLayer = (name: string, size: number): [string, Buffer][] =>
        Array.from({ length: layers }, (_, l) => [`blk.${l}.${name}.weight`, take(size)]);
      const expected: [string, Buffer][] = [
        ['token_embd.weight', token],
        ...perLayer('attn_norm', dim),
        ...perLayer('attn_q', dim * dim),
        ...perLayer('attn_k', dim * kvDim),
        ...perLayer('attn_v', dim * kvDim),
        ...perLayer('attn_output', dim * dim),
        ...perLayer('ffn_norm', dim),
        ...perLayer('ffn_gate', hidden * dim),
        ...perLayer('ffn_down', dim * hidden),
        ...perLayer('ffn_up', hidden * dim),
        ['output_norm.weight', take(dim)],
      ];

      const embedding = await file.tensorFloat32('token_embd.weight');
      const first = Array.from({ length: 8 }, (_, i) => token.readFloatLE(4 * i));
      assert.deepEqual([...embedding.subarray(0, 8)], first);
      for (const [name, bytes] of expected) {
        const data = await file.tensorData(name);
        assert.ok(Buffer.from(data).equals(bytes), `${name} differs from the llama2.c checkpoint`);
      }
    },
  );

  it('reads the same header from a path (in small steps) as from the bytes', async () => {
    const bytes = new Uint8Array(await readFile(GGUF_FIXTURE));
    const fromBytes = await readGguf(bytes);
    const fromPath = await readGguf(GGUF_FIXTURE, { initialReadBytes: 64 });
    assert.deepEqual(fromPath.metadata, fromBytes.metadata);
    assert.deepEqual(fromPath.tensors, fromBytes.tensors);
    assert.equal(fromPath.dataOffset, fromBytes.dataOffset);
    const name = 'blk.3.ffn_down.weight';
    assert.deepEqual(await fromPath.tensorData(name), await fromBytes.tensorData(name));
  });

  it('re-encodes to the identical file', async () => {
    const bytes = new Uint8Array(await readFile(GGUF_FIXTURE));
    const file = await readGguf(bytes);
    const tensors = await Promise.all(
      file.tensors.map(async (t) => ({
        name: t.name,
        dims: t.dims,
        type: t.type,
        data: await file.tensorData(t),
      })),
    );
    assert.equal(sha256(encodeGguf({ metadata: file.metadata, tensors })), sha256(bytes));
  });
});

describe('GGUF: half and bfloat16', () => {
  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const value = halfToFloat(h);
      assert.equal(HALF_TO_FLOAT[h], Math.fround(value));
      if (Number.isNaN(value)) assert.equal(floatToHalf(value) & 0x7e00, 0x7e00);
      else if (floatToHalf(value) !== h) assert.fail(`half 0x${h.toString(16)} → ${value} → back`);
    }
  });

  it('rounds to nearest, ties to even, like F16C', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [1 + 2 ** -11, 0x3c00], // tie, 0x3c00 is even
      [1 + 3 * 2 ** -11, 0x3c02], // tie, rounds up to even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01],
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00], // tie between 65504 and the next (Inf): to even
      [1e6, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie with zero: to even
      [1.5 * 2 ** -25, 0x0001],
      [2 ** -14 - 2 ** -25, 0x0400], // subnormal tie rounds up into the smallest normal
      [-0, 0x8000],
    ];
    for (const [value, half] of cases) {
      assert.equal(floatToHalf(value), half, `floatToHalf(${value})`);
    }
    assert.equal(floatToHalf(NaN) & 0x7e00, 0x7e00);
  });

  it('encodes bfloat16 as ggml does', () => {
    assert.equal(floatToBf16(1), 0x3f80);
    assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // tie to even
    assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(floatToBf16(-Infinity), 0xff80);
    assert.equal(floatToBf16(NaN) & 0x7fc0, 0x7fc0); // quiet NaN
    assert.equal(bf16ToFloat(0x3f80), 1);
    assert.equal(bf16ToFloat(0xc040), -3);
    for (let h = 0; h < 0x10000; h += 7) {
      const value = bf16ToFloat(h);
      if (!Number.isNaN(value)) assert.equal(floatToBf16(value), h);
    }
  });
});

describe('GGUF: dequantization of hand-built blocks', () => {
  const half = (value: number): number[] => {
    const h = floatToHalf(value);
    return [h & 0xff, h >> 8];
  };

  it('Q8_0: element = int8 · d', () => {
    const qs = Array.from({ length: 32 }, (_, j) => [-128, -1, 0, 1, 127][j % 5]!);
    const block = Uint8Array.from([...half(0.25), ...qs.map((q) => q & 0xff)]);
    assert.deepEqual(
      dequantize(GGML_TYPE.Q8_0, block),
      Float32Array.from(qs, (q) => q * 0.25),
    );
  });

  it('Q4_0: low nibbles are elements 0..15, high nibbles 16..31, value (q − 8)·d', () => {
    const block = Uint8Array.from([
      ...half(0.5),
      ...Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4)),
    ]);
    const expected = new Float32Array(32);
    for (let j = 0; j < 16; j++) {
      expected[j] = (j - 8) * 0.5;
      expected[j + 16] = (15 - j - 8) * 0.5;
    }
    assert.deepEqual(dequantize(GGML_TYPE.Q4_0, block), expected);
  });

  it('Q4_K: 6-bit scales and mins packed as get_scale_min_k4 reads them', () => {
    const scales = [1, 2, 3, 4, 17, 33, 50, 63];
    const mins = [0, 5, 10, 15, 20, 40, 60, 63];
    // Bytes 0..3: scales 0..3 + top 2 bits of scales 4..7; bytes 4..7: mins 0..3 + top 2 bits of
    // mins 4..7; bytes 8..11: low nibbles of scale (low) and min (high) of sub-blocks 4..7.
    const packed = new Uint8Array(12);
    for (let j = 0; j < 4; j++) {
      packed[j] = scales[j]! | ((scales[j + 4]! >> 4) << 6);
      packed[j + 4] = mins[j]! | ((mins[j + 4]! >> 4) << 6);
      packed[j + 8] = (scales[j + 4]! & 15) | ((mins[j + 4]! & 15) << 4);
    }
    const d = 0.5;
    const dmin = 0.25;
    const qs = new Uint8Array(128);
    const expected = new Float32Array(256);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const low = (l + c) % 16; // element 64c + l, sub-block 2c
        const high = (3 * l + c) % 16; // element 64c + 32 + l, sub-block 2c + 1
        qs[32 * c + l] = low | (high << 4);
        expected[64 * c + l] = d * scales[2 * c]! * low - dmin * mins[2 * c]!;
        expected[64 * c + 32 + l] = d * scales[2 * c + 1]! * high - dmin * mins[2 * c + 1]!;
      }
    }
    const block = Uint8Array.from([...half(d), ...half(dmin), ...packed, ...qs]);
    assert.equal(block.length, 144);
    assert.deepEqual(dequantize(GGML_TYPE.Q4_K, block), expected);
  });

  it('Q6_K: 4 + 2 bit quants, int8 scales per 16 elements', () => {
    const d = 0.5;
    const scales = Int8Array.from({ length: 16 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1));
    const q6 = Array.from({ length: 256 }, (_, e) => (e * 7) % 64);
    const ql = new Uint8Array(128);
    const qh = new Uint8Array(64);
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const [a, b, c, e] = [0, 32, 64, 96].map((k) => q6[128 * h + k + l]!) as [
          number,
          number,
          number,
          number,
        ];
        ql[64 * h + l] = (a & 15) | ((c & 15) << 4);
        ql[64 * h + l + 32] = (b & 15) | ((e & 15) << 4);
        qh[32 * h + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
    const block = Uint8Array.from([...ql, ...qh, ...new Uint8Array(scales.buffer), ...half(d)]);
    assert.equal(block.length, 210);
    const expected = Float32Array.from(q6, (q, e) => d * scales[e >> 4]! * (q - 32));
    assert.deepEqual(dequantize(GGML_TYPE.Q6_K, block), expected);
  });

  it('F16 and BF16 decode bit for bit', () => {
    const values = [0, -0, 1, -2.5, 65504, 2 ** -24];
    const f16 = new Uint8Array(new Uint16Array(values.map(floatToHalf)).buffer);
    assert.deepEqual(dequantize(GGML_TYPE.F16, f16), Float32Array.from(values));
    const bf = new Uint8Array(new Uint16Array(values.map(floatToBf16)).buffer);
    assert.deepEqual(
      dequantize(GGML_TYPE.BF16, bf),
      Float32Array.from(values.map((v) => bf16ToFloat(floatToBf16(v)))),
    );
  });

  it('refuses types it cannot convert', () => {
    assert.throws(
      () => dequantize(GGML_TYPE.IQ2_XXS, new Uint8Array(66)),
      rejectsWith('GGUF_UNSUPPORTED', /cannot dequantize IQ2_XXS/),
    );
    assert.throws(
      () => dequantize(GGML_TYPE.Q8_0, new Uint8Array(35)),
      rejectsWith('GGUF_INVALID', /not a whole number of 34-byte blocks/),
    );
    assert.throws(
      () => quantize(GGML_TYPE.Q8_0, new Float32Array(31)),
      rejectsWith('GGUF_INVALID', /do not fill whole blocks of 32/),
    );
    assert.throws(
      () =>
        quantize(
          GGML_TYPE.Q4_0,
          Float32Array.from({ length: 32 }, (_, i) => (i === 5 ? NaN : i)),
        ),
      rejectsWith('GGUF_INVALID', /element 5 is NaN/),
    );
  });
});

describe('GGUF: quantization', () => {
  // llama.cpp tests/test-quantize-fns.cpp: 0.1 + 2·cos(i), 32·128 values, and the "total
  // quantization error" sqrt(Σ(x − y)²)/n, which must stay under 0.002 for these types.
  const cosData = Float32Array.from(
    { length: 32 * 128 },
    (_, i) => 0.1 + 2 * Math.fround(Math.cos(i)),
  );
  const totalError = (x: Float32Array, y: Float32Array): number => {
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += (x[i]! - y[i]!) ** 2;
    return Math.sqrt(sum) / x.length;
  };

  it("gives the same bytes as ggml's reference C (quantize_row_*_ref, no FMA contraction)", () => {
    // Hashes of ggml's own output on this input, from its C source compiled with -ffp-contract=off.
    const golden: [number, string][] = [
      [GGML_TYPE.Q4_0, '523b1fd831e754976826ad4ad397539e8a9f09a6de2ac7cfb7bd60a593d63e61'],
      [GGML_TYPE.Q8_0, '11f834840a5011cb4d72fc8604d8ded68163d196dd4f8bdc2ea56d5b40b10a2f'],
      [GGML_TYPE.Q4_K, 'c5b0ab128cca90695c2d3234c8d54a7bc3e0ea0e1e15366b4d175628cc72c2c6'],
      [GGML_TYPE.F16, 'f72882f22e747423f2238bf0ad04f7190a801f9cdb831cad3f06ee12a6eed3c8'],
      [GGML_TYPE.BF16, '3e67626ffd816e79befc587e4d2165a01b14e70aac85652acb1f01c329e496ca'],
    ];
    for (const [type, hash] of golden)
      assert.equal(sha256(quantize(type, cosData)), hash, `type ${type}`);
  });

  it("keeps llama.cpp's total-error bound for Q8_0, Q4_0 and Q4_K", () => {
    for (const type of [GGML_TYPE.Q8_0, GGML_TYPE.Q4_0, GGML_TYPE.Q4_K]) {
      const error = totalError(cosData, dequantize(type, quantize(type, cosData)));
      assert.ok(error < 0.002, `type ${type}: ${error}`);
    }
  });

  it('Q8_0 is within d/2 of each value (plus the rounding of d to half)', () => {
    const rng = random(1);
    const x = Float32Array.from({ length: 32 * 200 }, () => rng.normal() * 0.05);
    const bytes = quantize(GGML_TYPE.Q8_0, x);
    const y = dequantize(GGML_TYPE.Q8_0, bytes);
    for (let b = 0; b < x.length / 32; b++) {
      const block = x.subarray(32 * b, 32 * b + 32);
      const d = Math.fround(Math.max(...block.map(Math.abs)) / 127);
      const stored = HALF_TO_FLOAT[bytes[34 * b]! | (bytes[34 * b + 1]! << 8)]!;
      // |q| ≤ 127, so storing d as a half adds at most 127·|d − stored|.
      const bound = d / 2 + 127 * Math.abs(d - stored) + 1e-9;
      for (let j = 0; j < 32; j++) {
        const error = Math.abs(block[j]! - y[32 * b + j]!);
        assert.ok(error <= bound, `block ${b}[${j}]: ${error} > ${bound}`);
      }
    }
  });

  it('Q4_0 is within |d|/2 of each value, except the clamped opposite extreme (within |d|)', () => {
    const rng = random(2);
    const x = Float32Array.from({ length: 32 * 200 }, () => rng.normal());
    const bytes = quantize(GGML_TYPE.Q4_0, x);
    const y = dequantize(GGML_TYPE.Q4_0, bytes);
    let clamped = 0;
    for (let b = 0; b < x.length / 32; b++) {
      const block = x.subarray(32 * b, 32 * b + 32);
      let max = 0;
      for (const v of block) if (Math.abs(v) > Math.abs(max)) max = v;
      const d = Math.fround(max / -8);
      const stored = HALF_TO_FLOAT[bytes[18 * b]! | (bytes[18 * b + 1]! << 8)]!;
      const slack = 8 * Math.abs(d - stored) + 1e-9; // |q − 8| ≤ 8
      for (let j = 0; j < 32; j++) {
        const error = Math.abs(block[j]! - y[32 * b + j]!);
        // x/d above 7.5 would need the level 16; it gets 15 (the value 7d).
        const isClamped = block[j]! / d > 7.5;
        if (isClamped) clamped++;
        const bound = (isClamped ? Math.abs(d) : Math.abs(d) / 2) + slack;
        assert.ok(error <= bound, `block ${b}[${j}]: ${error} > ${bound}`);
      }
    }
    assert.ok(clamped > 0, 'the data exercises the clamp');
  });

  it('Q4_K reproduces 16-level data closely and has small error on normal data', () => {
    // Values that are exactly 16 levels of each sub-block come back nearly exact.
    const levels = Float32Array.from(
      { length: 512 },
      (_, i) => ((i * 5) % 16) * 0.01 - 0.03 * ((i >> 5) % 4),
    );
    const back = dequantize(GGML_TYPE.Q4_K, quantize(GGML_TYPE.Q4_K, levels));
    for (let i = 0; i < levels.length; i++) assert.ok(Math.abs(levels[i]! - back[i]!) < 2e-3);

    const rng = random(3);
    const x = Float32Array.from({ length: 256 * 64 }, () => rng.normal() * 0.02);
    const y = dequantize(GGML_TYPE.Q4_K, quantize(GGML_TYPE.Q4_K, x));
    let squares = 0;
    let errors = 0;
    for (let i = 0; i < x.length; i++) {
      squares += x[i]! ** 2;
      errors += (x[i]! - y[i]!) ** 2;
    }
    const relative = Math.sqrt(errors / squares);
    assert.ok(relative < 0.12, `relative RMS error ${relative}`);
  });
});

describe('GGUF: writing and reading back', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-gguf-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const every: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['general.alignment', gguf.uint32(64)],
    ['test.uint8', gguf.uint8(255)],
    ['test.int8', gguf.int8(-128)],
    ['test.uint16', gguf.uint16(65535)],
    ['test.int16', gguf.int16(-32768)],
    ['test.uint32', gguf.uint32(0xffffffff)],
    ['test.int32', gguf.int32(-0x80000000)],
    ['test.float32', gguf.float32(Math.fround(0.1))],
    ['test.float64', gguf.float64(Math.PI)],
    ['test.uint64', gguf.uint64(2n ** 64n - 1n)],
    ['test.int64', gguf.int64(-(2n ** 63n))],
    ['test.bool.true', gguf.bool(true)],
    ['test.bool.false', gguf.bool(false)],
    ['test.string', gguf.string('héllo ▁世界 🦙')],
    ['test.string.empty', gguf.string('')],
    ['test.array.uint8', gguf.array('uint8', [0, 1, 255])],
    ['test.array.int8', gguf.array('int8', [-128, 127])],
    ['test.array.uint16', gguf.array('uint16', [65535])],
    ['test.array.int16', gguf.array('int16', [-32768, 1])],
    ['test.array.uint32', gguf.array('uint32', [0xffffffff, 7])],
    ['test.array.int32', gguf.array('int32', [-1, 2, -3])],
    ['test.array.float32', gguf.array('float32', [0.5, -1.25, Infinity])],
    ['test.array.float64', gguf.array('float64', [Math.E, -0])],
    ['test.array.uint64', gguf.array('uint64', [0n, 2n ** 63n])],
    ['test.array.int64', gguf.array('int64', [-5n, 2n ** 62n])],
    ['test.array.bool', gguf.array('bool', [true, false, true])],
    ['test.array.string', gguf.array('string', ['a', '', 'ünï'])],
    ['test.array.empty', gguf.array('int32', [])],
    [
      'test.array.nested',
      gguf.array('array', [
        gguf.array('uint8', [1, 2]),
        gguf.array('string', ['x']),
        gguf.array('array', [gguf.array('float64', [1.5])]),
      ]),
    ],
  ];

  function sampleTensors(): { inputs: GgufTensorInput[]; values: Map<string, Float32Array> } {
    const rng = random(7);
    const values = new Map<string, Float32Array>();
    const make = (name: string, dims: number[], type: GgufTensorInput['type']): GgufTensorInput => {
      const count = dims.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: count }, () => rng.normal() * 0.5);
      values.set(name, data);
      return { name, dims, type, data };
    };
    const inputs = [
      make('f32', [8, 4], GGML_TYPE.F32),
      make('f16', [64, 2], GGML_TYPE.F16),
      make('bf16', [32, 3], GGML_TYPE.BF16),
      make('q8_0', [64, 4], GGML_TYPE.Q8_0),
      make('q4_0', [32, 8], GGML_TYPE.Q4_0),
      make('q4_k', [256, 2], GGML_TYPE.Q4_K),
      // Already-encoded bytes pass through untouched, whatever the type.
      { name: 'q6_k.raw', dims: [256], type: GGML_TYPE.Q6_K, data: new Uint8Array(210).fill(0x11) },
      { name: 'i8.raw', dims: [5], type: GGML_TYPE.I8, data: Uint8Array.from([1, 2, 3, 4, 5]) },
    ];
    return { inputs, values };
  }

  it('round-trips every metadata type and tensors of each type', async () => {
    const { inputs, values } = sampleTensors();
    const file = path.join(dir, 'models', 'sample.gguf');
    const written = await writeGguf(file, { metadata: new Map(every), tensors: inputs });
    assert.equal(written.alignment, 64);
    assert.deepEqual(await readdir(path.dirname(file)), ['sample.gguf'], 'no temporary file left');

    const onDisk = new Uint8Array(await readFile(file));
    assert.equal(onDisk.length, written.size);
    assert.equal(sha256(encodeGguf({ metadata: new Map(every), tensors: inputs })), sha256(onDisk));

    const back = await readGguf(file);
    assert.equal(back.version, 3);
    assert.equal(back.alignment, 64);
    assert.equal(back.dataOffset, written.dataOffset);
    assert.equal(back.dataOffset % 64, 0);
    assert.deepEqual(back.metadata, new Map(every));
    assert.deepEqual(
      back.tensors.map((t) => [t.name, t.dims, t.type]),
      inputs.map((t) => [t.name, t.dims, t.type]),
    );
    for (const t of back.tensors) assert.equal(t.offset % 64, 0, `${t.name} is aligned`);

    for (const input of inputs) {
      const data = await back.tensorData(input.name);
      const expected =
        input.data instanceof Float32Array ? quantize(input.type, input.data) : input.data;
      assert.deepEqual(data, expected, `${input.name} bytes`);
    }
    const f32 = await back.tensorFloat32('f32');
    assert.deepEqual(f32, values.get('f32'));
    const f16 = await back.tensorFloat32('f16');
    values.get('f16')!.forEach((x, i) => {
      assert.ok(Math.abs(x - f16[i]!) <= Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
    });
    const bf16 = await back.tensorFloat32('bf16');
    values
      .get('bf16')!
      .forEach((x, i) => assert.ok(Math.abs(x - bf16[i]!) <= Math.abs(x) * 2 ** -8));
    for (const [name, levels] of [
      ['q8_0', 127],
      ['q4_0', 8],
    ] as const) {
      const x = values.get(name)!;
      const y = await back.tensorFloat32(name);
      for (let b = 0; b < x.length / 32; b++) {
        const amax = Math.max(...x.subarray(32 * b, 32 * b + 32).map(Math.abs));
        const d = amax / levels;
        for (let j = 32 * b; j < 32 * b + 32; j++) {
          assert.ok(Math.abs(x[j]! - y[j]!) <= d * 1.07, `${name}[${j}]`); // d/2, or d when clamped
        }
      }
    }
    const q4k = await back.tensorFloat32('q4_k');
    assert.equal(q4k.length, 512);
  });

  it('writes and reads a header much larger than its first buffers (a 50k-token vocabulary)', async () => {
    const tokens = Array.from({ length: 50_000 }, (_, i) => `▁token${i}`);
    const metadata = new Map<string, GgufValue>([
      ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
      [
        'tokenizer.ggml.scores',
        gguf.array(
          'float32',
          Float32Array.from(tokens, (_, i) => -i),
        ),
      ],
      ['tokenizer.ggml.token_type', gguf.array('int32', new Int32Array(tokens.length).fill(1))],
    ]);
    const file = path.join(dir, 'vocab.gguf');
    const { dataOffset } = await writeGguf(file, { metadata });
    assert.ok(dataOffset > 1 << 20, `the header has ${dataOffset} bytes`);
    const back = await readGguf(file, { initialReadBytes: 65536 });
    assert.deepEqual(back.metadata, metadata);
  });

  it('reads a multi-GB file without loading it: the header now, one tensor on demand', async () => {
    // Declare a second tensor of 5 GiB, then extend the file sparsely to hold it.
    const small = Float32Array.from({ length: 32 }, (_, i) => i);
    const bytes = encodeGguf({
      metadata: { 'general.architecture': gguf.string('llama') },
      tensors: [
        { name: 'small', dims: [32], type: GGML_TYPE.F32, data: small },
        { name: 'huge', dims: [32, 1], type: GGML_TYPE.F32, data: new Float32Array(32) },
      ],
    });
    const rows = (5 * 2 ** 30) / 128;
    const hugeDims = Buffer.from(bytes).indexOf('huge') + 4 + 4 + 8; // name, n_dims, ne[0] → ne[1]
    new DataView(bytes.buffer).setBigUint64(hugeDims, BigInt(rows), true);
    const file = path.join(dir, 'huge.gguf');
    await writeFile(file, bytes);
    const parsed = await readGguf(bytes.subarray(0, bytes.length - 128)).catch(
      (error: Error) => error,
    );
    assert.match(String(parsed), /beyond the end of the file/);
    const header = await readGguf(file).catch((error: Error) => error);
    assert.match(String(header), /beyond the end of the file/);

    const dataOffset = bytes.length - 256;
    await truncate(file, dataOffset + 128 + 5 * 2 ** 30);
    const rssBefore = process.memoryUsage().rss;
    const gguf5 = await readGguf(file);
    assert.equal(gguf5.tensor('huge').byteLength, 5 * 2 ** 30);
    assert.deepEqual(await gguf5.tensorFloat32('small'), small);
    assert.ok(process.memoryUsage().rss - rssBefore < 256 * 2 ** 20, 'the file was not loaded');
  });

  it('refuses input it cannot write', async () => {
    const write =
      (input: Parameters<typeof encodeGguf>[0]): (() => Uint8Array) =>
      () =>
        encodeGguf(input);
    const tensor = (overrides: Partial<GgufTensorInput>): GgufTensorInput => ({
      name: 't',
      dims: [32],
      type: GGML_TYPE.F32,
      data: new Float32Array(32),
      ...overrides,
    });
    const cases: [() => Uint8Array, RegExp][] = [
      [write({ metadata: { k: gguf.uint8(256) } }), /256 is not a valid uint8/],
      [write({ metadata: { k: gguf.int32(1.5) } }), /1.5 is not a valid int32/],
      [
        write({ metadata: { k: { type: 'uint64', value: 5 } as unknown as GgufValue } }),
        /give a bigint/,
      ],
      [write({ metadata: { 'general.alignment': gguf.uint32(48) } }), /power of two/],
      [write({ metadata: {}, tensors: [tensor({ name: 'x'.repeat(64) })] }), /1 to 63 bytes/],
      [write({ metadata: {}, tensors: [tensor({}), tensor({})] }), /given twice/],
      [write({ metadata: {}, tensors: [tensor({ dims: [1, 2, 3, 4, 5] })] }), /5 dimensions/],
      [
        write({
          metadata: {},
          tensors: [tensor({ type: GGML_TYPE.Q8_0, dims: [16], data: new Float32Array(16) })],
        }),
        /not a multiple of 32/,
      ],
      [write({ metadata: {}, tensors: [tensor({ data: new Float32Array(31) })] }), /31 values/],
      [
        write({ metadata: {}, tensors: [tensor({ data: new Uint8Array(127) })] }),
        /127 bytes; 32 elements of F32 take 128/,
      ],
    ];
    for (const [run, pattern] of cases) assert.throws(run, rejectsWith('GGUF_INVALID', pattern));
    await assert.rejects(
      writeGguf(path.join(dir, 'bad.gguf'), { metadata: { k: gguf.uint8(-1) } }),
      rejectsWith('GGUF_INVALID', /-1 is not a valid uint8/),
    );
    assert.equal(existsSync(path.join(dir, 'bad.gguf')), false);
  });
});

describe('GGUF: corrupt and unsupported files', () => {
  // A small file: metadata of several types, two F32 tensors of 32 values.
  const sample = (): Uint8Array =>
    encodeGguf({
      metadata: new Map<string, GgufValue>([
        ['general.architecture', gguf.string('llama')],
        ['alpha.flag', gguf.bool(true)],
        ['alpha.list', gguf.array('uint32', [1, 2, 3])],
      ]),
      tensors: [
        { name: 'first.weight', dims: [32], type: GGML_TYPE.F32, data: new Float32Array(32) },
        { name: 'second.weight', dims: [32], type: GGML_TYPE.F32, data: new Float32Array(32) },
      ],
    });
  /** Where a field after a name or key starts: the name's bytes + `skip`. */
  const after = (bytes: Uint8Array, text: string, skip = 0): number => {
    const at = Buffer.from(bytes).indexOf(text);
    assert.ok(at > 0, `${text} is in the header`);
    return at + Buffer.byteLength(text) + skip;
  };
  const patch = (mutate: (bytes: Uint8Array, view: DataView) => void): Uint8Array => {
    const bytes = sample();
    mutate(bytes, new DataView(bytes.buffer));
    return bytes;
  };
  // A tensor info is: name, uint32 n_dims, uint64 ne[n_dims], uint32 type, uint64 offset.
  const offsetOf = (bytes: Uint8Array, name: string): number => after(bytes, name, 4 + 8 + 4);

  const cases: [string, Uint8Array, string, RegExp][] = [
    [
      'bad magic',
      patch((b) => b.set([0x50, 0x4b, 3, 4])),
      'GGUF_INVALID',
      /not a GGUF file: expected the magic "GGUF" \(47 47 55 46\) at offset 0, found "PK\\u0003\\u0004" \(50 4b 03 04\)/,
    ],
    [
      'empty input',
      new Uint8Array(0),
      'GGUF_INVALID',
      /truncated: the magic "GGUF" needs 4 bytes at offset 0/,
    ],
    [
      'truncated header',
      sample().subarray(0, 60),
      'GGUF_INVALID',
      /truncated: .* offset \d+, but the file ends at 60/,
    ],
    [
      'tensor data beyond the file',
      sample().subarray(0, sample().length - 1),
      'GGUF_INVALID',
      /tensor 'second.weight' \(128 bytes at offset \d+\) ends at \d+, beyond the end of the file/,
    ],
    [
      'misaligned tensor offset',
      patch((b, v) => v.setBigUint64(offsetOf(b, 'second.weight'), 132n, true)),
      'GGUF_INVALID',
      /tensor 'second.weight' has data offset 132 \(stored at \d+\), not a multiple of the alignment 32/,
    ],
    [
      'overlapping tensors',
      patch((b, v) => v.setBigUint64(offsetOf(b, 'second.weight'), 96n, true)),
      'GGUF_INVALID',
      /tensors 'first.weight' \[\d+, \d+\) and 'second.weight' \[\d+, \d+\) overlap/,
    ],
    ['GGUF v1', patch((_, v) => v.setUint32(4, 1, true)), 'GGUF_UNSUPPORTED', /version 1/],
    [
      'GGUF v4',
      patch((_, v) => v.setUint32(4, 4, true)),
      'GGUF_UNSUPPORTED',
      /version 4 is not supported/,
    ],
    ['big-endian', patch((_, v) => v.setUint32(4, 3, false)), 'GGUF_UNSUPPORTED', /big-endian/],
    [
      'a count beyond 2^53',
      patch((_, v) => v.setBigUint64(8, 2n ** 60n, true)),
      'GGUF_INVALID',
      /the tensor count at offset 8 is 1152921504606846976, beyond 2\^53 - 1/,
    ],
    [
      'a huge array count',
      patch((b, v) => v.setBigUint64(after(b, 'alpha.list', 4 + 4), 10n ** 12n, true)),
      'GGUF_INVALID',
      /'alpha.list' \(1000000000000 items of uint32\) need at least 4000000000000 bytes/,
    ],
    [
      'an unknown value type',
      patch((b, v) => v.setUint32(after(b, 'alpha.flag'), 13, true)),
      'GGUF_INVALID',
      /the value type of 'alpha.flag' at offset \d+ is 13/,
    ],
    [
      'a bool stored as 2',
      patch((b) => (b[after(b, 'alpha.flag', 4)] = 2)),
      'GGUF_INVALID',
      /bool stored as 2/,
    ],
    [
      'a duplicate key',
      patch((b) => b.set(Buffer.from('alpha.flag'), after(b, 'alpha.flag', 4 + 1 + 8))),
      'GGUF_INVALID',
      /metadata key 'alpha.flag' appears twice \(again at offset \d+\)/,
    ],
    [
      'an unknown tensor type',
      patch((b, v) => v.setUint32(after(b, 'first.weight', 4 + 8), 99, true)),
      'GGUF_UNSUPPORTED',
      /tensor 'first.weight' has ggml type 99/,
    ],
    [
      'five dimensions',
      patch((b, v) => v.setUint32(after(b, 'first.weight'), 5, true)),
      'GGUF_INVALID',
      /tensor 'first.weight' has 5 dimensions/,
    ],
    [
      'invalid UTF-8',
      patch((b) => (b[after(b, 'general.architecture', 4 + 8)] = 0xff)),
      'GGUF_INVALID',
      /'general.architecture' \(5 bytes at offset \d+\) is not valid UTF-8/,
    ],
  ];

  for (const [what, bytes, code, pattern] of cases) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(readGguf(bytes), rejectsWith(code, pattern));
    });
  }

  it('names the file and offset when reading from a path', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'openledger-gguf-bad-'));
    try {
      const file = path.join(dir, 'cut.gguf');
      await writeFile(file, sample().subarray(0, 60));
      await assert.rejects(
        readGguf(file, { initialReadBytes: 16 }),
        rejectsWith(
          'GGUF_INVALID',
          new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: truncated: .* offset \\d+`),
        ),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad general.alignment', async () => {
    const bytes = encodeGguf({ metadata: { 'general.alignment': gguf.uint32(64) } });
    new DataView(bytes.buffer).setUint32(after(bytes, 'general.alignment', 4), 48, true);
    await assert.rejects(
      readGguf(bytes),
      rejectsWith('GGUF_INVALID', /'general.alignment' is 48, not a power of two/),
    );
  });
});

describe('GGUF: metadata accessors and hyperparameters', () => {
  const base = (arch: string, extra: [string, GgufValue][] = []): GgufMetadata =>
    new Map<string, GgufValue>([
      ['general.architecture', gguf.string(arch)],
      [`${arch}.context_length`, gguf.uint32(32768)],
      [`${arch}.embedding_length`, gguf.uint32(896)],
      [`${arch}.block_count`, gguf.uint32(24)],
      [`${arch}.feed_forward_length`, gguf.uint32(4864)],
      [`${arch}.attention.head_count`, gguf.uint32(14)],
      ['tokenizer.ggml.tokens', gguf.array('string', ['a', 'b', 'c'])],
      ...extra,
    ]);

  it('reads qwen2 with grouped-query attention and its RoPE base', () => {
    const hp = llamaHyperparams(
      base('qwen2', [
        ['qwen2.attention.head_count_kv', gguf.uint32(2)],
        ['qwen2.rope.freq_base', gguf.float32(1000000)],
        ['qwen2.attention.layer_norm_rms_epsilon', gguf.float32(1e-6)],
      ]),
    );
    assert.deepEqual(
      [hp.arch, hp.headCount, hp.headCountKv, hp.headDim, hp.ropeFreqBase, hp.vocabSize, hp.norm],
      ['qwen2', 14, 2, 64, 1000000, 3, 'rms'],
    );
  });

  it('reads gpt2: LayerNorm epsilon, learned positions, kv heads = heads', () => {
    const hp = llamaHyperparams(
      base('gpt2', [
        ['gpt2.attention.layer_norm_epsilon', gguf.float32(1e-5)],
        ['gpt2.vocab_size', gguf.uint32(50257)],
      ]),
    );
    assert.deepEqual(
      [hp.arch, hp.headCountKv, hp.norm, hp.positions, hp.vocabSize, hp.rmsEps],
      ['gpt2', 14, 'layer', 'learned', 50257, Math.fround(1e-5)],
    );
  });

  it('explains what is missing or wrong', () => {
    const meta = base('llama', [['big', gguf.uint64(2n ** 60n)]]);
    assert.throws(
      () => llamaHyperparams(meta),
      rejectsWith('GGUF_INVALID', /no key 'llama.attention.layer_norm_rms_epsilon'/),
    );
    assert.throws(
      () => llamaHyperparams(base('mamba')),
      rejectsWith('GGUF_UNSUPPORTED', /'mamba' is not supported/),
    );
    assert.throws(
      () => ggufString(meta, 'llama.block_count'),
      rejectsWith('GGUF_INVALID', /has type uint32, expected a string/),
    );
    assert.throws(
      () => ggufNumber(meta, 'big'),
      rejectsWith('GGUF_INVALID', /beyond Number.MAX_SAFE_INTEGER/),
    );
    assert.throws(
      () => ggufArray(meta, 'tokenizer.ggml.tokens', 'int32'),
      rejectsWith('GGUF_INVALID', /has type array of string, expected an array of int32/),
    );
    assert.equal(ggufNumber(meta, 'absent', 7), 7);
    assert.equal(ggufString(meta, 'absent', 'x'), 'x');
    const uneven = base('llama', [
      ['llama.attention.layer_norm_rms_epsilon', gguf.float32(1e-5)],
      ['llama.attention.head_count_kv', gguf.array('uint32', [2, 2, 7])],
    ]);
    assert.throws(
      () => llamaHyperparams(uneven),
      rejectsWith('GGUF_UNSUPPORTED', /differs between layers/),
    );
  });
});
