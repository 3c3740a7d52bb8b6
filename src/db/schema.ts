import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
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
