import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/**
 * The node's schema, as code. Migrations in `drizzle/` are generated from this file
 * (`npm run db:generate`) and committed; the same files run on PGlite and on PostgreSQL.
 * Wallet addresses are stored lower-cased, so equality needs no function index.
 */

/** Every wallet the node has seen sign in. */
export const accounts = pgTable('accounts', {
  address: text('address').primaryKey(),
  firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
});

/** One-time SIWE nonces: issued, then consumed by exactly one successful sign-in. */
export const authNonces = pgTable('auth_nonces', {
  nonce: text('nonce').primaryKey(),
  issuedAt: timestamp('issued_at', { withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  consumedAt: timestamp('consumed_at', { withTimezone: true }),
});

/** Signed-in sessions. Only the sha256 of the token is stored. */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    tokenHash: text('token_hash').notNull().unique(),
    address: text('address')
      .notNull()
      .references(() => accounts.address),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('sessions_address_idx').on(t.address)],
);

/** API keys for programmatic clients. Only the sha256 of the key is stored; `prefix` identifies it. */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    address: text('address')
      .notNull()
      .references(() => accounts.address),
    name: text('name').notNull(),
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull().unique(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('api_keys_address_idx').on(t.address)],
);

// ---------------------------------------------------------------------------------------------
// Datanets. The chain holds ownership, policy, curators, access grants and each version's Merkle
// root; these tables hold the content and the working state (pending contributions, validation)
// and mirror the chain's records with the transactions that made them.

/** Contribution rules of a datanet, checked before anything is stored. */
export interface DatanetRules {
  acceptedTypes: string[];
  maxFileBytes: number;
  dailyQuotaPerContributor: number;
  dailyQuotaPerDatanet: number;
}

