export { AuthService, MAX_API_KEYS_PER_ACCOUNT, NONCE_TTL_MS, SESSION_TTL_MS } from './service.ts';
export type { ApiKeyView, Principal } from './service.ts';
export { API_KEY_PREFIX, SESSION_PREFIX } from './tokens.ts';
