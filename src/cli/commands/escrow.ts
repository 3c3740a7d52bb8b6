import { Option, type Command } from 'commander';
import { formatUnits, getAddress, isAddress, parseUnits, type Address, type Hex } from 'viem';
import { resolveSigner } from '../../chain/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import { permitTypedData, requestWithdrawalTypedData } from '../../payments/typed-data.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';

type SignerOptions = (command: Command) => Command;

/** Signatures stay valid for an hour, as with the datanet and publish commands. */
const DEADLINE_SECONDS = 3600;

interface EscrowFlags extends AuthFlags {
  privateKey?: string;
  address?: string;
}

/** GET /api/escrow (docs/api.md "Inference escrow"); amounts are OPEN wei as strings. */
interface EscrowView {
  address: Address;
  balance: string;
  withdrawal: { amount: string; unlockAt: number } | null;
  unsettled: string;
  reserved: string;
  available: string;
  wallet: string;
  chainId: number;
  escrow: Address;
  token: Address;
  tokenNonce: string;
  escrowNonce: string;
  withdrawalDelaySeconds: number;
  /** What a withdrawal request may ask for: balance less unsettled and reserved fees. */
  withdrawable: string;
  /** The chain's clock (Unix seconds): withdrawals unlock by it, not by this machine's. */
  chainTime: number;
}

const open = (wei: string | bigint) => `${formatUnits(BigInt(wei), 18)} OPEN`;

/**
 * An amount of OPEN ("1", "0.5") in wei. The regex comes first because parseUnits accepts
 * forms we do not want here (signs, exponents) and silently rounds beyond 18 decimals.
 */
export function parseOpenAmount(value: string, options: { allowZero: boolean }): bigint {
  const text = value.trim();
  if (!/^\d+(\.\d{1,18})?$/.test(text))
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `${JSON.stringify(value)} is not an amount of OPEN: expected a decimal number with at most 18 decimals, e.g. 1 or 0.5.`,
      { details: { field: 'amount' } },
    );
  const wei = parseUnits(text, 18);
  if (wei === 0n && !options.allowZero)
    throw new OpenLedgerError('VALIDATION_FAILED', 'The amount must be more than 0 OPEN.', {
      details: { field: 'amount' },
    });
  if (wei >= 2n ** 256n)
    throw new OpenLedgerError('VALIDATION_FAILED', `${value} OPEN is too large.`, {
      details: { field: 'amount' },
    });
  return wei;
}

function signerNamed(flags: EscrowFlags): boolean {
  return (
    flags.account !== undefined ||
    flags.keystore !== undefined ||
    Boolean(flags.privateKey || process.env.OPENLEDGER_PRIVATE_KEY)
  );
}

async function signerFor(client: NodeClient, flags: EscrowFlags) {
  const { local } = await client.request<{ local: boolean }>('GET', '/api/status');
  return resolveSigner({
    account: flags.account === undefined ? undefined : Number(flags.account),
    privateKey: flags.privateKey || process.env.OPENLEDGER_PRIVATE_KEY || undefined,
    keystore: flags.keystore,
    keystorePassword: process.env.OPENLEDGER_KEYSTORE_PASSWORD,
    local,
  });
}

/** The signer, and a client signed in as it: the node only relays for a signed-in caller. */
async function actingWallet(flags: EscrowFlags) {
  const client = new NodeClient(flags.url);
  const signer = await signerFor(client, flags);
  await client.signIn(signer);
  return { client, signer };
}

function addressFlag(value: string): Address {
  if (!isAddress(value, { strict: false }))
    throw new OpenLedgerError('VALIDATION_FAILED', `--address ${value} is not an address.`, {
      details: { field: 'address' },
    });
  return getAddress(value);
}

const view = (client: NodeClient, address: Address) =>
  client.request<EscrowView>('GET', `/api/escrow?address=${address}`);

/** When a withdrawal unlocks, and how long that is from now by the chain's clock. */
function unlocks(e: EscrowView, unlockAt: number): string {
  const at = new Date(unlockAt * 1000).toISOString();
  return unlockAt > e.chainTime
    ? `unlocks ${at} (in ${unlockAt - e.chainTime} s)`
    : `unlocked ${at}`;
}

