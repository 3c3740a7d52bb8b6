export { DatanetService, purposeHash } from './service.ts';
export type {
  Authorization,
  ContributionInput,
  DatanetRow,
  DatanetStats,
  RowSummary,
  VersionPlan,
} from './service.ts';
export { DEFAULT_RULES, metadataHash, normalizeMetadata } from './metadata.ts';
export type { DatanetMetadata, DatanetMetadataInput } from './metadata.ts';
export {
  buildVersionTree,
  contributionIdToBytes32,
  leafTuple,
  proofFor,
  verifyLeaf,
} from './merkle.ts';
export type { VersionLeaf } from './merkle.ts';
export {
  POLICY_CODE,
  contributionTypedData,
  registryDomain,
  registryTypedData,
} from './typed-data.ts';
export type { Policy, SigningContext } from './typed-data.ts';
