// The node's inference-escrow endpoints (/api/escrow). The Permit and RequestWithdrawal messages
// come from the node's own module (src/payments/typed-data.ts, no Node.js dependencies), so the
// web app signs exactly what the CLI signs and what the contracts check.
import { parseUnits } from 'viem';
import { ApiError, request, type Address, type Hex } from '../../lib/api';

export {
  permitTypedData,
  requestWithdrawalTypedData,
} from '../../../../src/payments/typed-data.ts';

/** GET /api/escrow (docs/api.md "Inference escrow"): amounts are OPEN wei as decimal strings. */
export interface EscrowView {
  address: Address;
  /** On-chain escrow balance, a pending withdrawal included. */
  balance: string;
  withdrawal: { amount: string; unlockAt: number } | null;
  /** Fees this node charged and has not settled on-chain yet. */
  unsettled: string;
  /** Upper bounds of the caller's calls running now. */
  reserved: string;
  /** What a new call may cost. */
  available: string;
  /** What a withdrawal request may ask for. */
  withdrawable: string;
  /** The wallet's own OPEN. */
  wallet: string;
  chainId: number;
  escrow: Address;
  token: Address;
  tokenNonce: string;
  escrowNonce: string;
  withdrawalDelaySeconds: number;
  /** The latest block's timestamp (Unix seconds): withdrawals unlock by the chain's clock. */
  chainTime: number;
}

export const escrowApi = {
  get: (signal?: AbortSignal) => request<EscrowView>('/api/escrow', { signal }),
  deposit: (body: { owner: Address; amount: string; deadline: string; signature: Hex }) =>
    request<{ txHash: Hex }>('/api/escrow/deposit', { method: 'POST', body }),
  requestWithdrawal: (body: { owner: Address; amount: string; deadline: string; signature: Hex }) =>
    request<{ txHash: Hex }>('/api/escrow/withdraw', { method: 'POST', body }),
  complete: (owner: Address) =>
    request<{ txHash: Hex }>('/api/escrow/withdraw', {
      method: 'POST',
      body: { owner, complete: true },
    }),
};

/** Signatures stay valid for an hour (by the chain's clock), as with the CLI. */
export const DEADLINE_SECONDS = 3600;

/**
 * An amount of OPEN as typed ("1", "0.5") in wei. The pattern comes first because parseUnits
 * accepts forms we do not want here (signs, exponents) and rounds beyond 18 decimals, as the
 * CLI's parser does.
 */
export function parseOpen(value: string): bigint {
  const text = value.trim();
  if (!/^\d+(\.\d{1,18})?$/.test(text))
    throw new ApiError({
      status: 0,
      code: 'VALIDATION_FAILED',
      message: `${JSON.stringify(value)} is not an amount of OPEN: use a decimal number with at most 18 decimals, e.g. 1 or 0.5.`,
    });
  const wei = parseUnits(text, 18);
  if (wei === 0n)
    throw new ApiError({
      status: 0,
      code: 'VALIDATION_FAILED',
      message: 'The amount must be more than 0 OPEN.',
    });
  return wei;
}
