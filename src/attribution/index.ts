export { suffixArray } from './sais.ts';
export {
  SpanShard,
  SHARD_MAGIC,
  firstRow,
  rowsToIndex,
  type ShardMeta,
  type ShardRow,
} from './shard.ts';
export {
  SpanIndex,
  TRACE_DEFAULTS,
  type Occurrence,
  type TraceOptions,
  type TraceResult,
  type TraceSpan,
} from './span-index.ts';
export {
  AttributionService,
  SHARD_MAX_TOKENS,
  delimiterTokens,
  tokenizerSha256,
  type IndexStatus,
  type TokenizerInfo,
  type VersionRef,
} from './service.ts';
export {
  INDEX_JOB_KIND,
  attributionOf,
  indexJob,
  ledgerFor,
  registerAttributionJobs,
  type IndexJobParams,
} from './job.ts';
export { apportion, log2Fixed, normalisePpb } from './fixed.ts';
export {
  influenceOfOutput,
  influenceScores,
  influenceWeights,
  outputSketch,
  sketchContributors,
  type InfluenceMethod,
  type InfluenceResult,
  type InfluenceWeights,
  type ServedExample,
} from './influence.ts';
export {
  BPS,
  CHANNELS,
  DEFAULT_CHANNEL_WEIGHTS,
  DEFAULT_PLATFORM_BPS,
  splitFee,
  type Channel,
  type ChannelWeights,
  type ContributorWeight,
  type Payout,
  type RevenueSplitBps,
  type Role,
  type SplitInput,
  type SplitResult,
} from './split.ts';
export {
  ATTRIBUTION_RECEIPT_KIND,
  ATTRIBUTION_RECEIPT_VERSION,
  attributionReceiptHash,
  attributionReceiptJson,
  buildAttributionReceipt,
  recomputePayouts,
  verifyAttributionReceipt,
  type AttributionReceipt,
  type BuildReceiptInput,
  type ReceiptVerification,
} from './receipt.ts';
export {
  attributeInference,
  promptSha256,
  type AttributeInput,
  type AttributionSources,
  type ModelTerms,
} from './attribute.ts';
export { catalogueModelBySha, chainSources } from './sources.ts';
export {
  AttributionLedger,
  collectedPayouts,
  contributorDatanets,
  type ClaimView,
  type EpochView,
} from './ledger.ts';
export {
  ragChannel,
  ragEvidenceOf,
  type RagChannel,
  type RagEvidence,
  type RagSourceEvidence,
} from './rag.ts';
