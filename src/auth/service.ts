import { and, desc, eq, gt, isNull, sql } from 'drizzle-orm';
import { getAddress, isHex, type Address, type Hex } from 'viem';
import { generateSiweNonce, parseSiweMessage, verifySiweMessage } from 'viem/siwe';
import type { ChainPublicClient } from '../chain/index.ts';
import type { Db } from '../db/index.ts';
import { schema } from '../db/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { API_KEY_PREFIX, SESSION_PREFIX, displayPrefix, hashSecret, newSecret } from './tokens.ts';

export const NONCE_TTL_MS = 10 * 60_000;
export const SESSION_TTL_MS = 7 * 24 * 60 * 60_000;
export const MAX_API_KEYS_PER_ACCOUNT = 100;
const LAST_USED_RESOLUTION_MS = 60_000;

/** Who is calling, and how they proved it. */
export interface Principal {
  address: Address;
  via: 'session' | 'apiKey';
  /** The session id or API key id. */
  credentialId: string;
}

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/**
 * Wallets are identities. A wallet proves itself once with Sign-In with Ethereum (EIP-4361) and
 * gets a session; a signed-in wallet mints API keys for programs. Both are opaque bearer secrets
 * of which only hashes are stored.
 */
export class AuthService {
  constructor(
    private readonly db: Db,
    private readonly chain: { publicClient: ChainPublicClient; chainId: number },
  ) {}

  async issueNonce(): Promise<{ nonce: string; expiresAt: Date }> {
    const nonce = generateSiweNonce();
    const expiresAt = new Date(Date.now() + NONCE_TTL_MS);
    await this.db.insert(schema.authNonces).values({ nonce, expiresAt });
    return { nonce, expiresAt };
  }

