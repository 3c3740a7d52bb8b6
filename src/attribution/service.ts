/**
 * The span indexes of the node's datanets: built per version from the rows that version added
 * (so committing a version costs only its new rows), stored as blobs, recorded per (datanet,
 * version, tokenizer), and opened for queries after the caller's read access is checked.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { and, asc, eq, inArray, lt, lte, sql } from 'drizzle-orm';
import { getAddress, type Address } from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import type { DatanetService } from '../datanets/index.ts';
import type { Db } from '../db/index.ts';
import { schema } from '../db/index.ts';
import { readGguf } from '../engine/index.ts';
import type { GgufValue } from '../engine/gguf/types.ts';
import { OpenLedgerError } from '../errors.ts';
import { BUILTIN_MODEL_NAME } from '../factory/builtin/paths.ts';
import type { ModelCatalog } from '../factory/models.ts';
import { loadTokenizer } from '../factory/tokenizers.ts';
import { SpanShard, rowsToIndex, type ShardRow } from './shard.ts';
import { SpanIndex } from './span-index.ts';

type ModelTokenizer = Awaited<ReturnType<typeof loadTokenizer>>;

/** Rows are cut into shards of at most this many tokens (memory of one build, ~30 B/token). */
export const SHARD_MAX_TOKENS = 32_000_000;
/** Loaded shards kept in memory, by bytes. */
const CACHE_BYTES = 2 * 1024 ** 3;

export interface TokenizerInfo {
  model: string;
  sha256: string;
  tokenizer: ModelTokenizer;
  /** 1 for ids that end a sentence or a line (., !, ?, newline in their text). */
  delimiters: Uint8Array;
}

export interface VersionRef {
  id: number;
  version: number | 'latest';
}

export interface IndexStatus {
  datanetId: number;
  version: number;
  model: string;
  tokenizer: string;
  /** ready: every version up to this one is indexed; missing: some is not (build it). */
  status: 'ready' | 'building' | 'failed' | 'missing';
  tokens: number;
  rows: number;
  versions: {
    version: number;
    status: 'ready' | 'building' | 'failed' | 'missing';
    tokens: number;
    rows: number;
    shards: { blobId: string; tokens: number; rows: number }[];
    buildSeconds: number | null;
    error: { code: string; message: string } | null;
  }[];
}

export interface AttributionDeps {
  db: Db;
  blobs: BlobStore;
  models: ModelCatalog;
  datanets: DatanetService | undefined;
}

/** sha256 over the GGUF `tokenizer.*` keys, in key order: equal for models sharing a tokenizer. */
export function tokenizerSha256(metadata: Map<string, GgufValue>): string {
  const hash = createHash('sha256');
  for (const key of [...metadata.keys()].filter((k) => k.startsWith('tokenizer.')).sort()) {
    const entry = metadata.get(key)!;
    hash.update(`${key}\u0000${entry.type}\u0000`);
    if (entry.type === 'array') {
      hash.update(`${entry.itemType}\u0000${entry.value.length}\u0000`);
      const value = entry.value as unknown;
      if (ArrayBuffer.isView(value))
        hash.update(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      else for (const item of value as unknown[]) hash.update(`${String(item)}\u0000`);
    } else hash.update(`${String(entry.value)}\u0000`);
  }
  return hash.digest('hex');
}

/** The ids whose text holds sentence punctuation or a newline: where trace spans are cut. */
export function delimiterTokens(tokenizer: ModelTokenizer): Uint8Array {
  const flags = new Uint8Array(tokenizer.vocabSize);
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const text = tokenizer.decode([id]);
    if (/[.!?\n]/.test(text)) flags[id] = 1;
  }
  return flags;
}

const tokenizers = new Map<string, { key: string; info: TokenizerInfo }>();

/**
 * The tokenizer of a model file with its hash and delimiters, loaded once per file version (the
 * delimiter table decodes every id of the vocabulary).
 */
