/**
 * RAG benchmark: index build rate (chunking + embedding, database insert, ANN index) and query
 * latency (full text, vectors, fused retrieval) over N chunks, on PGlite with pgvector and — when
 * DATABASE_URL names a server — on PostgreSQL (pgvector if installed, else usearch).
 *
 *   node --import tsx bench/rag.ts [--chunks 100000] [--queries 200] [--threads 2] [--json]
 *
 * Rows are corpus paragraphs (the built-in public-domain corpus) cycled with a record number, so
 * every row is distinct; they are written straight into the datanet tables (no chain, no ingest:
 * those are measured elsewhere), and the grant check is skipped (an open datanet's check is one
 * indexed read; a permissioned one's is a chain call, the same for any retrieval).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getLlama } from 'node-llama-cpp';
import type { DatanetService } from '../src/datanets/index.ts';
import { openDatabase, schema, type Database } from '../src/db/index.ts';
import { loadBuiltinCorpus } from '../src/factory/builtin/corpus.ts';
import { chunkText } from '../src/rag/chunk.ts';
import { openEmbedder } from '../src/rag/embedder/index.ts';
import { chooseVectorStore, RagService } from '../src/rag/index.ts';
import type { Embedder } from '../src/rag/types.ts';

const { values: flags } = parseArgs({
  options: {
    chunks: { type: 'string', default: '100000' },
    queries: { type: 'string', default: '200' },
    threads: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const CHUNKS = Number(flags.chunks);
const QUERIES = Number(flags.queries);
const THREADS = Number(flags.threads);
const log = (text: string) => process.stderr.write(`${text}\n`);

function rowsOf(count: number): string[] {
  const paragraphs = loadBuiltinCorpus().train.filter((p) => {
    const words = p.split(/\s+/).length;
    return words >= 20 && words <= 120;
  });
  return Array.from(
    { length: count },
    (_, i) => `${paragraphs[i % paragraphs.length]!} (record ${i + 1})`,
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One datanet, one contribution, `texts` approved rows in version 1, straight into the tables. */
async function seed(database: Database, texts: string[]): Promise<number> {
  const { db } = database;
  const id = 1;
  await db.insert(schema.datanets).values({
    id,
    name: 'bench',
    summary: '',
    description: '',
    tags: [],
    modality: 'text',
    license: 'CC0-1.0',
    policy: 'open',
    rules: {} as never,
    owner: '0x0000000000000000000000000000000000000001',
    metadataHash: '0'.repeat(64),
    txHash: '0x',
  });
  const contributionId = randomUUID();
  await db.insert(schema.contributions).values({
    id: contributionId,
    datanetId: id,
    contributor: '0x0000000000000000000000000000000000000002',
    contentHash: '0'.repeat(64),
    mime: 'application/json',
    blobId: '0'.repeat(64),
    bytes: 0,
    license: 'CC0-1.0',
    signature: '0x',
    nonce: '1',
    status: 'approved',
    score: 1,
    reasons: [],
    rowCount: texts.length,
    acceptedRowCount: texts.length,
    version: 1,
  });
  for (let at = 0; at < texts.length; at += 1000) {
    await db.insert(schema.datanetRows).values(
      texts.slice(at, at + 1000).map((text, i) => ({
        datanetId: id,
        contributionId,
        contributor: `0x${(3 + ((at + i) % 7)).toString(16).padStart(40, '0')}`,
        position: at + i,
        rowHash: `${(at + i).toString(16).padStart(64, '0')}`,
        content: { type: 'document', text },
        text,
        status: 'approved' as const,
        score: 1,
        reasons: [],
        minhash: '',
        version: 1,
      })),
    );
  }
  await db.insert(schema.datanetVersions).values({
    datanetId: id,
    version: 1,
    root: '0x',
    rowCount: texts.length,
    manifestId: '0'.repeat(64),
    committedBy: '0x',
    txHash: '0x',
    addedRows: texts.length,
  });
  return id;
}

interface LaneResult {
  lane: string;
  vectors: string;
  chunks: number;
  /** Chunking, storing (rows, full text, vectors) and the ANN index, with embeddings precomputed. */
  indexSeconds: number;
  chunksPerSecond: number;
  latency: Record<'fullText' | 'vector' | 'fused', { p50: number; p95: number }>;
}

