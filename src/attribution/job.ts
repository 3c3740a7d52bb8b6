/**
 * The `attribution.index` job: indexes a datanet version (each not yet indexed version up to
 * it, from the rows it added). Queued when a version is committed and on demand.
 */
import type { Address } from 'viem';
import type { JobContext, JobRunner } from '../jobs/index.ts';
import type { NodeContext } from '../node/context.ts';
import { AttributionLedger } from './ledger.ts';
import { AttributionService, type IndexStatus } from './service.ts';

export const INDEX_JOB_KIND = 'attribution.index';

export interface IndexJobParams {
  datanetId: number;
  version: number;
  /** A catalogue model whose tokenizer to use (default: the built-in base model). */
  model?: string;
  /** Rebuild versions that are indexed already. */
  force?: boolean;
}

const services = new WeakMap<object, AttributionService>();

/** The node's attribution service (one per node, so that loaded shards are shared). */
export function attributionOf(
  ctx: Pick<NodeContext, 'database' | 'blobs' | 'models' | 'datanets'>,
): AttributionService {
  let service = services.get(ctx);
  if (!service) {
    service = new AttributionService({
      db: ctx.database.db,
      blobs: ctx.blobs,
      models: ctx.models,
      datanets: ctx.datanets,
    });
    services.set(ctx, service);
  }
  return service;
}

/**
 * The node's attribution ledger, when its deployment has what paid attribution needs (the model
 * registry, the escrow and the settlement); undefined otherwise.
 */
export function ledgerFor(ctx: NodeContext): AttributionLedger | undefined {
  const c = ctx.deployment.contracts;
  if (!c.ModelRegistry || !c.InferenceEscrow || !c.AttributionSettlement) return undefined;
  return new AttributionLedger({
    db: ctx.database.db,
    blobs: ctx.blobs,
    chain: ctx.chain,
    catalog: ctx.models,
    attribution: attributionOf(ctx),
    contracts: {
      ModelRegistry: c.ModelRegistry,
      InferenceEscrow: c.InferenceEscrow,
      AttributionSettlement: c.AttributionSettlement,
      OpenToken: c.OpenToken,
      ContributionBonds: c.ContributionBonds,
      ModelStaking: c.ModelStaking,
    },
    relayer: ctx.relayer,
    ragScorer: async (input) => (await ctx.serving.scoreChat(input)).logprob,
  });
}

export function indexJob(service: AttributionService) {
  return async (context: JobContext<IndexJobParams>): Promise<IndexStatus> => {
    const { datanetId, version, model, force } = context.params;
    await context.setStatus('running');
    return service.build(datanetId, version, {
      ...(model ? { model } : {}),
      ...(force ? { force } : {}),
      signal: context.signal,
      onProgress: (built) => context.emit('progress', { datanetId, ...built }),
    });
  };
}

/**
 * Registers the job kind, and queues an index build of every version the node commits (as the
 * committing curator), so that a version is traceable shortly after it exists.
 */
export function registerAttributionJobs(jobs: JobRunner, ctx: NodeContext): void {
  const service = attributionOf(ctx);
  jobs.register(INDEX_JOB_KIND, indexJob(service));
  ctx.datanets?.onVersionCommitted(
    (event: { datanetId: number; version: number; committer: Address }) => {
      const params: IndexJobParams = { datanetId: event.datanetId, version: event.version };
      jobs.submit(INDEX_JOB_KIND, event.committer, params).catch(() => undefined);
    },
  );
}
