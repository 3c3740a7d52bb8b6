import type { Address, Hex, TypedDataDomain } from 'viem';

/**
 * EIP-712 messages that wallets sign for datanet actions. The registry's actions are relayed by
 * the node (which pays gas) and checked on-chain; the contribution statement is checked by the
 * node. This module has no Node.js dependencies, so the CLI, the web app and scripts build the
 * exact same messages.
 */

export type Policy = 'open' | 'permissioned';
export const POLICY_CODE: Record<Policy, number> = { open: 0, permissioned: 1 };

export interface SigningContext {
  chainId: number;
  registry: Address;
  /** The signer's current registry nonce (`nonces(signer)`), consumed by the relayed call. */
  nonce: bigint;
  /** Unix seconds after which the signature is void. */
  deadline: bigint;
}

export function registryDomain(chainId: number, registry: Address): TypedDataDomain {
  return { name: 'OpenLedger DatanetRegistry', version: '1', chainId, verifyingContract: registry };
}

/** The registry's EIP-712 types, field for field as `DatanetRegistry` hashes them. */
export const REGISTRY_TYPES = {
  CreateDatanet: [
    { name: 'owner', type: 'address' },
    { name: 'metadataHash', type: 'bytes32' },
    { name: 'policy', type: 'uint8' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  UpdateMetadata: [
    { name: 'owner', type: 'address' },
    { name: 'id', type: 'uint256' },
    { name: 'metadataHash', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  SetCurator: [
    { name: 'owner', type: 'address' },
    { name: 'id', type: 'uint256' },
    { name: 'curator', type: 'address' },
    { name: 'enabled', type: 'bool' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  CommitVersion: [
    { name: 'committer', type: 'address' },
    { name: 'id', type: 'uint256' },
    { name: 'root', type: 'bytes32' },
    { name: 'rowCount', type: 'uint64' },
    { name: 'manifestId', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  RequestAccess: [
    { name: 'account', type: 'address' },
    { name: 'id', type: 'uint256' },
    { name: 'purposeHash', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  GrantAccess: [
    { name: 'owner', type: 'address' },
    { name: 'id', type: 'uint256' },
    { name: 'account', type: 'address' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  RevokeAccess: [
    { name: 'owner', type: 'address' },
    { name: 'id', type: 'uint256' },
    { name: 'account', type: 'address' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  DenyAccess: [
    { name: 'owner', type: 'address' },
    { name: 'id', type: 'uint256' },
    { name: 'account', type: 'address' },
    { name: 'reasonHash', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
} as const;

type RegistryAction = keyof typeof REGISTRY_TYPES;

function registryMessage<P extends RegistryAction, M extends Record<string, unknown>>(
  ctx: SigningContext,
  primaryType: P,
  message: M,
) {
  return {
    domain: registryDomain(ctx.chainId, ctx.registry),
    types: { [primaryType]: REGISTRY_TYPES[primaryType] } as Pick<typeof REGISTRY_TYPES, P>,
    primaryType,
    message: { ...message, nonce: ctx.nonce, deadline: ctx.deadline },
  };
}

export const registryTypedData = {
  createDatanet: (ctx: SigningContext, m: { owner: Address; metadataHash: Hex; policy: Policy }) =>
    registryMessage(ctx, 'CreateDatanet', { ...m, policy: POLICY_CODE[m.policy] }),
  updateMetadata: (ctx: SigningContext, m: { owner: Address; id: bigint; metadataHash: Hex }) =>
    registryMessage(ctx, 'UpdateMetadata', m),
  setCurator: (
    ctx: SigningContext,
    m: { owner: Address; id: bigint; curator: Address; enabled: boolean },
  ) => registryMessage(ctx, 'SetCurator', m),
  commitVersion: (
    ctx: SigningContext,
    m: { committer: Address; id: bigint; root: Hex; rowCount: bigint; manifestId: Hex },
  ) => registryMessage(ctx, 'CommitVersion', m),
  requestAccess: (ctx: SigningContext, m: { account: Address; id: bigint; purposeHash: Hex }) =>
    registryMessage(ctx, 'RequestAccess', m),
  grantAccess: (ctx: SigningContext, m: { owner: Address; id: bigint; account: Address }) =>
    registryMessage(ctx, 'GrantAccess', m),
  revokeAccess: (ctx: SigningContext, m: { owner: Address; id: bigint; account: Address }) =>
    registryMessage(ctx, 'RevokeAccess', m),
  denyAccess: (
    ctx: SigningContext,
    m: { owner: Address; id: bigint; account: Address; reasonHash: Hex },
  ) => registryMessage(ctx, 'DenyAccess', m),
};

/**
 * The statement a contributor signs for each contribution: which datanet, exactly which content
 * (sha256 of the file, or of the canonical JSON of the rows), under which licence, with consent.
 * The nonce is the contributor's own random choice; the node accepts each (contributor, nonce)
 * once, so a signed statement cannot be replayed.
 */
export function contributionTypedData(
  chainId: number,
  registry: Address,
  m: { datanetId: bigint; contentHash: Hex; license: string; consent: boolean; nonce: bigint },
) {
  return {
    domain: { name: 'OpenLedger', version: '1', chainId, verifyingContract: registry },
    types: {
      Contribution: [
        { name: 'datanetId', type: 'uint256' },
        { name: 'contentHash', type: 'bytes32' },
        { name: 'license', type: 'string' },
        { name: 'consent', type: 'bool' },
        { name: 'nonce', type: 'uint256' },
      ],
    },
    primaryType: 'Contribution',
    message: m,
  } as const;
}
