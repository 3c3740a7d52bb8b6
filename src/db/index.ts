export { MIGRATIONS_DIR, openDatabase, queryRows } from './connect.ts';
export type { Database, DatabaseTarget, Db } from './connect.ts';
export * as schema from './schema.ts';
