import { sha256, toBytes, type Address, type Hex, type TypedDataDomain } from 'viem';

/**
 * EIP-712 messages a wallet signs so that a node relays its ContributionBonds actions and pays
 * the gas: `RequestUnbond` (contributors) and `SlashMalicious` (a datanet's owner or curators),
 * both in the bonds contract's domain with the signer's `nonces(signer)` there. A relayed bond
 * uses an ERC-2612 permit of OPEN to the bonds contract (`permitTypedData` from
 * src/payments/typed-data.ts with the bonds contract as spender). No Node.js dependencies, so
 * the CLI, the web app and the node build the same messages.
 */

export interface BondsSigningContext {
  chainId: number;
  bonds: Address;
  /** The signer's current `nonces(signer)` on the bonds contract, consumed by the relayed call. */
  nonce: bigint;
  /** Unix seconds after which the signature is void. */
  deadline: bigint;
}

export function bondsDomain(chainId: number, bonds: Address): TypedDataDomain {
  return {
    name: 'OpenLedger ContributionBonds',
    version: '1',
    chainId,
    verifyingContract: bonds,
  };
}

/** Field for field as `ContributionBonds` hashes them (REQUEST_UNBOND_/SLASH_MALICIOUS_TYPEHASH). */
export const BONDS_TYPES = {
  RequestUnbond: [
    { name: 'contributor', type: 'address' },
    { name: 'datanetId', type: 'uint256' },
    { name: 'contributionId', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  SlashMalicious: [
    { name: 'curator', type: 'address' },
    { name: 'datanetId', type: 'uint256' },
    { name: 'contributionId', type: 'bytes32' },
    { name: 'contributor', type: 'address' },
    { name: 'reasonHash', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
} as const;

export function requestUnbondTypedData(
  ctx: BondsSigningContext,
  m: { contributor: Address; datanetId: bigint; contributionId: Hex },
) {
  return {
    domain: bondsDomain(ctx.chainId, ctx.bonds),
    types: { RequestUnbond: BONDS_TYPES.RequestUnbond },
    primaryType: 'RequestUnbond',
    message: { ...m, nonce: ctx.nonce, deadline: ctx.deadline },
  } as const;
}

export function slashMaliciousTypedData(
  ctx: BondsSigningContext,
  m: {
    curator: Address;
    datanetId: bigint;
    contributionId: Hex;
    contributor: Address;
    reasonHash: Hex;
  },
) {
  return {
    domain: bondsDomain(ctx.chainId, ctx.bonds),
    types: { SlashMalicious: BONDS_TYPES.SlashMalicious },
    primaryType: 'SlashMalicious',
    message: { ...m, nonce: ctx.nonce, deadline: ctx.deadline },
  } as const;
}

/** The on-chain `reasonHash` of a slash: sha256 of the reason's UTF-8 text (as access purposes). */
export function slashReasonHash(reason: string): Hex {
  return sha256(toBytes(reason));
}
