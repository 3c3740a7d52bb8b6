// Assertions the engine tests share.
import assert from 'node:assert/strict';
import type { OpenLedgerError } from '../../src/errors.ts';

/** For assert.throws/rejects: the error has `code` (and a message matching `pattern`). */
export const hasCode = (code: string, pattern?: RegExp) => (error: OpenLedgerError) => {
  assert.equal(error.code, code, error.message);
  if (pattern) assert.match(error.message, pattern);
  return true;
};

/** max |a − b| / max |b|. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
