import { Option, type Command } from 'commander';
import { formatUnits, getAddress, isAddress, type Address, type Hex } from 'viem';
import { resolveSigner } from '../../chain/index.ts';
import {
  requestUnbondTypedData,
  slashMaliciousTypedData,
  slashReasonHash,
} from '../../datanets/bonds-typed-data.ts';
import { OpenLedgerError } from '../../errors.ts';
import { permitTypedData } from '../../payments/typed-data.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import { parseOpenAmount } from './escrow.ts';
import type { AuthFlags } from './keys.ts';

type SignerOptions = (command: Command) => Command;

/** Signatures stay valid for an hour of the chain's clock, as with the escrow commands. */
const DEADLINE_SECONDS = 3600;

interface BondFlags extends AuthFlags {
  privateKey?: string;
}

/** GET /api/contributions/{cid}/bond (docs/api.md "Contribution bonds"). */
interface BondView {
  datanetId: number;
  contributionId: string;
  contributionIdBytes32: Hex;
  contributor: Address;
  amount: string;
  unlockAt: number | null;
  slashed: boolean;
  chainTime: number;
}

interface SigningInfo {
  chainId: number;
  bonds: Address;
  token: Address;
  nonce: string;
  tokenNonce: string;
}

interface PenaltyView {
  address: Address;
  score: string;
  threshold: string;
  rewardsCut: boolean;
}

const open = (wei: string | bigint) => `${formatUnits(BigInt(wei), 18)} OPEN`;

async function actingWallet(flags: BondFlags) {
  const client = new NodeClient(flags.url);
  const { local } = await client.request<{ local: boolean }>('GET', '/api/status');
  const signer = await resolveSigner({
    account: flags.account === undefined ? undefined : Number(flags.account),
    privateKey: flags.privateKey || process.env.OPENLEDGER_PRIVATE_KEY || undefined,
    keystore: flags.keystore,
    keystorePassword: process.env.OPENLEDGER_KEYSTORE_PASSWORD,
    local,
  });
  // The node relays only for a signed-in caller.
  await client.signIn(signer);
  return { client, signer };
}

const bondOf = (client: NodeClient, cid: string) =>
  client.request<BondView>('GET', `/api/contributions/${encodeURIComponent(cid)}/bond`);
const signingInfo = (client: NodeClient, address: Address) =>
  client.request<SigningInfo>('GET', `/api/bonds/signing-info?address=${address}`);

function describe(b: BondView): string {
  const state = b.slashed
    ? 'slashed'
    : b.unlockAt === null
      ? BigInt(b.amount) > 0n
        ? 'bonded'
        : 'no bond'
      : b.unlockAt > b.chainTime
        ? `unbond requested, unlocks ${new Date(b.unlockAt * 1000).toISOString()} (in ${b.unlockAt - b.chainTime} s)`
        : 'unlocked: `openledger bonds unbond` pays it back';
  return [
    `bond on contribution ${b.contributionId} (datanet ${b.datanetId})`,
    `  contributor  ${b.contributor}`,
    `  amount       ${open(b.amount)}`,
    `  state        ${state}`,
  ].join('\n');
}

/** The contribution's bond is the contributor's own: refuse other signers before signing anything. */
function assertContributor(bond: BondView, signer: Address): void {
  if (getAddress(bond.contributor) !== getAddress(signer))
    throw new OpenLedgerError(
      'FORBIDDEN',
      `Contribution ${bond.contributionId} was made by ${bond.contributor}; you sign as ${signer}.`,
      {
        hint: 'Sign with the contributor’s wallet (--account, --keystore or OPENLEDGER_PRIVATE_KEY).',
      },
    );
}

export async function bondShow(flags: BondFlags & { cid: string }, out: Output): Promise<void> {
  out.result(await bondOf(new NodeClient(flags.url), flags.cid), describe);
}

