import { and, asc, count, desc, eq, gte, inArray, isNotNull, lte, ne, sql } from 'drizzle-orm';
import {
  getAddress,
  isHex,
  parseEventLogs,
  sha256,
  toBytes,
  type Address,
  type Hex,
  type TransactionReceipt,
} from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import { DatanetRegistryAbi, type ChainConnection, type Relayer } from '../chain/index.ts';
import type { Db } from '../db/index.ts';
import { schema } from '../db/index.ts';
import { OpenLedgerError } from '../errors.ts';
import {
  MinHashIndex,
  assessRow,
  canonicalJson,
  detectFile,
  extractRows,
  rowHash,
  toChatMessages,
  type RowContent,
} from './ingest/index.ts';
import { buildVersionTree, contributionIdToBytes32, proofFor, type VersionLeaf } from './merkle.ts';
import { metadataHash, normalizeMetadata, type DatanetMetadataInput } from './metadata.ts';
import { POLICY_CODE, contributionTypedData } from './typed-data.ts';

/** A wallet's authorisation of one relayed registry call: its EIP-712 signature and deadline. */
export interface Authorization {
  signature: Hex;
  deadline: bigint;
}

export type DatanetRow = typeof schema.datanets.$inferSelect;
export type ContributionRow = typeof schema.contributions.$inferSelect;

/** A file contribution in a non-text modality is one row that points at its blob. */
interface FileRowContent {
  type: 'file';
  blobId: string;
  mime: string;
  fileName: string;
}

export interface ContributionInput {
  datanetId: number;
  contributor: Address;
  /** A file (bytes and name) or rows given directly. */
  file?: { name: string; bytes: Uint8Array };
  rows?: RowContent[];
  license: string;
  consent: boolean;
  nonce: bigint;
  signature: Hex;
}

export interface VersionCommitted {
  datanetId: number;
  version: number;
  committer: Address;
}

