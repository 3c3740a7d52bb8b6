/**
 * Where chunk vectors are searched. `rag_chunks.embedding` (float32 bytes) is the source of truth
 * on every server; a `VectorStore` is an index over it:
 *
 * - `pgvector`: the `rag_vectors` table (PGlite's vector extension, or a server with pgvector), an
 *   HNSW index per embedder;
 * - `usearch`: an embedded HNSW index per (embedder, datanet) in `<data-dir>/rag/`, rebuilt from
 *   the database when missing or behind — for servers without pgvector (Debian's PostgreSQL);
 * - `exact`: brute-force cosine over the database's vectors, when neither is available.
 *
 * The choice is made once at start (`chooseVectorStore`) and reported in /healthz. Every search
 * takes the list of datanets the caller may read: an index never spans datanets a grant separates.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { and, count, eq, inArray, sql } from 'drizzle-orm';
import { queryRows, type Database, type Db } from '../db/index.ts';
import * as schema from '../db/schema.ts';
import { OpenLedgerError } from '../errors.ts';
import type * as UsearchModule from 'usearch';

export type VectorBackend = 'pgvector' | 'usearch' | 'exact';

export interface VectorHit {
  chunkId: number;
  /** Cosine distance (1 − cosine similarity). */
  distance: number;
}

export interface VectorStore {
  readonly kind: VectorBackend;
  /**
   * Indexes chunks stored in `rag_chunks` (same ids, same vectors); `db` is the transaction that
   * stored them, for a store that lives in the database.
   */
  add(
    embedder: string,
    datanetId: number,
    items: readonly { chunkId: number; vector: Float32Array }[],
    db?: Db,
  ): Promise<void>;
  /** The k nearest chunks of these datanets, nearest first (ties: smaller chunk id). */
  search(
    embedder: string,
    datanetIds: readonly number[],
    vector: Float32Array,
    k: number,
  ): Promise<VectorHit[]>;
  close(): Promise<void>;
}

export interface ChosenStore {
  store: VectorStore;
  kind: VectorBackend;
  /** Why this backend (shown in /healthz). */
  reason: string;
}

/** `OPENLEDGER_RAG_VECTORS`: force a backend (tests, benchmarks, operators). */
export const RAG_VECTORS_ENV = 'OPENLEDGER_RAG_VECTORS';

/**
 * pgvector when the database has it, else usearch, else exact search; `force` (or the
 * environment variable) picks one and fails clearly when it cannot be had.
 */
export async function chooseVectorStore(
  database: Database,
  dataDir: string,
  force: string | undefined = process.env[RAG_VECTORS_ENV],
): Promise<ChosenStore> {
  if (force !== undefined && force !== '' && !['pgvector', 'usearch', 'exact'].includes(force))
    throw new OpenLedgerError(
      'CONFIG_INVALID',
      `${RAG_VECTORS_ENV} must be pgvector, usearch or exact, not "${force}".`,
    );
  const wanted = force ? (force as VectorBackend) : undefined;
  if (wanted === 'pgvector' || (wanted === undefined && database.vectors)) {
    if (!database.vectors)
      throw new OpenLedgerError(
        'CONFIG_INVALID',
        `${RAG_VECTORS_ENV}=pgvector, but this ${database.kind} database has no pgvector extension.`,
        {
          hint: 'The node uses pgvector in databases created (migrated) where the extension was installed; unset the variable to use its embedded index.',
        },
      );
    const store = new PgvectorStore(database.db);
    return {
      store,
      kind: 'pgvector',
      reason: wanted
        ? `forced by ${RAG_VECTORS_ENV}`
        : `the ${database.kind === 'pglite' ? "embedded database's" : "server's"} vector extension`,
    };
  }
  if (wanted !== 'exact') {
    try {
      const usearch = await import('usearch');
      return {
        store: new UsearchStore(database.db, path.join(dataDir, 'rag'), usearch),
        kind: 'usearch',
        reason: wanted
          ? `forced by ${RAG_VECTORS_ENV}`
          : `the ${database.kind} server has no pgvector: embedded HNSW index (usearch)`,
      };
    } catch (cause) {
      if (wanted === 'usearch')
        throw new OpenLedgerError(
          'CONFIG_INVALID',
          `${RAG_VECTORS_ENV}=usearch, but usearch did not load: ${(cause as Error).message}`,
        );
      return {
        store: new ExactStore(database.db),
        kind: 'exact',
        reason: `no pgvector and usearch did not load (${(cause as Error).message}): exact search`,
      };
    }
  }
  return {
    store: new ExactStore(database.db),
    kind: 'exact',
    reason: `forced by ${RAG_VECTORS_ENV}`,
  };
}

/** A float32 vector as the bytes `rag_chunks.embedding` stores (little-endian). */
export function vectorBytes(vector: Float32Array): Buffer {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i]!, i * 4);
  return bytes;
}

export function bytesVector(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vector = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = view.getFloat32(i * 4, true);
  return vector;
}

function byDistance(a: VectorHit, b: VectorHit): number {
  return a.distance - b.distance || a.chunkId - b.chunkId;
}

