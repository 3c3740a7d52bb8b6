import { and, asc, eq } from 'drizzle-orm';
import {
  getAddress,
  parseEventLogs,
  sha256,
  toBytes,
  type Address,
  type Hex,
  type TransactionReceipt,
} from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import { ModelRegistryAbi, type ChainConnection, type Relayer } from '../chain/index.ts';
import { canonicalJson } from '../datanets/ingest/index.ts';
import type { Db } from '../db/index.ts';
import { schema } from '../db/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { TRAIN_JOB_KIND, type TrainingManifest, type TrainResult } from '../factory/index.ts';
import type { JobRow, JobRunner } from '../jobs/index.ts';
import type { ModelChannelWeights, PublishFields, RevenueSplit } from './typed-data.ts';

export type ModelRow = typeof schema.models.$inferSelect;

/** A wallet's authorisation of one relayed registry call: its EIP-712 signature and deadline. */
export interface ModelAuthorization {
  signature: Hex;
  deadline: bigint;
}

/** Shares in basis points of a call's revenue after the platform fee. */
export const BPS = 10_000;
/**
 * The split when the publisher names none: most to the publisher, a large part to the data
 * contributors (credited by Proof of Attribution), a tenth to stakers.
 */
export const DEFAULT_SPLIT: RevenueSplit = { owner: 6000, stakers: 1000, contributors: 3000 };
/** ModelRegistry.MAX_DATANETS. */
const MAX_DATANETS = 32;
const MAX_PRICE = 2n ** 256n - 1n;

export interface PublishRequest {
  jobId: string;
  /** The signed-in wallet: it must own the job, and it signs the Publish message. */
  owner: Address;
  name?: string;
  description?: string;
  /** OPEN wei per 1,000 input tokens. */
  pricePer1kInput: bigint;
  /** OPEN wei per 1,000 output tokens. */
  pricePer1kOutput: bigint;
  split?: RevenueSplit;
}

/** The model's canonical metadata JSON: hashed on-chain, kept as a blob, restorable. */
export interface ModelMetadata {
  kind: 'openledger.model';
  formatVersion: 1;
  name: string;
  description: string;
  jobId: string;
  publisher: Address;
  /** `name` is the node's catalogue name (what serving resolves); `title` the GGUF's own. */
  baseModel: { name: string; title: string; sha256: string; bytes: number };
  adapter: { format: 'gguf-lora'; sha256: string; rank: number; alpha: number; targets: string[] };
  template: string;
  datanets: { id: number; version: number }[];
  manifestHash: string;
  manifestBlobId: string;
  evaluation: { evalLoss: number | null; baseEvalLoss: number | null };
}

/** What the wallet signs (the Publish fields) and the metadata they commit to. */
export interface PublishPlan {
  fields: PublishFields;
  metadata: ModelMetadata;
}

/** A published model as the API shows it. */
export type ModelView = ModelRow & { adapterHash: Hex };

/**
 * Published models: a succeeded training job's adapter registered in the on-chain ModelRegistry
 * (an ERC-721 Model ID) with the wallet's signature, relayed by the node, then recorded here
 * where the serving layer finds it (adapter blob, base model by name). The chain is the authority
 * on each model's holder, prices, split and activity; the table mirrors them.
 */