export async function tokenizerInfo(file: string, model: string): Promise<TokenizerInfo> {
  const info = await stat(file);
  const key = `${model}:${info.size}:${info.mtimeMs}`;
  const hit = tokenizers.get(file);
  if (hit?.key === key) return hit.info;
  const tokenizer = await loadTokenizer(file);
  const header = await readGguf(file);
  const entry: TokenizerInfo = {
    model,
    sha256: tokenizerSha256(header.metadata),
    tokenizer,
    delimiters: delimiterTokens(tokenizer),
  };
  tokenizers.set(file, { key, info: entry });
  return entry;
}

export class AttributionService {
  private readonly shardCache = new Map<string, { shard: SpanShard; bytes: number }>();
  private cachedBytes = 0;
  /** Opened indexes by their shards: statistics over many shards take a moment to gather. */
  private readonly indexCache = new Map<string, SpanIndex>();

  constructor(private readonly deps: AttributionDeps) {}

  private datanets(): DatanetService {
    if (!this.deps.datanets)
      throw new OpenLedgerError('NOT_FOUND', 'This node has no datanet registry deployed.');
    return this.deps.datanets;
  }

  /** The tokenizer of a catalogue model (default: the built-in base model), with its hash. */
  async tokenizer(model = BUILTIN_MODEL_NAME): Promise<TokenizerInfo> {
    const resolved = await this.deps.models.resolve(model);
    return tokenizerInfo(resolved.path, resolved.name);
  }

  /** A version number (or latest) of a datanet, checked to exist. */
  async resolveVersion(id: number, version: number | 'latest'): Promise<number> {
    const versions = await this.datanets().versions(id);
    const chosen = version === 'latest' ? versions[0] : versions.find((v) => v.version === version);
    if (!chosen)
      throw new OpenLedgerError('NOT_FOUND', `Datanet ${id} has no version ${version}.`, {
        hint: 'Approve contributions to commit a version first.',
      });
    return chosen.version;
  }

  async status(id: number, version: number | 'latest', model?: string): Promise<IndexStatus> {
    const v = await this.resolveVersion(id, version);
    const tok = await this.tokenizer(model);
    const rows = await this.deps.db
      .select()
      .from(schema.attributionIndexes)
      .where(
        and(
          eq(schema.attributionIndexes.datanetId, id),
          lte(schema.attributionIndexes.version, v),
          eq(schema.attributionIndexes.tokenizer, tok.sha256),
        ),
      )
      .orderBy(asc(schema.attributionIndexes.version));
    const versions: IndexStatus['versions'] = [];
    for (let k = 1; k <= v; k++) {
      const row = rows.find((r) => r.version === k);
      versions.push({
        version: k,
        status: row?.status ?? 'missing',
        tokens: row?.tokens ?? 0,
        rows: row?.rows ?? 0,
        shards: row?.shards ?? [],
        buildSeconds: row?.buildSeconds ?? null,
        error: row?.error ?? null,
      });
    }
    const worst = (['failed', 'building', 'missing'] as const).find((s) =>
      versions.some((x) => x.status === s),
    );
    return {
      datanetId: id,
      version: v,
      model: tok.model,
      tokenizer: tok.sha256,
      status: worst ?? 'ready',
      tokens: versions.reduce((n, x) => n + x.tokens, 0),
      rows: versions.reduce((n, x) => n + x.rows, 0),
      versions,
    };
  }

  /**
   * Indexes every version up to `version` that is not indexed yet (each from the rows it added).
   * Idempotent; the shards are deterministic, so a repeated build stores the same blobs.
   */
  async build(
    id: number,
    version: number | 'latest',
    options: {
      model?: string;
      force?: boolean;
      signal?: AbortSignal;
      onProgress?: (event: {
        version: number;
        tokens: number;
        rows: number;
        seconds: number;
      }) => void | Promise<void>;
    } = {},
  ): Promise<IndexStatus> {
    const v = await this.resolveVersion(id, version);
    const tok = await this.tokenizer(options.model);
    const before = await this.status(id, v, tok.model);
    for (const entry of before.versions) {
      if (entry.status === 'ready' && !options.force) continue;
      options.signal?.throwIfAborted();
      const built = await this.buildVersion(id, entry.version, tok, options.signal);
      await options.onProgress?.(built);
    }
    return this.status(id, v, tok.model);
  }

