import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `<package>/models`, where the built-in base model is built: the same three levels up from
 * src/factory/builtin and from dist/factory/builtin. Its own module so that the configuration
 * can name it without loading the trainer.
 */
export const BUILTIN_MODELS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'models',
);

/** The built-in base model's name in the catalogue, its GGUF `general.name`, and the default base. */
export const BUILTIN_MODEL_NAME = 'openledger-base-1m';
