import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { pad, type Address, type Hex } from 'viem';

/**
 * A version of a datanet is committed on-chain as the root of a Merkle tree over its rows, in
 * OpenZeppelin's standard form (sorted pairs, double-hashed leaves of `abi.encode`), so the
 * registry verifies proofs with `MerkleProof.verify` and anyone can rebuild the tree from the
 * export with `@openzeppelin/merkle-tree`.
 */
export const LEAF_ENCODING = ['bytes32', 'address', 'bytes32'] as const;

export interface VersionLeaf {
  rowHash: string; // 64 hex digits (sha256 of the row's canonical JSON)
  contributor: Address;
  contributionId: string; // uuid
}

export type LeafTuple = [Hex, Address, Hex];

/** A contribution's uuid as the bytes32 the chain sees: its 16 bytes, left-padded. */
export function contributionIdToBytes32(id: string): Hex {
  return pad(`0x${id.replaceAll('-', '')}`, { size: 32 });
}

export function leafTuple(leaf: VersionLeaf): LeafTuple {
  return [`0x${leaf.rowHash}`, leaf.contributor, contributionIdToBytes32(leaf.contributionId)];
}

export function buildVersionTree(leaves: VersionLeaf[]): StandardMerkleTree<LeafTuple> {
  return StandardMerkleTree.of(leaves.map(leafTuple), [...LEAF_ENCODING]);
}

/** The proof of one leaf, or undefined when the leaf is not in the tree. */
export function proofFor(
  tree: StandardMerkleTree<LeafTuple>,
  leaf: VersionLeaf,
): Hex[] | undefined {
  const wanted = leafTuple(leaf)
    .map((v) => v.toLowerCase())
    .join();
  for (const [index, value] of tree.entries()) {
    if (value.map((v) => v.toLowerCase()).join() === wanted) return tree.getProof(index) as Hex[];
  }
  return undefined;
}

export function verifyLeaf(root: Hex, leaf: VersionLeaf, proof: Hex[]): boolean {
  return StandardMerkleTree.verify(root, [...LEAF_ENCODING], leafTuple(leaf), proof);
}