  /**
   * Verifies a signed SIWE message for this node (its domain, its chain, a live nonce of ours)
   * and opens a session. The nonce is consumed in the same transaction that creates the session,
   * so a replayed message fails.
   */
  async signIn(input: { message: string; signature: string; domain: string }): Promise<{
    token: string;
    address: Address;
    expiresAt: Date;
  }> {
    const fields = parseSiweMessage(input.message);
    if (!fields.address || !fields.nonce || !fields.domain || fields.chainId === undefined) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'The message is not a complete EIP-4361 sign-in message.',
        {
          hint: 'It must state the domain, address, chain ID and nonce.',
        },
      );
    }
    if (fields.domain !== input.domain) {
      throw new OpenLedgerError(
        'INVALID_SIGNATURE',
        `The message is for ${fields.domain}, not for this node (${input.domain}).`,
      );
    }
    if (fields.chainId !== this.chain.chainId) {
      throw new OpenLedgerError(
        'INVALID_SIGNATURE',
        `The message is for chain ${fields.chainId}; this node runs on chain ${this.chain.chainId}.`,
      );
    }
    if (!isHex(input.signature)) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'The signature must be 0x-prefixed hex.');
    }
    const valid = await verifySiweMessage(this.chain.publicClient, {
      message: input.message,
      signature: input.signature as Hex,
      domain: input.domain,
    }).catch(() => false);
    if (!valid) {
      throw new OpenLedgerError(
        'INVALID_SIGNATURE',
        'The signature does not match the message and address, or the message has expired.',
      );
    }
    const address = getAddress(fields.address);
    const token = newSecret(SESSION_PREFIX);
    const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
    await this.db.transaction(async (tx) => {
      const consumed = await tx
        .update(schema.authNonces)
        .set({ consumedAt: sql`now()` })
        .where(
          and(
            eq(schema.authNonces.nonce, fields.nonce!),
            isNull(schema.authNonces.consumedAt),
            gt(schema.authNonces.expiresAt, sql`now()`),
          ),
        )
        .returning({ nonce: schema.authNonces.nonce });
      if (consumed.length === 0) {
        throw new OpenLedgerError(
          'NONCE_INVALID',
          'The nonce is unknown, expired or already used.',
          {
            hint: 'Request a fresh nonce from GET /api/auth/nonce and sign again.',
          },
        );
      }
      await this.touchAccount(tx, address);
      await tx
        .insert(schema.sessions)
        .values({ tokenHash: hashSecret(token), address: address.toLowerCase(), expiresAt });
    });
    return { token, address, expiresAt };
  }

  /** Resolves a bearer secret (session token or API key) to its wallet, or fails with 401. */
  async authenticate(secret: string): Promise<Principal> {
    const tokenHash = hashSecret(secret);
    if (secret.startsWith(SESSION_PREFIX)) {
      const [session] = await this.db
        .select()
        .from(schema.sessions)
        .where(eq(schema.sessions.tokenHash, tokenHash))
        .limit(1);
      if (!session || session.revokedAt) {
        throw new OpenLedgerError('UNAUTHENTICATED', 'The session is unknown or signed out.', {
          hint: 'Sign in again.',
        });
      }
      if (session.expiresAt.getTime() <= Date.now()) {
        throw new OpenLedgerError('SESSION_EXPIRED', 'The session has expired.', {
          hint: 'Sign in again.',
        });
      }
      return { address: getAddress(session.address), via: 'session', credentialId: session.id };
    }
    if (secret.startsWith(API_KEY_PREFIX)) {
      const [key] = await this.db
        .select()
        .from(schema.apiKeys)
        .where(eq(schema.apiKeys.keyHash, tokenHash))
        .limit(1);
      if (!key || key.revokedAt) {
        throw new OpenLedgerError(
          'INVALID_API_KEY',
          key ? 'This API key has been revoked.' : 'Unknown API key.',
          {
            hint: 'Create a new key with `openledger keys create` or on the API keys page.',
          },
        );
      }
      if (!key.lastUsedAt || Date.now() - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
        await this.db
          .update(schema.apiKeys)
          .set({ lastUsedAt: sql`now()` })
          .where(eq(schema.apiKeys.id, key.id));
      }
      return { address: getAddress(key.address), via: 'apiKey', credentialId: key.id };
    }
    throw new OpenLedgerError(
      'UNAUTHENTICATED',
      'The bearer token is neither a session token nor an API key.',
      {
        hint: `Session tokens start with ${SESSION_PREFIX}, API keys with ${API_KEY_PREFIX}.`,
      },
    );
  }

  async signOut(principal: Principal): Promise<void> {
    if (principal.via !== 'session') return;
    await this.db
      .update(schema.sessions)
      .set({ revokedAt: sql`now()` })
      .where(eq(schema.sessions.id, principal.credentialId));
  }

  async sessionOf(principal: Principal): Promise<{ address: Address; expiresAt: Date | null }> {
    if (principal.via !== 'session') return { address: principal.address, expiresAt: null };
    const [session] = await this.db
      .select({ expiresAt: schema.sessions.expiresAt })
      .from(schema.sessions)
      .where(eq(schema.sessions.id, principal.credentialId));
    return { address: principal.address, expiresAt: session?.expiresAt ?? null };
  }

  async createApiKey(address: Address, name: string): Promise<ApiKeyView & { key: string }> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 64) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'A key name must be 1 to 64 characters.', {
        details: { field: 'name' },
      });
    }
    const owner = address.toLowerCase();
    const key = newSecret(API_KEY_PREFIX);
    const row = await this.db.transaction(async (tx) => {
      const [{ active } = { active: 0 }] = await tx
        .select({ active: sql<number>`count(*)::int` })
        .from(schema.apiKeys)
        .where(and(eq(schema.apiKeys.address, owner), isNull(schema.apiKeys.revokedAt)));
      if (active >= MAX_API_KEYS_PER_ACCOUNT) {
        throw new OpenLedgerError(
          'LIMIT_EXCEEDED',
          `A wallet may hold at most ${MAX_API_KEYS_PER_ACCOUNT} active API keys.`,
          {
            hint: 'Revoke keys you no longer use.',
          },
        );
      }
      await this.touchAccount(tx, address);
      const [inserted] = await tx
        .insert(schema.apiKeys)
        .values({
          address: owner,
          name: trimmed,
          prefix: displayPrefix(key),
          keyHash: hashSecret(key),
        })
        .returning();
      return inserted!;
    });
    return { ...toView(row), key };
  }

  async listApiKeys(address: Address): Promise<ApiKeyView[]> {
    const rows = await this.db
      .select()
      .from(schema.apiKeys)
      .where(eq(schema.apiKeys.address, address.toLowerCase()))
      .orderBy(desc(schema.apiKeys.createdAt));
    return rows.map(toView);
  }

  /** Revokes one of the caller's keys. Revoking twice is harmless and answers the first revocation. */
  async revokeApiKey(address: Address, id: string): Promise<ApiKeyView> {
    const [key] = await this.db
      .select()
      .from(schema.apiKeys)
      .where(and(eq(schema.apiKeys.id, id), eq(schema.apiKeys.address, address.toLowerCase())));
    if (!key) throw new OpenLedgerError('NOT_FOUND', `You have no API key ${id}.`);
    if (key.revokedAt) return toView(key);
    const [revoked] = await this.db
      .update(schema.apiKeys)
      .set({ revokedAt: sql`now()` })
      .where(eq(schema.apiKeys.id, id))
      .returning();
    return toView(revoked!);
  }

  private async touchAccount(tx: Pick<Db, 'insert'>, address: Address): Promise<void> {
    await tx
      .insert(schema.accounts)
      .values({ address: address.toLowerCase() })
      .onConflictDoUpdate({ target: schema.accounts.address, set: { lastSeenAt: sql`now()` } });
  }
}

function toView(row: typeof schema.apiKeys.$inferSelect): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
  };
}
