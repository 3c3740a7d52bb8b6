import { BaseError, ContractFunctionRevertedError } from 'viem';
import { OpenLedgerError } from '../errors.ts';

/** The contract's custom error behind a failed call (as viem decoded it), if it reverted with one. */
export function revertOf(error: unknown): ContractFunctionRevertedError | undefined {
  const reverted =
    error instanceof BaseError
      ? error.walk((e) => e instanceof ContractFunctionRevertedError)
      : null;
  return reverted instanceof ContractFunctionRevertedError ? reverted : undefined;
}

/**
 * A failed contract call as an error a caller can act on: a revert as CONFLICT naming the
 * contract's error and its arguments, anything else as the chain's failure.
 */
export function revertError(functionName: string, error: unknown): OpenLedgerError {
  if (error instanceof OpenLedgerError) return error;
  const reverted = revertOf(error);
  const name = reverted?.data?.errorName;
  if (name)
    return new OpenLedgerError(
      'CONFLICT',
      `${functionName} was refused on-chain: ${name}${reverted.data?.args ? `(${reverted.data.args.map(String).join(', ')})` : ''}.`,
      { details: { revert: name }, cause: error },
    );
  return new OpenLedgerError(
    'CHAIN_UNAVAILABLE',
    `${functionName} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    { cause: error },
  );
}