function checkEmbedder(embedder: string): string {
  // It is spliced into index names and predicates below; it is always a sha256.
  if (!/^[0-9a-f]{64}$/.test(embedder))
    throw new OpenLedgerError('VALIDATION_FAILED', `embedder id ${embedder} is not a sha256`);
  return embedder;
}

function literal(vector: Float32Array): string {
  return `[${Array.from(vector, (x) => (Number.isFinite(x) ? x : 0)).join(',')}]`;
}

/** pgvector: rows in `rag_vectors`, one partial HNSW index per embedder (its own dimension). */
class PgvectorStore implements VectorStore {
  readonly kind = 'pgvector';
  private readonly indexed = new Set<string>();

  constructor(private readonly db: Db) {}

  private async ensureIndex(embedder: string, dimensions: number): Promise<void> {
    if (this.indexed.has(embedder)) return;
    checkEmbedder(embedder);
    // A partial expression index is how pgvector serves several dimensions in one column.
    await this.db.execute(
      sql.raw(
        `CREATE INDEX IF NOT EXISTS rag_vectors_hnsw_${embedder.slice(0, 16)} ON rag_vectors ` +
          `USING hnsw ((embedding::vector(${dimensions})) vector_cosine_ops) WHERE embedder = '${embedder}'`,
      ),
    );
    this.indexed.add(embedder);
  }

  async add(
    embedder: string,
    datanetId: number,
    items: readonly { chunkId: number; vector: Float32Array }[],
    db: Db = this.db,
  ): Promise<void> {
    if (items.length === 0) return;
    // The HNSW index is made at the first search, after a datanet's first (bulk) load: building
    // it once over the rows is much faster than growing it row by row.
    for (let at = 0; at < items.length; at += 500) {
      const batch = items.slice(at, at + 500);
      await db.execute(sql`
        insert into rag_vectors (chunk_id, datanet_id, embedder, embedding)
        values ${sql.join(
          batch.map(
            (item) =>
              sql`(${item.chunkId}, ${datanetId}, ${embedder}, ${literal(item.vector)}::vector)`,
          ),
          sql`, `,
        )}
        on conflict (chunk_id) do nothing`);
    }
  }

  async search(
    embedder: string,
    datanetIds: readonly number[],
    vector: Float32Array,
    k: number,
  ): Promise<VectorHit[]> {
    if (datanetIds.length === 0 || k <= 0) return [];
    await this.ensureIndex(embedder, vector.length);
    const d = vector.length;
    // The embedder is a literal so the planner matches the partial index's predicate; a filtered
    // HNSW scan keeps going (iterative scan) until it has k rows of the allowed datanets.
    const distance = sql.raw(`(embedding::vector(${d})) <=> `);
    const query = sql`
      select chunk_id as "chunkId", ${distance}${literal(vector)}::vector(${sql.raw(String(d))}) as distance
      from rag_vectors
      where embedder = ${sql.raw(`'${checkEmbedder(embedder)}'`)}
        and datanet_id in (${sql.join(
          datanetIds.map((id) => sql`${id}`),
          sql`, `,
        )})
      order by distance, chunk_id
      limit ${k}`;
    const rows = await this.db.transaction(async (tx) => {
      await tx.execute(sql`set local hnsw.iterative_scan = relaxed_order`);
      await tx.execute(
        sql.raw(`set local hnsw.ef_search = ${Math.max(40, Math.min(1000, k * 2))}`),
      );
      return queryRows<{ chunkId: string | number; distance: number }>(tx, query);
    });
    // relaxed_order may return near-ties out of order: sort what came back.
    return rows
      .map((r) => ({ chunkId: Number(r.chunkId), distance: Number(r.distance) }))
      .sort(byDistance);
  }

  async close(): Promise<void> {}
}

type Usearch = typeof UsearchModule;
type UsearchIndex = InstanceType<Usearch['Index']>;

/**
 * usearch: one HNSW index file per (embedder, datanet), a cache of the database's vectors. The
 * datanet is the unit of a grant, so a search only opens the datanets the caller may read.
 */
