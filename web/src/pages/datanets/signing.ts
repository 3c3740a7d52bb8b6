// Signing for datanet actions. The EIP-712 messages come from the node's own module
// (src/datanets/typed-data.ts, no Node.js dependencies), so the web app signs exactly what the
// CLI signs and what the registry and the node verify.
import { useMemo } from 'react';
import { sha256, toBytes, type TypedData, type TypedDataDefinition } from 'viem';
import type { SigningContext } from '../../../../src/datanets/typed-data.ts';
import {
  ApiError,
  datanetsApi,
  type Address,
  type Hex,
  type SignedAuthorization,
} from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { signTypedData } from '../../lib/wallet';

export {
  contributionTypedData,
  registryTypedData,
  type SigningContext,
} from '../../../../src/datanets/typed-data.ts';

/** Signatures of relayed registry actions stay valid for an hour, as with the CLI. */
export const DEADLINE_SECONDS = 3600;

/** The signing context of a registry action: chain, registry, the signer's nonce, a deadline. */
export async function signingContext(address: Address): Promise<SigningContext> {
  const info = await datanetsApi.signingInfo(address);
  return {
    chainId: info.chainId,
    registry: info.registry,
    nonce: BigInt(info.nonce),
    deadline: BigInt(Math.floor(Date.now() / 1000) + DEADLINE_SECONDS),
  };
}

export function authorization(signature: Hex, ctx: SigningContext): SignedAuthorization {
  return { signature, deadline: ctx.deadline.toString() };
}

/** sha256 of a text's UTF-8 bytes: the purpose of an access request, the reason of a denial. */
export function textHash(text: string): Hex {
  return sha256(toBytes(text));
}

/** A random 128-bit nonce for a contribution statement (each is accepted once per contributor). */
export function randomNonce(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return BigInt(`0x${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`);
}

export interface ActingWallet {
  /** The signed-in address, or null when signed out. */
  address: Address | null;
  sign: <
    const typedData extends TypedData | Record<string, unknown>,
    primaryType extends keyof typedData | 'EIP712Domain' = keyof typedData,
  >(
    typed: TypedDataDefinition<typedData, primaryType>,
  ) => Promise<Hex>;
}

/** The signed-in wallet, able to sign typed data (dev account or injected wallet). */
export function useActingWallet(): ActingWallet {
  const { session, signer } = useAuth();
  return useMemo(
    () => ({
      address: session?.address ?? null,
      sign: async (typed) => {
        if (!session) {
          throw new ApiError({
            status: 401,
            code: 'UNAUTHENTICATED',
            message: 'Sign in first.',
            hint: 'Connect your wallet and sign in to act on datanets.',
          });
        }
        return signTypedData(signer, session.address, typed);
      },
    }),
    [session, signer],
  );
}
