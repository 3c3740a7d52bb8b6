import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { OpenLedgerError } from '../../errors.ts';
import type { RowContent } from './types.ts';

// canonicalize is CommonJS (`module.exports = serialize`) but its typings declare an ES default
// export, which NodeNext types as the module object; at runtime the default import is the function.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/**
 * RFC 8785 (JCS) canonical JSON: keys sorted by UTF-16 code units, no whitespace, ECMAScript number
 * formatting. Equal values give equal strings whatever their key order.
 */
export function canonicalJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = canonicalize(value);
  } catch (error) {
    throw new OpenLedgerError('BAD_REQUEST', `Value cannot be canonicalised: ${String(error)}`, {
      cause: error,
    });
  }
  if (json === undefined) {
    throw new OpenLedgerError('BAD_REQUEST', 'Value cannot be canonicalised: it has no JSON form.');
  }
  return json;
}

/** sha256 (64 lower-case hex digits) of the row content's canonical JSON. */
export function rowHash(content: RowContent): string {
  return createHash('sha256').update(canonicalJson(content), 'utf8').digest('hex');
}