export const datanets = pgTable('datanets', {
  /** The on-chain id in the DatanetRegistry. */
  id: integer('id').primaryKey(),
  name: text('name').notNull(),
  summary: text('summary').notNull(),
  description: text('description').notNull(),
  tags: jsonb('tags').$type<string[]>().notNull(),
  modality: text('modality').$type<'text' | 'image' | 'audio'>().notNull(),
  license: text('license').notNull(),
  policy: text('policy').$type<'open' | 'permissioned'>().notNull(),
  rules: jsonb('rules').$type<DatanetRules>().notNull(),
  owner: text('owner').notNull(),
  /** sha256 of the canonical metadata JSON, as registered on-chain. */
  metadataHash: text('metadata_hash').notNull(),
  txHash: text('tx_hash').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const datanetCurators = pgTable(
  'datanet_curators',
  {
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    address: text('address').notNull(),
    txHash: text('tx_hash').notNull(),
    addedAt: timestamp('added_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datanetId, t.address] })],
);

export const contributions = pgTable(
  'contributions',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    contributor: text('contributor').notNull(),
    /** sha256 of the submitted bytes (a file) or of the canonical JSON of the submitted rows. */
    contentHash: text('content_hash').notNull(),
    fileName: text('file_name'),
    mime: text('mime').notNull(),
    blobId: text('blob_id').notNull(),
    bytes: bigint('bytes', { mode: 'number' }).notNull(),
    license: text('license').notNull(),
    /** The contributor's EIP-712 statement and its nonce (unique per contributor: no replay). */
    signature: text('signature').notNull(),
    nonce: text('nonce').notNull(),
    status: text('status').$type<'pending' | 'approved' | 'rejected'>().notNull(),
    score: doublePrecision('score').notNull(),
    reasons: jsonb('reasons').$type<string[]>().notNull(),
    rowCount: integer('row_count').notNull(),
    acceptedRowCount: integer('accepted_row_count').notNull(),
    decidedBy: text('decided_by'),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    decisionReason: text('decision_reason'),
    /** The version that included it, once approved. */
    version: integer('version'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('contributions_nonce_idx').on(t.contributor, t.nonce),
    index('contributions_datanet_status_idx').on(t.datanetId, t.status),
    index('contributions_contributor_idx').on(t.contributor),
  ],
);

export const datanetRows = pgTable(
  'datanet_rows',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    contributionId: uuid('contribution_id')
      .notNull()
      .references(() => contributions.id),
    contributor: text('contributor').notNull(),
    /** Position within its contribution. */
    position: integer('position').notNull(),
    rowHash: text('row_hash').notNull(),
    content: jsonb('content').notNull(),
    text: text('text').notNull(),
    status: text('status').$type<'pending' | 'approved' | 'rejected'>().notNull(),
    score: doublePrecision('score').notNull(),
    reasons: jsonb('reasons').$type<string[]>().notNull(),
    /** Base64 MinHash signature, to rebuild the near-duplicate index. */
    minhash: text('minhash').notNull(),
    duplicateOf: uuid('duplicate_of'),
    /** First version that contains the row. */
    version: integer('version'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('datanet_rows_datanet_hash_idx').on(t.datanetId, t.rowHash),
    index('datanet_rows_contribution_idx').on(t.contributionId),
    index('datanet_rows_datanet_version_idx').on(t.datanetId, t.version),
  ],
);

export const datanetVersions = pgTable(
  'datanet_versions',
  {
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    version: integer('version').notNull(),
    root: text('root').notNull(),
    rowCount: integer('row_count').notNull(),
    /** Blob id (sha256) of the version manifest; also committed on-chain. */
    manifestId: text('manifest_id').notNull(),
    committedBy: text('committed_by').notNull(),
    txHash: text('tx_hash').notNull(),
    addedRows: integer('added_rows').notNull(),
    committedAt: timestamp('committed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datanetId, t.version] })],
);

export const accessRequests = pgTable(
  'access_requests',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    requester: text('requester').notNull(),
    purpose: text('purpose').notNull(),
    status: text('status').$type<'pending' | 'granted' | 'denied' | 'revoked'>().notNull(),
    requestTx: text('request_tx').notNull(),
    decisionTx: text('decision_tx'),
    decisionReason: text('decision_reason'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    active: boolean('active').notNull().default(true),
  },
  (t) => [index('access_requests_datanet_idx').on(t.datanetId, t.requester)],
);

// ---------------------------------------------------------------------------------------------
// Jobs: long work (training, index builds) that runs in the background, reports typed events,
// checkpoints, survives restarts and can be cancelled.

export type JobStatus = 'queued' | 'validating' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const jobs = pgTable(
  'jobs',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    kind: text('kind').notNull(),
    owner: text('owner').notNull(),
    status: text('status').$type<JobStatus>().notNull(),
    params: jsonb('params').notNull(),
    /** The latest progress event's data (metrics, ETA), for listings. */
    progress: jsonb('progress'),
    result: jsonb('result'),
    error: jsonb('error').$type<{ code: string; message: string; hint?: string }>(),
    /** Blob id of the latest checkpoint; a restarted job resumes from it. */
    checkpoint: text('checkpoint'),
    attempts: integer('attempts').notNull().default(0),
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [index('jobs_status_idx').on(t.status, t.createdAt), index('jobs_owner_idx').on(t.owner)],
);

export const jobEvents = pgTable(
  'job_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id),
    type: text('type').notNull(),
    data: jsonb('data').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('job_events_job_idx').on(t.jobId, t.id)],
);

// ---------------------------------------------------------------------------------------------
// Published models. The ModelRegistry (ERC-721, token id = Model ID) is the authority on the
// record, its holder, prices, split and whether it is active; this table mirrors each model with
// what the node needs to serve it (the adapter blob, the base model by name) and the transaction
// that registered it.

/** Shares in basis points of what is left after the protocol's platform fee (sum 10,000). */
export interface ModelSplit {
  owner: number;
  stakers: number;
  contributors: number;
}

export const models = pgTable(
  'models',
  {
    /** The Model ID: the ERC-721 token id in the ModelRegistry. */
    id: integer('id').primaryKey(),
    /** The wallet that published it (the token may change hands; the chain knows its holder). */
    owner: text('owner').notNull(),
    /** The training job whose adapter this is; a job is published once. */
    jobId: uuid('job_id')
      .notNull()
      .unique()
      .references(() => jobs.id),
    name: text('name').notNull(),
    description: text('description').notNull(),
    /** The base model by its catalogue name, and the sha256 of its GGUF file (on-chain). */
    baseModelName: text('base_model_name').notNull(),
    baseModelSha256: text('base_model_sha256').notNull(),
    /** Blob id of the adapter (GGUF LoRA): the sha256 of its bytes, registered on-chain. */
    adapterBlobId: text('adapter_blob_id').notNull().unique(),
    /** sha256 of the training manifest (on-chain) and the blob holding it. */
    manifestHash: text('manifest_hash').notNull(),
    manifestBlobId: text('manifest_blob_id').notNull(),
    /** sha256 of the canonical metadata JSON (on-chain), also its blob id. */
    metadataHash: text('metadata_hash').notNull(),
    datanets: jsonb('datanets').$type<{ id: number; version: number }[]>().notNull(),
    /** OPEN wei per 1,000 tokens, as decimal strings (they exceed 2^53). */
    pricePer1kInput: text('price_per_1k_input').notNull(),
    pricePer1kOutput: text('price_per_1k_output').notNull(),
    split: jsonb('split').$type<ModelSplit>().notNull(),
    active: boolean('active').notNull().default(true),
    txHash: text('tx_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('models_owner_idx').on(t.owner), index('models_base_idx').on(t.baseModelName)],
);

// ---------------------------------------------------------------------------------------------
// Inference usage (OpenLoRA serving). One row per generation or embedding call, written before
// the response completes; its id is the inference receipt's id. The fee and settlement columns
// stay null until payments (the escrow) and attribution fill them.

export type InferenceStatus = 'completed' | 'cancelled' | 'failed';

export const inferenceUsage = pgTable(
  'inference_usage',
  {
    /** The receipt id, returned to the caller (header `x-openledger-receipt-id`). */
    id: uuid('id').primaryKey(),
    /** The caller's wallet (lower-cased) and the API key or session it used. */
    caller: text('caller').notNull(),
    credentialId: text('credential_id').notNull(),
    /** 'chat.completions', 'completions' or 'embeddings'. */
    endpoint: text('endpoint').notNull(),
    /** `model` as the caller wrote it. */
    model: text('model').notNull(),
    baseModel: text('base_model').notNull(),
    /** The adapters that served the call: sha256 and weight, in the order applied. */
    adapters: jsonb('adapters').$type<{ id: string; weight: number }[]>().notNull(),
    /** The published Model ID when `model` named one (`model:<id>`). */
    publishedModelId: integer('published_model_id'),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    latencyMs: doublePrecision('latency_ms').notNull(),
    status: text('status').$type<InferenceStatus>().notNull(),
    /** The canonical receipt (RFC 8785 JSON) and its sha256. */
    receipt: jsonb('receipt').notNull(),
    receiptHash: text('receipt_hash').notNull(),
    /** OPEN wei charged (decimal string) and the settling transaction: set by payments. */
    feeWei: text('fee_wei'),
    settlementTx: text('settlement_tx'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('inference_usage_caller_idx').on(t.caller, t.createdAt),
    index('inference_usage_created_idx').on(t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Attribution: the span index of each datanet version, per tokenizer. A version's shards hold
// only the rows it added (src/attribution/shard.ts); a query over version v reads the shards of
// versions 1..v.

export type SpanIndexStatus = 'building' | 'ready' | 'failed';

export const attributionIndexes = pgTable(
  'attribution_indexes',
  {
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    version: integer('version').notNull(),
    /** sha256 of the tokenizer (its GGUF `tokenizer.*` metadata). */
    tokenizer: text('tokenizer').notNull(),
    /** The catalogue model whose tokenizer built it. */
    model: text('model').notNull(),
    status: text('status').$type<SpanIndexStatus>().notNull(),
    /** Blob ids of the shards of the version's own rows, with their sizes. */
    shards: jsonb('shards').$type<{ blobId: string; tokens: number; rows: number }[]>().notNull(),
    tokens: bigint('tokens', { mode: 'number' }).notNull().default(0),
    rows: integer('rows').notNull().default(0),
    buildSeconds: doublePrecision('build_seconds'),
    error: jsonb('error').$type<{ code: string; message: string }>(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datanetId, t.version, t.tokenizer] })],
);

// ---------------------------------------------------------------------------------------------
// Adapter merges (OpenLoRA, src/serving/merge.ts): the lineage of adapters made by merging
// others, and the cache that answers the same recipe again without recomputing it.

export const adapterMerges = pgTable(
  'adapter_merges',
  {
    /** The merged adapter's blob id (sha256 of its GGUF bytes). */
    id: text('id').primaryKey(),
    /** sha256 of the canonical JSON of {method, params, sources [{id, weight}], baseModel}. */
    recipeHash: text('recipe_hash').notNull().unique(),
    /** 'linear', 'ties', 'dare' or 'dare_ties'. */
    method: text('method').notNull(),
    /** The method's parameters with their defaults filled in (density, rank, seed). */
    params: jsonb('params').$type<{ density?: number; rank?: number; seed?: number }>().notNull(),
    /** The sources in recipe order: sha256, weight, the reference as written, the Model ID. */
    sources: jsonb('sources')
      .$type<{ id: string; weight: number; ref: string; publishedModelId?: number }[]>()
      .notNull(),
    /** The catalogue name of the base model. */
    baseModel: text('base_model').notNull(),
    /** The merged adapter's (largest) rank and size. */
    rank: integer('rank').notNull(),
    bytes: integer('bytes').notNull(),
    /** Relative Frobenius error of the SVD truncation; null for an exact (linear) merge. */
    truncationError: doublePrecision('truncation_error'),
    /** The wallet that asked for it first (lower-cased). */
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('adapter_merges_created_by_idx').on(t.createdBy)],
);

// ---------------------------------------------------------------------------------------------
// Proof of Attribution (src/attribution/ledger.ts). A paid call keeps its exact prompt tokens
// and output text, which attribution needs (and a caller needs to verify a receipt); each gets an
// attribution receipt and its payouts; each fee epoch gets the roots this node posted.

export const inferencePayloads = pgTable('inference_payloads', {
  /** The usage row (the inference receipt id). */
  usageId: uuid('usage_id')
    .primaryKey()
    .references(() => inferenceUsage.id),
  /** The exact prompt token ids (their sha256 as uint32 LE is the receipt's inputSha256). */
  promptTokens: jsonb('prompt_tokens').$type<number[]>().notNull(),
  output: text('output').notNull(),
});

export type AttributionStatus = 'attributed' | 'failed';

export const attributionReceipts = pgTable(
  'attribution_receipts',
  {
    /** The inference receipt id. */
    usageId: uuid('usage_id')
      .primaryKey()
      .references(() => inferenceUsage.id),
    publishedModelId: integer('published_model_id').notNull(),
    status: text('status').$type<AttributionStatus>().notNull(),
    /** The canonical receipt and its sha256 (null until attributed). */
    receipt: jsonb('receipt'),
    hash: text('hash'),
    /** The block whose chain state the receipt was built at. */
    block: bigint('block', { mode: 'number' }),
    error: jsonb('error').$type<{ code: string; message: string }>(),
    attempts: integer('attempts').notNull().default(0),
    /** The fee epoch its charge landed in, and what the charge actually collected (wei). */
    epoch: integer('epoch'),
    collected: text('collected'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('attribution_receipts_epoch_idx').on(t.epoch),
    index('attribution_receipts_model_idx').on(t.publishedModelId),
  ],
);

/** One row per (receipt, address): what the receipt pays it, as posted in its epoch. */
export const attributionPayouts = pgTable(
  'attribution_payouts',
  {
    usageId: uuid('usage_id')
      .notNull()
      .references(() => attributionReceipts.usageId),
    address: text('address').notNull(),
    /** OPEN wei of the collected fee (decimal string). */
    amount: text('amount').notNull(),
    /** platform, owner, staker, contributor: what it is paid as (detail: per role). */
    role: text('role').notNull(),
    detail: jsonb('detail').$type<Record<string, string>>().notNull(),
    /** A contributor's amount by datanet id (by evidence), for the earnings views. */
    datanets: jsonb('datanets').$type<Record<string, string>>().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.usageId, t.address] }),
    index('attribution_payouts_address_idx').on(t.address),
  ],
);

export type EpochStatus = 'posted' | 'challenged' | 'voided' | 'finalized';

export const attributionEpochs = pgTable('attribution_epochs', {
  /** The escrow's fee epoch. */
  epoch: integer('epoch').primaryKey(),
  status: text('status').$type<EpochStatus>().notNull(),
  receiptsRoot: text('receipts_root').notNull(),
  payoutsRoot: text('payouts_root').notNull(),
  /** OPEN wei distributed by this posting. */
  total: text('total').notNull(),
  receipts: integer('receipts').notNull(),
  /** StandardMerkleTree dumps: receipts (attribution receipt hashes) and cumulative payouts. */
  receiptsTree: jsonb('receipts_tree').notNull(),
  payoutsTree: jsonb('payouts_tree').notNull(),
  txHash: text('tx_hash').notNull(),
  gasUsed: bigint('gas_used', { mode: 'number' }).notNull(),
  postedAt: timestamp('posted_at', { withTimezone: true }).notNull().defaultNow(),
});

// ---------------------------------------------------------------------------------------------
// RAG (src/rag). Each approved datanet row is cut into chunks, embedded by one embedder (keyed by
// its GGUF's sha256, so switching models re-indexes) and indexed for full text. The embedding is
// kept here as float32 bytes on every server; the `vector` copy for pgvector lives in
// `rag_vectors`, which a guarded migration creates only where the extension exists, so it is not
// part of this schema (drizzle-kit would otherwise try to create it everywhere).

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });
const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (value) => Buffer.from(value),
});

export const ragChunks = pgTable(
  'rag_chunks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    /** sha256 of the embedder's GGUF. */
    embedder: text('embedder').notNull(),
    /** The first datanet version holding the row. */
    version: integer('version').notNull(),
    rowId: uuid('row_id')
      .notNull()
      .references(() => datanetRows.id),
    rowHash: text('row_hash').notNull(),
    contributor: text('contributor').notNull(),
    /** Position of the chunk in its row, and its characters in the row's text. */
    ord: integer('ord').notNull(),
    charStart: integer('char_start').notNull(),
    charEnd: integer('char_end').notNull(),
    tokens: integer('tokens').notNull(),
    text: text('text').notNull(),
    /** sha256 of `text`: what receipts record instead of the text. */
    textSha256: text('text_sha256').notNull(),
    tsv: tsvector('tsv')
      .notNull()
      .generatedAlwaysAs(sql`to_tsvector('english', "text")`),
    /** float32 little-endian, L2-normalised. */
    embedding: bytea('embedding').notNull(),
  },
  (t) => [
    index('rag_chunks_datanet_idx').on(t.datanetId, t.embedder, t.version),
    uniqueIndex('rag_chunks_row_ord_idx').on(t.embedder, t.rowId, t.ord),
    index('rag_chunks_tsv_idx').using('gin', t.tsv),
  ],
);

/** The latest datanet version each embedder's index holds. */
export const ragIndexState = pgTable(
  'rag_index_state',
  {
    datanetId: integer('datanet_id')
      .notNull()
      .references(() => datanets.id),
    embedder: text('embedder').notNull(),
    version: integer('version').notNull(),
    chunks: integer('chunks').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datanetId, t.embedder] })],
);

