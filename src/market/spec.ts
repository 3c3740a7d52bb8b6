/**
 * What agent and proposal specifications share: a TypeBox shape checked with an error that names
 * the first wrong field, and a sha256 of the canonical JSON (RFC 8785) that goes on-chain.
 */
import { createHash } from 'node:crypto';
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { canonicalJson } from '../datanets/ingest/hash.ts';
import { OpenLedgerError } from '../errors.ts';

/**
 * `value` as a `schema`, or VALIDATION_FAILED naming the first wrong field (dotted) and a hint
 * for it (`hintFor` gets the field, '' for the whole specification).
 */
export function parseSpec<T extends TSchema>(
  schema: T,
  value: unknown,
  what: string,
  hintFor: (field: string) => string,
): Static<T> {
  if (Value.Check(schema, value)) return value as Static<T>;
  const [first] = Value.Errors(schema, value);
  const where = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '';
  throw new OpenLedgerError(
    'VALIDATION_FAILED',
    `The ${what} is invalid at ${where || 'spec'}: ${first?.message ?? 'unknown error'}.`,
    { hint: hintFor(where), details: { field: where || 'spec' } },
  );
}

/** sha256 (hex) of a specification's canonical JSON: what the chain records. */
export function specHash(spec: unknown): string {
  return createHash('sha256').update(canonicalJson(spec), 'utf8').digest('hex');
}
