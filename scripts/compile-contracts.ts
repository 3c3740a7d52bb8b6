// Regenerates src/chain/generated/contracts.ts from contracts/*.sol (`npm run compile`).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { compileContracts, renderContractsModule } from '../src/chain/compile.ts';

const root = path.resolve(import.meta.dirname, '..');
const started = performance.now();
const result = await compileContracts(path.join(root, 'contracts'));
const out = path.join(root, 'src/chain/generated/contracts.ts');
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, renderContractsModule(result));
console.log(
  `compiled ${Object.keys(result.contracts).join(', ')} with solc ${result.solcVersion} in ${Math.round(performance.now() - started)} ms -> ${path.relative(root, out)}`,
);
