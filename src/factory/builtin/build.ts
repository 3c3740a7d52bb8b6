/**
 * Builds the built-in base model from its recipe (recipe.ts) into the package's `models/`
 * folder: the GGUF and a model card (JSON) with the recipe, the data sources and the measured
 * metrics. `npm install` runs this once (the `prepare` script); it is skipped while the card
 * says the file was built from the same recipe and the file's hash still matches.
 */
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { encodeGguf, gguf } from '../../engine/gguf/index.ts';
import { createMatmulBackend } from '../../engine/kernels/index.ts';
import type { MatmulBackendName } from '../../engine/kernels/index.ts';
import { writeFileAtomic } from '../../util/fs.ts';
import {
  BUILTIN_MODEL_NAME,
  BUILTIN_RECIPE,
  builtinGgufInput,
  pretrainBuiltin,
  type BuiltinMetrics,
  type PretrainProgress,
} from './recipe.ts';
import { loadBuiltinCorpus, type CorpusSource } from './corpus.ts';
import { BUILTIN_MODELS_DIR } from './paths.ts';

export { BUILTIN_MODELS_DIR };

export interface BuiltinCard {
  name: string;
  /** sha256 of the recipe constants, the corpus and the step count: what the file is a function of. */
  recipeSha256: string;
  recipe: typeof BUILTIN_RECIPE;
  steps: number;
  corpusSha256: string;
  vocabSha256: string;
  sources: CorpusSource[];
  gguf: { file: string; bytes: number; sha256: string };
  metrics: BuiltinMetrics;
  builtAt: string;
  node: string;
}

export interface BuildOptions {
  /** Folder to write into (default BUILTIN_MODELS_DIR). */
  dir?: string;
  /** Rebuild even when the card says the file is current. */
  force?: boolean;
  backend?: 'auto' | MatmulBackendName;
  threads?: number;
  /** Override the recipe's steps (a short run for tests; the card records it). */
  steps?: number;
  /** Override the recipe's windows per step (tests; part of the recipe hash). */
  batchSize?: number;
  onProgress?: (progress: PretrainProgress) => void;
}

export interface BuildResult {
  path: string;
  cardPath: string;
  card: BuiltinCard;
  /** False when an up-to-date build was found and kept. */
  built: boolean;
}

export function builtinModelPath(dir = BUILTIN_MODELS_DIR): string {
  return path.join(dir, `${BUILTIN_MODEL_NAME}.gguf`);
}

function cardPathOf(dir: string): string {
  return path.join(dir, `${BUILTIN_MODEL_NAME}.json`);
}

/** What the build is a function of: the recipe, the corpus, the number of steps and their size. */
export function builtinRecipeSha256(
  steps: number = BUILTIN_RECIPE.training.steps,
  batchSize: number = BUILTIN_RECIPE.training.batchSize,
): string {
  // the batch size joins the hash only when overridden, so the recipe's hash stays as published
  const overrides = batchSize === BUILTIN_RECIPE.training.batchSize ? {} : { batchSize };
  return createHash('sha256')
    .update(
      JSON.stringify({
        recipe: BUILTIN_RECIPE,
        steps,
        ...overrides,
        corpus: loadBuiltinCorpus().sha256,
      }),
    )
    .digest('hex');
}

/** The card of the current build in `dir`, when the GGUF beside it is intact. */
export async function readBuiltinCard(dir = BUILTIN_MODELS_DIR): Promise<BuiltinCard | undefined> {
  const card = await readFile(cardPathOf(dir), 'utf8')
    .then((text) => JSON.parse(text) as BuiltinCard)
    .catch(() => undefined);
  if (card === undefined) return undefined;
  const bytes = await readFile(builtinModelPath(dir)).catch(() => undefined);
  if (bytes === undefined) return undefined;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return sha256 === card.gguf.sha256 ? card : undefined;
}

/** Builds (or keeps) the built-in base model. */
export async function buildBuiltinModel(options: BuildOptions = {}): Promise<BuildResult> {
  const dir = options.dir ?? BUILTIN_MODELS_DIR;
  const steps = options.steps ?? BUILTIN_RECIPE.training.steps;
  const batchSize = options.batchSize ?? BUILTIN_RECIPE.training.batchSize;
  const recipeSha256 = builtinRecipeSha256(steps, batchSize);
  const file = builtinModelPath(dir);
  const cardPath = cardPathOf(dir);
  if (options.force !== true) {
    const existing = await readBuiltinCard(dir);
    if (existing?.recipeSha256 === recipeSha256) {
      return { path: file, cardPath, card: existing, built: false };
    }
  }
  const backend = await createMatmulBackend({
    backend: options.backend ?? 'auto',
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  });
  try {
    const built = await pretrainBuiltin({
      backend,
      steps,
      batchSize,
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
    const bytes = encodeGguf(
      builtinGgufInput(built, [['openledger.recipe_sha256', gguf.string(recipeSha256)]]),
    );
    const card: BuiltinCard = {
      name: BUILTIN_MODEL_NAME,
      recipeSha256,
      recipe: BUILTIN_RECIPE,
      steps,
      corpusSha256: built.corpusSha256,
      vocabSha256: built.vocab.sha256,
      sources: built.sources,
      gguf: {
        file: path.basename(file),
        bytes: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      },
      metrics: built.metrics,
      builtAt: new Date().toISOString(),
      node: process.version,
    };
    // the card goes last, so a card always describes a complete file
    await rm(cardPath, { force: true });
    await writeFileAtomic(file, bytes);
    await writeFileAtomic(cardPath, JSON.stringify(card, null, 2) + '\n');
    return { path: file, cardPath, card, built: true };
  } finally {
    await backend.close();
  }
}