export class ModelService {
  /** Publications in flight, by job: a second request for the same job waits for the first. */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      chain: ChainConnection;
      registry: Address;
      relayer: Relayer | undefined;
      jobs: JobRunner;
      /** The governed default split (ProtocolParameters), read at each publish. */
      defaultSplit?: (() => Promise<RevenueSplit>) | undefined;
    },
  ) {}

  get registry(): Address {
    return this.deps.registry;
  }

  /** What a wallet needs to sign ModelRegistry actions: chain, registry and its next nonce. */
  async signingInfo(
    address: Address,
  ): Promise<{ chainId: number; registry: Address; nonce: bigint }> {
    const nonce = (await this.read('nonces', [address])) as bigint;
    return { chainId: this.deps.chain.chain.id, registry: this.deps.registry, nonce };
  }

  /**
   * Checks that `owner` may publish the job and builds what the Publish signature covers. When
   * the job is already published, answers that model instead (publishing is idempotent).
   */
  async plan(input: PublishRequest): Promise<{ existing: ModelView } | PublishPlan> {
    const job = await this.publishableJob(input.jobId, input.owner);
    const existing = await this.byJob(job.id);
    if (existing) return { existing: view(existing) };
    if (job.status !== 'succeeded') {
      throw new OpenLedgerError(
        'JOB_NOT_SUCCEEDED',
        `Job ${job.id} is ${job.status}: only a succeeded training job has an adapter to publish.`,
        {
          hint:
            job.status === 'failed' || job.status === 'cancelled'
              ? 'Train again, then publish the new job.'
              : 'Wait for the job to succeed (GET /api/jobs/:id/events), then publish it.',
          details: { status: job.status },
        },
      );
    }
    const result = job.result as TrainResult;
    const manifestBytes = await this.deps.blobs.get(result.manifestBlobId);
    if (sha256(manifestBytes) !== result.manifestHash)
      throw new OpenLedgerError('BLOB_CORRUPT', `The manifest of job ${job.id} does not match.`);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as TrainingManifest;
    if (!(await this.deps.blobs.has(result.adapterBlobId)))
      throw new OpenLedgerError('BLOB_NOT_FOUND', `The adapter of job ${job.id} is missing.`);
    const params = job.params as { baseModel: string; template: string };
    // Governance sets the default (ProtocolParameters); a node without it uses the built-in one.
    const split = input.split ?? (await this.deps.defaultSplit?.()) ?? DEFAULT_SPLIT;
    checkSplit(split);
    checkPrice('pricePer1kInput', input.pricePer1kInput);
    checkPrice('pricePer1kOutput', input.pricePer1kOutput);
    if (manifest.datanets.length === 0 || manifest.datanets.length > MAX_DATANETS)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `A model cites 1 to ${MAX_DATANETS} datanet versions; job ${job.id} used ${manifest.datanets.length}.`,
      );

    const h = manifest.hyperparameters;
    const metadata: ModelMetadata = {
      kind: 'openledger.model',
      formatVersion: 1,
      name: (input.name ?? '').trim() || `${params.baseModel} LoRA ${job.id.slice(0, 8)}`,
      description: (input.description ?? '').trim(),
      jobId: job.id,
      publisher: getAddress(input.owner),
      baseModel: {
        name: params.baseModel,
        title: manifest.baseModel.name,
        sha256: manifest.baseModel.sha256,
        bytes: manifest.baseModel.bytes,
      },
      adapter: {
        format: 'gguf-lora',
        sha256: result.adapterBlobId,
        rank: h.rank,
        alpha: h.alpha,
        targets: [...h.targets],
      },
      template: manifest.template,
      datanets: manifest.datanets.map((d) => ({ id: d.id, version: d.version })),
      manifestHash: result.manifestHash,
      manifestBlobId: result.manifestBlobId,
      evaluation: { evalLoss: result.evalLoss, baseEvalLoss: result.baseEvalLoss },
    };
    return {
      metadata,
      fields: {
        baseModel: `0x${manifest.baseModel.sha256}`,
        adapterHash: `0x${result.adapterBlobId}`,
        manifestHash: result.manifestHash as Hex,
        metadataHash: sha256(toBytes(canonicalJson(metadata))),
        datanets: metadata.datanets.map((d) => ({
          datanetId: BigInt(d.id),
          version: BigInt(d.version),
        })),
        pricePer1kInput: input.pricePer1kInput,
        pricePer1kOutput: input.pricePer1kOutput,
        split: { owner: split.owner, stakers: split.stakers, contributors: split.contributors },
      },
    };
  }

  /**
   * Publishes the job's adapter: relays the owner's signed Publish to the ModelRegistry, then
   * records the model. `created` is false when the job was already published (the same model
   * is answered, whatever was signed).
   */
  async publish(
    input: PublishRequest & { authorization: ModelAuthorization },
  ): Promise<{ model: ModelView; created: boolean }> {
    const key = input.jobId.toLowerCase();
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.publishNow(input));
    this.inFlight.set(key, run);
    try {
      return await run;
    } finally {
      if (this.inFlight.get(key) === run) this.inFlight.delete(key);
    }
  }

  private async publishNow(
    input: PublishRequest & { authorization: ModelAuthorization },
  ): Promise<{ model: ModelView; created: boolean }> {
    const plan = await this.plan(input);
    if ('existing' in plan) return { model: plan.existing, created: false };
    const { fields, metadata } = plan;

    // Already on-chain (the node stopped between the chain and the database, or another job
    // produced the very same adapter bytes): record it from the chain instead.
    const registered = (await this.read('modelOfAdapter', [fields.adapterHash])) as bigint;
    if (registered !== 0n) return this.alreadyRegistered(Number(registered), input.jobId);

    // Kept before the chain call: its blob id is the hash registered on-chain, so `reconcile`
    // can restore the model if the node stops between the chain and the database.
    await this.deps.blobs.put(canonicalJson(metadata));
    let receipt: TransactionReceipt;
    try {
      receipt = await this.relay('publishWithSig', [
        getAddress(input.owner),
        fields,
        input.authorization.deadline,
        input.authorization.signature,
      ]);
    } catch (error) {
      if (error instanceof OpenLedgerError && error.code === 'INVALID_SIGNATURE') {
        throw new OpenLedgerError(
          'INVALID_SIGNATURE',
          error.details && (error.details as { revert?: string }).revert === 'ExpiredSignature'
            ? error.message
            : 'The signature does not cover this publication (hashes, datanet versions, prices, split, nonce).',
          {
            hint: 'Ask the node for the plan again (POST /api/models/plan) and sign the Publish message it gives.',
            cause: error,
          },
        );
      }
      if (
        (error as { details?: { revert?: string } }).details?.revert === 'AdapterAlreadyRegistered'
      ) {
        const id = (await this.read('modelOfAdapter', [fields.adapterHash])) as bigint;
        return this.alreadyRegistered(Number(id), input.jobId);
      }
      throw error;
    }
    const [event] = parseEventLogs({
      abi: ModelRegistryAbi,
      logs: receipt.logs,
      eventName: 'ModelPublished',
    });
    if (!event) throw new OpenLedgerError('INTERNAL', 'The registry did not report the model.');
    const row = await this.insert(Number(event.args.modelId), {
      metadata,
      fields,
      owner: getAddress(event.args.owner),
      txHash: receipt.transactionHash,
      active: true,
    });
    return { model: view(row), created: true };
  }

  async list(
    filter: { owner?: Address; baseModel?: string; includeInactive?: boolean } = {},
  ): Promise<ModelView[]> {
    const rows = await this.deps.db
      .select()
      .from(schema.models)
      .where(
        and(
          filter.owner ? eq(schema.models.owner, getAddress(filter.owner)) : undefined,
          filter.baseModel ? eq(schema.models.baseModelName, filter.baseModel) : undefined,
          filter.includeInactive ? undefined : eq(schema.models.active, true),
        ),
      )
      .orderBy(asc(schema.models.id));
    return rows.map(view);
  }

  /**
   * A model, brought up to date with the chain first (prices, split and activity may have been
   * changed there directly), with its current holder.
   */
  async get(
    id: number,
  ): Promise<ModelView & { holder: Address; channelWeights: ModelChannelWeights }> {
    const row = await this.row(id);
    const [fresh, holder, channelWeights] = await Promise.all([
      this.refresh(row),
      this.read('ownerOf', [BigInt(id)]) as Promise<Address>,
      this.channelWeights(id),
    ]);
    return { ...view(fresh), holder: getAddress(holder), channelWeights };
  }

  /**
   * How Proof of Attribution weighs its channels for model `id`, read from the ModelRegistry
   * (the holder's setting, or the registry's published defaults). Not mirrored in the table:
   * settlements must use the chain's value, and a holder may change it there directly.
   */
  async channelWeights(id: number): Promise<ModelChannelWeights> {
    const w = (await this.read('channelWeightsOf', [BigInt(id)])) as ModelChannelWeights;
    return { span: w.span, influence: w.influence, rag: w.rag };
  }

  /**
   * Sets model `id`'s channel weights: relays the holder's signed SetChannelWeights (see
   * `modelTypedData.setChannelWeights`) to the ModelRegistry.
   */
  async setChannelWeights(input: {
    id: number;
    /** The signed-in wallet: the model's holder, who signed. */
    owner: Address;
    weights: ModelChannelWeights;
    authorization: ModelAuthorization;
  }): Promise<{ modelId: number; channelWeights: ModelChannelWeights; txHash: Hex }> {
    await this.row(input.id);
    checkChannelWeights(input.weights);
    const weights = {
      span: input.weights.span,
      influence: input.weights.influence,
      rag: input.weights.rag,
    };
    let receipt: TransactionReceipt;
    try {
      receipt = await this.relay('setChannelWeightsWithSig', [
        getAddress(input.owner),
        BigInt(input.id),
        weights,
        input.authorization.deadline,
        input.authorization.signature,
      ]);
    } catch (error) {
      if (
        error instanceof OpenLedgerError &&
        error.code === 'INVALID_SIGNATURE' &&
        (error.details as { revert?: string } | undefined)?.revert === 'InvalidSignature'
      ) {
        throw new OpenLedgerError(
          'INVALID_SIGNATURE',
          `The signature does not cover these channel weights for model ${input.id} by ${getAddress(input.owner)} at its current nonce.`,
          {
            hint: 'Sign SetChannelWeights with the nonce from GET /api/models/signing-info, as the signed-in wallet.',
            cause: error,
          },
        );
      }
      throw error;
    }
    return {
      modelId: input.id,
      channelWeights: await this.channelWeights(input.id),
      txHash: receipt.transactionHash,
    };
  }

  /**
   * Brings the table up to the chain: models registered on-chain through this node (their
   * metadata blob is here) but missing from the table are restored, and the prices, split and
   * activity of the known ones are refreshed. Idempotent.
   */
  async reconcile(): Promise<{ restored: number; refreshed: number }> {
    const out = { restored: 0, refreshed: 0 };
    const count = Number((await this.read('modelCount', [])) as bigint);
    const rows = await this.deps.db.select().from(schema.models);
    const known = new Map(rows.map((r) => [r.id, r]));
    for (let id = 1; id <= count; id++) {
      const row = known.get(id);
      if (row) {
        if ((await this.refresh(row)) !== row) out.refreshed++;
      } else if (await this.restore(id)) out.restored++;
    }
    return out;
  }

  // ----- internals ------------------------------------------------------------------------------

  private async publishableJob(jobId: string, owner: Address): Promise<JobRow> {
    const job = await this.deps.jobs.get(jobId);
    if (getAddress(job.owner) !== getAddress(owner)) {
      throw new OpenLedgerError(
        'FORBIDDEN',
        `Only the wallet that ran job ${jobId} may publish it.`,
        { hint: 'Sign in with the wallet that started the training job.' },
      );
    }
    if (job.kind !== TRAIN_JOB_KIND)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `Job ${jobId} is a ${job.kind} job, not a training job.`,
      );
    return job;
  }

  private async row(id: number): Promise<ModelRow> {
    const [row] = await this.deps.db.select().from(schema.models).where(eq(schema.models.id, id));
    if (!row) throw new OpenLedgerError('MODEL_NOT_FOUND', `There is no published model ${id}.`);
    return row;
  }

  private async byJob(jobId: string): Promise<ModelRow | undefined> {
    const [row] = await this.deps.db
      .select()
      .from(schema.models)
      .where(eq(schema.models.jobId, jobId));
    return row;
  }

  /** The adapter has Model ID `id` on-chain: the job's model, or a conflict with another job. */
  private async alreadyRegistered(
    id: number,
    jobId: string,
  ): Promise<{ model: ModelView; created: boolean }> {
    const [row] = await this.deps.db.select().from(schema.models).where(eq(schema.models.id, id));
    const restored = row ?? (await this.restore(id));
    if (restored && restored.jobId === jobId) return { model: view(restored), created: false };
    throw new OpenLedgerError(
      'ALREADY_PUBLISHED',
      `This adapter is already published as model ${id}${restored ? `, from job ${restored.jobId}` : ''}.`,
      {
        hint: 'The same data and hyperparameters give the same adapter bytes; it is registered once.',
        details: { modelId: id },
      },
    );
  }

  /** Restores model `id` from the chain and its metadata blob; undefined when the blob is absent. */
  private async restore(id: number): Promise<ModelRow | undefined> {
    const record = (await this.read('model', [BigInt(id)])) as ChainModel;
    const blob = await this.deps.blobs.get(record.metadataHash.slice(2)).catch(() => undefined);
    if (!blob) return undefined; // published through another node: its metadata is not here
    const metadata = JSON.parse(blob.toString('utf8')) as ModelMetadata;
    const [event] = await this.deps.chain.publicClient.getContractEvents({
      address: this.deps.registry,
      abi: ModelRegistryAbi,
      eventName: 'ModelPublished',
      args: { modelId: BigInt(id) },
      fromBlock: 0n,
    });
    return this.insert(id, {
      metadata,
      fields: record,
      owner: getAddress(record.publisher),
      txHash: event?.transactionHash ?? '0x',
      active: record.active,
    });
  }

  private async insert(
    id: number,
    m: {
      metadata: ModelMetadata;
      fields: Pick<
        PublishFields,
        'adapterHash' | 'manifestHash' | 'metadataHash' | 'pricePer1kInput' | 'pricePer1kOutput'
      > & { split: RevenueSplit };
      owner: Address;
      txHash: string;
      active: boolean;
    },
  ): Promise<ModelRow> {
    const [row] = await this.deps.db
      .insert(schema.models)
      .values({
        id,
        owner: m.owner,
        jobId: m.metadata.jobId,
        name: m.metadata.name,
        description: m.metadata.description,
        baseModelName: m.metadata.baseModel.name,
        baseModelSha256: m.metadata.baseModel.sha256,
        adapterBlobId: m.fields.adapterHash.slice(2),
        manifestHash: m.fields.manifestHash,
        manifestBlobId: m.metadata.manifestBlobId,
        metadataHash: m.fields.metadataHash,
        datanets: m.metadata.datanets,
        pricePer1kInput: m.fields.pricePer1kInput.toString(),
        pricePer1kOutput: m.fields.pricePer1kOutput.toString(),
        split: {
          owner: m.fields.split.owner,
          stakers: m.fields.split.stakers,
          contributors: m.fields.split.contributors,
        },
        active: m.active,
        txHash: m.txHash,
      })
      .onConflictDoNothing()
      .returning();
    if (row) return row;
    const [existing] = await this.deps.db
      .select()
      .from(schema.models)
      .where(eq(schema.models.id, id));
    return existing!;
  }

  /** The row with the chain's prices, split and activity (updated in the table if they moved). */
  private async refresh(row: ModelRow): Promise<ModelRow> {
    const record = (await this.read('model', [BigInt(row.id)])) as ChainModel;
    const current = {
      pricePer1kInput: record.pricePer1kInput.toString(),
      pricePer1kOutput: record.pricePer1kOutput.toString(),
      split: {
        owner: record.split.owner,
        stakers: record.split.stakers,
        contributors: record.split.contributors,
      },
      active: record.active,
    };
    if (
      current.pricePer1kInput === row.pricePer1kInput &&
      current.pricePer1kOutput === row.pricePer1kOutput &&
      current.active === row.active &&
      current.split.owner === row.split.owner &&
      current.split.stakers === row.split.stakers &&
      current.split.contributors === row.split.contributors
    )
      return row;
    const [updated] = await this.deps.db
      .update(schema.models)
      .set(current)
      .where(eq(schema.models.id, row.id))
      .returning();
    return updated!;
  }

  private read(functionName: string, args: readonly unknown[]): Promise<unknown> {
    return this.deps.chain.publicClient.readContract({
      address: this.deps.registry,
      abi: ModelRegistryAbi,
      functionName,
      args,
    } as never);
  }

  /** Relays a wallet-signed registry call; decodes the registry's errors into API errors. */
  private async relay(functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
    if (!this.deps.relayer) {
      throw new OpenLedgerError(
        'RELAYER_UNAVAILABLE',
        'This node has no relayer key to submit signed registry actions.',
        { hint: 'Start the node with OPENLEDGER_PRIVATE_KEY set to a funded key on this chain.' },
      );
    }
    try {
      return await this.deps.relayer.write({
        address: this.deps.registry,
        abi: ModelRegistryAbi,
        functionName,
        args,
      } as never);
    } catch (error) {
      throw registryError(error);
    }
  }
}