function describe(e: EscrowView): string {
  const lines = [
    `escrow of ${e.address}`,
    `  balance     ${open(e.balance)}`,
    `  withdrawal  ${
      e.withdrawal
        ? `${open(e.withdrawal.amount)} requested, ${unlocks(e, e.withdrawal.unlockAt)}`
        : 'none'
    }`,
    `  unsettled   ${open(e.unsettled)} (charged by this node, not yet on-chain)`,
    `  available   ${open(e.available)} for new calls`,
    `  wallet      ${open(e.wallet)}`,
    `  contract    ${e.escrow} (chain ${e.chainId})`,
  ];
  return lines.join('\n');
}

/**
 * `openledger escrow balance`: whose is, in order, --address, the named signer's, or the caller
 * signed in with OPENLEDGER_API_KEY.
 */
export async function escrowBalance(flags: EscrowFlags, out: Output): Promise<void> {
  const client = new NodeClient(flags.url);
  let address: Address;
  if (flags.address !== undefined) address = addressFlag(flags.address);
  else if (signerNamed(flags)) address = (await signerFor(client, flags)).address;
  else {
    // No wallet named: the node answers for whoever the API key (or a sign-in) belongs to.
    const authed = await authenticatedClient(flags);
    const e = await authed.request<EscrowView>('GET', '/api/escrow');
    out.result(e, describe);
    return;
  }
  out.result(await view(client, address), describe);
}

/** `openledger escrow deposit <OPEN>`: signs an ERC-2612 permit; the node relays the deposit. */
export async function escrowDeposit(
  flags: EscrowFlags & { amount: string },
  out: Output,
): Promise<void> {
  const amount = parseOpenAmount(flags.amount, { allowZero: false });
  const { client, signer } = await actingWallet(flags);
  const before = await view(client, signer.address);
  // The chain would revert too, but with an ERC20 error the user cannot act on.
  if (BigInt(before.wallet) < amount)
    throw new OpenLedgerError(
      'INSUFFICIENT_BALANCE',
      `Your wallet ${signer.address} holds ${open(before.wallet)}; it cannot deposit ${open(amount)}.`,
      { hint: 'On the local chain, get OPEN from the faucet (web app, or POST /api/faucet).' },
    );
  // The chain checks the deadline against its own clock.
  const deadline = BigInt(before.chainTime + DEADLINE_SECONDS);
  const signature: Hex = await signer.signTypedData(
    permitTypedData({
      chainId: before.chainId,
      token: before.token,
      escrow: before.escrow,
      owner: signer.address,
      value: amount,
      nonce: BigInt(before.tokenNonce),
      deadline,
    }),
  );
  out.progress(`depositing ${open(amount)}`);
  const { txHash } = await client.request<{ txHash: Hex }>('POST', '/api/escrow/deposit', {
    owner: signer.address,
    amount: amount.toString(),
    deadline: deadline.toString(),
    signature,
  });
  out.progressDone('deposited');
  const escrow = await view(client, signer.address);
  out.result(
    { deposited: amount.toString(), txHash, escrow },
    (r) => `deposited ${open(r.deposited)}; tx ${r.txHash}\n${describe(r.escrow)}`,
  );
}

/**
 * `openledger escrow withdraw <OPEN>` signs a withdrawal request (0 cancels one);
 * `withdraw --complete` pays out an unlocked request (anyone may ask, for --address).
 */
