import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { compileContracts, renderContractsModule } from '../src/chain/compile.ts';
import { ROOT } from './helpers/node.ts';

it('the committed ABIs and bytecode are what contracts/*.sol compile to (run `npm run compile`)', async () => {
  const fresh = renderContractsModule(await compileContracts(path.join(ROOT, 'contracts')));
  const committed = await readFile(path.join(ROOT, 'src/chain/generated/contracts.ts'), 'utf8');
  assert.equal(committed, fresh);
});
