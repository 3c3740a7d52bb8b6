import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type Account,
  type Chain,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { OpenLedgerError } from '../errors.ts';

export type ChainPublicClient = PublicClient<Transport, Chain>;
export type ChainWalletClient = WalletClient<Transport, Chain, Account>;

export interface ChainConnection {
  chain: Chain;
  rpcUrl: string;
  publicClient: ChainPublicClient;
  walletFor(account: Account): ChainWalletClient;
}

/**
 * One code path for every chain: the local anvil, an OP Stack L2 or any EVM RPC. The chain id is
 * read from the RPC, so nothing is assumed about the network.
 */
export async function connectChain(rpcUrl: string): Promise<ChainConnection> {
  const transport = http(rpcUrl, { retryCount: 2, timeout: 15_000 });
  let chainId: number;
  try {
    chainId = await createPublicClient({ transport }).getChainId();
  } catch (cause) {
    throw new OpenLedgerError('CHAIN_UNAVAILABLE', `Cannot reach the chain RPC at ${rpcUrl}.`, {
      hint: 'Check the URL and that the node behind it is running.',
      cause,
    });
  }
  const chain = defineChain({
    id: chainId,
    name: chainId === 31337 ? 'OpenLedger local' : `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const publicClient = createPublicClient({
    chain,
    transport,
    pollingInterval: 250,
  }) as ChainPublicClient;
  return {
    chain,
    rpcUrl,
    publicClient,
    walletFor: (account) => createWalletClient({ account, chain, transport }),
  };
}
