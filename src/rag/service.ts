/**
 * RAG over datanets: index each committed version (chunks, embeddings, full text), retrieve with
 * both legs fused by reciprocal rank, number the chunks as sources, and check what an answer cites.
 * Grants come first: a datanet the caller may not read is refused before any index is touched,
 * so its text can reach no prompt, answer or receipt.
 */
import { createHash } from 'node:crypto';
import { and, asc, eq, gt, inArray, lte, max, sql } from 'drizzle-orm';
import type { Address } from 'viem';
import { queryRows, type Database } from '../db/index.ts';
import * as schema from '../db/schema.ts';
import type { DatanetService } from '../datanets/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { chunkText } from './chunk.ts';
import { reciprocalRankFusion } from './fuse.ts';
import type { ChosenStore } from './store.ts';
import { vectorBytes } from './store.ts';
import type { Embedder, Source } from './types.ts';

/** Candidates each leg (full text, vectors) hands to the fusion. */
export const RAG_CANDIDATES = 50;
export const RAG_DEFAULT_K = 8;
export const RAG_MAX_K = 20;
/** Rows embedded per batch while indexing. */
const INDEX_BATCH_ROWS = 64;

export interface RagStatus {
  vectors: ChosenStore['kind'];
  reason: string;
  embedder: { name: string; sha256: string; dimensions: number } | null;
  /** Why the embedder is not available (the node still runs; RAG requests get this error). */
  error?: string;
}

export interface IndexProgress {
  datanetId: number;
  version: number;
  rows: number;
  chunks: number;
}

export interface RagServiceDeps {
  database: Database;
  datanets: DatanetService;
  vectors: ChosenStore;
  /** Opens the embedder on first use (loading a model costs memory: only nodes that answer). */
  embedder: () => Promise<Embedder>;
}

export class RagService {
  private embedderPromise: Promise<Embedder> | undefined;
  private embedderInfo: RagStatus['embedder'] = null;
  private embedderError: string | undefined;
  /** One indexing run per datanet at a time. */
  private readonly indexing = new Map<number, Promise<IndexProgress | null>>();

  constructor(private readonly deps: RagServiceDeps) {}

  status(): RagStatus {
    return {
      vectors: this.deps.vectors.kind,
      reason: this.deps.vectors.reason,
      embedder: this.embedderInfo,
      ...(this.embedderError ? { error: this.embedderError } : {}),
    };
  }

  embedder(): Promise<Embedder> {
    if (!this.embedderPromise) {
      this.embedderPromise = this.deps.embedder().then(
        (embedder) => {
          this.embedderInfo = {
            name: embedder.name,
            sha256: embedder.sha256,
            dimensions: embedder.dimensions,
          };
          this.embedderError = undefined;
          return embedder;
        },
        (error: unknown) => {
          this.embedderPromise = undefined;
          this.embedderError = (error as Error).message;
          throw error;
        },
      );
    }
    return this.embedderPromise;
  }

