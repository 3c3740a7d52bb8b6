/**
 * Model proposals on a node (issue #8, item 2): bounties for models. A proposal names a goal, the
 * datanet a model must be trained on and an evaluation bar; anyone funds it with OPEN
 * (ModelProposals); a builder who publishes a model that meets the bar, as this node's evaluator
 * measures it, claims the funds once the challenge window has closed.
 *
 * The proposal's **specification** is canonical JSON (RFC 8785) whose sha256 is the on-chain
 * `specHash`: a title, the goal, the training datanet, the evaluation set (the rows of a committed
 * datanet version, which may be another datanet) and the metric. The node keeps the
 * specification (registered against that hash) and runs the evaluator: it scores a published
 * model (its adapter on its base model, the files the ModelRegistry names) on the evaluation set,
 * stores the report as a blob (canonical JSON, sha256 = the on-chain `reportHash`) and, when the
 * bar is met, submits the score with the node's signer (EVALUATOR_ROLE). The report holds no
 * timestamps, so anyone with the same files re-runs the evaluation to the same hash.
 */
import { desc, eq } from 'drizzle-orm';
import { Type, type Static } from 'typebox';
import { getAddress, type Address, type Hex } from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import type { ChainConnection, ChainPublicClient } from '../chain/clients.ts';
import type { Relayer } from '../chain/relayer.ts';
import { revertError } from '../chain/errors.ts';
import { ModelProposalsAbi, ModelRegistryAbi } from '../chain/generated/contracts.ts';
import { canonicalJson } from '../datanets/ingest/hash.ts';
import type { DatanetService } from '../datanets/index.ts';
import { schema, type Db } from '../db/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { Evaluation } from '../factory/eval.ts';
import { evaluateInWorker } from '../factory/index.ts';
import type { ModelCatalog } from '../factory/models.ts';
import { isTemplateName, type TemplateName } from '../factory/templates.ts';
import type { JobContext, JobRow, JobRunner } from '../jobs/index.ts';
import { sha256File } from '../serving/adapters.ts';
import { parseSpec, specHash } from './spec.ts';

// ----- metrics ---------------------------------------------------------------------------------

/** On-chain scores and bars are the metric's value × 10^6, rounded to an integer. */
export const SCORE_SCALE = 1_000_000;

/**
 * The metrics a proposal can name. Each says which way is better (ModelProposals'
 * `higherIsBetter`) and how its value comes out of an evaluation; a new metric is one more entry
 * here (and, if it needs more than losses, more from the evaluation worker).
 */
export const PROPOSAL_METRICS = {
  perplexity: {
    higherIsBetter: false,
    description:
      "exp of the mean negative log-likelihood of the evaluation rows' answer tokens (the tokens the model's template trains: assistant turns, whole documents); lower is better",
    value: (e: Evaluation): number | null => e.adapterPerplexity,
  },
} as const satisfies Record<
  string,
  { higherIsBetter: boolean; description: string; value: (e: Evaluation) => number | null }
>;
export type ProposalMetric = keyof typeof PROPOSAL_METRICS;
export const PROPOSAL_METRIC_NAMES = Object.keys(PROPOSAL_METRICS) as ProposalMetric[];

/** A metric value in on-chain units (× 10^6, rounded). */
export function toScore(value: number): bigint {
  if (!Number.isFinite(value) || value < 0)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `${value} is not a score: expected a finite number ≥ 0.`,
    );
  return BigInt(Math.round(value * SCORE_SCALE));
}

/** On-chain units back to the metric's value. */
export function fromScore(score: bigint | string): number {
  return Number(BigInt(score)) / SCORE_SCALE;
}

export function meetsBar(score: bigint, bar: bigint, higherIsBetter: boolean): boolean {
  return higherIsBetter ? score >= bar : score <= bar;
}

// ----- specification ---------------------------------------------------------------------------

/** Rows an evaluation scores at most, and the default and largest tokens per row. */
export const MAX_EVAL_ROWS = 5_000;
export const DEFAULT_EVAL_MAX_TOKENS = 512;
export const MAX_EVAL_MAX_TOKENS = 8_192;

