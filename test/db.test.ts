import assert from 'node:assert/strict';
import { getTableName, is, sql } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { describe, it } from 'node:test';
import { openDatabase, schema, type DatabaseTarget } from '../src/db/index.ts';
import { POSTGRES_SKIP, freshPostgresDatabase } from './helpers/postgres.ts';

/** The same assertions on both engines: one schema, one set of migrations. */
async function exercise(target: DatabaseTarget) {
  const first = await openDatabase(target);
  try {
    assert.ok((await first.ping()) >= 0);
    // Both drivers answer raw SQL with `{ rows }`.
    const tables = (await first.db.execute(
      sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
    )) as unknown as { rows: { table_name: string }[] };
    // Exactly the tables the schema declares: the committed migrations are in step with it. Plus
    // `rag_vectors` where pgvector is available (a guarded migration; PGlite has it, Debian's
    // PostgreSQL does not), which the database reports.
    const declared = [
      ...Object.values(schema)
        .filter((value) => is(value, PgTable))
        .map((table) => getTableName(table as PgTable)),
      ...(first.vectors ? ['rag_vectors'] : []),
    ].sort();
    assert.deepEqual(
      tables.rows.map((r) => r.table_name),
      declared,
    );
    if (first.kind === 'pglite') assert.equal(first.vectors, true);
    await first.db.insert(schema.accounts).values({ address: '0xabc' });
    // Counts come back as the same JavaScript type on both engines (cast in SQL).
    const [row] = await first.db.select({ n: sql<number>`count(*)::int` }).from(schema.accounts);
    assert.equal(row?.n, 1);
    // A failed transaction leaves nothing behind.
    await assert.rejects(
      first.db.transaction(async (tx) => {
        await tx.insert(schema.accounts).values({ address: '0xdef' });
        await tx.insert(schema.accounts).values({ address: '0xabc' }); // duplicate key
      }),
    );
    const [after] = await first.db.select({ n: sql<number>`count(*)::int` }).from(schema.accounts);
    assert.equal(after?.n, 1);
  } finally {
    await first.close();
  }
  if ('memory' in target) return;
  // Reopening applies no migration twice and keeps the rows.
  const second = await openDatabase(target);
  try {
    const [row] = await second.db.select({ n: sql<number>`count(*)::int` }).from(schema.accounts);
    assert.equal(row?.n, 1);
  } finally {
    await second.close();
  }
}

describe('database', () => {
  it('migrates and works on embedded PGlite', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/openledger-db-`);
    try {
      await exercise({ dir: `${dir}/db` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('migrates and works on a PostgreSQL server', { skip: POSTGRES_SKIP }, async () => {
    const db = await freshPostgresDatabase();
    try {
      await exercise({ url: db.url });
    } finally {
      await db.drop();
    }
  });

  it('fails with DATABASE_UNAVAILABLE and a hint when the server cannot be reached', async () => {
    await assert.rejects(
      openDatabase({ url: 'postgres://nobody@127.0.0.1:9/none' }),
      (error: { code: string; hint?: string }) => {
        assert.equal(error.code, 'DATABASE_UNAVAILABLE');
        assert.match(error.hint ?? '', /DATABASE_URL/);
        return true;
      },
    );
  });
});
