/**
 * The CLI's own wallet on a node's chain, for actions its holder sends and pays gas for (claims,
 * challenges, stakes, votes): the node says which chain and contracts, the wallet signs locally.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  type Abi,
  type Address,
  type Hash,
  type LocalAccount,
} from 'viem';
import { resolveSigner } from '../chain/accounts.ts';
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

export { send };

/** Simulates (so a revert comes back by name), sends and waits for one transaction. */
async function send(
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
    const reverted =
      cause instanceof BaseError
        ? cause.walk((e) => e instanceof ContractFunctionRevertedError)
        : null;
    const name =
      reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined;
    throw new OpenLedgerError(
      name ? 'CONFLICT' : 'CHAIN_UNAVAILABLE',
      name
        ? `${call.functionName} was refused on-chain: ${name}${reverted instanceof ContractFunctionRevertedError && reverted.data?.args ? `(${reverted.data.args.map(String).join(', ')})` : ''}.`
        : `${call.functionName} failed: ${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}`,
      { cause },
    );
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