export const ProposalSpec = Type.Object(
  {
    title: Type.String({ minLength: 1, maxLength: 200 }),
    /** What the model is for, in words. */
    goal: Type.String({ minLength: 1, maxLength: 8000 }),
    /** The datanet the model must be trained on (it must cite a version of it on-chain). */
    datanetId: Type.Integer({ minimum: 1 }),
    /** The evaluation set: the rows of a committed datanet version (any datanet). */
    evaluation: Type.Object(
      {
        datanetId: Type.Integer({ minimum: 1 }),
        version: Type.Integer({ minimum: 1 }),
        /** Score only the first rows of the version, in its manifest order. */
        maxRows: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_EVAL_ROWS })),
        /** Tokens per row (longer renderings are cut); default 512, at most the model's context. */
        maxTokens: Type.Optional(Type.Integer({ minimum: 8, maximum: MAX_EVAL_MAX_TOKENS })),
      },
      { additionalProperties: false },
    ),
    metric: Type.Unsafe<ProposalMetric>(
      Type.Union(PROPOSAL_METRIC_NAMES.map((m) => Type.Literal(m))),
    ),
  },
  { additionalProperties: false },
);
export type ProposalSpec = Static<typeof ProposalSpec>;

/** Checks a specification's shape; the error names the first wrong field. */
export function parseProposalSpec(value: unknown): ProposalSpec {
  return parseSpec(ProposalSpec, value, 'proposal specification', (field) =>
    field === 'metric'
      ? `The metrics are: ${PROPOSAL_METRIC_NAMES.join(', ')}.`
      : 'See docs/api.md, "Model proposals", for the specification format.',
  );
}

/** sha256 (hex) of the specification's canonical JSON: what ModelProposals records. */
export function proposalSpecHash(spec: ProposalSpec): string {
  return specHash(spec);
}

// ----- the chain's view ------------------------------------------------------------------------

/** ModelProposals.Status, by index. */
export const PROPOSAL_STATUSES = [
  'none',
  'open',
  'submitted',
  'challenged',
  'paid',
  'cancelled',
] as const;
export type ModelProposalStatus = (typeof PROPOSAL_STATUSES)[number];

interface ChainProposal {
  creator: Address;
  specHash: Hex;
  datanetId: bigint;
  bar: bigint;
  higherIsBetter: boolean;
  deadline: bigint;
  minFunding: bigint;
  funded: bigint;
  status: number;
  modelId: bigint;
  score: bigint;
  reportHash: Hex;
  challengeEndsAt: bigint;
  challenger: Address;
  challengerBond: bigint;
}

/** A proposal as ModelProposals holds it (amounts in OPEN wei, scores × 10^6, times in Unix s). */
export interface ProposalChainState {
  id: number;
  creator: Address;
  /** sha256 hex of the specification, without 0x. */
  specHash: string;
  datanetId: number;
  bar: string;
  /** The bar in the metric's units. */
  barValue: number;
  higherIsBetter: boolean;
  deadline: number;
  minFunding: string;
  funded: string;
  status: ModelProposalStatus;
  /** The standing (or challenged) submission; null while open, and after an upheld challenge. */
  submission: {
    modelId: number;
    score: string;
    scoreValue: number;
    reportHash: Hex;
    challengeEndsAt: number;
    challenger: Address | null;
    challengerBond: string;
  } | null;
  /** Whether funders may take their funding back now (cancelled, or expired without a winner). */
  refundable: boolean;
  /** Whether the winner's holder may claim now (submitted and the window has closed). */
  claimable: boolean;
}

export interface ProposalSettings {
  address: Address;
  token: Address;
  challengeWindowSeconds: number;
  challengeBond: string;
  count: number;
}

const ZERO = '0x0000000000000000000000000000000000000000';