export async function escrowWithdraw(
  flags: EscrowFlags & { amount?: string; complete?: boolean },
  out: Output,
): Promise<void> {
  if (flags.complete ? flags.amount !== undefined : flags.amount === undefined)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      flags.complete
        ? '--complete pays out the amount already requested; give no amount with it.'
        : 'Give the amount of OPEN to withdraw (0 cancels a request), or --complete.',
      { details: { field: 'amount' } },
    );
  if (flags.complete) {
    // Paying out needs a signed-in caller but not the owner: the money only goes to the owner.
    if (flags.address === undefined && !signerNamed(flags))
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'Whose withdrawal? Give --address, or sign as its owner.',
        { details: { field: 'address' } },
      );
    let client: NodeClient;
    let owner: Address;
    if (signerNamed(flags)) {
      const acting = await actingWallet(flags);
      client = acting.client;
      owner = flags.address === undefined ? acting.signer.address : addressFlag(flags.address);
    } else {
      owner = addressFlag(flags.address!);
      client = await authenticatedClient(flags);
    }
    const before = await view(client, owner);
    // Checked here so the user learns when, rather than reading a contract revert.
    if (!before.withdrawal)
      throw new OpenLedgerError('CONFLICT', `${owner} has no withdrawal requested.`, {
        hint: 'Request one first: `openledger escrow withdraw <OPEN>`.',
      });
    // The chain's clock decides (a local chain's may run ahead of this machine's, or behind).
    if (before.withdrawal.unlockAt > before.chainTime)
      throw new OpenLedgerError(
        'WITHDRAWAL_LOCKED',
        `The withdrawal of ${open(before.withdrawal.amount)} ${unlocks(before, before.withdrawal.unlockAt)} by the chain's clock.`,
        { details: { unlockAt: before.withdrawal.unlockAt, chainTime: before.chainTime } },
      );
    out.progress('paying out the withdrawal');
    const { txHash } = await client.request<{ txHash: Hex }>('POST', '/api/escrow/withdraw', {
      owner,
      complete: true,
    });
    out.progressDone('paid out');
    const escrow = await view(client, owner);
    out.result(
      { withdrawn: before.withdrawal.amount, txHash, escrow },
      (r) => `withdrew ${open(r.withdrawn)} to ${owner}; tx ${r.txHash}\n${describe(r.escrow)}`,
    );
    return;
  }

  const amount = parseOpenAmount(flags.amount!, { allowZero: true });
  const { client, signer } = await actingWallet(flags);
  const before = await view(client, signer.address);
  if (BigInt(before.withdrawable) < amount)
    throw new OpenLedgerError(
      'INSUFFICIENT_BALANCE',
      `You can withdraw at most ${open(before.withdrawable)} (escrow balance ${open(before.balance)}, less ${open(BigInt(before.unsettled) + BigInt(before.reserved))} of fees not settled yet); you cannot withdraw ${open(amount)}.`,
    );
  // The chain checks the deadline against its own clock.
  const deadline = BigInt(before.chainTime + DEADLINE_SECONDS);
  const signature: Hex = await signer.signTypedData(
    requestWithdrawalTypedData({
      chainId: before.chainId,
      escrow: before.escrow,
      owner: signer.address,
      amount,
      nonce: BigInt(before.escrowNonce),
      deadline,
    }),
  );
  out.progress(amount === 0n ? 'cancelling the withdrawal' : `requesting ${open(amount)}`);
  const { txHash } = await client.request<{ txHash: Hex }>('POST', '/api/escrow/withdraw', {
    owner: signer.address,
    amount: amount.toString(),
    deadline: deadline.toString(),
    signature,
  });
  out.progressDone(amount === 0n ? 'cancelled' : 'requested');
  const escrow = await view(client, signer.address);
  out.result({ requested: amount.toString(), txHash, escrow }, (r) =>
    [
      r.requested === '0'
        ? `cancelled the withdrawal request; tx ${r.txHash}`
        : `requested a withdrawal of ${open(r.requested)}; tx ${r.txHash}`,
      describe(r.escrow),
      ...(r.escrow.withdrawal
        ? ['', 'Once it unlocks, pay it out with `openledger escrow withdraw --complete`.']
        : []),
    ].join('\n'),
  );
}

/** Registers `openledger escrow balance|deposit|withdraw`. */
export function registerEscrowCommands(
  program: Command,
  out: Output,
  signerOptions: SignerOptions,
): void {
  const escrow = program
    .command('escrow')
    .description('your prepaid OPEN for paid inference: balance, deposit, withdraw');
  // Like `deploy`: a raw key from the environment is preferred to one on the command line.
  const withKey = (command: Command) =>
    signerOptions(command).addOption(
      new Option('--private-key <key>', 'sign with this key (prefer OPENLEDGER_PRIVATE_KEY)'),
    );
  withKey(
    escrow
      .command('balance')
      .description('escrow balance, pending withdrawal, unsettled fees, what is available'),
  )
    .option('--address <address>', "someone's escrow, without signing in")
    .action((options) => escrowBalance(options, out));
  withKey(
    escrow
      .command('deposit')
      .description('deposit OPEN from your wallet (you sign a permit; the node relays it)')
      .argument('<open>', 'amount of OPEN, e.g. 1 or 0.25'),
  ).action((amount: string, options) => escrowDeposit({ ...options, amount }, out));
  withKey(
    escrow
      .command('withdraw')
      .description(
        'request a withdrawal (unlocks after the delay; 0 cancels), or --complete to pay it out',
      )
      .argument('[open]', 'amount of OPEN to request'),
  )
    .option('--complete', 'pay out the unlocked withdrawal')
    .option('--address <address>', 'with --complete: whose withdrawal (default: yours)')
    .action((amount: string | undefined, options) =>
      escrowWithdraw({ ...options, ...(amount === undefined ? {} : { amount }) }, out),
    );
}
