import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  encodeDeployData,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import {
  connectChain,
  startLocalChain,
  type ChainConnection,
  type LocalChain,
} from '../../src/chain/index.ts';

/** A bare local chain (no node around it) in a temporary directory. */
export async function startTestChain(options: { chainId?: number } = {}): Promise<{
  chain: LocalChain;
  conn: ChainConnection;
  dataDir: string;
  close(): Promise<void>;
}> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-chain-'));
  const chain = await startLocalChain({
    dataDir,
    port: 0,
    ...(options.chainId ? { chainId: options.chainId } : {}),
  });
  const conn = await connectChain(chain.rpcUrl);
  return {
    chain,
    conn,
    dataDir,
    close: async () => {
      await chain.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Asserts that a contract call reverts with the custom error `errorName` (decoded by viem). */
export async function expectRevert(call: Promise<unknown>, errorName: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    const reverted =
      error instanceof BaseError
        ? error.walk((e) => e instanceof ContractFunctionRevertedError)
        : null;
    const name =
      reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined;
    assert.equal(name, errorName, `expected revert ${errorName}, got ${name ?? String(error)}`);
    return true;
  });
}

/** Asserts that deploying `bytecode` with `args` reverts in its constructor with `errorName`. */
export async function expectDeployRevert(
  conn: ChainConnection,
  from: Address,
  contract: { abi: Abi; bytecode: Hex; args: readonly unknown[] },
  errorName: string,
): Promise<void> {
  const data = encodeDeployData({
    abi: contract.abi,
    bytecode: contract.bytecode,
    args: contract.args,
  } as never);
  await assert.rejects(conn.publicClient.call({ account: from, data }), (error: unknown) => {
    const withData =
      error instanceof BaseError
        ? error.walk((e) => typeof (e as { data?: unknown }).data === 'string')
        : null;
    const revertData = (withData as { data?: Hex } | null)?.data;
    assert.ok(revertData, `expected revert data, got ${String(error)}`);
    assert.equal(decodeErrorResult({ abi: contract.abi, data: revertData }).errorName, errorName);
    return true;
  });
}

/**
 * simulate / send / read by function name against a contract test's contracts: `abiOf` picks the
 * ABI by address, `target` is the address when none is given. Both are functions because the
 * tests deploy in `before`.
 */
export function contractCalls(
  conn: () => ChainConnection,
  abiOf: (address: Address) => Abi,
  target: () => Address,
) {
  const simulate = (
    account: LocalAccount,
    functionName: string,
    args: readonly unknown[],
    address: Address = target(),
  ) =>
    conn().publicClient.simulateContract({
      address,
      abi: abiOf(address),
      functionName,
      args,
      account,
    } as never);
  /** Sends the call from `account` and asserts that it succeeded. */
  const send = async (
    account: LocalAccount,
    functionName: string,
    args: readonly unknown[],
    address: Address = target(),
  ): Promise<TransactionReceipt> => {
    const { request } = await simulate(account, functionName, args, address);
    const hash = await conn()
      .walletFor(account)
      .writeContract(request as never);
    const receipt = await conn().publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    return receipt;
  };
  const read = <T>(functionName: string, args: readonly unknown[] = [], address = target()) =>
    conn().publicClient.readContract({
      address,
      abi: abiOf(address),
      functionName,
      args,
    } as never) as Promise<T>;
  return { simulate, send, read };
}
