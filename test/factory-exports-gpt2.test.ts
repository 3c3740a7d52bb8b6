import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  GGML_TYPE,
  GPT2_LORA_TARGETS,
  LoraAdapter,
  Prng,
  loadGpt2Gguf,
  readGguf,
  type Gpt2LoraTarget,
  type Gpt2Model,
} from '../src/engine/index.ts';
import { readSafetensors } from '../src/engine/safetensors.ts';
import { mergedGguf, peftBaseOf, peftFiles, peftGpt2Key } from '../src/factory/exports.ts';
import type { OpenLedgerError } from '../src/errors.ts';
import { writeRandomGpt2 } from './helpers/models.ts';

const SHAPE = { dim: 16, hidden: 64, layers: 2, heads: 2, kvHeads: 2, context: 32, tied: false };

let dir: string;
let file: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'openledger-exports-gpt2-'));
  file = path.join(dir, 'gpt2.gguf');
  await writeRandomGpt2(file, SHAPE, () => GGML_TYPE.F32, 21);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An adapter of `targets` with random B (training starts B at zero), so each pair matters. */
function randomAdapter(base: Gpt2Model, targets: readonly Gpt2LoraTarget[], seed: number) {
  const adapter = LoraAdapter.create(base.config, { rank: 4, alpha: 8, dropout: 0, targets }, seed);
  const random = new Prng(seed + 1);
  for (const layer of adapter.layers)
    for (const pair of Object.values(layer))
      for (let i = 0; i < pair.b.length; i++) pair.b[i] = 0.05 * random.normal();
  return adapter;
}

/** [rows][cols] → [cols][rows]. */
function transposed(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j]!;
  return t;
}