  /** The shards of one version's added rows. */
  private async buildVersion(
    id: number,
    version: number,
    tok: TokenizerInfo,
    signal: AbortSignal | undefined,
  ): Promise<{ version: number; tokens: number; rows: number; seconds: number }> {
    const started = performance.now();
    const key = { datanetId: id, version, tokenizer: tok.sha256 };
    const where = and(
      eq(schema.attributionIndexes.datanetId, id),
      eq(schema.attributionIndexes.version, version),
      eq(schema.attributionIndexes.tokenizer, tok.sha256),
    );
    await this.deps.db
      .insert(schema.attributionIndexes)
      .values({ ...key, model: tok.model, status: 'building', shards: [] })
      .onConflictDoUpdate({
        target: [
          schema.attributionIndexes.datanetId,
          schema.attributionIndexes.version,
          schema.attributionIndexes.tokenizer,
        ],
        set: { status: 'building', error: null, updatedAt: new Date() },
      });
    try {
      const rows = await this.rowsAdded(id, version);
      const shards: { blobId: string; tokens: number; rows: number }[] = [];
      let batch: { row: ShardRow; tokens: number[] }[] = [];
      let batchTokens = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        const shard = SpanShard.build(
          { datanetId: id, version, tokenizer: tok.sha256, separator: tok.tokenizer.vocabSize },
          batch,
        );
        const blob = await this.deps.blobs.put(shard.encode());
        shards.push({ blobId: blob.id, tokens: shard.tokenCount, rows: batch.length });
        batch = [];
        batchTokens = 0;
      };
      for (let i = 0; i < rows.length; i++) {
        const tokens = tok.tokenizer.encode(rows[i]!.text, { addBos: false, addEos: false });
        if (batchTokens + tokens.length + 1 > SHARD_MAX_TOKENS) await flush();
        batch.push({ row: rows[i]!.row, tokens });
        batchTokens += tokens.length + 1;
        if (i % 256 === 255) {
          signal?.throwIfAborted();
          await yieldToLoop(); // tokenizing is CPU work: let requests through
        }
      }
      await flush();
      const tokens = shards.reduce((n, s) => n + s.tokens, 0);
      const seconds = (performance.now() - started) / 1000;
      await this.deps.db
        .update(schema.attributionIndexes)
        .set({
          status: 'ready',
          model: tok.model,
          shards,
          tokens,
          rows: rows.length,
          buildSeconds: seconds,
          error: null,
          updatedAt: new Date(),
        })
        .where(where);
      return { version, tokens, rows: rows.length, seconds };
    } catch (error) {
      const body =
        error instanceof OpenLedgerError
          ? { code: error.code, message: error.message }
          : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
      await this.deps.db
        .update(schema.attributionIndexes)
        .set({ status: 'failed', error: body, updatedAt: new Date() })
        .where(where);
      throw error;
    }
  }

  /**
   * The text rows a version added, of identical rows only the first contributed (firstRow), and
   * none that an earlier version already holds: only the first upload of a text is ever credited.
   */
  private async rowsAdded(id: number, version: number): Promise<{ row: ShardRow; text: string }[]> {
    const r = schema.datanetRows;
    const [committed] = await this.deps.db
      .select({ at: schema.datanetVersions.committedAt })
      .from(schema.datanetVersions)
      .where(
        and(eq(schema.datanetVersions.datanetId, id), eq(schema.datanetVersions.version, version)),
      );
    const committedAt = committed?.at.getTime() ?? 0;
    const added = await this.deps.db
      .select({
        rowHash: r.rowHash,
        contributor: r.contributor,
        contributionId: r.contributionId,
        submittedAt: schema.contributions.createdAt,
        text: r.text,
        kind: sql<string>`${r.content}->>'type'`,
      })
      .from(r)
      .innerJoin(schema.contributions, eq(schema.contributions.id, r.contributionId))
      .where(and(eq(r.datanetId, id), eq(r.status, 'approved'), eq(r.version, version)))
      .orderBy(asc(r.rowHash), asc(r.contributionId));
    const hashes = [...new Set(added.map((a) => a.rowHash))];
    const earlier = new Set<string>();
    for (let i = 0; i < hashes.length; i += 1000) {
      const found = await this.deps.db
        .selectDistinct({ rowHash: r.rowHash })
        .from(r)
        .where(
          and(
            eq(r.datanetId, id),
            eq(r.status, 'approved'),
            lt(r.version, version),
            inArray(r.rowHash, hashes.slice(i, i + 1000)),
          ),
        );
      for (const f of found) earlier.add(f.rowHash);
    }
    return rowsToIndex(
      added
        .filter((a) => a.kind !== 'file')
        .map((a) => ({
          row: {
            rowHash: a.rowHash,
            contributor: getAddress(a.contributor),
            contributionId: a.contributionId,
            committedAt,
            submittedAt: a.submittedAt.getTime(),
          },
          text: a.text,
        })),
      earlier,
    );
  }

  private async loadShard(blobId: string): Promise<SpanShard> {
    const hit = this.shardCache.get(blobId);
    if (hit) {
      // Most recently used last.
      this.shardCache.delete(blobId);
      this.shardCache.set(blobId, hit);
      return hit.shard;
    }
    const bytes = await this.deps.blobs.get(blobId);
    const shard = SpanShard.decode(bytes);
    this.shardCache.set(blobId, { shard, bytes: bytes.length });
    this.cachedBytes += bytes.length;
    for (const [key, value] of this.shardCache) {
      if (this.cachedBytes <= CACHE_BYTES || key === blobId) break;
      this.shardCache.delete(key);
      this.cachedBytes -= value.bytes;
    }
    return shard;
  }

  /**
   * The span index over the given datanet versions, for `reader`: FORBIDDEN (or
   * UNAUTHENTICATED) before anything is read when the reader may not read one of them, and
   * INDEX_NOT_READY when a version is not indexed yet.
   */
  async open(
    refs: readonly VersionRef[],
    reader: Address | undefined,
    model?: string,
  ): Promise<{
    index: SpanIndex;
    tokenizer: TokenizerInfo;
    datanets: { id: number; version: number }[];
  }> {
    if (refs.length === 0)
      throw new OpenLedgerError('VALIDATION_FAILED', 'Name at least one datanet version.');
    for (const ref of refs) await this.datanets().assertCanRead(ref.id, reader);
    const tok = await this.tokenizer(model);
    const shards: { blobId: string }[] = [];
    const resolved: { id: number; version: number }[] = [];
    const seen = new Set<number>();
    for (const ref of refs) {
      if (seen.has(ref.id))
        throw new OpenLedgerError('VALIDATION_FAILED', `Datanet ${ref.id} is named twice.`);
      seen.add(ref.id);
      const state = await this.status(ref.id, ref.version, tok.model);
      if (state.status !== 'ready')
        throw new OpenLedgerError(
          'INDEX_NOT_READY',
          `The span index of datanet ${ref.id} version ${state.version} (${tok.model} tokenizer) is ${state.status}.`,
          {
            hint: `Build it: POST /api/attribution/index/${ref.id}/${state.version} (openledger attribution index ${ref.id} ${state.version} --build).`,
            details: { datanetId: ref.id, version: state.version, status: state.status },
          },
        );
      resolved.push({ id: ref.id, version: state.version });
      for (const entry of state.versions)
        for (const s of entry.shards) shards.push({ blobId: s.blobId });
    }
    const index = await this.indexOf(
      shards.map((s) => s.blobId),
      tok,
    );
    return { index, tokenizer: tok, datanets: resolved };
  }

  /** The span index over these shards (in this order), from the caches when it was opened. */
  async indexOf(blobIds: readonly string[], tok: TokenizerInfo): Promise<SpanIndex> {
    const key = `${tok.sha256}:${blobIds.join(',')}`;
    let index = this.indexCache.get(key);
    if (!index) {
      const shards: SpanShard[] = [];
      for (const id of blobIds) shards.push(await this.loadShard(id));
      index = new SpanIndex(shards, tok.delimiters);
      if (this.indexCache.size >= 16) this.indexCache.delete(this.indexCache.keys().next().value!);
      this.indexCache.set(key, index);
    }
    return index;
  }
}
