export { MIGRATIONS_DIR, openDatabase } from './connect.ts';
export type { Database, DatabaseTarget, Db } from './connect.ts';
export * as schema from './schema.ts';
