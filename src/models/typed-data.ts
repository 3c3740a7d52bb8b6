import type { Address, Hex, TypedDataDomain } from 'viem';

/**
 * EIP-712 messages that wallets sign for ModelRegistry actions, relayed by the node (which pays
 * gas) and checked on-chain. No Node.js dependencies, so the CLI, the web app and the node build
 * the exact same messages.
 */

export interface ModelSigningContext {
  chainId: number;
  /** The ModelRegistry's address. */
  registry: Address;
  /** The signer's current ModelRegistry nonce (`nonces(signer)`), consumed by the relayed call. */
  nonce: bigint;
  /** Unix seconds after which the signature is void. */
  deadline: bigint;
}

/** Shares in basis points of what is left after the platform fee; they add up to 10,000. */
export interface RevenueSplit {
  owner: number;
  stakers: number;
  contributors: number;
}

/**
 * How Proof of Attribution weighs its channels for a model (ModelRegistry `ChannelWeights`), in
 * basis points adding up to 10,000.
 */
export interface ModelChannelWeights {
  span: number;
  influence: number;
  rag: number;
}

/** What a Publish signature covers (besides the owner, nonce and deadline). */
export interface PublishFields {
  /** sha256 of the base model's GGUF file. */
  baseModel: Hex;
  /** sha256 of the adapter (GGUF LoRA). */
  adapterHash: Hex;
  /** sha256 of the canonical training manifest. */
  manifestHash: Hex;
  /** sha256 of the canonical model metadata JSON. */
  metadataHash: Hex;
  datanets: { datanetId: bigint; version: bigint }[];
  /** OPEN wei per 1,000 input tokens. */
  pricePer1kInput: bigint;
  /** OPEN wei per 1,000 output tokens. */
  pricePer1kOutput: bigint;
  split: RevenueSplit;
}

export function modelRegistryDomain(chainId: number, registry: Address): TypedDataDomain {
  return { name: 'OpenLedger ModelRegistry', version: '1', chainId, verifyingContract: registry };
}

const DatanetVersion = [
  { name: 'datanetId', type: 'uint256' },
  { name: 'version', type: 'uint256' },
] as const;
const Split = [
  { name: 'owner', type: 'uint16' },
  { name: 'stakers', type: 'uint16' },
  { name: 'contributors', type: 'uint16' },
] as const;

const ChannelWeights = [
  { name: 'span', type: 'uint16' },
  { name: 'influence', type: 'uint16' },
  { name: 'rag', type: 'uint16' },
] as const;

/** The registry's EIP-712 types, field for field as `ModelRegistry` hashes them. */
export const MODEL_REGISTRY_TYPES = {
  Publish: {
    Publish: [
      { name: 'owner', type: 'address' },
      { name: 'baseModel', type: 'bytes32' },
      { name: 'adapterHash', type: 'bytes32' },
      { name: 'manifestHash', type: 'bytes32' },
      { name: 'metadataHash', type: 'bytes32' },
      { name: 'datanets', type: 'DatanetVersion[]' },
      { name: 'pricePer1kInput', type: 'uint256' },
      { name: 'pricePer1kOutput', type: 'uint256' },
      { name: 'split', type: 'Split' },
      { name: 'nonce', type: 'uint256' },
      { name: 'deadline', type: 'uint256' },
    ],
    DatanetVersion,
    Split,
  },
  SetPrice: {
    SetPrice: [
      { name: 'owner', type: 'address' },
      { name: 'modelId', type: 'uint256' },
      { name: 'pricePer1kInput', type: 'uint256' },
      { name: 'pricePer1kOutput', type: 'uint256' },
      { name: 'nonce', type: 'uint256' },
      { name: 'deadline', type: 'uint256' },
    ],
  },
  SetSplit: {
    SetSplit: [
      { name: 'owner', type: 'address' },
      { name: 'modelId', type: 'uint256' },
      { name: 'split', type: 'Split' },
      { name: 'nonce', type: 'uint256' },
      { name: 'deadline', type: 'uint256' },
    ],
    Split,
  },
  SetChannelWeights: {
    SetChannelWeights: [
      { name: 'owner', type: 'address' },
      { name: 'modelId', type: 'uint256' },
      { name: 'weights', type: 'ChannelWeights' },
      { name: 'nonce', type: 'uint256' },
      { name: 'deadline', type: 'uint256' },
    ],
    ChannelWeights,
  },
  SetActive: {
    SetActive: [
      { name: 'owner', type: 'address' },
      { name: 'modelId', type: 'uint256' },
      { name: 'active', type: 'bool' },
      { name: 'nonce', type: 'uint256' },
      { name: 'deadline', type: 'uint256' },
    ],
  },
} as const;

type Action = keyof typeof MODEL_REGISTRY_TYPES;

function message<P extends Action, M extends object>(
  ctx: ModelSigningContext,
  primaryType: P,
  fields: M,
) {
  return {
    domain: modelRegistryDomain(ctx.chainId, ctx.registry),
    types: MODEL_REGISTRY_TYPES[primaryType],
    primaryType,
    message: { ...fields, nonce: ctx.nonce, deadline: ctx.deadline },
  };
}

export const modelTypedData = {
  publish: (ctx: ModelSigningContext, m: PublishFields & { owner: Address }) =>
    message(ctx, 'Publish', m),
  setPrice: (
    ctx: ModelSigningContext,
    m: { owner: Address; modelId: bigint; pricePer1kInput: bigint; pricePer1kOutput: bigint },
  ) => message(ctx, 'SetPrice', m),
  setSplit: (
    ctx: ModelSigningContext,
    m: { owner: Address; modelId: bigint; split: RevenueSplit },
  ) => message(ctx, 'SetSplit', m),
  setChannelWeights: (
    ctx: ModelSigningContext,
    m: { owner: Address; modelId: bigint; weights: ModelChannelWeights },
  ) => message(ctx, 'SetChannelWeights', m),
  setActive: (ctx: ModelSigningContext, m: { owner: Address; modelId: bigint; active: boolean }) =>
    message(ctx, 'SetActive', m),
};

/**
 * The Publish fields as the node's plan gives them (JSON: bigints as decimal strings), turned
 * into what the signature covers.
 */
export function publishFieldsFromPlan(plan: {
  baseModel: string;
  adapterHash: string;
  manifestHash: string;
  metadataHash: string;
  datanets: { datanetId: number | string; version: number | string }[];
  pricePer1kInput: string;
  pricePer1kOutput: string;
  split: RevenueSplit;
}): PublishFields {
  return {
    baseModel: plan.baseModel as Hex,
    adapterHash: plan.adapterHash as Hex,
    manifestHash: plan.manifestHash as Hex,
    metadataHash: plan.metadataHash as Hex,
    datanets: plan.datanets.map((d) => ({
      datanetId: BigInt(d.datanetId),
      version: BigInt(d.version),
    })),
    pricePer1kInput: BigInt(plan.pricePer1kInput),
    pricePer1kOutput: BigInt(plan.pricePer1kOutput),
    split: { ...plan.split },
  };
}
