/**
 * Gas of the market and governance contracts' transactions (issue #8), on a local anvil chain
 * with the whole suite deployed as a node deploys it:
 *
 *   node --import tsx bench/governance.ts [--stakers 128] [--json]
 *
 * Gas is deterministic: the figures move only when a contract or the compiler settings change,
 * not with the machine. The interesting cases are the ones whose cost grows: staking on a model
 * whose places are full (the eviction scans every stake), and a vote's cost with both vote
 * tokens checkpointed. Markdown goes to stdout (progress to stderr); with --json, one JSON
 * document instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  encodeFunctionData,
  keccak256,
  parseUnits,
  stringToHex,
  type Abi,
  type Address,
  type LocalAccount,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import {
  AgentStakingAbi,
  DatanetRegistryAbi,
  ModelRegistryAbi,
  ModelStakingAbi,
  OpenLedgerGovernorAbi,
  OpenTokenAbi,
  ProtocolParametersAbi,
  StakedOpenAbi,
  connectChain,
  deployContracts,
  devAccount,
  startLocalChain,
} from '../src/chain/index.ts';

const { values } = parseArgs({
  options: {
    stakers: { type: 'string', default: '128' },
    json: { type: 'boolean', default: false },
  },
});
const fill = Number(values.stakers);
const log = (line: string) => process.stderr.write(`${line}\n`);
const OPEN = (n: string) => parseUnits(n, 18);

const dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-bench-gov-'));
const chain = await startLocalChain({ dataDir, port: 0 });
const conn = await connectChain(chain.rpcUrl);
const admin = devAccount(0);
const deployment = await deployContracts(conn, { signer: admin });
const c = deployment.contracts;
const rows: { transaction: string; gas: bigint }[] = [];

async function send(
  account: LocalAccount,
  address: Address,
  abi: Abi,
  functionName: string,
  args: readonly unknown[],
  label?: string,
): Promise<bigint> {
  const { request } = await conn.publicClient.simulateContract({
    address,
    abi,
    functionName,
    args,
    account,
  } as never);
  const hash = await conn.walletFor(account).writeContract(request as never);
  const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`${functionName} reverted`);
  if (label) rows.push({ transaction: label, gas: receipt.gasUsed });
  return receipt.gasUsed;
}
const warp = async (seconds: number) => {
  await conn.publicClient.request({
    method: 'evm_increaseTime' as never,
    params: [seconds] as never,
  });
  await conn.publicClient.request({ method: 'evm_mine' as never, params: [] as never });
};
const give = async (account: LocalAccount, open: bigint) => {
  await conn.publicClient.request({
    method: 'anvil_setBalance' as never,
    params: [account.address, '0x56BC75E2D63100000'] as never, // 100 ETH
  });
  await send(admin, c.OpenToken, OpenTokenAbi, 'transfer', [account.address, open]);
};

log('a published model…');
const hash = (text: string) => keccak256(stringToHex(text));
await send(admin, c.DatanetRegistry, DatanetRegistryAbi, 'createDatanet', [hash('bench'), 0]);
await send(admin, c.DatanetRegistry, DatanetRegistryAbi, 'commitVersion', [
  1n,
  hash('root'),
  1n,
  hash('manifest'),
]);
await send(admin, c.ModelRegistry, ModelRegistryAbi, 'publish', [
  {
    baseModel: hash('base'),
    adapterHash: hash('adapter'),
    manifestHash: hash('manifest'),
    metadataHash: hash('meta'),
    datanets: [{ datanetId: 1n, version: 1n }],
    pricePer1kInput: 0n,
    pricePer1kOutput: 0n,
    split: { owner: 6000, stakers: 1000, contributors: 3000 },
  },
]);

log(`model staking: ${fill} stakers fill the places, then one more evicts the smallest…`);
const stakers: LocalAccount[] = [];
for (let i = 0; i < fill; i++) {
  const account = privateKeyToAccount(generatePrivateKey());
  await give(account, OPEN(String(3 + i)));
  await send(account, c.OpenToken, OpenTokenAbi, 'approve', [c.ModelStaking!, OPEN(String(3 + i))]);
  await send(
    account,
    c.ModelStaking!,
    ModelStakingAbi,
    'stake',
    [1n, OPEN(String(2 + i))],
    i === 0
      ? 'ModelStaking.stake, first staker of a model'
      : i === fill - 1
        ? `ModelStaking.stake, staker ${fill} (the last free place)`
        : undefined,
  );
  stakers.push(account);
}
const newcomer = privateKeyToAccount(generatePrivateKey());
await give(newcomer, OPEN('1000'));
await send(newcomer, c.OpenToken, OpenTokenAbi, 'approve', [c.ModelStaking!, OPEN('1000')]);
await send(
  newcomer,
  c.ModelStaking!,
  ModelStakingAbi,
  'stake',
  [1n, OPEN('500')],
  `ModelStaking.stake into a full model (${fill} places scanned, smallest evicted)`,
);
await send(
  stakers[1]!,
  c.ModelStaking!,
  ModelStakingAbi,
  'requestUnstake',
  [1n, OPEN('3')],
  'ModelStaking.requestUnstake (all of a stake: leaves the list)',
);
await warp(601);
await send(
  stakers[1]!,
  c.ModelStaking!,
  ModelStakingAbi,
  'withdraw',
  [1n],
  'ModelStaking.withdraw',
);

log('an agent…');
const owner = devAccount(3);
await give(owner, OPEN('1000'));
await send(owner, c.OpenToken, OpenTokenAbi, 'approve', [c.AgentStaking!, OPEN('1000')]);
await send(
  owner,
  c.AgentStaking!,
  AgentStakingAbi,
  'launch',
  ['bench-agent', hash('spec'), OPEN('150')],
  'AgentStaking.launch (name checked, stake pulled)',
);
await send(
  owner,
  c.AgentStaking!,
  AgentStakingAbi,
  'addStake',
  [1n, OPEN('10')],
  'AgentStaking.addStake',
);

log('governance: deposit, propose, vote, queue, execute…');
const voters = [devAccount(4), devAccount(5)];
for (const [i, voter] of voters.entries()) {
  await give(voter, OPEN('100'));
  await send(voter, c.OpenToken, OpenTokenAbi, 'approve', [c.StakedOpen!, OPEN('100')]);
  await send(
    voter,
    c.StakedOpen!,
    StakedOpenAbi,
    'depositFor',
    [voter.address, OPEN('50')],
    i === 0 ? 'gOPEN depositFor, first (self-delegates)' : undefined,
  );
}
await send(
  voters[0]!,
  c.StakedOpen!,
  StakedOpenAbi,
  'depositFor',
  [voters[0]!.address, OPEN('10')],
  'gOPEN depositFor, later',
);
await send(
  voters[1]!,
  c.StakedOpen!,
  StakedOpenAbi,
  'delegate',
  [voters[0]!.address],
  'gOPEN delegate',
);
await warp(2);
const calls = [
  {
    target: c.ProtocolParameters!,
    calldata: encodeFunctionData({
      abi: ProtocolParametersAbi,
      functionName: 'setDefaultSplit',
      args: [{ owner: 5000, stakers: 2000, contributors: 3000 }],
    }),
  },
  {
    target: c.AgentStaking!,
    calldata: encodeFunctionData({
      abi: AgentStakingAbi,
      functionName: 'slash',
      args: [1n, OPEN('160'), hash('bench')],
    }),
  },
];
const description = 'Bench: a new default split, and slash the bench agent';
const proposal = [
  calls.map((x) => x.target),
  calls.map(() => 0n),
  calls.map((x) => x.calldata),
] as const;
await send(
  voters[0]!,
  c.OpenLedgerGovernor!,
  OpenLedgerGovernorAbi,
  'propose',
  [...proposal, description],
  'Governor.propose (2 calls)',
);
const id = await conn.publicClient.readContract({
  address: c.OpenLedgerGovernor!,
  abi: OpenLedgerGovernorAbi,
  functionName: 'getProposalId',
  args: [...proposal, keccak256(stringToHex(description))],
});
await warp(2);
await send(
  voters[0]!,
  c.OpenLedgerGovernor!,
  OpenLedgerGovernorAbi,
  'castVote',
  [id, 1],
  'Governor.castVote (gOPEN + cVOTE read at the snapshot)',
);
await warp(301);
await send(
  voters[0]!,
  c.OpenLedgerGovernor!,
  OpenLedgerGovernorAbi,
  'queue',
  [...proposal, keccak256(stringToHex(description))],
  'Governor.queue (Timelock.scheduleBatch)',
);
await warp(121);
await send(
  voters[0]!,
  c.OpenLedgerGovernor!,
  OpenLedgerGovernorAbi,
  'execute',
  [...proposal, keccak256(stringToHex(description))],
  'Governor.execute (setDefaultSplit + AgentStaking.slash)',
);

await chain.stop();
await rm(dataDir, { recursive: true, force: true });

if (values.json) {
  process.stdout.write(
    `${JSON.stringify({ stakers: fill, rows: rows.map((r) => ({ ...r, gas: Number(r.gas) })) }, null, 2)}\n`,
  );
} else {
  const width = Math.max(...rows.map((r) => r.transaction.length));
  process.stdout.write(`| ${'transaction'.padEnd(width)} | gas     |\n`);
  process.stdout.write(`| ${'-'.repeat(width)} | ------- |\n`);
  for (const r of rows)
    process.stdout.write(
      `| ${r.transaction.padEnd(width)} | ${r.gas.toLocaleString('en-US').padStart(7)} |\n`,
    );
}