/** One proposal as the chain has it, or undefined for an id it does not know. */
export async function readProposalState(
  client: ChainPublicClient,
  address: Address,
  id: number,
): Promise<ProposalChainState | undefined> {
  const [p, refundable, block] = await Promise.all([
    client.readContract({
      address,
      abi: ModelProposalsAbi,
      functionName: 'proposal',
      args: [BigInt(id)],
    }) as Promise<ChainProposal>,
    client.readContract({
      address,
      abi: ModelProposalsAbi,
      functionName: 'refundable',
      args: [BigInt(id)],
    }) as Promise<boolean>,
    client.getBlock({ blockTag: 'latest' }),
  ]);
  const status = PROPOSAL_STATUSES[p.status] ?? 'none';
  if (status === 'none') return undefined;
  const submitted = status === 'submitted' || status === 'challenged' || status === 'paid';
  return {
    id,
    creator: getAddress(p.creator),
    specHash: p.specHash.slice(2),
    datanetId: Number(p.datanetId),
    bar: p.bar.toString(),
    barValue: fromScore(p.bar),
    higherIsBetter: p.higherIsBetter,
    deadline: Number(p.deadline),
    minFunding: p.minFunding.toString(),
    funded: p.funded.toString(),
    status,
    submission: submitted
      ? {
          modelId: Number(p.modelId),
          score: p.score.toString(),
          scoreValue: fromScore(p.score),
          reportHash: p.reportHash,
          challengeEndsAt: Number(p.challengeEndsAt),
          challenger: getAddress(p.challenger) === ZERO ? null : getAddress(p.challenger),
          challengerBond: p.challengerBond.toString(),
        }
      : null,
    refundable,
    claimable: status === 'submitted' && block.timestamp >= p.challengeEndsAt,
  };
}

export async function readProposalSettings(
  client: ChainPublicClient,
  address: Address,
): Promise<ProposalSettings> {
  const read = <T>(functionName: string) =>
    client.readContract({ address, abi: ModelProposalsAbi, functionName } as never) as Promise<T>;
  const [token, window, bond, count] = await Promise.all([
    read<Address>('token'),
    read<bigint>('challengeWindow'),
    read<bigint>('challengeBond'),
    read<bigint>('proposalCount'),
  ]);
  return {
    address: getAddress(address),
    token: getAddress(token),
    challengeWindowSeconds: Number(window),
    challengeBond: bond.toString(),
    count: Number(count),
  };
}

// ----- the node's service ----------------------------------------------------------------------

/** A proposal as the API shows it: the chain's state and, when registered here, its spec. */
export interface ModelProposalView extends ProposalChainState {
  /** Whether this node has the specification (and so can evaluate models for it). */
  registered: boolean;
  spec: ProposalSpec | null;
  title: string | null;
  metric: ProposalMetric | null;
}

/** One evaluation by this node's evaluator. */
export interface ProposalReportView {
  id: number;
  proposalId: number;
  modelId: number;
  metric: string;
  value: number;
  score: string;
  meetsBar: boolean;
  rows: number;
  targets: number;
  reportHash: Hex;
  reportBlobId: string;
  txHash: string | null;
  jobId: string | null;
  requestedBy: string;
  createdAt: string;
  /** The report itself (its canonical JSON hashes to reportHash). */
  report: ProposalReport;
}

/** What an evaluation answers (the result of a `proposal.evaluate` job). */
export interface ProposalEvaluationResult {
  proposalId: number;
  modelId: number;
  metric: ProposalMetric;
  value: number;
  score: string;
  bar: string;
  barValue: number;
  higherIsBetter: boolean;
  meetsBar: boolean;
  /** Base model alone on the same rows, for comparison (same metric). */
  baseValue: number | null;
  rows: number;
  targets: number;
  reportHash: Hex;
  reportId: number;
  /** The `submit` transaction; null when the bar was not met. */
  txHash: Hex | null;
  /** The challenge window's end when submitted (Unix seconds). */
  challengeEndsAt: number | null;
  message: string;
}

/** The report's canonical JSON (its sha256 is the on-chain reportHash). */
export interface ProposalReport {
  kind: 'openledger.proposal-evaluation';
  formatVersion: 1;
  chainId: number;
  proposals: Address;
  proposalId: number;
  specHash: string;
  modelId: number;
  model: {
    baseModel: { name: string; sha256: string };
    adapterSha256: string;
    template: TemplateName;
  };
  evaluation: {
    datanetId: number;
    version: number;
    root: string;
    rows: number;
    targets: number;
    maxTokens: number;
    /** The hashes of the rows scored, in order. */
    rowHashes: string[];
  };
  metric: ProposalMetric;
  value: number;
  score: string;
  baseValue: number | null;
  bar: string;
  higherIsBetter: boolean;
  meetsBar: boolean;
  evaluator: Address | null;
}

export const PROPOSAL_EVAL_JOB_KIND = 'proposal.evaluate';

interface EvalJobParams {
  proposalId: number;
  modelId: number;
}

const LIST_MAX = 500;

