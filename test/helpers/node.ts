import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../src/config.ts';
import { startNode, type RunningNode } from '../../src/node/index.ts';
import { FIXTURE_MODELS } from './models.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const WEB_DIR = path.join(ROOT, 'web/dist');

export interface TestNode {
  url: string;
  node: RunningNode;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * A whole node (local chain, database, HTTP on a free port) in a fresh temporary data dir.
 * With `databaseUrl`, PostgreSQL instead of the embedded PGlite.
 */
export async function startTestNode(
  options: { databaseUrl?: string; dataDir?: string } = {},
): Promise<TestNode> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'openledger-test-')));
  const base = resolveConfig({ port: '0', chainPort: '0', dataDir, logLevel: 'silent' }, {});
  const config = {
    ...base,
    databaseUrl: options.databaseUrl,
    webDir: WEB_DIR,
    // The fixture models (read in place, never copied) are base models the test node offers.
    modelsDirs: [...base.modelsDirs, ...(existsSync(FIXTURE_MODELS) ? [FIXTURE_MODELS] : [])],
  };
  const node = await startNode(config);
  return {
    url: node.url,
    node,
    dataDir,
    close: async () => {
      await node.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
