import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getLlama, type Llama } from 'node-llama-cpp';
import { loadLlamaGguf } from '../src/engine/index.ts';
import {
  buildBuiltinModel,
  builtinModelPath,
  builtinRecipeSha256,
  readBuiltinCard,
} from '../src/factory/builtin/build.ts';
import { BUILTIN_MODEL_NAME, BUILTIN_RECIPE } from '../src/factory/builtin/recipe.ts';
import { resolveConfig } from '../src/config.ts';

describe('the built-in base model', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-builtin-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is reproducible: the same recipe gives the same bytes (TypeScript backend)', async () => {
    const a = await buildBuiltinModel({
      dir: path.join(dir, 'a'),
      backend: 'typescript',
      steps: 2,
      batchSize: 2,
    });
    const b = await buildBuiltinModel({
      dir: path.join(dir, 'b'),
      backend: 'typescript',
      steps: 2,
      batchSize: 2,
    });
    assert.ok(a.built && b.built);
    assert.equal(a.card.gguf.sha256, b.card.gguf.sha256);
    assert.deepEqual(await readFile(a.path), await readFile(b.path));
    assert.equal(a.card.recipeSha256, builtinRecipeSha256(2, 2));
    assert.notEqual(a.card.recipeSha256, builtinRecipeSha256());
    // training moved it away from the initial weights, and a current build is kept
    assert.ok(a.card.metrics.validationLoss < a.card.metrics.initialValidationLoss);
    const again = await buildBuiltinModel({
      dir: path.join(dir, 'a'),
      backend: 'typescript',
      steps: 2,
      batchSize: 2,
    });
    assert.equal(again.built, false);
    // a damaged file is not taken for current
    const bytes = await readFile(a.path);
    bytes[bytes.length - 1] = bytes.at(-1)! ^ 1;
    await writeFile(a.path, bytes);
    assert.equal(await readBuiltinCard(path.join(dir, 'a')), undefined);
  });

  it('is offered by every node: the catalogue folders end with the package models folder', () => {
    const config = resolveConfig({}, {});
    assert.equal(config.modelsDirs.at(-1), path.dirname(builtinModelPath()));
  });
});

/**
 * The model `npm install` built (the `prepare` script): a real trained model, not random
 * weights, that llama.cpp runs with the same logits and the same greedy text as our engine.
 */
describe('the built-in base model as installed', () => {
  let llama: Llama;
  before(async () => {
    llama = await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: 2,
      logLevel: 'error' as never,
    });
  });
  after(async () => {
    await llama?.dispose();
  });

  it('was built by npm install from the current recipe, and beats a unigram model', async (t) => {
    const card = await readBuiltinCard();
    assert.ok(card, `no built-in model at ${builtinModelPath()}: run \`npm run build:model\``);
    assert.equal(card.name, BUILTIN_MODEL_NAME);
    assert.equal(card.steps, BUILTIN_RECIPE.training.steps);
    assert.equal(card.recipeSha256, builtinRecipeSha256(), 'the file is from an older recipe');
    const m = card.metrics;
    t.diagnostic(
      `validation loss ${m.initialValidationLoss.toFixed(3)} → ${m.validationLoss.toFixed(3)} (unigram ${m.unigramValidationLoss.toFixed(3)}), ${m.tokensSeen} tokens in ${m.trainingSeconds.toFixed(0)} s on ${m.matmulBackend}`,
    );
    // far better than chance (ln V ≈ 7.6) and than word frequencies alone
    assert.ok(m.validationLoss < m.unigramValidationLoss - 0.5, JSON.stringify(m));
  });

  it('gives the same logits and greedy text in llama.cpp as in our engine', async () => {
    const file = builtinModelPath();
    const ours = await loadLlamaGguf(file);
    const model = await llama.loadModel({ modelPath: file });
    try {
      const context = await model.createContext({
        threads: 2,
        contextSize: 128,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
      });
      const prompt = 'It was the best of ships, and the whale';
      const tokens = ours.tokenizer!.encode(prompt, { addBos: true });
      assert.deepEqual([...model.tokenize(prompt)], tokens.slice(1), 'the same tokens');
      const sequence = context.getSequence();
      const evaluated = await sequence.controlledEvaluate(
        tokens.map((token) => [token, { generateNext: { logits: true } }] as const) as never,
      );
      const mine = ours.forwardSequence(tokens);
      const V = ours.config.vocabSize;
      let maxDiff = 0;
      let maxLogit = 0;
      evaluated.forEach((result, position) => {
        const theirs = (result as { next?: { logits?: Map<number, number> } }).next!.logits!;
        for (const [token, logit] of theirs) {
          maxDiff = Math.max(maxDiff, Math.abs(logit - mine[position * V + token]!));
          maxLogit = Math.max(maxLogit, Math.abs(logit));
        }
      });
      assert.ok(maxDiff / maxLogit < 5e-4, `relative difference ${maxDiff / maxLogit}`);

      // greedy continuation: 24 tokens
      await sequence.clearHistory();
      const theirs: number[] = [];
      for await (const token of sequence.evaluate(tokens as never, { temperature: 0 })) {
        theirs.push(token as unknown as number);
        if (theirs.length >= 24) break;
      }
      const greedy = ours.generate(tokens, 24);
      assert.deepEqual(theirs, greedy.tokens.slice(0, theirs.length));
      await context.dispose();
    } finally {
      await model.dispose();
    }
  });
});
