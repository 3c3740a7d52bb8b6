/**
 * The web app writes the few contract functions and errors it uses as signatures
 * (web/src/lib/chain.ts, to keep every bytecode out of the bundle). This checks each against the
 * compiled contracts, so that a changed contract cannot leave the pages calling a function that
 * no longer exists or naming a revert by the wrong selector.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { formatAbiItem } from 'viem/utils';
import { parseAbi, type AbiFunction, type AbiItem } from 'viem';
import * as generated from '../src/chain/generated/contracts.ts';
import { ROOT } from './helpers/node.ts';

/** Which compiled contract each of the web's ABIs speaks to. */
const CONTRACT_OF: Record<string, keyof typeof generated> = {
  OpenTokenAbi: 'OpenTokenAbi',
  ModelStakingAbi: 'ModelStakingAbi',
  AgentStakingAbi: 'AgentStakingAbi',
  StakedOpenAbi: 'StakedOpenAbi',
  ContributionVotesAbi: 'ContributionVotesAbi',
  GovernorAbi: 'OpenLedgerGovernorAbi',
  ModelProposalsAbi: 'ModelProposalsAbi',
};

/** The quoted signatures of each `const X = [...]` / `parseAbi([...])` block, spreads resolved. */
function webAbis(source: string): Map<string, string[]> {
  const lists = new Map<string, string[]>();
  const block = /(?:export )?const (\w+) = (?:parseAbi\()?\[([\s\S]*?)\]\)?(?: as const)?;/g;
  for (const [, name, body] of source.matchAll(block)) {
    const items: string[] = [];
    for (const line of body!.split('\n')) {
      const quoted = /^\s*'([^']+)',?$/.exec(line);
      const spread = /^\s*\.\.\.(\w+),?$/.exec(line);
      if (quoted) items.push(quoted[1]!);
      else if (spread) items.push(...(lists.get(spread[1]!) ?? []));
    }
    lists.set(name!, items);
  }
  return lists;
}

it("the web app's contract signatures are the compiled contracts' (web/src/lib/chain.ts)", async () => {
  const source = await readFile(path.join(ROOT, 'web/src/lib/chain.ts'), 'utf8');
  const abis = webAbis(source);
  const everyError = new Set<string>();
  const everyEvent = new Set<string>();
  for (const [name, value] of Object.entries(generated)) {
    if (!name.endsWith('Abi')) continue;
    for (const item of value as readonly AbiItem[]) {
      if (item.type === 'error') everyError.add(formatAbiItem(item));
      if (item.type === 'event') everyEvent.add(formatAbiItem(item));
    }
  }
  let checked = 0;
  for (const [webName, contract] of Object.entries(CONTRACT_OF)) {
    const signatures = abis.get(webName);
    assert.ok(signatures?.length, `web/src/lib/chain.ts has no ${webName}`);
    const compiled = new Set(
      (generated[contract] as readonly AbiItem[])
        .filter((i): i is AbiFunction => i.type === 'function')
        .map((i) => formatAbiItem(i)),
    );
    for (const item of parseAbi(signatures) as readonly AbiItem[]) {
      const signature = formatAbiItem(item);
      if (item.type === 'function')
        assert.ok(compiled.has(signature), `${webName}: ${contract} has no function ${signature}`);
      else if (item.type === 'error')
        assert.ok(everyError.has(signature), `${webName}: no contract raises ${signature}`);
      else if (item.type === 'event')
        assert.ok(everyEvent.has(signature), `${webName}: no contract emits ${signature}`);
      checked++;
    }
  }
  assert.ok(checked > 50, `checked ${checked} signatures`);
});
