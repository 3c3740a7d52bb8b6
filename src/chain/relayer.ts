import type {
  Abi,
  ContractFunctionArgs,
  ContractFunctionName,
  LocalAccount,
  TransactionReceipt,
} from 'viem';
import { OpenLedgerError } from '../errors.ts';
import type { ChainConnection } from './clients.ts';

/**
 * The node's own signer, which pays gas for actions that wallets authorise by signature
 * (meta-transactions) and for the local faucet. Transactions go out one at a time, so concurrent
 * requests never race for a nonce; each is simulated first, so a revert comes back decoded
 * without spending gas.
 */
export class Relayer {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly conn: ChainConnection,
    readonly account: LocalAccount,
  ) {}

  async write<
    const abi extends Abi,
    functionName extends ContractFunctionName<abi, 'nonpayable' | 'payable'>,
    args extends ContractFunctionArgs<abi, 'nonpayable' | 'payable', functionName>,
  >(call: {
    address: `0x${string}`;
    abi: abi;
    functionName: functionName;
    args: args;
  }): Promise<TransactionReceipt> {
    return this.serially(async () => {
      const { request } = await this.conn.publicClient.simulateContract({
        ...call,
        account: this.account,
      } as never);
      const hash = await this.conn.walletFor(this.account).writeContract(request as never);
      const receipt = await this.conn.publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== 'success') {
        throw new OpenLedgerError(
          'CHAIN_UNAVAILABLE',
          `Transaction ${hash} reverted on-chain after a successful simulation.`,
          {
            hint: 'The chain state changed between simulation and inclusion; retry.',
          },
        );
      }
      return receipt;
    });
  }

  private serially<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