/** `openledger bonds bond <contribution> <open>`: a permit to the bonds contract, relayed. */
export async function bondAdd(
  flags: BondFlags & { cid: string; amount: string },
  out: Output,
): Promise<void> {
  const amount = parseOpenAmount(flags.amount, { allowZero: false });
  const { client, signer } = await actingWallet(flags);
  const [bond, info] = await Promise.all([
    bondOf(client, flags.cid),
    signingInfo(client, signer.address),
  ]);
  assertContributor(bond, signer.address);
  const deadline = BigInt(bond.chainTime + DEADLINE_SECONDS);
  const signature = await signer.signTypedData(
    permitTypedData({
      chainId: info.chainId,
      token: info.token,
      escrow: info.bonds, // the permit's spender
      owner: signer.address,
      value: amount,
      nonce: BigInt(info.tokenNonce),
      deadline,
    }),
  );
  out.progress(`bonding ${open(amount)}`);
  const { txHash } = await client.request<{ txHash: Hex }>(
    'POST',
    `/api/contributions/${encodeURIComponent(flags.cid)}/bond`,
    { amount: amount.toString(), deadline: deadline.toString(), signature },
  );
  out.progressDone('bonded');
  const after = await bondOf(client, flags.cid);
  out.result({ txHash, bond: after }, (r) => `tx ${r.txHash}\n${describe(r.bond)}`);
}

export async function bondRequestUnbond(
  flags: BondFlags & { cid: string },
  out: Output,
): Promise<void> {
  const { client, signer } = await actingWallet(flags);
  const [bond, info] = await Promise.all([
    bondOf(client, flags.cid),
    signingInfo(client, signer.address),
  ]);
  assertContributor(bond, signer.address);
  const deadline = BigInt(bond.chainTime + DEADLINE_SECONDS);
  const signature = await signer.signTypedData(
    requestUnbondTypedData(
      { chainId: info.chainId, bonds: info.bonds, nonce: BigInt(info.nonce), deadline },
      {
        contributor: signer.address,
        datanetId: BigInt(bond.datanetId),
        contributionId: bond.contributionIdBytes32,
      },
    ),
  );
  const { txHash } = await client.request<{ txHash: Hex }>(
    'POST',
    `/api/contributions/${encodeURIComponent(flags.cid)}/unbond-request`,
    { deadline: deadline.toString(), signature },
  );
  const after = await bondOf(client, flags.cid);
  out.result({ txHash, bond: after }, (r) => `tx ${r.txHash}\n${describe(r.bond)}`);
}

/** Pays an unlocked bond back to its contributor; any signed-in wallet may ask. */
export async function bondUnbond(flags: BondFlags & { cid: string }, out: Output): Promise<void> {
  const { client } = await actingWallet(flags);
  const before = await bondOf(client, flags.cid);
  const { txHash } = await client.request<{ txHash: Hex }>(
    'POST',
    `/api/contributions/${encodeURIComponent(flags.cid)}/unbond`,
  );
  out.result(
    { txHash, unbonded: before.amount, contributor: before.contributor },
    (r) => `paid ${open(r.unbonded)} back to ${r.contributor}; tx ${r.txHash}`,
  );
}

/** A curator's `SlashMalicious`, signed here; reasonHash is sha256 of the reason, as the node's. */
export async function bondSlash(
  flags: BondFlags & { id: string; cid: string; reason: string },
  out: Output,
): Promise<void> {
  const { client, signer } = await actingWallet(flags);
  const [bond, info] = await Promise.all([
    bondOf(client, flags.cid),
    signingInfo(client, signer.address),
  ]);
  const deadline = BigInt(bond.chainTime + DEADLINE_SECONDS);
  const signature = await signer.signTypedData(
    slashMaliciousTypedData(
      { chainId: info.chainId, bonds: info.bonds, nonce: BigInt(info.nonce), deadline },
      {
        curator: signer.address,
        datanetId: BigInt(flags.id),
        contributionId: bond.contributionIdBytes32,
        contributor: bond.contributor,
        reasonHash: slashReasonHash(flags.reason),
      },
    ),
  );
  const result = await client.request<{ txHash: Hex; slashed: string; penaltyScore: string }>(
    'POST',
    `/api/datanets/${encodeURIComponent(flags.id)}/contributions/${encodeURIComponent(flags.cid)}/slash`,
    {
      contributor: bond.contributor,
      reason: flags.reason,
      deadline: deadline.toString(),
      signature,
    },
  );
  out.result(
    result,
    (r) =>
      `slashed ${open(r.slashed)} of ${bond.contributor} to the treasury; penalty score now ${r.penaltyScore}\n  tx ${r.txHash}`,
  );
}