interface ChainModel {
  baseModel: Hex;
  adapterHash: Hex;
  manifestHash: Hex;
  metadataHash: Hex;
  pricePer1kInput: bigint;
  pricePer1kOutput: bigint;
  split: RevenueSplit;
  active: boolean;
  publishedAt: bigint;
  publisher: Address;
}

function view(row: ModelRow): ModelView {
  return { ...row, adapterHash: `0x${row.adapterBlobId}` };
}

export function checkSplit(split: RevenueSplit): void {
  const parts = [split.owner, split.stakers, split.contributors];
  if (
    !parts.every((p) => Number.isInteger(p) && p >= 0 && p <= BPS) ||
    parts.reduce((a, b) => a + b, 0) !== BPS
  ) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `The revenue split must be three whole basis-point shares adding up to ${BPS}; got owner ${split.owner}, stakers ${split.stakers}, contributors ${split.contributors}.`,
      {
        hint: 'The shares divide what is left after the platform fee, e.g. owner 6000, stakers 1000, contributors 3000.',
        details: { field: 'split' },
      },
    );
  }
}

/** Channel weights as ModelRegistry accepts them: whole basis points adding up to 10,000. */
export function checkChannelWeights(w: ModelChannelWeights): void {
  const parts = [w.span, w.influence, w.rag];
  if (
    !parts.every((p) => Number.isInteger(p) && p >= 0 && p <= BPS) ||
    parts.reduce((a, b) => a + b, 0) !== BPS
  ) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `The channel weights must be three whole basis-point shares adding up to ${BPS}; got span ${w.span}, influence ${w.influence}, rag ${w.rag}.`,
      {
        hint: 'They weigh span matches, training influence and retrieval citations in the contributor share, e.g. span 5000, influence 3000, rag 2000 (the default).',
        details: { field: 'channelWeights' },
      },
    );
  }
}