/** What a RAG answer was given and what it cited, by inference receipt id (for attribution). */
export const ragAnswers = pgTable('rag_answers', {
  usageId: uuid('usage_id')
    .primaryKey()
    .references(() => inferenceUsage.id),
  question: text('question').notNull(),
  /** The caller's conversation (the prompt is it with the sources in front: src/rag/prompt.ts). */
  messages: jsonb('messages').notNull(),
  datanets: jsonb('datanets').$type<number[]>().notNull(),
  /** The numbered sources as given to the model (chunk ids, rows, hashes; no text). */
  sources: jsonb('sources').notNull(),
  citations: jsonb('citations').notNull(),
  /** The answer as returned (after the citation check), and whose words it is. */
  answer: text('answer').notNull(),
  kind: text('kind').$type<'model' | 'extractive' | 'not-in-sources'>().notNull(),
  strict: boolean('strict').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

// ---------------------------------------------------------------------------------------------
// Agents (issue #8): staked compositions served as models. The chain (AgentStaking) holds each
// agent's owner, name, stake and the sha256 of its specification; the node keeps the
// specification itself, checked against that hash when it is registered here.

export const agents = pgTable('agents', {
  /** The agent id in AgentStaking. */
  id: integer('id').primaryKey(),
  name: text('name').notNull().unique(),
  /** The wallet that launched it (lower-case 0x address). */
  owner: text('owner').notNull(),
  /** The specification (src/market/agent-spec.ts) whose canonical JSON hashes to `specHash`. */
  spec: jsonb('spec').notNull(),
  /** sha256 hex of the canonical JSON spec, as on-chain. */
  specHash: text('spec_hash').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

// ---------------------------------------------------------------------------------------------
// Model proposals (issue #8): bounties for models. The chain (ModelProposals) holds each
// proposal's creator, funding, bar, deadline and the sha256 of its specification; the node keeps
// the specification (src/market/proposals.ts), checked against that hash when it is registered,
// and the reports of its evaluator.

export const modelProposals = pgTable('model_proposals', {
  /** The proposal id in ModelProposals. */
  id: integer('id').primaryKey(),
  /** The specification whose canonical JSON hashes to `specHash`. */
  spec: jsonb('spec').notNull(),
  /** sha256 hex of the canonical JSON spec, as on-chain. */
  specHash: text('spec_hash').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** One evaluation of a published model against a proposal by this node's evaluator. */
export const proposalReports = pgTable(
  'proposal_reports',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    proposalId: integer('proposal_id')
      .notNull()
      .references(() => modelProposals.id),
    modelId: integer('model_id').notNull(),
    metric: text('metric').notNull(),
    /** The metric in its own units (a perplexity). */
    value: doublePrecision('value').notNull(),
    /** The value in on-chain units (× 10^6, rounded), as a decimal string. */
    score: text('score').notNull(),
    meetsBar: boolean('meets_bar').notNull(),
    /** Evaluation rows scored, and the target tokens over them. */
    rows: integer('rows').notNull(),
    targets: integer('targets').notNull(),
    /** The report's blob (canonical JSON); its sha256 is the on-chain reportHash. */
    reportBlobId: text('report_blob_id').notNull(),
    /** The `submit` transaction; null when the bar was not met (nothing was sent). */
    txHash: text('tx_hash'),
    jobId: uuid('job_id').references(() => jobs.id),
    /** The wallet that asked for the evaluation. */
    requestedBy: text('requested_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('proposal_reports_proposal_idx').on(t.proposalId, t.id)],
);
