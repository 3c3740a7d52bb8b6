import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { OpenLedgerError } from '../errors.ts';
import { ggufNumber, ggufString, readGguf } from '../engine/index.ts';
import { BUILTIN_MODELS_DIR, BUILTIN_MODEL_NAME } from './builtin/paths.ts';

export interface CatalogModel {
  /** The file name without `.gguf`: what callers name the model by. */
  name: string;
  path: string;
  bytes: number;
  architecture: string;
  contextLength: number | undefined;
  /** `general.name` from the file, when it has one. */
  title: string | undefined;
  /** The built-in base model that npm install trains (the default base). */
  builtin: boolean;
}

/**
 * The base models this node offers: the `.gguf` files in its model folders (`<data-dir>/models`,
 * `OPENLEDGER_MODELS_DIR` and the package's built-in model folder; the first folder wins a name). Callers name a model; they never hand the node a path of their
 * own, so an API caller cannot make the node read arbitrary files.
 */
export class ModelCatalog {
  constructor(readonly folders: readonly string[]) {}

  async list(): Promise<CatalogModel[]> {
    const models = new Map<string, CatalogModel>();
    for (const folder of this.folders) {
      const names = await readdir(folder).catch(() => [] as string[]);
      for (const file of names.filter((n) => n.toLowerCase().endsWith('.gguf')).sort()) {
        const name = file.slice(0, -'.gguf'.length);
        if (models.has(name)) continue; // the first folder wins
        const full = path.join(folder, file);
        const info = await stat(full).catch(() => undefined);
        if (!info?.isFile()) continue;
        const header = await readGguf(full).catch(() => undefined);
        if (!header) continue; // not a readable GGUF: not offered
        const architecture = ggufString(header.metadata, 'general.architecture', 'unknown');
        models.set(name, {
          name,
          path: full,
          bytes: info.size,
          architecture,
          contextLength:
            ggufNumber(header.metadata, `${architecture}.context_length`, Number.NaN) || undefined,
          title: ggufString(header.metadata, 'general.name', '') || undefined,
          builtin: name === BUILTIN_MODEL_NAME && folder === BUILTIN_MODELS_DIR,
        });
      }
    }
    return [...models.values()];
  }

  /** A model by name (or by a path inside one of the folders). */
  async resolve(reference: string): Promise<CatalogModel> {
    const models = await this.list();
    const byName = models.find(
      (m) => m.name === reference || m.name === reference.replace(/\.gguf$/i, ''),
    );
    if (byName) return byName;
    if (path.isAbsolute(reference)) {
      const real = await realpath(reference).catch(() => undefined);
      for (const model of models) {
        if (real && (await realpath(model.path).catch(() => undefined)) === real) return model;
      }
    }
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `There is no base model "${reference}" on this node.`,
      {
        hint: models.length
          ? `Available: ${models.map((m) => m.name).join(', ')}.`
          : 'Put GGUF files in <data-dir>/models or a folder named by OPENLEDGER_MODELS_DIR.',
        details: { field: 'baseModel' },
      },
    );
  }
}