function checkPrice(field: string, value: bigint): void {
  if (value < 0n || value > MAX_PRICE)
    throw new OpenLedgerError('VALIDATION_FAILED', `${field} must be a uint256 amount of wei.`, {
      details: { field },
    });
}

const REGISTRY_ERRORS: Record<string, [OpenLedgerError['code'], string]> = {
  UnknownModel: ['MODEL_NOT_FOUND', 'The registry has no such model.'],
  NotModelOwner: ['FORBIDDEN', 'Only the holder of the model may do this.'],
  AdapterAlreadyRegistered: ['ALREADY_PUBLISHED', 'This adapter is already registered.'],
  UnknownDatanetVersion: [
    'CONFLICT',
    'The model cites a datanet version that the DatanetRegistry does not have.',
  ],
  InvalidDatanetCount: ['VALIDATION_FAILED', 'A model cites 1 to 32 datanet versions.'],
  InvalidSplit: ['VALIDATION_FAILED', 'The revenue split must add up to 10000 basis points.'],
  InvalidChannelWeights: [
    'VALIDATION_FAILED',
    'The channel weights must add up to 10000 basis points.',
  ],
  EmptyHash: ['VALIDATION_FAILED', 'The base model, adapter and manifest hashes must be set.'],
  InvalidSignature: [
    'INVALID_SIGNATURE',
    'The signature does not match the action and the signer (or its nonce was used).',
  ],
  ExpiredSignature: ['INVALID_SIGNATURE', 'The signature has expired (its deadline has passed).'],
  ZeroAddress: ['VALIDATION_FAILED', 'The zero address is not allowed here.'],
};

function registryError(error: unknown): unknown {
  const name = revertName(error);
  const mapped = name ? REGISTRY_ERRORS[name] : undefined;
  if (!mapped) return error;
  return new OpenLedgerError(mapped[0], mapped[1], { details: { revert: name }, cause: error });
}

function revertName(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 10; depth++) {
    const data = (current as { data?: { errorName?: string } }).data;
    if (data && typeof data === 'object' && typeof data.errorName === 'string')
      return data.errorName;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
