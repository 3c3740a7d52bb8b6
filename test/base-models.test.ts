import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GGML_TYPE } from '../src/engine/gguf/index.ts';
import { ensureBaseModel } from '../src/factory/download.ts';
import { ModelCatalog } from '../src/factory/models.ts';
import type { OpenLedgerError } from '../src/errors.ts';
import { writeRandomModel } from './helpers/models.ts';

/** What `up --base-model <ref>` does with each reference before the serving engine starts. */
describe('base models named at start', () => {
  let dir: string;
  let modelsDir: string;
  let catalog: ModelCatalog;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-base-models-'));
    modelsDir = path.join(dir, 'data', 'models');
    await mkdir(modelsDir, { recursive: true });
    catalog = new ModelCatalog([modelsDir]);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adds a GGUF file from elsewhere once, and finds it by name on the next start', async () => {
    const outside = path.join(dir, 'elsewhere', 'storyteller.gguf');
    await mkdir(path.dirname(outside), { recursive: true });
    await writeRandomModel(outside, () => GGML_TYPE.F32);
    assert.equal(await ensureBaseModel(outside, catalog, modelsDir), 'storyteller');
    assert.deepEqual(
      (await catalog.list()).map((m) => m.name),
      ['storyteller'],
    );
    // a second start with the same flag: already there, same name, nothing added
    assert.equal(await ensureBaseModel(outside, catalog, modelsDir), 'storyteller');
    assert.equal(await ensureBaseModel('storyteller', catalog, modelsDir), 'storyteller');
    assert.equal((await catalog.list()).length, 1);
  });

  it('refuses what is neither a model, a file, a folder nor a repo id', async () => {
    await assert.rejects(
      () => ensureBaseModel('no such model', catalog, modelsDir),
      (error: OpenLedgerError) => error.code === 'VALIDATION_FAILED',
    );
  });
});
