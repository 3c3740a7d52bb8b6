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
  registerAttributionJobs,
  type IndexJobParams,
} from './job.ts';
export { log2Fixed, normalisePpb } from './fixed.ts';