export interface VersionPlan {
  datanetId: number;
  version: number;
  root: Hex;
  rowCount: number;
  addedRows: number;
  manifestId: Hex;
  approve: string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * Rows at least this similar (estimated Jaccard of word 3-grams) to an earlier row are reported;
 * `assessRow` rejects those at 0.8 or more as copies and only flags the others for the curators.
 */
const NEAR_DUPLICATE_REPORT_AT = 0.5;

/**
 * Datanets: creation and curation relayed to the on-chain registry, signed contributions
 * extracted into rows and validated, approval batches committed as Merkle-rooted versions, and
 * access grants enforced on every read. The chain is the authority on ownership, curators and
 * grants; the database holds content and working state.
 */
export class DatanetService {
  private readonly nearDuplicateIndexes = new Map<number, Promise<MinHashIndex>>();
  private readonly commitListeners: ((event: VersionCommitted) => void)[] = [];

  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      chain: ChainConnection;
      registry: Address;
      relayer: Relayer | undefined;
    },
  ) {}

  get registry(): Address {
    return this.deps.registry;
  }

  /** Calls `listener` after each version this node commits (e.g. to index it); never throws. */
  onVersionCommitted(listener: (event: VersionCommitted) => void): void {
    this.commitListeners.push(listener);
  }

  /** What a wallet needs to sign registry actions: the chain, the registry and its next nonce. */
  async signingInfo(
    address: Address,
  ): Promise<{ chainId: number; registry: Address; nonce: bigint }> {
    const nonce = await this.read('nonces', [address]);
    return { chainId: this.deps.chain.chain.id, registry: this.deps.registry, nonce };
  }

  // ----- datanets -------------------------------------------------------------------------------

  async create(input: {
    metadata: DatanetMetadataInput;
    owner: Address;
    authorization: Authorization;
  }): Promise<DatanetRow> {
    const metadata = normalizeMetadata(input.metadata);
    const hash = metadataHash(metadata);
    // Kept before the chain call: its blob id is the hash registered on-chain, so `reconcile`
    // can restore the datanet if the node stops between the chain and the database.
    await this.deps.blobs.put(canonicalJson(metadata));
    const receipt = await this.relay('createDatanetWithSig', [
      input.owner,
      hash,
      POLICY_CODE[metadata.policy],
      input.authorization.deadline,
      input.authorization.signature,
    ]);
    const [created] = parseEventLogs({
      abi: DatanetRegistryAbi,
      logs: receipt.logs,
      eventName: 'DatanetCreated',
    });
    if (!created)
      throw new OpenLedgerError('INTERNAL', 'The registry did not report the new datanet.');
    const [row] = await this.deps.db
      .insert(schema.datanets)
      .values({
        id: Number(created.args.id),
        ...metadata,
        owner: getAddress(created.args.owner),
        metadataHash: hash,
        txHash: receipt.transactionHash,
      })
      .returning();
    return row!;
  }

  async list(
    filter: { owner?: Address; q?: string } = {},
  ): Promise<(DatanetRow & { stats: DatanetStats })[]> {
    const conditions = [];
    if (filter.owner) conditions.push(eq(schema.datanets.owner, getAddress(filter.owner)));
    if (filter.q) {
      // `q` is text, not a pattern: escape LIKE's wildcards.
      const pattern = `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      conditions.push(
        sql`(${schema.datanets.name} ilike ${pattern} or ${schema.datanets.summary} ilike ${pattern})`,
      );
    }
    const rows = await this.deps.db
      .select()
      .from(schema.datanets)
      .where(conditions.length ? and(...conditions) : undefined)
      .orderBy(desc(schema.datanets.createdAt));
    return Promise.all(rows.map(async (d) => ({ ...d, stats: await this.stats(d.id) })));
  }

  async get(id: number): Promise<DatanetRow> {
    const [row] = await this.deps.db
      .select()
      .from(schema.datanets)
      .where(eq(schema.datanets.id, id));
    if (!row) throw new OpenLedgerError('DATANET_NOT_FOUND', `There is no datanet ${id}.`);
    return row;
  }

  async stats(id: number): Promise<DatanetStats> {
    const byStatus = await this.deps.db
      .select({ status: schema.contributions.status, n: sql<number>`count(*)::int` })
      .from(schema.contributions)
      .where(eq(schema.contributions.datanetId, id))
      .groupBy(schema.contributions.status);
    const [rows] = await this.deps.db
      .select({ n: sql<number>`count(*)::int` })
      .from(schema.datanetRows)
      .where(and(eq(schema.datanetRows.datanetId, id), eq(schema.datanetRows.status, 'approved')));
    const [latest] = await this.deps.db
      .select({ version: sql<number | null>`max(${schema.datanetVersions.version})` })
      .from(schema.datanetVersions)
      .where(eq(schema.datanetVersions.datanetId, id));
    const of = (s: string) => byStatus.find((b) => b.status === s)?.n ?? 0;
    return {
      contributions: { pending: of('pending'), approved: of('approved'), rejected: of('rejected') },
      approvedRows: rows?.n ?? 0,
      latestVersion: latest?.version ?? 0,
    };
  }

  async curators(id: number): Promise<Address[]> {
    const rows = await this.deps.db
      .select({ address: schema.datanetCurators.address })
      .from(schema.datanetCurators)
      .where(eq(schema.datanetCurators.datanetId, id));
    return rows.map((r) => getAddress(r.address));
  }

  /**
   * Replaces a datanet's metadata (the owner signs UpdateMetadata over its hash). The policy and
   * the modality are fixed at creation: rows and grants depend on them.
   */
  async updateMetadata(input: {
    id: number;
    owner: Address;
    metadata: DatanetMetadataInput;
    authorization: Authorization;
  }): Promise<DatanetRow> {
    const current = await this.get(input.id);
    const metadata = normalizeMetadata(input.metadata);
    if (metadata.policy !== current.policy || metadata.modality !== current.modality) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'A datanet keeps the policy and modality it was created with.',
        {
          details: { policy: current.policy, modality: current.modality },
        },
      );
    }
    const hash = metadataHash(metadata);
    await this.deps.blobs.put(canonicalJson(metadata));
    await this.relay('updateMetadataWithSig', [
      input.owner,
      BigInt(input.id),
      hash,
      input.authorization.deadline,
      input.authorization.signature,
    ]);
    const [row] = await this.deps.db
      .update(schema.datanets)
      .set({ ...metadata, metadataHash: hash })
      .where(eq(schema.datanets.id, input.id))
      .returning();
    return row!;
  }

  async setCurator(input: {
    id: number;
    owner: Address;
    curator: Address;
    enabled: boolean;
    authorization: Authorization;
  }) {
    await this.get(input.id);
    const receipt = await this.relay('setCuratorWithSig', [
      input.owner,
      BigInt(input.id),
      input.curator,
      input.enabled,
      input.authorization.deadline,
      input.authorization.signature,
    ]);
    const curator = getAddress(input.curator);
    if (input.enabled) {
      await this.deps.db
        .insert(schema.datanetCurators)
        .values({ datanetId: input.id, address: curator, txHash: receipt.transactionHash })
        .onConflictDoNothing();
    } else {
      await this.deps.db
        .delete(schema.datanetCurators)
        .where(
          and(
            eq(schema.datanetCurators.datanetId, input.id),
            eq(schema.datanetCurators.address, curator),
          ),
        );
    }
    return { id: input.id, curator, enabled: input.enabled, txHash: receipt.transactionHash };
  }

  // ----- access ---------------------------------------------------------------------------------

  /** Whether `reader` may read the datanet's content: anyone on an open one; else per the chain. */
  async canRead(id: number, reader: Address | undefined): Promise<boolean> {
    const datanet = await this.get(id);
    if (datanet.policy === 'open') return true;
    if (!reader) return false;
    return this.read('hasAccess', [BigInt(id), reader]);
  }

  async assertCanRead(id: number, reader: Address | undefined): Promise<DatanetRow> {
    const datanet = await this.get(id);
    if (!(await this.canRead(id, reader))) {
      throw new OpenLedgerError(
        reader ? 'FORBIDDEN' : 'UNAUTHENTICATED',
        `Datanet ${id} is permissioned and ${reader ?? 'an anonymous caller'} has no grant.`,
        {
          hint: 'Request access (`openledger datanet request-access`); the owner grants it on-chain.',
        },
      );
    }
    return datanet;
  }

  /** Whether `account` may curate: the owner, or a curator the owner appointed on-chain. */
  async isCurator(id: number, account: Address): Promise<boolean> {
    const datanet = await this.get(id);
    if (getAddress(datanet.owner) === getAddress(account)) return true;
    return this.read('isCurator', [BigInt(id), account]);
  }

  async assertCurator(id: number, account: Address): Promise<DatanetRow> {
    const datanet = await this.get(id);
    if (!(await this.isCurator(id, account))) {
      throw new OpenLedgerError(
        'FORBIDDEN',
        `${account} is neither the owner nor a curator of datanet ${id}.`,
      );
    }
    return datanet;
  }

  async requestAccess(input: {
    id: number;
    account: Address;
    purpose: string;
    authorization: Authorization;
  }) {
    const datanet = await this.get(input.id);
    if (datanet.policy === 'open') {
      throw new OpenLedgerError(
        'CONFLICT',
        `Datanet ${input.id} is open: anyone may read it already.`,
      );
    }
    const purpose = input.purpose.trim();
    const account = getAddress(input.account);
    if (await this.read('hasAccess', [BigInt(input.id), account])) {
      throw new OpenLedgerError('CONFLICT', `${account} may already read datanet ${input.id}.`);
    }
    const [open] = await this.deps.db
      .select({ id: schema.accessRequests.id })
      .from(schema.accessRequests)
      .where(
        and(
          eq(schema.accessRequests.datanetId, input.id),
          eq(schema.accessRequests.requester, account),
          eq(schema.accessRequests.status, 'pending'),
        ),
      );
    if (open) {
      throw new OpenLedgerError(
        'CONFLICT',
        `${account} already has a pending request (${open.id}) for datanet ${input.id}.`,
        {
          hint: 'Wait for the owner to decide.',
        },
      );
    }
    const receipt = await this.relay('requestAccessWithSig', [
      input.account,
      BigInt(input.id),
      purposeHash(purpose),
      input.authorization.deadline,
      input.authorization.signature,
    ]);
    const [row] = await this.deps.db
      .insert(schema.accessRequests)
      .values({
        datanetId: input.id,
        requester: getAddress(input.account),
        purpose,
        status: 'pending',
        requestTx: receipt.transactionHash,
      })
      .returning();
    return row!;
  }

  /** Access requests of a datanet, all of them or one requester's. */
  async accessRequests(id: number, requester?: Address) {
    return this.deps.db
      .select()
      .from(schema.accessRequests)
      .where(
        and(
          eq(schema.accessRequests.datanetId, id),
          requester ? eq(schema.accessRequests.requester, getAddress(requester)) : undefined,
        ),
      )
      .orderBy(desc(schema.accessRequests.createdAt));
  }

  async decideAccess(input: {
    id: number;
    owner: Address;
    account: Address;
    decision: 'grant' | 'deny' | 'revoke';
    reason?: string;
    authorization: Authorization;
  }) {
    const datanet = await this.get(input.id);
    if (datanet.policy === 'open') {
      throw new OpenLedgerError(
        'CONFLICT',
        `Datanet ${input.id} is open: there is no access to grant, deny or revoke.`,
      );
    }
    const common = [input.owner, BigInt(input.id), input.account] as const;
    const { deadline, signature } = input.authorization;
    const receipt =
      input.decision === 'grant'
        ? await this.relay('grantAccessWithSig', [...common, deadline, signature])
        : input.decision === 'revoke'
          ? await this.relay('revokeAccessWithSig', [...common, deadline, signature])
          : await this.relay('denyAccessWithSig', [
              ...common,
              purposeHash(input.reason ?? ''),
              deadline,
              signature,
            ]);
    const status =
      input.decision === 'grant' ? 'granted' : input.decision === 'deny' ? 'denied' : 'revoked';
    const requester = getAddress(input.account);
    const updated = await this.deps.db
      .update(schema.accessRequests)
      .set({
        status,
        decisionTx: receipt.transactionHash,
        decisionReason: input.reason ?? null,
        decidedAt: new Date(),
      })
      .where(
        and(
          eq(schema.accessRequests.datanetId, input.id),
          eq(schema.accessRequests.requester, requester),
        ),
      )
      .returning();
    return {
      id: input.id,
      account: requester,
      status,
      txHash: receipt.transactionHash,
      requests: updated.length,
    };
  }

  // ----- contributions --------------------------------------------------------------------------

  /**
   * Verifies the contributor's signed statement, checks the datanet's rules and quotas, extracts
   * and validates the rows, and stores the contribution with its rows in one transaction: a bad
   * input or a crash stores no row.
   */
  async contribute(input: ContributionInput): Promise<ContributionRow & { rows: RowSummary[] }> {
    const datanet = await this.get(input.datanetId);
    const contributor = getAddress(input.contributor);
    if (!input.consent) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'The contribution must consent to the datanet licence.',
        {
          details: { field: 'consent' },
        },
      );
    }
    if (input.license !== datanet.license) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `This datanet takes contributions under ${datanet.license}, not ${input.license}.`,
        {
          details: { field: 'license' },
        },
      );
    }
    if ((input.file ? 1 : 0) + (input.rows ? 1 : 0) !== 1) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'Send either a file or rows.');
    }
    const payload = input.file ? input.file.bytes : toBytes(canonicalJson(input.rows));
    const contentHash = sha256(payload);
    await this.verifyContributionSignature(input, contentHash);

    const rules = datanet.rules;
    if (payload.byteLength > rules.maxFileBytes) {
      throw new OpenLedgerError(
        'PAYLOAD_TOO_LARGE',
        `The contribution is ${payload.byteLength} bytes; this datanet takes at most ${rules.maxFileBytes}.`,
        {
          details: { maxBytes: rules.maxFileBytes },
        },
      );
    }
    await this.checkQuotas(datanet, contributor);
    const [replay] = await this.deps.db
      .select({ id: schema.contributions.id })
      .from(schema.contributions)
      .where(
        and(
          eq(schema.contributions.contributor, contributor),
          eq(schema.contributions.nonce, input.nonce.toString()),
        ),
      );
    if (replay) {
      throw new OpenLedgerError(
        'NONCE_INVALID',
        `This signed statement (nonce ${input.nonce}) was already used for contribution ${replay.id}.`,
        {
          hint: 'Sign a new statement with a fresh random nonce.',
        },
      );
    }

    let extracted: { content: RowContent | FileRowContent; text: string; hash: string }[];
    let mime = 'application/json';
    if (input.file) {
      const detected = detectFile(input.file.name, input.file.bytes);
      mime = detected.mime;
      if (detected.modality !== datanet.modality) {
        throw new OpenLedgerError(
          'UNSUPPORTED_FILE_TYPE',
          `Datanet ${datanet.id} takes ${datanet.modality}, and ${input.file.name} is ${detected.modality}.`,
        );
      }
      if (!rules.acceptedTypes.includes(detected.kind)) {
        throw new OpenLedgerError(
          'UNSUPPORTED_FILE_TYPE',
          `Datanet ${datanet.id} does not take .${detected.kind} files.`,
          {
            hint: `Accepted: ${rules.acceptedTypes.join(', ')}.`,
          },
        );
      }
      if (detected.modality === 'text') {
        extracted = await extractRows(detected.kind, input.file.bytes);
      } else {
        const blobId = sha256(input.file.bytes).slice(2);
        const content: FileRowContent = { type: 'file', blobId, mime, fileName: input.file.name };
        extracted = [
          {
            content,
            text: input.file.name,
            hash: sha256(toBytes(canonicalJson(content))).slice(2),
          },
        ];
      }
    } else {
      if (datanet.modality !== 'text') {
        throw new OpenLedgerError(
          'UNSUPPORTED_FILE_TYPE',
          `Datanet ${datanet.id} takes ${datanet.modality} files, not rows.`,
        );
      }
      extracted = (input.rows ?? []).map((content) => ({
        content,
        text: flatten(content),
        hash: rowHash(content),
      }));
    }
    if (extracted.length === 0) {
      throw new OpenLedgerError('FILE_INVALID', 'The contribution holds no rows.');
    }

    const blob = await this.deps.blobs.put(payload);
    const nearIndex = await this.nearDuplicateIndex(datanet.id);
    const hashes = [...new Set(extracted.map((r) => r.hash))];
    const existing = await this.deps.db
      .select({ id: schema.datanetRows.id, rowHash: schema.datanetRows.rowHash })
      .from(schema.datanetRows)
      .where(
        and(
          eq(schema.datanetRows.datanetId, datanet.id),
          inArray(schema.datanetRows.rowHash, hashes),
          ne(schema.datanetRows.status, 'rejected'),
        ),
      )
      .orderBy(asc(schema.datanetRows.createdAt));
    const firstByHash = new Map<string, string>();
    for (const row of existing)
      if (!firstByHash.has(row.rowHash)) firstByHash.set(row.rowHash, row.id);

    const batchIndex = new MinHashIndex();
    const prepared = extracted.map((row, position) => {
      const id = crypto.randomUUID();
      const signature = nearIndex.signature(row.text);
      const exactDuplicateOf = firstByHash.get(row.hash);
      // Near-duplicates of earlier rows, in the datanet or earlier in this same contribution.
      const near = exactDuplicateOf
        ? undefined
        : (nearIndex.query(signature, NEAR_DUPLICATE_REPORT_AT)[0] ??
          batchIndex.query(signature, NEAR_DUPLICATE_REPORT_AT)[0]);
      const verdict = assessRow({
        text: row.text,
        description: `${datanet.name}. ${datanet.summary}. ${datanet.description} ${datanet.tags.join(' ')}`,
        ...(exactDuplicateOf ? { exactDuplicateOf } : {}),
        ...(near ? { nearDuplicateOf: near } : {}),
      });
      if (!exactDuplicateOf) firstByHash.set(row.hash, id); // duplicates inside one contribution too
      if (verdict.accepted) batchIndex.add(id, signature);
      return {
        id,
        position,
        row,
        signature,
        verdict,
        duplicateOf: exactDuplicateOf ?? near?.id ?? null,
      };
    });
    const accepted = prepared.filter((p) => p.verdict.accepted);
    const score = prepared.reduce((sum, p) => sum + p.verdict.score, 0) / prepared.length;
    const reasons = summarizeReasons(prepared.map((p) => p.verdict.reasons));

    const contribution = await this.deps.db.transaction(async (tx) => {
      const [created] = await tx
        .insert(schema.contributions)
        .values({
          datanetId: datanet.id,
          contributor,
          contentHash: contentHash.slice(2),
          fileName: input.file?.name ?? null,
          mime,
          blobId: blob.id,
          bytes: blob.size,
          license: input.license,
          signature: input.signature,
          nonce: input.nonce.toString(),
          status: accepted.length > 0 ? 'pending' : 'rejected',
          score,
          reasons,
          rowCount: prepared.length,
          acceptedRowCount: accepted.length,
          ...(accepted.length === 0
            ? {
                decidedBy: 'validator',
                decidedAt: new Date(),
                decisionReason: 'no row passed validation',
              }
            : {}),
        })
        .returning();
      for (let i = 0; i < prepared.length; i += 500) {
        await tx.insert(schema.datanetRows).values(
          prepared.slice(i, i + 500).map((p) => ({
            id: p.id,
            datanetId: datanet.id,
            contributionId: created!.id,
            contributor,
            position: p.position,
            rowHash: p.row.hash,
            content: p.row.content,
            text: p.row.text,
            status: p.verdict.accepted ? ('pending' as const) : ('rejected' as const),
            score: p.verdict.score,
            reasons: p.verdict.reasons,
            minhash: MinHashIndex.encode(p.signature),
            duplicateOf: p.duplicateOf,
          })),
        );
      }
      return created!;
    });
    for (const p of accepted) nearIndex.add(p.id, p.signature);
    return {
      ...contribution,
      rows: prepared.map((p) => ({
        id: p.id,
        position: p.position,
        rowHash: p.row.hash,
        accepted: p.verdict.accepted,
        score: p.verdict.score,
        reasons: p.verdict.reasons,
      })),
    };
  }

  async contributions(filter: {
    datanetId?: number;
    contributor?: Address;
    status?: 'pending' | 'approved' | 'rejected';
  }) {
    const conditions = [];
    if (filter.datanetId !== undefined)
      conditions.push(eq(schema.contributions.datanetId, filter.datanetId));
    if (filter.contributor)
      conditions.push(eq(schema.contributions.contributor, getAddress(filter.contributor)));
    if (filter.status) conditions.push(eq(schema.contributions.status, filter.status));
    return this.deps.db
      .select()
      .from(schema.contributions)
      .where(conditions.length ? and(...conditions) : undefined)
      .orderBy(desc(schema.contributions.createdAt))
      .limit(500);
  }

  async contributionRows(contributionId: string) {
    return this.deps.db
      .select({
        id: schema.datanetRows.id,
        position: schema.datanetRows.position,
        rowHash: schema.datanetRows.rowHash,
        status: schema.datanetRows.status,
        score: schema.datanetRows.score,
        reasons: schema.datanetRows.reasons,
        duplicateOf: schema.datanetRows.duplicateOf,
        content: schema.datanetRows.content,
      })
      .from(schema.datanetRows)
      .where(eq(schema.datanetRows.contributionId, contributionId))
      .orderBy(asc(schema.datanetRows.position));
  }

  async contribution(id: string): Promise<ContributionRow> {
    const [row] = await this.deps.db
      .select()
      .from(schema.contributions)
      .where(eq(schema.contributions.id, id));
    if (!row) throw new OpenLedgerError('NOT_FOUND', `There is no contribution ${id}.`);
    return row;
  }

  /** Rejects pending contributions with a reason. No chain action: nothing enters a version. */
  async reject(input: { id: number; curator: Address; contributions: string[]; reason: string }) {
    await this.assertCurator(input.id, input.curator);
    const reason = input.reason.trim();
    if (!reason)
      throw new OpenLedgerError('VALIDATION_FAILED', 'A rejection needs a reason.', {
        details: { field: 'reason' },
      });
    const rejected = await this.deps.db.transaction(async (tx) => {
      const done = await tx
        .update(schema.contributions)
        .set({
          status: 'rejected',
          decidedBy: getAddress(input.curator),
          decidedAt: new Date(),
          decisionReason: reason,
        })
        .where(
          and(
            eq(schema.contributions.datanetId, input.id),
            eq(schema.contributions.status, 'pending'),
            inArray(schema.contributions.id, input.contributions),
          ),
        )
        .returning({ id: schema.contributions.id });
      if (done.length !== input.contributions.length) {
        throw new OpenLedgerError(
          'CONFLICT',
          'Some contributions are not pending in this datanet.',
          {
            details: { pending: done.map((d) => d.id) },
          },
        );
      }
      await tx
        .update(schema.datanetRows)
        .set({ status: 'rejected' })
        .where(inArray(schema.datanetRows.contributionId, input.contributions));
      return done;
    });
    this.nearDuplicateIndexes.delete(input.id);
    return { rejected: rejected.map((r) => r.id), reason };
  }

  /**
   * What committing an approval batch would produce: the next version's Merkle root over all
   * approved rows so far plus the batch's, its row count and the manifest's blob id. Pure: the
   * same batch on the same state always gives the same plan, which is what the committer signs.
   */
  async planVersion(input: {
    id: number;
    approve: string[];
  }): Promise<VersionPlan & { manifest: Uint8Array }> {
    const datanet = await this.get(input.id);
    if (input.approve.length === 0)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'An approval batch needs at least one contribution.',
      );
    const batch = await this.deps.db
      .select({ id: schema.contributions.id, status: schema.contributions.status })
      .from(schema.contributions)
      .where(
        and(
          eq(schema.contributions.datanetId, input.id),
          inArray(schema.contributions.id, input.approve),
        ),
      );
    const notPending = input.approve.filter(
      (id) => batch.find((b) => b.id === id)?.status !== 'pending',
    );
    if (notPending.length > 0) {
      throw new OpenLedgerError(
        'CONFLICT',
        `Not pending in datanet ${input.id}: ${notPending.join(', ')}.`,
        { details: { notPending } },
      );
    }
    const [latest] = await this.deps.db
      .select()
      .from(schema.datanetVersions)
      .where(eq(schema.datanetVersions.datanetId, input.id))
      .orderBy(desc(schema.datanetVersions.version))
      .limit(1);
    const rows = await this.deps.db
      .select({
        rowHash: schema.datanetRows.rowHash,
        contributor: schema.datanetRows.contributor,
        contributionId: schema.datanetRows.contributionId,
        status: schema.datanetRows.status,
      })
      .from(schema.datanetRows)
      .where(
        and(
          eq(schema.datanetRows.datanetId, input.id),
          sql`(${schema.datanetRows.status} = 'approved' or (${schema.datanetRows.status} = 'pending' and ${inArray(schema.datanetRows.contributionId, input.approve)}))`,
        ),
      );
    const leaves: VersionLeaf[] = rows
      .map((r) => ({
        rowHash: r.rowHash,
        contributor: getAddress(r.contributor),
        contributionId: r.contributionId,
      }))
      .sort(compareLeaves);
    const tree = buildVersionTree(leaves);
    const version = (latest?.version ?? 0) + 1;
    const manifest = toBytes(
      canonicalJson({
        kind: 'openledger.datanet.version',
        chainId: this.deps.chain.chain.id,
        registry: this.deps.registry,
        datanetId: datanet.id,
        version,
        parentRoot: latest?.root ?? null,
        root: tree.root,
        leafEncoding: ['bytes32 rowHash', 'address contributor', 'bytes32 contributionId'],
        rows: leaves.map((l) => [l.rowHash, l.contributor, l.contributionId]),
      }),
    );
    return {
      datanetId: datanet.id,
      version,
      root: tree.root as Hex,
      rowCount: leaves.length,
      addedRows: rows.filter((r) => r.status === 'pending').length,
      manifestId: sha256(manifest),
      approve: [...input.approve].sort(),
      manifest,
    };
  }

  /**
   * Approves a batch and commits the version on-chain with the committer's signature over the
   * plan. The database changes only after the chain accepted the version, in one transaction.
   */
  async approve(input: {
    id: number;
    curator: Address;
    approve: string[];
    authorization: Authorization;
  }) {
    await this.assertCurator(input.id, input.curator);
    const plan = await this.planVersion(input);
    const blob = await this.deps.blobs.put(plan.manifest);
    let receipt: TransactionReceipt;
    try {
      receipt = await this.relay('commitVersionWithSig', [
        input.curator,
        BigInt(input.id),
        plan.root,
        BigInt(plan.rowCount),
        plan.manifestId,
        input.authorization.deadline,
        input.authorization.signature,
      ]);
    } catch (error) {
      if (error instanceof OpenLedgerError && error.code === 'INVALID_SIGNATURE') {
        throw new OpenLedgerError(
          'INVALID_SIGNATURE',
          'The signature does not cover this version (root, row count, manifest, nonce).',
          {
            hint: 'The datanet may have changed since you prepared the version: prepare it again and sign the new plan.',
            cause: error,
          },
        );
      }
      throw error;
    }
    const [event] = parseEventLogs({
      abi: DatanetRegistryAbi,
      logs: receipt.logs,
      eventName: 'VersionCommitted',
    });
    const version = Number(event?.args.version ?? plan.version);
    const curator = getAddress(input.curator);
    await this.deps.db.transaction(async (tx) => {
      await tx
        .update(schema.contributions)
        .set({ status: 'approved', decidedBy: curator, decidedAt: new Date(), version })
        .where(inArray(schema.contributions.id, plan.approve));
      await tx
        .update(schema.datanetRows)
        .set({ status: 'approved', version })
        .where(
          and(
            inArray(schema.datanetRows.contributionId, plan.approve),
            eq(schema.datanetRows.status, 'pending'),
          ),
        );
      await tx.insert(schema.datanetVersions).values({
        datanetId: input.id,
        version,
        root: plan.root,
        rowCount: plan.rowCount,
        manifestId: blob.id,
        committedBy: curator,
        txHash: receipt.transactionHash,
        addedRows: plan.addedRows,
      });
    });
    for (const listener of this.commitListeners) {
      try {
        listener({ datanetId: input.id, version, committer: curator });
      } catch {
        // A listener's failure must not fail the commit, which is on-chain already.
      }
    }
    const { manifest: _, ...view } = plan;
    return { ...view, version, txHash: receipt.transactionHash };
  }

  async versions(id: number) {
    await this.get(id);
    return this.deps.db
      .select()
      .from(schema.datanetVersions)
      .where(eq(schema.datanetVersions.datanetId, id))
      .orderBy(desc(schema.datanetVersions.version));
  }

  /** The rows of a version in manifest order, normalised for training (requires read access). */
  async exportVersion(id: number, version: number | 'latest') {
    const versions = await this.versions(id);
    const chosen = version === 'latest' ? versions[0] : versions.find((v) => v.version === version);
    if (!chosen) throw new OpenLedgerError('NOT_FOUND', `Datanet ${id} has no version ${version}.`);
    const rows = await this.deps.db
      .select()
      .from(schema.datanetRows)
      .where(
        and(
          eq(schema.datanetRows.datanetId, id),
          eq(schema.datanetRows.status, 'approved'),
          isNotNull(schema.datanetRows.version),
          lte(schema.datanetRows.version, chosen.version),
        ),
      );
    const sorted = rows
      .map((r) => ({ ...r, contributor: getAddress(r.contributor) }))
      .sort((a, b) =>
        compareLeaves(
          { rowHash: a.rowHash, contributor: a.contributor, contributionId: a.contributionId },
          { rowHash: b.rowHash, contributor: b.contributor, contributionId: b.contributionId },
        ),
      );
    return {
      version: chosen,
      rows: sorted.map((r) => {
        const content = r.content as RowContent | FileRowContent;
        const messages = content.type === 'file' ? null : toChatMessages(content);
        return {
          rowHash: r.rowHash,
          contributor: r.contributor,
          contributionId: r.contributionId,
          content,
          ...(messages ? { messages } : {}),
        };
      }),
    };
  }

  /** The Merkle proof that a row (by hash and contribution) is in a version. */
  async proof(id: number, version: number, rowHash: string, contributionId?: string) {
    const exported = await this.exportVersion(id, version);
    const match = exported.rows.find(
      (r) => r.rowHash === rowHash && (!contributionId || r.contributionId === contributionId),
    );
    if (!match)
      throw new OpenLedgerError(
        'NOT_FOUND',
        `Row ${rowHash} is not in version ${version} of datanet ${id}.`,
      );
    const tree = buildVersionTree(
      exported.rows.map((r) => ({
        rowHash: r.rowHash,
        contributor: r.contributor,
        contributionId: r.contributionId,
      })),
    );
    const leaf = {
      rowHash: match.rowHash,
      contributor: match.contributor,
      contributionId: match.contributionId,
    };
    return {
      datanetId: id,
      version,
      root: tree.root as Hex,
      leaf: { ...leaf, contributionIdBytes32: contributionIdToBytes32(leaf.contributionId) },
      proof: proofFor(tree, leaf)!,
      registry: this.deps.registry,
      chainId: this.deps.chain.chain.id,
    };
  }

  /** What changed in a version: the rows it added (versions only ever add rows). */
  async versionDiff(id: number, version: number) {
    const versions = await this.versions(id);
    const chosen = versions.find((v) => v.version === version);
    if (!chosen) throw new OpenLedgerError('NOT_FOUND', `Datanet ${id} has no version ${version}.`);
    const added = await this.deps.db
      .select({
        rowHash: schema.datanetRows.rowHash,
        contributor: schema.datanetRows.contributor,
        contributionId: schema.datanetRows.contributionId,
      })
      .from(schema.datanetRows)
      .where(and(eq(schema.datanetRows.datanetId, id), eq(schema.datanetRows.version, version)))
      .orderBy(asc(schema.datanetRows.rowHash));
    const byContributor = new Map<string, number>();
    for (const row of added)
      byContributor.set(row.contributor, (byContributor.get(row.contributor) ?? 0) + 1);
    return {
      version: chosen,
      previousRoot: versions.find((v) => v.version === version - 1)?.root ?? null,
      added,
      addedByContributor: Object.fromEntries(byContributor),
    };
  }

  /** A contributor's record across datanets: contributions, rows and acceptance. */
  async contributorProfile(address: Address) {
    const contributor = getAddress(address);
    const perDatanet = await this.deps.db
      .select({
        datanetId: schema.contributions.datanetId,
        name: schema.datanets.name,
        contributions: sql<number>`count(*)::int`,
        approved: sql<number>`count(*) filter (where ${schema.contributions.status} = 'approved')::int`,
        rejected: sql<number>`count(*) filter (where ${schema.contributions.status} = 'rejected')::int`,
        pending: sql<number>`count(*) filter (where ${schema.contributions.status} = 'pending')::int`,
        rows: sql<number>`sum(${schema.contributions.rowCount})::int`,
        acceptedRows: sql<number>`sum(${schema.contributions.acceptedRowCount})::int`,
        meanScore: sql<number>`avg(${schema.contributions.score})::float8`,
      })
      .from(schema.contributions)
      .innerJoin(schema.datanets, eq(schema.datanets.id, schema.contributions.datanetId))
      .where(eq(schema.contributions.contributor, contributor))
      .groupBy(schema.contributions.datanetId, schema.datanets.name)
      .orderBy(asc(schema.contributions.datanetId));
    const total = perDatanet.reduce(
      (t, d) => ({
        contributions: t.contributions + d.contributions,
        approved: t.approved + d.approved,
        rows: t.rows + d.rows,
        acceptedRows: t.acceptedRows + d.acceptedRows,
      }),
      { contributions: 0, approved: 0, rows: 0, acceptedRows: 0 },
    );
    return {
      address: contributor,
      ...total,
      acceptanceRatio: total.contributions === 0 ? null : total.approved / total.contributions,
      datanets: perDatanet,
    };
  }

  /** Per-contributor figures of a datanet, most approved rows first. */
  async leaderboard(id: number) {
    await this.get(id);
    return this.deps.db
      .select({
        contributor: schema.datanetRows.contributor,
        rows: count(),
        approvedRows: sql<number>`count(*) filter (where ${schema.datanetRows.status} = 'approved')::int`,
        rejectedRows: sql<number>`count(*) filter (where ${schema.datanetRows.status} = 'rejected')::int`,
        meanScore: sql<number>`avg(${schema.datanetRows.score})::float8`,
      })
      .from(schema.datanetRows)
      .where(eq(schema.datanetRows.datanetId, id))
      .groupBy(schema.datanetRows.contributor)
      .orderBy(sql`3 desc`, sql`2 desc`); // approved rows, then rows
  }

  /**
   * Brings the database up to the chain after a stop between a relayed call and the database
   * write that follows it: datanets and versions the registry has but the database lacks are
   * restored from the metadata and manifest blobs that were stored before each call. Idempotent.
   */
  async reconcile(): Promise<{ datanets: number; versions: number }> {
    const restored = { datanets: 0, versions: 0 };
    const onChain = Number(await this.read('datanetCount', []));
    const known = new Set(
      (await this.deps.db.select({ id: schema.datanets.id }).from(schema.datanets)).map(
        (d) => d.id,
      ),
    );
    for (let id = 1; id <= onChain; id++) {
      if (known.has(id)) continue;
      const record = (await this.read('datanet', [BigInt(id)])) as {
        owner: Address;
        metadataHash: Hex;
      };
      const blob = await this.deps.blobs.get(record.metadataHash.slice(2)).catch(() => undefined);
      if (!blob) continue; // registered elsewhere: this node never saw its metadata
      const [event] = await this.deps.chain.publicClient.getContractEvents({
        address: this.deps.registry,
        abi: DatanetRegistryAbi,
        eventName: 'DatanetCreated',
        args: { id: BigInt(id) },
        fromBlock: 0n,
      });
      const metadata = JSON.parse(blob.toString('utf8')) as ReturnType<typeof normalizeMetadata>;
      await this.deps.db
        .insert(schema.datanets)
        .values({
          id,
          ...metadata,
          owner: getAddress(record.owner),
          metadataHash: record.metadataHash,
          txHash: event?.transactionHash ?? '0x',
        })
        .onConflictDoNothing();
      known.add(id);
      restored.datanets++;
    }
    for (const id of known) {
      const chainVersions = Number(await this.read('versionCount', [BigInt(id)]));
      const [latest] = await this.deps.db
        .select({ version: sql<number | null>`max(${schema.datanetVersions.version})` })
        .from(schema.datanetVersions)
        .where(eq(schema.datanetVersions.datanetId, id));
      for (let version = (latest?.version ?? 0) + 1; version <= chainVersions; version++) {
        const record = (await this.read('version', [BigInt(id), BigInt(version)])) as {
          root: Hex;
          manifestId: Hex;
          rowCount: bigint;
          committer: Address;
        };
        const blob = await this.deps.blobs.get(record.manifestId.slice(2)).catch(() => undefined);
        if (!blob) break; // committed by another node: its rows are not here
        const manifest = JSON.parse(blob.toString('utf8')) as { rows: [string, string, string][] };
        const contributionIds = [...new Set(manifest.rows.map((r) => r[2]))];
        const [event] = await this.deps.chain.publicClient.getContractEvents({
          address: this.deps.registry,
          abi: DatanetRegistryAbi,
          eventName: 'VersionCommitted',
          args: { id: BigInt(id), version: BigInt(version) },
          fromBlock: 0n,
        });
        await this.deps.db.transaction(async (tx) => {
          const approved = await tx
            .update(schema.contributions)
            .set({
              status: 'approved',
              decidedBy: getAddress(record.committer),
              decidedAt: new Date(),
              version,
            })
            .where(
              and(
                inArray(schema.contributions.id, contributionIds),
                eq(schema.contributions.status, 'pending'),
              ),
            )
            .returning({ id: schema.contributions.id });
          const added = approved.length
            ? await tx
                .update(schema.datanetRows)
                .set({ status: 'approved', version })
                .where(
                  and(
                    inArray(
                      schema.datanetRows.contributionId,
                      approved.map((a) => a.id),
                    ),
                    eq(schema.datanetRows.status, 'pending'),
                  ),
                )
                .returning({ id: schema.datanetRows.id })
            : [];
          await tx.insert(schema.datanetVersions).values({
            datanetId: id,
            version,
            root: record.root,
            rowCount: Number(record.rowCount),
            manifestId: record.manifestId.slice(2),
            committedBy: getAddress(record.committer),
            txHash: event?.transactionHash ?? '0x',
            addedRows: added.length,
          });
        });
        restored.versions++;
      }
    }
    return restored;
  }

  // ----- internals ------------------------------------------------------------------------------

  private async verifyContributionSignature(
    input: ContributionInput,
    contentHash: Hex,
  ): Promise<void> {
    if (!isHex(input.signature))
      throw new OpenLedgerError('VALIDATION_FAILED', 'The signature must be 0x-prefixed hex.');
    const typed = contributionTypedData(this.deps.chain.chain.id, this.deps.registry, {
      datanetId: BigInt(input.datanetId),
      contentHash,
      license: input.license,
      consent: input.consent,
      nonce: input.nonce,
    });
    const valid = await this.deps.chain.publicClient
      .verifyTypedData({ ...typed, address: input.contributor, signature: input.signature })
      .catch(() => false);
    if (!valid) {
      throw new OpenLedgerError(
        'INVALID_SIGNATURE',
        `The contribution statement is not signed by ${input.contributor} for this content.`,
        {
          hint: 'Sign the Contribution statement (datanet id, sha256 of the exact bytes sent, licence, consent, nonce).',
          details: {
            datanetId: input.datanetId,
            contentHash,
            license: input.license,
            consent: input.consent,
            nonce: input.nonce.toString(),
          },
        },
      );
    }
  }

  private async checkQuotas(datanet: DatanetRow, contributor: Address): Promise<void> {
    const since = new Date(Date.now() - DAY_MS);
    const [mine] = await this.deps.db
      .select({ n: sql<number>`count(*)::int` })
      .from(schema.contributions)
      .where(
        and(
          eq(schema.contributions.datanetId, datanet.id),
          eq(schema.contributions.contributor, contributor),
          gte(schema.contributions.createdAt, since),
        ),
      );
    if ((mine?.n ?? 0) >= datanet.rules.dailyQuotaPerContributor) {
      throw new OpenLedgerError(
        'QUOTA_EXCEEDED',
        `${contributor} has made ${mine?.n} contributions to datanet ${datanet.id} in 24 hours, its limit.`,
        {
          details: { retryAfterSeconds: 3600 },
        },
      );
    }
    const [all] = await this.deps.db
      .select({ n: sql<number>`count(*)::int` })
      .from(schema.contributions)
      .where(
        and(
          eq(schema.contributions.datanetId, datanet.id),
          gte(schema.contributions.createdAt, since),
        ),
      );
    if ((all?.n ?? 0) >= datanet.rules.dailyQuotaPerDatanet) {
      throw new OpenLedgerError(
        'QUOTA_EXCEEDED',
        `Datanet ${datanet.id} has reached its limit of ${datanet.rules.dailyQuotaPerDatanet} contributions a day.`,
        {
          details: { retryAfterSeconds: 3600 },
        },
      );
    }
  }

  /** The datanet's MinHash index of live rows, built once from stored signatures. */
  private nearDuplicateIndex(id: number): Promise<MinHashIndex> {
    let index = this.nearDuplicateIndexes.get(id);
    if (!index) {
      index = (async () => {
        const built = new MinHashIndex();
        const rows = await this.deps.db
          .select({ id: schema.datanetRows.id, minhash: schema.datanetRows.minhash })
          .from(schema.datanetRows)
          .where(
            and(eq(schema.datanetRows.datanetId, id), ne(schema.datanetRows.status, 'rejected')),
          );
        for (const row of rows) built.add(row.id, MinHashIndex.decode(row.minhash));
        return built;
      })();
      index.catch(() => this.nearDuplicateIndexes.delete(id));
      this.nearDuplicateIndexes.set(id, index);
    }
    return index;
  }

  private read<
    F extends
      | 'nonces'
      | 'hasAccess'
      | 'isCurator'
      | 'datanetCount'
      | 'datanet'
      | 'versionCount'
      | 'version',
  >(functionName: F, args: readonly unknown[]) {
    return this.deps.chain.publicClient.readContract({
      address: this.deps.registry,
      abi: DatanetRegistryAbi,
      functionName,
      args,
    } as never) as Promise<
      F extends 'nonces' | 'datanetCount' | 'versionCount'
        ? bigint
        : F extends 'datanet' | 'version'
          ? unknown
          : boolean
    >;
  }

  /** Relays a wallet-signed registry call; decodes the registry's errors into API errors. */
  private async relay(functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
    if (!this.deps.relayer) {
      throw new OpenLedgerError(
        'RELAYER_UNAVAILABLE',
        'This node has no relayer key to submit signed registry actions.',
        {
          hint: 'Start the node with OPENLEDGER_PRIVATE_KEY set to a funded key on this chain.',
        },
      );
    }
    try {
      return await this.deps.relayer.write({
        address: this.deps.registry,
        abi: DatanetRegistryAbi,
        functionName,
        args,
      } as never);
    } catch (error) {
      throw registryError(error);
    }
  }
}

export interface DatanetStats {
  contributions: { pending: number; approved: number; rejected: number };
  approvedRows: number;
  latestVersion: number;
}

export interface RowSummary {
  id: string;
  position: number;
  rowHash: string;
  accepted: boolean;
  score: number;
  reasons: string[];
}

export function purposeHash(text: string): Hex {
  return sha256(toBytes(text));
}

function compareLeaves(a: VersionLeaf, b: VersionLeaf): number {
  return a.rowHash < b.rowHash
    ? -1
    : a.rowHash > b.rowHash
      ? 1
      : a.contributionId < b.contributionId
        ? -1
        : a.contributionId > b.contributionId
          ? 1
          : 0;
}

function flatten(content: RowContent): string {
  switch (content.type) {
    case 'document':
      return content.text;
    case 'instruction':
      return [content.instruction, content.input ?? '', content.output].join('\n');
    case 'chat':
      return content.messages.map((m) => m.content).join('\n');
  }
}

function summarizeReasons(perRow: string[][]): string[] {
  const counts = new Map<string, number>();
  for (const reasons of perRow)
    for (const reason of reasons)
      counts.set(
        reason.replace(/\(.*\)/, '').trim(),
        (counts.get(reason.replace(/\(.*\)/, '').trim()) ?? 0) + 1,
      );
  return [...counts].map(([reason, n]) => `${reason} (${n} of ${perRow.length} rows)`);
}

const REGISTRY_ERRORS: Record<string, [OpenLedgerError['code'], string]> = {
  UnknownDatanet: ['DATANET_NOT_FOUND', 'The registry has no such datanet.'],
  NotOwner: ['FORBIDDEN', 'Only the datanet owner may do this.'],
  NotOwnerOrCurator: ['FORBIDDEN', 'Only the datanet owner or a curator may do this.'],
  UnknownVersion: ['NOT_FOUND', 'The registry has no such version.'],
  NotPermissioned: ['CONFLICT', 'The datanet is open: access requests do not apply.'],
  InvalidSignature: [
    'INVALID_SIGNATURE',
    'The signature does not match the action and the signer (or its nonce was used).',
  ],
  ExpiredSignature: ['INVALID_SIGNATURE', 'The signature has expired (its deadline has passed).'],
  EmptyRoot: ['VALIDATION_FAILED', 'A version needs a non-empty Merkle root.'],
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
