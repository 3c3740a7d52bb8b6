import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { NodeContext } from '../node/context.ts';

export const SESSION_COOKIE = 'ol_session';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    /** Mutating routes require authentication unless they set `public: true`. */
    public?: boolean;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The bearer secret of a request: `Authorization: Bearer …` first, then the session cookie. */
export function credentialOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      throw new OpenLedgerError(
        'UNAUTHENTICATED',
        'The Authorization header must be "Bearer <token>".',
      );
    }
    return match[1];
  }
  return request.cookies[SESSION_COOKIE] || undefined;
}

/**
 * Resolves the caller on every request that carries a credential, and refuses any mutating
 * request that does not (routes opt out with `config.public`). A bad credential is always an
 * error, even on a read, so a client learns at once that its key was revoked.
 */
export function authenticationHook(ctx: NodeContext) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    request.principal = undefined;
    const secret = credentialOf(request);
    if (secret !== undefined) request.principal = await ctx.auth.authenticate(secret);
    const isPublic = request.routeOptions.config.public === true;
    if (
      !request.principal &&
      !SAFE_METHODS.has(request.method) &&
      !isPublic &&
      request.routeOptions.url
    ) {
      throw new OpenLedgerError(
        'UNAUTHENTICATED',
        'This request changes state and needs a signed-in wallet.',
        {
          hint: 'Sign in with Ethereum (POST /api/auth/verify) or send an API key as "Authorization: Bearer olk_…".',
        },
      );
    }
  };
}

/** For handlers: the caller, or a 401 when the route needs one and there is none. */
export function requirePrincipal(request: FastifyRequest): Principal {
  if (!request.principal) {
    throw new OpenLedgerError('UNAUTHENTICATED', 'Sign in first.', {
      hint: 'Sign in with Ethereum (POST /api/auth/verify) or send an API key as "Authorization: Bearer olk_…".',
    });
  }
  return request.principal;
}
