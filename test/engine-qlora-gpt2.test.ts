import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  GGML_TYPE,
  GPT2_LORA_TARGETS,
  Gpt2TrainingModel,
  LoraAdapter,
  Prng,
  Trainer,
  TypeScriptBackend,
  isQuantized,
  loadGpt2Gguf,
  makeTrainBatch,
  quantizeGpt2Base,
  trainingWeightBytes,
  type Gpt2Model,
} from '../src/engine/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';
import { writeRandomGpt2 } from './helpers/models.ts';

// dim and hidden in whole blocks of 32, as Q8_0/Q4_0 rows need.
const SHAPE = { dim: 64, hidden: 256, layers: 2, heads: 4, kvHeads: 4, context: 32, tied: true };

let dir: string;
let model: Gpt2Model;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'openledger-qlora-gpt2-'));
  const file = path.join(dir, 'gpt2.gguf');
  await writeRandomGpt2(file, SHAPE, () => GGML_TYPE.F32, 17);
  model = await loadGpt2Gguf(file);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Repeating strides through the vocabulary: a pattern a LoRA can learn in a few steps. */
function sequences(count: number, length: number, vocab: number, seed = 3): number[][] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => {
    const start = Math.floor(prng.uniform() * vocab);
    const stride = 1 + Math.floor(prng.uniform() * 3);
    return Array.from({ length }, (_, t) => (start + t * stride) % vocab);
  });
}

const hasCode = (code: string, pattern: RegExp) => (e: OpenLedgerError) =>
  e.code === code && pattern.test(e.message);

describe('QLoRA on a GPT-2 base', () => {
  it('keeps the four projections in 8-bit or 4-bit blocks and still lowers the loss', async (t) => {
    const config = model.config;
    const batch = makeTrainBatch(sequences(8, 17, config.vocabSize).map((tokens) => ({ tokens })));
    const lora = { rank: 4, alpha: 8, dropout: 0, targets: [...GPT2_LORA_TARGETS] };
    const floatBytes = trainingWeightBytes(model.weights);
    for (const bits of ['q8_0', 'q4_0'] as const) {
      const weights = quantizeGpt2Base(model, bits);
      const layer = weights.layers[0]!;
      for (const key of ['attnQkv', 'attnOutput', 'ffnUp', 'ffnDown'] as const)
        assert.ok(isQuantized(layer[key]), key);
      assert.ok(
        layer.attnQkvBias instanceof Float32Array && layer.attnNorm instanceof Float32Array,
      );
      assert.equal(weights.output, weights.tokenEmbd, 'the tied classifier stays shared');
      const bytes = trainingWeightBytes(weights);
      // the float model is unchanged (quantizeGpt2Base copies)
      assert.ok(model.weights.layers[0]!.attnQkv instanceof Float32Array);

      const trainer = new Trainer({ config, weights }, LoraAdapter.create(config, lora, 5), {
        backend: new TypeScriptBackend(),
        learningRate: 2e-2,
        totalSteps: 15,
        warmupSteps: 2,
        seed: 5,
      });
      const losses: number[] = [];
      for (let s = 0; s < 15; s++) losses.push((await trainer.trainStep([batch])).loss);
      const after = await trainer.evaluate([batch]);
      t.diagnostic(
        `${bits}: base ${bytes} of ${floatBytes} bytes (${((100 * bytes) / floatBytes).toFixed(0)} %); loss ${losses[0]!.toFixed(3)} → ${after.toFixed(3)}`,
      );
      // Projections are 3·64·64 + 64·64 + 2·64·256 of the 2 layers' floats; embeddings stay float.
      const projFloat = 2 * 4 * (4 * 64 * 64 + 2 * 64 * 256);
      const ratio = bits === 'q8_0' ? 34 / 128 : 18 / 128; // bytes per 32 values / float32's
      assert.equal(bytes, floatBytes - projFloat + projFloat * ratio);
      assert.ok(after < 0.8 * losses[0]!, `${bits}: ${losses[0]} → ${after}`);
    }
  });

  it('the quantized base gives the float base’s loss up to quantization error', async () => {
    const config = model.config;
    const batch = makeTrainBatch(sequences(2, 17, config.vocabSize).map((tokens) => ({ tokens })));
    const loss = async (weights: Gpt2Model['weights'] | ReturnType<typeof quantizeGpt2Base>) => {
      const adapter = LoraAdapter.create(
        config,
        { rank: 4, alpha: 8, dropout: 0, targets: ['attn_qkv'] },
        1,
      );
      return (await new Gpt2TrainingModel({ config, weights }, adapter).forward(batch)).loss;
    };
    const float = await loss(model.weights);
    const q8 = await loss(quantizeGpt2Base(model, 'q8_0'));
    const q4 = await loss(quantizeGpt2Base(model, 'q4_0'));
    assert.ok(q8 !== float && Math.abs(q8 - float) < 0.01 * float, `${float} vs q8 ${q8}`);
    assert.ok(Math.abs(q4 - float) < 0.1 * float, `${float} vs q4 ${q4}`);
  });

  it('refuses full training of a quantized base, a misshapen quantized weight, odd rows', async () => {
    const config = model.config;
    const weights = quantizeGpt2Base(model, 'q8_0');
    assert.throws(
      () => new Gpt2TrainingModel({ config, weights }, null, { trainBase: true }),
      hasCode('VALIDATION_FAILED', /float32 base weights; blk\.0\.attn_qkv\.weight is quantized/),
    );
    const wrong = { ...weights, layers: weights.layers.map((l) => ({ ...l })) };
    wrong.layers[1]!.attnOutput = weights.layers[1]!.ffnUp;
    const adapter = LoraAdapter.create(
      config,
      { rank: 2, alpha: 2, dropout: 0, targets: ['attn_qkv'] },
      1,
    );
    assert.throws(
      () => new Gpt2TrainingModel({ config, weights: wrong }, adapter),
      hasCode('VALIDATION_FAILED', /blk\.1\.attn_output\.weight is 256×64, not 64×64/),
    );
    const odd = path.join(dir, 'odd.gguf');
    await writeRandomGpt2(odd, { ...SHAPE, dim: 40, hidden: 160, heads: 4 }, () => GGML_TYPE.F32);
    const oddModel = await loadGpt2Gguf(odd);
    assert.throws(
      () => quantizeGpt2Base(oddModel, 'q4_0'),
      hasCode('VALIDATION_FAILED', /blocks of 32/),
    );
    assert.throws(
      () => quantizeGpt2Base(model, 'q2' as never),
      hasCode('VALIDATION_FAILED', /not one of q8_0, q4_0/),
    );
  });
});
