import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { sql, type SQL } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import { OpenLedgerError } from '../errors.ts';
import * as schema from './schema.ts';

/** The one query surface the rest of the node uses, whichever engine is behind it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /**
   * Whether pgvector is there: the guarded migration created `rag_vectors` (PGlite always; a
   * server only where the extension is installed). Without it RAG uses its embedded index.
   */
  vectors: boolean;
  /** Round-trips `select 1`; returns the latency in milliseconds. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

/** The committed migrations, found relative to this file both in `src/` and in `dist/`. */
export const MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../drizzle',
);

export type DatabaseTarget = { url: string } | { dir: string } | { memory: true };

/**
 * Opens PostgreSQL when given a URL, otherwise PGlite (PostgreSQL compiled to WebAssembly) in a
 * directory or in memory, and brings the schema up to date with the same migrations on both.
 */
export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  const database = 'url' in target ? await openPostgres(target.url) : await openPglite(target);
  try {
    await database.migrate();
    const [found] = await queryRows<{ found: boolean }>(
      database.db,
      sql`select to_regclass('public.rag_vectors') is not null as found`,
    );
    database.vectors = found?.found === true;
  } catch (cause) {
    await database.close();
    throw new OpenLedgerError(
      'DATABASE_UNAVAILABLE',
      `Applying database migrations failed: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  return database;
}

type Opened = Database & { migrate(): Promise<void> };

async function openPglite(target: { dir: string } | { memory: true }): Promise<Opened> {
  let client: PGlite;
  if ('dir' in target) {
    await mkdir(path.dirname(target.dir), { recursive: true });
    client = new PGlite(target.dir, { extensions: { vector } });
  } else {
    client = new PGlite({ extensions: { vector } });
  }
  await client.waitReady;
  const db = drizzlePglite(client, { schema });
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    vectors: false,
    ping: () => timed(() => db.execute(sql`select 1`)),
    migrate: () => migratePglite(db, { migrationsFolder: MIGRATIONS_DIR }),
    close: () => client.close(),
  };
}

async function openPostgres(url: string): Promise<Opened> {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 10_000 });
  // Fail at start, with the reason, rather than on the first request.
  try {
    const client = await pool.connect();
    client.release();
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new OpenLedgerError(
      'DATABASE_UNAVAILABLE',
      `Cannot connect to PostgreSQL: ${(cause as Error).message}`,
      {
        hint: 'Check DATABASE_URL and that the server accepts connections.',
        cause,
      },
    );
  }
  const db = drizzlePg(pool, { schema });
  return {
    db: db as unknown as Db,
    kind: 'postgres',
    vectors: false,
    ping: () => timed(() => db.execute(sql`select 1`)),
    migrate: () => migratePg(db, { migrationsFolder: MIGRATIONS_DIR }),
    close: () => pool.end(),
  };
}

/**
 * The rows of a raw SQL query. Both drivers answer `execute` with `{ rows }`, but the query
 * surface's type (over either driver) cannot say so.
 */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}
