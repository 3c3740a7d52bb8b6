import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type ConfigFlags } from '../../config.ts';
import { startNode } from '../../node/index.ts';
import { runUntilSignal, type Output } from '../output.ts';

/** The built web app, beside `src/` and `dist/` in the package. */
const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web/dist');

/** `openledger up`: runs the node until SIGINT or SIGTERM, then shuts it down cleanly. */
export async function up(flags: ConfigFlags, out: Output): Promise<void> {
  const config = { ...resolveConfig(flags), webDir: WEB_DIR };
  const node = await startNode(config, ({ step, done }) =>
    done ? out.progressDone(step) : out.progress(step),
  );
  const ready = {
    url: node.url,
    rpcUrl: node.rpcUrl,
    chainId: node.chainId,
    contracts: node.contracts,
    database: node.database,
    dataDir: config.dataDir,
  };
  out.result(ready, (r) => `ready ${r.url}`);

  await runUntilSignal(out, 'finishing requests, saving chain state', () => node.close());
}
