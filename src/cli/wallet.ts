/**
 * The CLI's own wallet on a node's chain, for actions its holder sends and pays gas for (claims,
 * challenges, stakes, votes): the node says which chain and contracts, the wallet signs locally.
 */
import { type Abi, type Address, type Hash, type LocalAccount } from 'viem';
import { resolveSigner } from '../chain/accounts.ts';
import { revertError } from '../chain/errors.ts';
import { OpenTokenAbi } from '../chain/generated/contracts.ts';
import { connectChain, type ChainConnection } from '../chain/clients.ts';
import { OpenLedgerError } from '../errors.ts';
import { NodeClient } from './client.ts';
import type { AuthFlags } from './commands/keys.ts';

export interface NodeWallet {
  client: NodeClient;
  chain: ChainConnection;
  account: LocalAccount;
  contracts: Record<string, Address>;
  local: boolean;
}

/** Connects to the node's chain with the wallet the flags name (dev account, keystore or key). */
export async function nodeWallet(flags: AuthFlags): Promise<NodeWallet> {
  const client = new NodeClient(flags.url);
  const status = await client.request<{
    rpcUrl: string;
    local: boolean;
    contracts: Record<string, Address>;
  }>('GET', '/api/status');
  const account = await resolveSigner({
    account: flags.account === undefined ? undefined : Number(flags.account),
    privateKey: process.env.OPENLEDGER_PRIVATE_KEY,
    keystore: flags.keystore,
    keystorePassword: process.env.OPENLEDGER_KEYSTORE_PASSWORD,
    local: status.local,
  });
  return {
    client,
    chain: await connectChain(status.rpcUrl),
    account,
    contracts: status.contracts,
    local: status.local,
  };
}

/** Simulates (so a revert comes back by name), sends and waits for one transaction. */
export async function send(
  chain: ChainConnection,
  account: LocalAccount,
  call: { address: Address; abi: Abi; functionName: string; args: readonly unknown[] },
): Promise<Hash> {
  try {
    const { request } = await chain.publicClient.simulateContract({ ...call, account } as never);
    const hash = await chain.walletFor(account).writeContract(request as never);
    await chain.publicClient.waitForTransactionReceipt({ hash });
    return hash;
  } catch (cause) {
    throw revertError(call.functionName, cause);
  }
}

/** Lets `spender` move `amount` of the wallet's OPEN (before a stake, a deposit, a bond). */
export async function approveOpen(w: NodeWallet, spender: Address, amount: bigint): Promise<void> {
  const token = w.contracts.OpenToken;
  if (!token) throw new OpenLedgerError('NOT_DEPLOYED', 'The node names no OPEN token.');
  await send(w.chain, w.account, {
    address: token,
    abi: OpenTokenAbi,
    functionName: 'approve',
    args: [spender, amount],
  });
}
