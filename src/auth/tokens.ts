import { createHash, randomBytes } from 'node:crypto';

/** Bearer secrets carry their kind in a prefix, so a leaked one is recognisable in logs and scanners. */
export const SESSION_PREFIX = 'ols_';
export const API_KEY_PREFIX = 'olk_';

export function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** Secrets are stored only as their sha256; a database leak reveals no usable token. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** The part of an API key that is safe to show again: enough to tell keys apart. */
export function displayPrefix(secret: string): string {
  return secret.slice(0, API_KEY_PREFIX.length + 8);
}
