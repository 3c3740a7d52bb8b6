import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { getLlama, type Llama } from 'node-llama-cpp';
import {
  LORA_TARGETS,
  LoraAdapter,
  Prng,
  loadLlamaGguf,
  mergeLora,
  saveLoraGguf,
} from '../src/engine/index.ts';
import { AIDREAMS_GGUF } from './helpers/models.ts';

/**
 * An adapter in our GGUF LoRA format, loaded by llama.cpp (node-llama-cpp) over the base model,
 * gives the logits of our own merged model: the file means to llama.cpp what it means to us.
 * B is filled with random values (training starts it at zero), so every target matters.
 */
let llama: Llama;
let dir: string;
before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: 'error' as never });
  dir = await mkdtemp(path.join(tmpdir(), 'openledger-lora-llamacpp-'));
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

it(
  'an adapter we write gives the same logits in llama.cpp as our merged model',
  { skip: existsSync(AIDREAMS_GGUF) ? false : 'fixture aidreams260K.gguf absent' },
  async () => {
    const base = await loadLlamaGguf(AIDREAMS_GGUF);
    const adapter = LoraAdapter.create(
      base.config,
      { rank: 4, alpha: 8, dropout: 0, targets: [...LORA_TARGETS] },
      1,
    );
    const random = new Prng(2);
    for (const layer of adapter.layers)
      for (const pair of Object.values(layer))
        for (let i = 0; i < pair.b.length; i++) pair.b[i] = 0.05 * random.normal();
    const file = path.join(dir, 'adapter.gguf');
    await saveLoraGguf(file, adapter, { alpha: 8, baseModelName: 'aidreams260K' });

    const tokens = base.tokenizer!.encode('"Echoes of vectors unfold', { addBos: true });
    const merged = mergeLora(base, adapter);
    const ours = merged.forwardSequence(tokens);
    const unadapted = base.forwardSequence(tokens);

    const model = await llama.loadModel({ modelPath: AIDREAMS_GGUF });
    const context = await model.createContext({
      threads: 2,
      contextSize: 64,
      lora: { adapters: [{ filePath: file, scale: 1 }] },
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    const evaluated = await context
      .getSequence()
      .controlledEvaluate(
        tokens.map((t) => [t, { generateNext: { logits: true } }] as const) as never,
      );
    const vocab = base.config.vocabSize;
    let maxDiff = 0;
    let maxLogit = 0;
    let adapterEffect = 0;
    evaluated.forEach((result, position) => {
      const theirs = (result as { next?: { logits?: Map<number, number> } } | undefined)?.next
        ?.logits;
      assert.ok(theirs);
      for (const [token, logit] of theirs) {
        maxDiff = Math.max(maxDiff, Math.abs(logit - ours[position * vocab + token]!));
        maxLogit = Math.max(maxLogit, Math.abs(logit));
        adapterEffect = Math.max(
          adapterEffect,
          Math.abs(ours[position * vocab + token]! - unadapted[position * vocab + token]!),
        );
      }
    });
    await context.dispose();
    await model.dispose();
    console.log({ maxDiff, relative: maxDiff / maxLogit, adapterEffect });
    assert.ok(
      adapterEffect > 100 * maxDiff,
      `the adapter changes the logits (${adapterEffect}) far beyond the difference (${maxDiff})`,
    );
    assert.ok(maxDiff / maxLogit < 1e-3, `relative difference ${maxDiff / maxLogit}`);
  },
);