class UsearchStore implements VectorStore {
  readonly kind = 'usearch';
  private readonly open = new Map<string, Promise<UsearchIndex>>();
  /** Writes to one index run one at a time (usearch indexes are not safe to grow concurrently). */
  private readonly queue = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Db,
    private readonly dir: string,
    private readonly usearch: Usearch,
  ) {}

  private file(embedder: string, datanetId: number): string {
    return path.join(this.dir, `${checkEmbedder(embedder).slice(0, 16)}-${datanetId}.usearch`);
  }

  private serial<T>(key: string, run: () => Promise<T>): Promise<T> {
    const next = (this.queue.get(key) ?? Promise.resolve()).then(run, run);
    this.queue.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  }

  private create(dimensions: number): UsearchIndex {
    return new this.usearch.Index({
      dimensions,
      metric: this.usearch.MetricKind.Cos,
      quantization: this.usearch.ScalarKind.F32,
      connectivity: 16,
      // Wide beams: a missed nearest neighbour would drop a chunk from the fused ranking.
      expansion_add: 256,
      expansion_search: 256,
      multi: false,
    });
  }

  /** The index of a datanet, loaded from its file when it holds every stored chunk, else rebuilt. */
  private index(embedder: string, datanetId: number, dimensions: number): Promise<UsearchIndex> {
    const key = `${embedder}:${datanetId}`;
    let index = this.open.get(key);
    if (!index) {
      index = this.load(embedder, datanetId, dimensions);
      index.catch(() => this.open.delete(key));
      this.open.set(key, index);
    }
    return index;
  }

  private async load(
    embedder: string,
    datanetId: number,
    dimensions: number,
  ): Promise<UsearchIndex> {
    const file = this.file(embedder, datanetId);
    const stored = await this.db
      .select({ n: count() })
      .from(schema.ragChunks)
      .where(
        and(eq(schema.ragChunks.embedder, embedder), eq(schema.ragChunks.datanetId, datanetId)),
      );
    const expected = Number(stored[0]?.n ?? 0);
    const index = this.create(dimensions);
    try {
      index.load(file);
      if (index.size() === expected) return index;
    } catch {
      // missing or unreadable: rebuilt below
    }
    const fresh = this.create(dimensions);
    let last = 0;
    for (;;) {
      const rows = await this.db
        .select({ id: schema.ragChunks.id, embedding: schema.ragChunks.embedding })
        .from(schema.ragChunks)
        .where(
          and(
            eq(schema.ragChunks.embedder, embedder),
            eq(schema.ragChunks.datanetId, datanetId),
            sql`${schema.ragChunks.id} > ${last}`,
          ),
        )
        .orderBy(schema.ragChunks.id)
        .limit(2000);
      if (rows.length === 0) break;
      this.insert(
        fresh,
        rows.map((r) => ({ chunkId: r.id, vector: bytesVector(r.embedding) })),
      );
      last = rows[rows.length - 1]!.id;
    }
    await this.save(fresh, file);
    return fresh;
  }

  private insert(index: UsearchIndex, items: readonly { chunkId: number; vector: Float32Array }[]) {
    if (items.length === 0) return;
    const d = items[0]!.vector.length;
    const keys = new BigUint64Array(items.length);
    const matrix = new Float32Array(items.length * d);
    items.forEach((item, i) => {
      keys[i] = BigInt(item.chunkId);
      matrix.set(item.vector, i * d);
    });
    index.add(keys, matrix, 1);
  }

  private async save(index: UsearchIndex, file: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    const temporary = `${file}.${process.pid}.tmp`;
    try {
      index.save(temporary);
      await rename(temporary, file);
    } catch (cause) {
      await rm(temporary, { force: true });
      throw cause;
    }
  }

  add(
    embedder: string,
    datanetId: number,
    items: readonly { chunkId: number; vector: Float32Array }[],
  ): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    const key = `${embedder}:${datanetId}`;
    return this.serial(key, async () => {
      if (!this.open.has(key)) {
        // Loading counts the database's rows, which already include these: it indexes them too.
        await this.index(embedder, datanetId, items[0]!.vector.length);
        return;
      }
      const index = await this.index(embedder, datanetId, items[0]!.vector.length);
      const fresh = items.filter((item) => !index.contains(BigInt(item.chunkId)));
      this.insert(index, fresh);
      await this.save(index, this.file(embedder, datanetId));
    });
  }

  async search(
    embedder: string,
    datanetIds: readonly number[],
    vector: Float32Array,
    k: number,
  ): Promise<VectorHit[]> {
    const hits: VectorHit[] = [];
    for (const datanetId of datanetIds) {
      const key = `${embedder}:${datanetId}`;
      const index = await this.serial(key, () => this.index(embedder, datanetId, vector.length));
      if (index.size() === 0) continue;
      const found = index.search(vector, Math.min(k, index.size()), 1);
      for (let i = 0; i < found.keys.length; i++)
        hits.push({ chunkId: Number(found.keys[i]), distance: found.distances[i]! });
    }
    return hits.sort(byDistance).slice(0, k);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queue.values()]);
    this.open.clear();
  }
}

/** Brute force: every vector of the allowed datanets, read from the database per search. */
class ExactStore implements VectorStore {
  readonly kind = 'exact';
  constructor(private readonly db: Db) {}

  async add(): Promise<void> {}

  async search(
    embedder: string,
    datanetIds: readonly number[],
    vector: Float32Array,
    k: number,
  ): Promise<VectorHit[]> {
    if (datanetIds.length === 0) return [];
    const rows = await this.db
      .select({ id: schema.ragChunks.id, embedding: schema.ragChunks.embedding })
      .from(schema.ragChunks)
      .where(
        and(
          eq(schema.ragChunks.embedder, embedder),
          inArray(schema.ragChunks.datanetId, [...datanetIds]),
        ),
      );
    const hits = rows.map((r) => {
      const other = bytesVector(r.embedding);
      let dot = 0;
      for (let i = 0; i < other.length; i++) dot += other[i]! * vector[i]!;
      return { chunkId: r.id, distance: 1 - dot };
    });
    return hits.sort(byDistance).slice(0, k);
  }

  async close(): Promise<void> {}
}