describe('PEFT export of a GPT-2 adapter', () => {
  it('has the keys, shapes and config PEFT writes for GPT2LMHeadModel (Conv1D: fan_in_fan_out)', async () => {
    const base = await loadGpt2Gguf(file);
    const adapter = randomAdapter(base, GPT2_LORA_TARGETS, 5);
    const files = peftFiles(adapter, peftBaseOf(await readGguf(file), 'gpt2-random'));
    const config = JSON.parse(Buffer.from(files[0]!.bytes).toString('utf8'));
    assert.equal(config.fan_in_fan_out, true);
    assert.deepEqual(config.target_modules, ['c_attn', 'c_fc', 'c_proj']);
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.equal(config.base_model_name_or_path, 'gpt2-random');
    assert.deepEqual(Object.keys(config), Object.keys(config).sort());

    const st = await readSafetensors(files[1]!.bytes);
    const { dim, hiddenDim } = base.config;
    // [in, out] of each module as Hugging Face's Conv1D weight holds it.
    const shapes: Record<string, [number, number]> = {
      'attn.c_attn': [dim, 3 * dim],
      'attn.c_proj': [dim, dim],
      'mlp.c_fc': [dim, hiddenDim],
      'mlp.c_proj': [hiddenDim, dim],
    };
    const names = st.tensors.map((t) => t.name).sort();
    const expected: string[] = [];
    for (let l = 0; l < SHAPE.layers; l++)
      for (const module of Object.keys(shapes))
        for (const kind of ['A', 'B'])
          expected.push(`base_model.model.transformer.h.${l}.${module}.lora_${kind}.weight`);
    assert.deepEqual(names, expected.sort());
    const moduleOf: Record<Gpt2LoraTarget, string> = {
      attn_qkv: 'attn.c_attn',
      attn_output: 'attn.c_proj',
      ffn_up: 'mlp.c_fc',
      ffn_down: 'mlp.c_proj',
    };
    for (let l = 0; l < SHAPE.layers; l++)
      for (const target of GPT2_LORA_TARGETS) {
        const [inn, out] = shapes[moduleOf[target]]!;
        const a = st.tensor(peftGpt2Key(l, target, 'A'));
        const b = st.tensor(peftGpt2Key(l, target, 'B'));
        assert.deepEqual(a.shape, [4, inn], `${l} ${target} A`);
        assert.deepEqual(b.shape, [out, 4], `${l} ${target} B`);
        const pair = adapter.layers[l]![target]!;
        assert.deepEqual(await st.tensorFloat32(a), pair.a);
        assert.deepEqual(await st.tensorFloat32(b), pair.b);
      }
  });

  it("PEFT's fan_in_fan_out merge of the export onto the Conv1D weights is the merged GGUF", async () => {
    const gguf = await readGguf(file);
    const base = await loadGpt2Gguf(gguf);
    const adapter = randomAdapter(base, GPT2_LORA_TARGETS, 9);
    const st = await readSafetensors(peftFiles(adapter, peftBaseOf(gguf, 'x'))[1]!.bytes);
    const merged = await readGguf(await mergedGguf(gguf, adapter, { type: 'F32' }));
    const scale = 8 / 4;
    for (let l = 0; l < SHAPE.layers; l++)
      for (const target of GPT2_LORA_TARGETS) {
        const name = `blk.${l}.${target}.weight`;
        const info = gguf.tensors.find((t) => t.name === name)!;
        const [inn, out] = info.dims as [number, number];
        // Hugging Face's Conv1D weight [in][out] = the GGUF's W [out][in] transposed, and PEFT
        // adds transpose(B·A) · scaling to it (get_delta_weight with fan_in_fan_out).
        const conv = transposed(await gguf.tensorFloat32(info), out, inn);
        const a = await st.tensorFloat32(peftGpt2Key(l, target, 'A'));
        const b = await st.tensorFloat32(peftGpt2Key(l, target, 'B'));
        for (let o = 0; o < out; o++)
          for (let i = 0; i < inn; i++) {
            let d = 0;
            for (let k = 0; k < 4; k++) d += b[o * 4 + k]! * a[k * inn + i]!;
            conv[i * out + o] = conv[i * out + o]! + scale * d;
          }
        const ours = await merged.tensorFloat32(merged.tensors.find((t) => t.name === name)!);
        const theirs = transposed(conv, inn, out);
        for (let j = 0; j < ours.length; j++)
          assert.ok(Math.abs(ours[j]! - theirs[j]!) < 1e-5, `${name}[${j}]`);
      }
  });

  it('names only the c_proj that is adapted, so PEFT wraps no module the adapter lacks', async () => {
    const gguf = await readGguf(file);
    const base = await loadGpt2Gguf(gguf);
    const config = (targets: Gpt2LoraTarget[]) =>
      JSON.parse(
        Buffer.from(
          peftFiles(randomAdapter(base, targets, 1), peftBaseOf(gguf, 'x'))[0]!.bytes,
        ).toString('utf8'),
      ).target_modules;
    assert.deepEqual(config(['attn_qkv', 'attn_output']), ['attn.c_proj', 'c_attn']);
    assert.deepEqual(config(['ffn_up', 'ffn_down']), ['c_fc', 'mlp.c_proj']);
    assert.deepEqual(config(['attn_qkv']), ['c_attn']);
  });

  it('refuses a GPT-2 adapter over a llama base, and a llama adapter over a GPT-2 base', async () => {
    const gguf = await readGguf(file);
    const base = await loadGpt2Gguf(gguf);
    const gpt2Adapter = randomAdapter(base, GPT2_LORA_TARGETS, 2);
    const llamaBase = { architecture: 'llama', nHeads: 2, nKvHeads: 2, nameOrPath: 'x' };
    assert.throws(
      () => peftFiles(gpt2Adapter, llamaBase),
      (e: OpenLedgerError) => e.code === 'VALIDATION_FAILED' && /attn_qkv/.test(e.message),
    );
    const llamaAdapter = new LoraAdapter(
      { rank: 4, alpha: 8, dropout: 0, targets: ['attn_q'] },
      gpt2Adapter.layers.map(() => ({
        attn_q: { inDim: 16, outDim: 16, a: new Float32Array(64), b: new Float32Array(64) },
      })),
    );
    assert.throws(
      () => peftFiles(llamaAdapter, peftBaseOf(gguf, 'x')),
      (e: OpenLedgerError) => e.code === 'VALIDATION_FAILED' && /attn_q\b/.test(e.message),
    );
  });
});