export async function bondSlashDuplicate(
  flags: BondFlags & { id: string; rowHash: string },
  out: Output,
): Promise<void> {
  const { client } = await actingWallet(flags);
  const result = await client.request<{
    txHash: Hex;
    later: { version: number; contributionId: string; contributor: Address };
    earlier: { version: number; contributionId: string };
    slashed: string;
    toReporter: string;
    penaltyScore: string;
  }>('POST', `/api/datanets/${encodeURIComponent(flags.id)}/slash-duplicate`, {
    rowHash: flags.rowHash.replace(/^0x/, '').toLowerCase(),
  });
  out.result(
    result,
    (r) =>
      `proved contribution ${r.later.contributionId} (version ${r.later.version}, ${r.later.contributor}) re-uploaded a row of ${r.earlier.contributionId} (version ${r.earlier.version})\n  slashed ${open(r.slashed)} (${open(r.toReporter)} to the node as reporter); penalty score now ${r.penaltyScore}\n  tx ${r.txHash}`,
  );
}

/** `openledger bonds penalty [address]`: whose is the argument, else the signer's. */
export async function bondPenalty(
  flags: BondFlags & { address?: string },
  out: Output,
): Promise<void> {
  let address: Address;
  if (flags.address !== undefined) {
    if (!isAddress(flags.address, { strict: false }))
      throw new OpenLedgerError('VALIDATION_FAILED', `${flags.address} is not an address.`, {
        details: { field: 'address' },
      });
    address = getAddress(flags.address);
  } else address = (await actingWallet(flags)).signer.address;
  const p = await new NodeClient(flags.url).request<PenaltyView>(
    'GET',
    `/api/contributors/${address}/penalty`,
  );
  out.result(
    p,
    (v) =>
      `penalty score of ${v.address}: ${v.score} (threshold ${v.threshold})${v.rewardsCut ? '\n  contributor rewards are CUT' : ''}`,
  );
}

/** Registers `openledger bonds show|bond|request-unbond|unbond|slash|slash-duplicate|penalty`. */
export function registerBondCommands(
  program: Command,
  out: Output,
  signerOptions: SignerOptions,
): void {
  const bonds = program
    .command('bonds')
    .description('contribution bonds and data-quality penalties (slashes, penalty scores)');
  const withKey = (command: Command) =>
    signerOptions(command).addOption(
      new Option('--private-key <key>', 'sign with this key (prefer OPENLEDGER_PRIVATE_KEY)'),
    );
  withKey(
    bonds.command('show').description("a contribution's bond").argument('<contribution>'),
  ).action((cid: string, options) => bondShow({ ...options, cid }, out));
  withKey(
    bonds
      .command('bond')
      .description('bond OPEN on your contribution (you sign a permit; the node relays it)')
      .argument('<contribution>')
      .argument('<open>', 'amount of OPEN, e.g. 1 or 0.25'),
  ).action((cid: string, amount: string, options) => bondAdd({ ...options, cid, amount }, out));
  withKey(
    bonds
      .command('request-unbond')
      .description('ask for your bond back (it unlocks after the unbond delay)')
      .argument('<contribution>'),
  ).action((cid: string, options) => bondRequestUnbond({ ...options, cid }, out));
  withKey(
    bonds
      .command('unbond')
      .description('pay an unlocked bond back to its contributor')
      .argument('<contribution>'),
  ).action((cid: string, options) => bondUnbond({ ...options, cid }, out));
  withKey(
    bonds
      .command('slash')
      .description('slash a bonded contribution as malicious (owner or curators)')
      .argument('<datanet>')
      .argument('<contribution>'),
  )
    .requiredOption('--reason <text>', 'why (its sha256 goes on-chain)')
    .action((id: string, cid: string, options) => bondSlash({ ...options, id, cid }, out));
  withKey(
    bonds
      .command('slash-duplicate')
      .description(
        'prove that a row was re-uploaded under another contribution (node builds the proofs)',
      )
      .argument('<datanet>')
      .argument('<rowHash>'),
  ).action((id: string, rowHash: string, options) =>
    bondSlashDuplicate({ ...options, id, rowHash }, out),
  );
  withKey(
    bonds
      .command('penalty')
      .description("a contributor's penalty score and whether its rewards are cut")
      .argument('[address]', 'default: your wallet'),
  ).action((address: string | undefined, options) =>
    bondPenalty({ ...options, ...(address === undefined ? {} : { address }) }, out),
  );
}