async function lane(
  name: string,
  database: Database,
  dataDir: string,
  embedder: Embedder,
  texts: string[],
): Promise<LaneResult> {
  const datanetId = await seed(database, texts);
  const vectors = await chooseVectorStore(database, dataDir);
  log(`${name}: vectors ${vectors.kind} (${vectors.reason})`);
  const rag = new RagService({
    database,
    datanets: { assertCanRead: async () => ({}) } as unknown as DatanetService,
    vectors,
    embedder: async () => embedder,
  });

  const started = performance.now();
  await rag.ensureIndexed(datanetId);
  // The usearch index is built (and saved) at first search: count it as index time.
  await rag.retrieve({ caller: undefined, datanets: [datanetId], query: 'warmup' });
  const indexSeconds = (performance.now() - started) / 1000;
  const stats = (await rag.indexOf(datanetId))!;
  log(`${name}: ${stats.chunks} chunks indexed in ${indexSeconds.toFixed(1)} s`);

  const queries = Array.from({ length: QUERIES }, (_, i) => {
    const words = texts[(i * 7919) % texts.length]!.split(/\s+/).filter((w) => w.length > 4);
    return words.slice(0, 6).join(' ');
  });
  const time = async (run: (q: string) => Promise<unknown>) => {
    const ms: number[] = [];
    for (const q of queries) {
      const t = performance.now();
      await run(q);
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    return { p50: percentile(ms, 50), p95: percentile(ms, 95) };
  };
  const { sql, and, eq } = await import('drizzle-orm');
  const fullText = await time((q) => {
    const tsq = sql`replace(plainto_tsquery('english', ${q})::text, ' & ', ' | ')::tsquery`;
    return database.db
      .select({ id: schema.ragChunks.id })
      .from(schema.ragChunks)
      .where(and(eq(schema.ragChunks.datanetId, datanetId), sql`${schema.ragChunks.tsv} @@ ${tsq}`))
      .orderBy(sql`ts_rank(${schema.ragChunks.tsv}, ${tsq}) desc`)
      .limit(50);
  });
  const vectorsOnly = await time(async (q) => {
    const [v] = await embedder.embed([q]);
    return vectors.store.search(embedder.sha256, [datanetId], v!, 50);
  });
  const fused = await time((q) =>
    rag.retrieve({ caller: undefined, datanets: [datanetId], query: q }),
  );
  await vectors.store.close();
  return {
    lane: name,
    vectors: vectors.kind,
    chunks: stats.chunks,
    indexSeconds,
    chunksPerSecond: stats.chunks / indexSeconds,
    latency: { fullText, vector: vectorsOnly, fused },
  };
}

async function main() {
  const texts = rowsOf(CHUNKS);
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    maxThreads: THREADS,
    logLevel: 'error' as never,
  });
  const model = await openEmbedder({ threads: THREADS, llama });
  log(`embedder ${model.name} (${model.dimensions} dims), ${THREADS} threads`);
  // Embedding does not depend on the database: measured once, on every chunk the index will
  // hold, then served from memory to both lanes (whose build times are then storage and ANN).
  const cache = new Map<string, Float32Array>();
  const embedStarted = performance.now();
  let embedded = 0;
  for (const text of texts) {
    for (const chunk of chunkText(text, model.tokenSpans(text), { max: model.maxTokens - 2 })) {
      const piece = text.slice(chunk.charStart, chunk.charEnd);
      if (!cache.has(piece)) cache.set(piece, (await model.embed([piece]))[0]!);
      embedded++;
    }
    if (embedded % 5000 < 1) log(`embedded ${embedded} chunks`);
  }
  const embedSeconds = (performance.now() - embedStarted) / 1000;
  log(`embedded ${embedded} chunks in ${embedSeconds.toFixed(1)} s`);
  const embedder: Embedder = {
    name: model.name,
    sha256: model.sha256,
    dimensions: model.dimensions,
    maxTokens: model.maxTokens,
    tokenSpans: (text) => model.tokenSpans(text),
    embed: async (batch, signal) => {
      const out: Float32Array[] = [];
      for (const text of batch)
        out.push(cache.get(text) ?? (await model.embed([text], signal))[0]!);
      return out;
    },
    close: () => model.close(),
  };
  const results: LaneResult[] = [];

  const dir = await mkdtemp(path.join(tmpdir(), 'openledger-bench-rag-'));
  try {
    const pglite = await openDatabase({ dir: path.join(dir, 'db') });
    results.push(await lane('PGlite', pglite, dir, embedder, texts));
    await pglite.close();
    const url = process.env.DATABASE_URL;
    if (url) {
      const postgres = await openDatabase({ url });
      results.push(await lane('PostgreSQL', postgres, dir, embedder, texts));
      await postgres.close();
    } else log('DATABASE_URL unset: PostgreSQL lane skipped');
  } finally {
    await embedder.close();
    await rm(dir, { recursive: true, force: true });
  }

  const machine = `${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  const embedding = {
    chunks: embedded,
    seconds: embedSeconds,
    chunksPerSecond: embedded / embedSeconds,
  };
  if (flags.json) {
    console.log(
      JSON.stringify({ machine, threads: THREADS, queries: QUERIES, embedding, results }, null, 2),
    );
    return;
  }
  const f = (x: number) => x.toFixed(1);
  console.log(`Machine: ${machine}; embedder threads ${THREADS}; ${QUERIES} queries\n`);
  console.log(
    `Embedding (chunking + llama.cpp, ${THREADS} threads): ${embedded} chunks in ${f(embedSeconds)} s = ${f(embedding.chunksPerSecond)} chunks/s\n`,
  );
  console.log(
    '| lane | vectors | chunks | store + index build s | chunks/s | with embedding, chunks/s |',
  );
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of results)
    console.log(
      `| ${r.lane} | ${r.vectors} | ${r.chunks} | ${f(r.indexSeconds)} | ${f(r.chunksPerSecond)} | ${f(r.chunks / (r.indexSeconds + embedSeconds))} |`,
    );
  console.log(
    '\n| lane | plain full text (ts_rank) p50 / p95 ms | vector p50 / p95 ms | fused retrieval p50 / p95 ms |',
  );
  console.log('|---|---:|---:|---:|');
  for (const r of results)
    console.log(
      `| ${r.lane} (${r.vectors}) | ${f(r.latency.fullText.p50)} / ${f(r.latency.fullText.p95)} | ${f(r.latency.vector.p50)} / ${f(r.latency.vector.p95)} | ${f(r.latency.fused.p50)} / ${f(r.latency.fused.p95)} |`,
    );
}

await main();