export class ProposalService {
  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      chain: ChainConnection;
      /** The ModelProposals contract. */
      proposals: Address;
      modelRegistry: Address;
      datanets: DatanetService | undefined;
      /** The node's base models (the files evaluations run on). */
      models: ModelCatalog;
      /** The node's signer: EVALUATOR_ROLE on ModelProposals (submits scores). */
      relayer: Relayer | undefined;
      /** Evaluations run as `proposal.evaluate` jobs (registered here, before the runner starts). */
      jobs: JobRunner;
    },
  ) {
    deps.jobs.register<EvalJobParams, ProposalEvaluationResult>(PROPOSAL_EVAL_JOB_KIND, (context) =>
      this.runEvaluation(context),
    );
  }

  get address(): Address {
    return this.deps.proposals;
  }

  settings(): Promise<ProposalSettings> {
    return readProposalSettings(this.deps.chain.publicClient, this.deps.proposals);
  }

  /**
   * Checks a specification before it is created on-chain: its shape, the training datanet known
   * here, and the evaluation set a committed version of a datanet this node has.
   */
  async validate(value: unknown): Promise<{ spec: ProposalSpec; specHash: string }> {
    const spec = parseProposalSpec(value);
    const datanets = this.datanets();
    await datanets.get(spec.datanetId);
    const versions = await datanets.versions(spec.evaluation.datanetId);
    if (!versions.some((v) => v.version === spec.evaluation.version))
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `Datanet ${spec.evaluation.datanetId} has no committed version ${spec.evaluation.version} on this node.`,
        {
          hint: versions.length
            ? `Its versions: ${versions.map((v) => v.version).join(', ')}.`
            : 'Commit a version of the evaluation set first.',
          details: { field: 'evaluation.version' },
        },
      );
    return { spec, specHash: proposalSpecHash(spec) };
  }

  /**
   * Records a created proposal's specification: the chain must hold proposal `id` with this
   * spec's hash and training datanet, and its creator must be able to read the evaluation set.
   * Registering the same specification again is a no-op.
   */
  async register(id: number, value: unknown): Promise<ModelProposalView> {
    const { spec, specHash } = await this.validate(value);
    const chain = await this.chainState(id);
    if (!chain)
      throw new OpenLedgerError('NOT_FOUND', `There is no proposal ${id} in ModelProposals.`, {
        hint: 'Create it on-chain first (`openledger proposal create`).',
      });
    if (chain.specHash !== specHash)
      throw new OpenLedgerError(
        'CONFLICT',
        `The specification hashes to ${specHash}; proposal ${id} records ${chain.specHash} on-chain.`,
        { hint: 'Register the exact specification the proposal was created with.' },
      );
    if (chain.datanetId !== spec.datanetId)
      throw new OpenLedgerError(
        'CONFLICT',
        `Proposal ${id} names datanet ${chain.datanetId} on-chain; the specification names ${spec.datanetId}.`,
        { details: { field: 'datanetId' } },
      );
    if (chain.higherIsBetter !== PROPOSAL_METRICS[spec.metric].higherIsBetter)
      throw new OpenLedgerError(
        'CONFLICT',
        `Proposal ${id} was created with higherIsBetter=${chain.higherIsBetter}; ${spec.metric} is ${PROPOSAL_METRICS[spec.metric].higherIsBetter ? 'higher' : 'lower'}-is-better.`,
        { details: { field: 'metric' } },
      );
    // The evaluation set must be one its creator may read (a private set stays private: reports
    // name row hashes, never rows).
    await this.datanets().assertCanRead(spec.evaluation.datanetId, chain.creator);
    await this.deps.db
      .insert(schema.modelProposals)
      .values({ id, spec, specHash })
      .onConflictDoNothing({ target: schema.modelProposals.id });
    return this.view(chain, await this.row(id));
  }

  /** The chain's proposals, newest first, with their specifications where registered here. */
  async list(options: { limit?: number } = {}): Promise<ModelProposalView[]> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), LIST_MAX);
    const { count } = await this.settings();
    const ids = Array.from({ length: Math.min(count, limit) }, (_, i) => count - i);
    const rows = await this.deps.db.select().from(schema.modelProposals);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const states = await Promise.all(ids.map((id) => this.chainState(id)));
    return states
      .filter((s): s is ProposalChainState => s !== undefined)
      .map((s) => this.view(s, byId.get(s.id)));
  }

  async get(id: number): Promise<ModelProposalView> {
    const chain = await this.chainState(id);
    if (!chain)
      throw new OpenLedgerError('NOT_FOUND', `There is no model proposal ${id}.`, {
        hint: '`openledger proposal list` shows the proposals.',
      });
    return this.view(chain, await this.row(id));
  }

  async reports(id: number): Promise<ProposalReportView[]> {
    const rows = await this.deps.db
      .select()
      .from(schema.proposalReports)
      .where(eq(schema.proposalReports.proposalId, id))
      .orderBy(desc(schema.proposalReports.id));
    return Promise.all(
      rows.map(async (row) =>
        reportView(
          row,
          JSON.parse(
            (await this.deps.blobs.get(row.reportBlobId)).toString('utf8'),
          ) as ProposalReport,
        ),
      ),
    );
  }

  /**
   * Asks the evaluator to score model `modelId` for proposal `id`, as `caller`: checks at once what
   * can be checked (the proposal registered here and open for submissions, the model on this
   * node and trained on the proposal's datanet), then queues a `proposal.evaluate` job whose
   * result is a ProposalEvaluationResult.
   */
  async evaluate(id: number, modelId: number, caller: Address): Promise<JobRow> {
    await this.check(id, modelId);
    return this.deps.jobs.submit<EvalJobParams>(PROPOSAL_EVAL_JOB_KIND, caller, {
      proposalId: id,
      modelId,
    });
  }

  // ----- the evaluator -------------------------------------------------------------------------

  private async check(id: number, modelId: number) {
    const row = await this.row(id);
    if (!row)
      throw new OpenLedgerError(
        'NOT_FOUND',
        `This node has no specification for proposal ${id}, so it cannot evaluate for it.`,
        { hint: 'Register it first (POST /api/proposals with its id and spec).' },
      );
    const spec = row.spec as ProposalSpec;
    const chain = (await this.chainState(id))!;
    const now = Number((await this.deps.chain.publicClient.getBlock()).timestamp);
    if (chain.status !== 'open')
      throw new OpenLedgerError(
        'CONFLICT',
        `Proposal ${id} is ${chain.status}: it takes no more submissions.`,
        { details: { status: chain.status } },
      );
    if (now >= chain.deadline)
      throw new OpenLedgerError(
        'CONFLICT',
        `Proposal ${id}'s deadline (${new Date(chain.deadline * 1000).toISOString()}) has passed.`,
        { hint: 'Its funders can take their funding back (`openledger proposal refund`).' },
      );
    const funded = BigInt(chain.funded);
    if (funded === 0n || funded < BigInt(chain.minFunding))
      throw new OpenLedgerError(
        'CONFLICT',
        `Proposal ${id} is funded ${chain.funded} OPEN wei, below its minimum ${chain.minFunding} (or nothing): a submission would be refused.`,
        { hint: 'Fund it first (`openledger proposal fund`).' },
      );
    const [model] = await this.deps.db
      .select()
      .from(schema.models)
      .where(eq(schema.models.id, modelId))
      .limit(1);
    if (!model)
      throw new OpenLedgerError('MODEL_NOT_FOUND', `This node has no published model ${modelId}.`, {
        hint: 'The evaluator scores models published on this node (GET /api/models).',
        details: { field: 'modelId' },
      });
    const cited = (await this.deps.chain.publicClient.readContract({
      address: this.deps.modelRegistry,
      abi: ModelRegistryAbi,
      functionName: 'datanetVersionsOf',
      args: [BigInt(modelId)],
    })) as readonly { datanetId: bigint; version: bigint }[];
    if (!cited.some((d) => Number(d.datanetId) === chain.datanetId))
      throw new OpenLedgerError(
        'CONFLICT',
        `Model ${modelId} was not trained on datanet ${chain.datanetId}, which proposal ${id} requires (it cites ${cited.map((d) => `${d.datanetId}@${d.version}`).join(', ') || 'none'}).`,
        { details: { field: 'modelId' } },
      );
    return { spec, specHash: row.specHash, chain, model };
  }

  private async runEvaluation(
    context: JobContext<EvalJobParams>,
  ): Promise<ProposalEvaluationResult> {
    const { proposalId, modelId } = context.params;
    const { spec, specHash, chain, model } = await this.check(proposalId, modelId);
    const metric = PROPOSAL_METRICS[spec.metric];

    // The files the ModelRegistry names: the adapter by its hash, the base model by its sha256.
    const onChain = (await this.deps.chain.publicClient.readContract({
      address: this.deps.modelRegistry,
      abi: ModelRegistryAbi,
      functionName: 'model',
      args: [BigInt(modelId)],
    })) as { baseModel: Hex; adapterHash: Hex };
    const adapterSha = onChain.adapterHash.slice(2).toLowerCase();
    if (adapterSha !== model.adapterBlobId)
      throw new OpenLedgerError(
        'CONFLICT',
        `Model ${modelId}'s adapter on this node is not the one registered on-chain (${adapterSha}).`,
      );
    const base = await this.deps.models.resolve(model.baseModelName);
    const baseSha = onChain.baseModel.slice(2).toLowerCase();
    if ((await sha256File(base.path)) !== baseSha)
      throw new OpenLedgerError(
        'CONFLICT',
        `The base model ${base.name} on this node is not the file model ${modelId} was published on (sha256 ${baseSha}).`,
        { hint: 'Put that GGUF in a model folder of the node (--models-dir).' },
      );
    const template = await this.templateOf(model.jobId);

    // The evaluation set: the rows of the committed version, in manifest order.
    const exported = await this.datanets().exportVersion(
      spec.evaluation.datanetId,
      spec.evaluation.version,
    );
    const rows = exported.rows
      .filter(
        (r) =>
          (r.messages && r.messages.length > 0) ||
          (r.content as { type?: string } | null)?.type === 'document',
      )
      .slice(0, spec.evaluation.maxRows ?? MAX_EVAL_ROWS);
    if (rows.length === 0)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `Datanet ${spec.evaluation.datanetId} version ${spec.evaluation.version} has no text rows to evaluate on.`,
      );
    const maxTokens = Math.min(
      spec.evaluation.maxTokens ?? DEFAULT_EVAL_MAX_TOKENS,
      base.contextLength ?? Number.MAX_SAFE_INTEGER,
    );

    context.signal.throwIfAborted();
    await context.setStatus('running');
    await context.emit('log', {
      message: `evaluating model ${modelId} on ${rows.length} rows of datanet ${spec.evaluation.datanetId} v${spec.evaluation.version} (${spec.metric}, ${template} template, up to ${maxTokens} tokens per row)`,
    });
    const evaluation = await evaluateInWorker(
      {
        modelPath: base.path,
        adapter: new Uint8Array(await this.deps.blobs.get(model.adapterBlobId)),
        template,
        heldOut: rows.map((r) => ({
          rowHash: r.rowHash,
          row: { content: r.content, ...(r.messages ? { messages: r.messages } : {}) },
        })),
        maxTokens,
        samples: 0,
        maxNewTokens: 1,
      },
      context.signal,
    );
    const value = metric.value(evaluation);
    if (value === null || evaluation.targets === 0)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `No row of the evaluation set has a token to score with the ${template} template.`,
      );
    const score = toScore(value);
    const bar = BigInt(chain.bar);
    const meets = meetsBar(score, bar, chain.higherIsBetter);
    const report: ProposalReport = {
      kind: 'openledger.proposal-evaluation',
      formatVersion: 1,
      chainId: this.deps.chain.chain.id,
      proposals: getAddress(this.deps.proposals),
      proposalId,
      specHash,
      modelId,
      model: {
        baseModel: { name: base.name, sha256: baseSha },
        adapterSha256: adapterSha,
        template,
      },
      evaluation: {
        datanetId: spec.evaluation.datanetId,
        version: spec.evaluation.version,
        root: exported.version.root,
        rows: evaluation.heldOutRows,
        targets: evaluation.targets,
        maxTokens,
        rowHashes: rows.map((r) => r.rowHash),
      },
      metric: spec.metric,
      value,
      score: score.toString(),
      baseValue: spec.metric === 'perplexity' ? evaluation.basePerplexity : null,
      bar: chain.bar,
      higherIsBetter: chain.higherIsBetter,
      meetsBar: meets,
      evaluator: this.deps.relayer ? getAddress(this.deps.relayer.account.address) : null,
    };
    const { id: blobId } = await this.deps.blobs.put(canonicalJson(report));
    const reportHash: Hex = `0x${blobId}`;

    let txHash: Hex | null = null;
    let challengeEndsAt: number | null = null;
    if (meets) {
      context.signal.throwIfAborted();
      if (!this.deps.relayer)
        throw new OpenLedgerError(
          'RELAYER_UNAVAILABLE',
          'This node has no signer to submit the score with (EVALUATOR_ROLE).',
        );
      try {
        const receipt = await this.deps.relayer.write({
          address: this.deps.proposals,
          abi: ModelProposalsAbi,
          functionName: 'submit',
          args: [BigInt(proposalId), BigInt(modelId), score, reportHash],
        });
        txHash = receipt.transactionHash;
      } catch (error) {
        throw revertError('submit', error);
      }
      challengeEndsAt = (await this.chainState(proposalId))?.submission?.challengeEndsAt ?? null;
    }
    const [stored] = await this.deps.db
      .insert(schema.proposalReports)
      .values({
        proposalId,
        modelId,
        metric: spec.metric,
        value,
        score: score.toString(),
        meetsBar: meets,
        rows: evaluation.heldOutRows,
        targets: evaluation.targets,
        reportBlobId: blobId,
        txHash,
        jobId: context.id,
        requestedBy: getAddress(context.owner).toLowerCase(),
      })
      .returning();
    const shown = (n: number) => Number(n.toPrecision(6)).toString();
    const comparison = chain.higherIsBetter ? 'at least' : 'at most';
    return {
      proposalId,
      modelId,
      metric: spec.metric,
      value,
      score: score.toString(),
      bar: chain.bar,
      barValue: chain.barValue,
      higherIsBetter: chain.higherIsBetter,
      meetsBar: meets,
      baseValue: report.baseValue,
      rows: evaluation.heldOutRows,
      targets: evaluation.targets,
      reportHash,
      reportId: stored!.id,
      txHash,
      challengeEndsAt,
      message: meets
        ? `Model ${modelId} scores ${spec.metric} ${shown(value)} on proposal ${proposalId}'s evaluation set (bar: ${comparison} ${shown(chain.barValue)}): submitted; claimable once the challenge window closes${challengeEndsAt ? ` (${new Date(challengeEndsAt * 1000).toISOString()})` : ''}.`
        : `Model ${modelId} scores ${spec.metric} ${shown(value)} on proposal ${proposalId}'s evaluation set; the bar is ${comparison} ${shown(chain.barValue)}: it does not meet the bar, nothing was submitted.`,
    };
  }

  /** The template the model was trained with (its training job's; the factory default else). */
  private async templateOf(jobId: string): Promise<TemplateName> {
    const [job] = await this.deps.db
      .select({ params: schema.jobs.params })
      .from(schema.jobs)
      .where(eq(schema.jobs.id, jobId))
      .limit(1);
    const named = (job?.params as { template?: unknown } | null)?.template;
    return typeof named === 'string' && isTemplateName(named) ? named : 'llama2';
  }

  // ----- helpers -------------------------------------------------------------------------------

  private datanets(): DatanetService {
    if (!this.deps.datanets)
      throw new OpenLedgerError('NOT_FOUND', 'This node has no datanet registry deployed.');
    return this.deps.datanets;
  }

  private chainState(id: number) {
    return readProposalState(this.deps.chain.publicClient, this.deps.proposals, id);
  }

  private async row(id: number) {
    const [row] = await this.deps.db
      .select()
      .from(schema.modelProposals)
      .where(eq(schema.modelProposals.id, id))
      .limit(1);
    return row;
  }

  private view(
    chain: ProposalChainState,
    row: typeof schema.modelProposals.$inferSelect | undefined,
  ): ModelProposalView {
    const spec = row && row.specHash === chain.specHash ? (row.spec as ProposalSpec) : null;
    return {
      ...chain,
      registered: spec !== null,
      spec,
      title: spec?.title ?? null,
      metric: spec?.metric ?? null,
    };
  }
}

function reportView(
  row: typeof schema.proposalReports.$inferSelect,
  report: ProposalReport,
): ProposalReportView {
  return {
    id: row.id,
    proposalId: row.proposalId,
    modelId: row.modelId,
    metric: row.metric,
    value: row.value,
    score: row.score,
    meetsBar: row.meetsBar,
    rows: row.rows,
    targets: row.targets,
    reportHash: `0x${row.reportBlobId}`,
    reportBlobId: row.reportBlobId,
    txHash: row.txHash,
    jobId: row.jobId,
    requestedBy: getAddress(row.requestedBy),
    createdAt: row.createdAt.toISOString(),
    report,
  };
}
