import type { Address } from 'viem';

/**
 * EIP-712 messages a wallet signs to move its inference escrow without sending a transaction
 * itself: an ERC-2612 permit for a deposit (OPEN's own domain) and `RequestWithdrawal` (the
 * escrow's domain). The node relays both. No Node.js dependencies, so the CLI, the web app and
 * the node build the same messages.
 */

export interface PermitFields {
  chainId: number;
  token: Address;
  escrow: Address;
  owner: Address;
  value: bigint;
  /** The owner's current `nonces(owner)` on the token. */
  nonce: bigint;
  deadline: bigint;
}

export function permitTypedData(f: PermitFields) {
  return {
    // OpenToken: ERC20Permit("OpenLedger"), OZ's version "1".
    domain: { name: 'OpenLedger', version: '1', chainId: f.chainId, verifyingContract: f.token },
    types: {
      Permit: [
        { name: 'owner', type: 'address' },
        { name: 'spender', type: 'address' },
        { name: 'value', type: 'uint256' },
        { name: 'nonce', type: 'uint256' },
        { name: 'deadline', type: 'uint256' },
      ],
    },
    primaryType: 'Permit',
    message: {
      owner: f.owner,
      spender: f.escrow,
      value: f.value,
      nonce: f.nonce,
      deadline: f.deadline,
    },
  } as const;
}

export interface RequestWithdrawalFields {
  chainId: number;
  escrow: Address;
  owner: Address;
  amount: bigint;
  /** The owner's current `nonces(owner)` on the escrow. */
  nonce: bigint;
  deadline: bigint;
}

export function requestWithdrawalTypedData(f: RequestWithdrawalFields) {
  return {
    domain: {
      name: 'OpenLedger InferenceEscrow',
      version: '1',
      chainId: f.chainId,
      verifyingContract: f.escrow,
    },
    types: {
      RequestWithdrawal: [
        { name: 'owner', type: 'address' },
        { name: 'amount', type: 'uint256' },
        { name: 'nonce', type: 'uint256' },
        { name: 'deadline', type: 'uint256' },
      ],
    },
    primaryType: 'RequestWithdrawal',
    message: { owner: f.owner, amount: f.amount, nonce: f.nonce, deadline: f.deadline },
  } as const;
}

/**
 * Fee = T_in/1000·R_in + T_out/1000·R_out in OPEN wei, rounded down once over the sum (not per
 * term), so splitting a call into input and output never loses more than one wei.
 */
export function inferenceFee(
  price: { pricePer1kInput: bigint; pricePer1kOutput: bigint },
  promptTokens: number,
  completionTokens: number,
): bigint {
  return (
    (BigInt(promptTokens) * price.pricePer1kInput +
      BigInt(completionTokens) * price.pricePer1kOutput) /
    1000n
  );
}