  /** The datanets a caller names, each checked: unknown → 404, no grant → 401/403. */
  async readable(datanetIds: readonly number[], caller: Address | undefined): Promise<number[]> {
    const ids = [...new Set(datanetIds)];
    if (ids.length === 0)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'rag.datanets must name at least one datanet.',
        {
          details: { field: 'rag.datanets' },
        },
      );
    for (const id of ids) await this.deps.datanets.assertCanRead(id, caller);
    return ids.sort((a, b) => a - b);
  }

  /**
   * Brings a datanet's index up to its latest committed version: only rows of versions not yet
   * indexed are chunked and embedded. Returns null when it was already current.
   */
  ensureIndexed(datanetId: number, signal?: AbortSignal): Promise<IndexProgress | null> {
    const running = this.indexing.get(datanetId);
    if (running) return running;
    const run = this.indexDatanet(datanetId, signal).finally(() => this.indexing.delete(datanetId));
    this.indexing.set(datanetId, run);
    return run;
  }

  private async indexDatanet(
    datanetId: number,
    signal?: AbortSignal,
  ): Promise<IndexProgress | null> {
    const { db } = this.deps.database;
    const embedder = await this.embedder();
    const latest = await db
      .select({ version: max(schema.datanetVersions.version) })
      .from(schema.datanetVersions)
      .where(eq(schema.datanetVersions.datanetId, datanetId));
    const target = latest[0]?.version ?? 0;
    const state = await db
      .select()
      .from(schema.ragIndexState)
      .where(
        and(
          eq(schema.ragIndexState.datanetId, datanetId),
          eq(schema.ragIndexState.embedder, embedder.sha256),
        ),
      );
    const from = state[0]?.version ?? 0;
    if (from >= target) return null;

    const progress: IndexProgress = { datanetId, version: target, rows: 0, chunks: 0 };
    let lastId: string | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const rows = await db
        .select({
          id: schema.datanetRows.id,
          version: schema.datanetRows.version,
          rowHash: schema.datanetRows.rowHash,
          contributor: schema.datanetRows.contributor,
          text: schema.datanetRows.text,
        })
        .from(schema.datanetRows)
        .where(
          and(
            eq(schema.datanetRows.datanetId, datanetId),
            eq(schema.datanetRows.status, 'approved'),
            gt(schema.datanetRows.version, from),
            lte(schema.datanetRows.version, target),
            lastId === undefined ? undefined : gt(schema.datanetRows.id, lastId),
          ),
        )
        .orderBy(asc(schema.datanetRows.id))
        .limit(INDEX_BATCH_ROWS);
      if (rows.length === 0) break;
      lastId = rows[rows.length - 1]!.id;

      const pieces = rows.flatMap((row) =>
        chunkText(row.text, embedder.tokenSpans(row.text), {
          max: Math.min(480, embedder.maxTokens - 2),
        }).map((chunk) => ({ row, chunk, text: row.text.slice(chunk.charStart, chunk.charEnd) })),
      );
      if (pieces.length === 0) continue;
      const vectors = await embedder.embed(
        pieces.map((p) => p.text),
        signal,
      );
      // Chunks and (on pgvector) their vectors land together; a retry skips what is stored.
      const added = await db.transaction(async (tx) => {
        const inserted = await tx
          .insert(schema.ragChunks)
          .values(
            pieces.map((p, i) => ({
              datanetId,
              embedder: embedder.sha256,
              version: p.row.version!,
              rowId: p.row.id,
              rowHash: p.row.rowHash,
              contributor: p.row.contributor,
              ord: p.chunk.ord,
              charStart: p.chunk.charStart,
              charEnd: p.chunk.charEnd,
              tokens: p.chunk.tokens,
              text: p.text,
              textSha256: createHash('sha256').update(p.text).digest('hex'),
              embedding: vectorBytes(vectors[i]!),
            })),
          )
          .onConflictDoNothing()
          .returning({
            id: schema.ragChunks.id,
            rowId: schema.ragChunks.rowId,
            ord: schema.ragChunks.ord,
          });
        const vectorOf = new Map(pieces.map((p, i) => [`${p.row.id}:${p.chunk.ord}`, vectors[i]!]));
        const items = inserted.map((r) => ({
          chunkId: r.id,
          vector: vectorOf.get(`${r.rowId}:${r.ord}`)!,
        }));
        if (this.deps.vectors.kind === 'pgvector')
          await this.deps.vectors.store.add(embedder.sha256, datanetId, items, tx);
        return items;
      });
      if (this.deps.vectors.kind !== 'pgvector')
        await this.deps.vectors.store.add(embedder.sha256, datanetId, added);
      progress.rows += rows.length;
      progress.chunks += added.length;
    }
    const total = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(schema.ragChunks)
      .where(
        and(
          eq(schema.ragChunks.datanetId, datanetId),
          eq(schema.ragChunks.embedder, embedder.sha256),
        ),
      );
    await db
      .insert(schema.ragIndexState)
      .values({ datanetId, embedder: embedder.sha256, version: target, chunks: total[0]?.n ?? 0 })
      .onConflictDoUpdate({
        target: [schema.ragIndexState.datanetId, schema.ragIndexState.embedder],
        set: { version: target, chunks: total[0]?.n ?? 0, updatedAt: new Date() },
      });
    return progress;
  }

  /**
   * The k best chunks for a query over datanets the caller may read: full text (`fullText`) and
   * vectors, each the top RAG_CANDIDATES, fused by reciprocal rank.
   */
  async retrieve(input: {
    caller: Address | undefined;
    datanets: readonly number[];
    query: string;
    k?: number;
    signal?: AbortSignal;
  }): Promise<Source[]> {
    const k = input.k ?? RAG_DEFAULT_K;
    if (!Number.isInteger(k) || k < 1 || k > RAG_MAX_K)
      throw new OpenLedgerError('VALIDATION_FAILED', `rag.k must be 1 to ${RAG_MAX_K}.`, {
        details: { field: 'rag.k' },
      });
    if (input.query.trim() === '')
      throw new OpenLedgerError('VALIDATION_FAILED', 'The question is empty.', {
        details: { field: 'messages' },
      });
    const ids = await this.readable(input.datanets, input.caller);
    for (const id of ids) await this.ensureIndexed(id, input.signal);
    const embedder = await this.embedder();
    const { db } = this.deps.database;

    const textHits = await this.fullText(embedder.sha256, ids, input.query);
    const [queryVector] = await embedder.embed([input.query], input.signal);
    const vectorHits = await this.deps.vectors.store.search(
      embedder.sha256,
      ids,
      queryVector!,
      RAG_CANDIDATES,
    );
    const fused = reciprocalRankFusion([textHits, vectorHits.map((h) => h.chunkId)]);
    if (fused.length === 0) return [];
    const candidates = await db
      .select()
      .from(schema.ragChunks)
      .where(
        inArray(
          schema.ragChunks.id,
          fused.slice(0, k * 3).map((f) => f.id),
        ),
      );
    const byId = new Map(candidates.map((c) => [c.id, c]));
    // Overlapping chunks of one row say the same thing twice: keep the better-ranked one.
    const taken: Source[] = [];
    for (const { id, score } of fused) {
      if (taken.length >= k) break;
      const chunk = byId.get(id);
      if (!chunk) continue;
      const overlaps = taken.some(
        (s) =>
          s.rowId === chunk.rowId && s.charStart < chunk.charEnd && chunk.charStart < s.charEnd,
      );
      if (overlaps) continue;
      taken.push({
        n: taken.length + 1,
        chunkId: chunk.id,
        datanetId: chunk.datanetId,
        version: chunk.version,
        rowId: chunk.rowId,
        rowHash: chunk.rowHash,
        contributor: chunk.contributor.toLowerCase(),
        charStart: chunk.charStart,
        charEnd: chunk.charEnd,
        text: chunk.text,
        score,
      });
    }
    return taken;
  }

  /**
   * The full-text leg, BM25-style: a chunk scores the IDF of each query term it holds (so a rare
   * name outweighs a common word, which PostgreSQL's own ts_rank cannot tell apart), plus ts_rank
   * normalised by length as the tie-break. Terms are the query's English lexemes, ORed: a
   * question rarely shares every word with its answer. Document frequencies come from the GIN
   * index, one count per query term, over the datanets being searched.
   */
  private async fullText(
    embedder: string,
    ids: readonly number[],
    query: string,
  ): Promise<number[]> {
    const { db } = this.deps.database;
    const c = schema.ragChunks;
    const scope = and(eq(c.embedder, embedder), inArray(c.datanetId, [...ids]));
    const terms = await queryRows<{ lexeme: string; df: number; n: number }>(
      db,
      sql`with q as (select distinct unnest(tsvector_to_array(to_tsvector('english', ${query}))) as lexeme),
          total as (select count(*)::int as n from ${c} where ${scope})
          select q.lexeme,
            (select count(*)::int from ${c} where ${scope} and ${c.tsv} @@ plainto_tsquery('simple', q.lexeme)) as df,
            total.n
          from q, total order by q.lexeme`,
    );
    const present = terms.filter((t) => t.df > 0);
    if (present.length === 0) return [];
    const n = terms[0]!.n;
    const termQuery = (lexeme: string) => sql`plainto_tsquery('simple', ${lexeme})`;
    const any = sql.join(
      present.map((t) => termQuery(t.lexeme)),
      sql` || `,
    );
    const idf = sql.join(
      present.map(
        (t) =>
          sql`(case when ${c.tsv} @@ ${termQuery(t.lexeme)} then ${Math.log(1 + (n - t.df + 0.5) / (t.df + 0.5))}::float8 else 0 end)`,
      ),
      sql` + `,
    );
    const rows = await db
      .select({ id: c.id })
      .from(c)
      .where(and(scope, sql`${c.tsv} @@ (${any})`))
      .orderBy(sql`${idf} + ts_rank(${c.tsv}, ${any}, 1) desc`, asc(c.id))
      .limit(RAG_CANDIDATES);
    return rows.map((r) => r.id);
  }

  /** Index statistics of a datanet for the current embedder. */
  async indexOf(datanetId: number): Promise<{ version: number; chunks: number } | null> {
    const embedder = await this.embedder();
    const rows = await this.deps.database.db
      .select({ version: schema.ragIndexState.version, chunks: schema.ragIndexState.chunks })
      .from(schema.ragIndexState)
      .where(
        and(
          eq(schema.ragIndexState.datanetId, datanetId),
          eq(schema.ragIndexState.embedder, embedder.sha256),
        ),
      );
    return rows[0] ?? null;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.indexing.values()]);
    await this.deps.vectors.store.close();
    if (this.embedderPromise) await (await this.embedderPromise.catch(() => undefined))?.close();
  }
}
