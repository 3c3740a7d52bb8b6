import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { NodeContext } from '../../node/context.ts';
import { SESSION_COOKIE, requirePrincipal } from '../auth.ts';
import { Address, IsoDate, errors } from '../schemas.ts';

export function authRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/auth/nonce',
    {
      schema: {
        tags: ['auth'],
        summary: 'A one-time nonce for a Sign-In with Ethereum message (valid 10 minutes)',
        response: { 200: Type.Object({ nonce: Type.String(), expiresAt: IsoDate }) },
      },
    },
    async () => {
      const { nonce, expiresAt } = await ctx.auth.issueNonce();
      return { nonce, expiresAt: expiresAt.toISOString() };
    },
  );

  app.post(
    '/api/auth/verify',
    {
      config: { public: true },
      schema: {
        tags: ['auth'],
        summary:
          'Sign in: verify a signed EIP-4361 message, open a session (cookie and bearer token)',
        body: Type.Object(
          {
            message: Type.String({ minLength: 1, maxLength: 4096 }),
            signature: Type.String({ pattern: '^0x[0-9a-fA-F]+$', maxLength: 20000 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ address: Address, expiresAt: IsoDate, token: Type.String() }),
          ...errors(400, 401, 409),
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { message: string; signature: string };
      const session = await ctx.auth.signIn({ ...body, domain: request.host });
      reply.setCookie(SESSION_COOKIE, session.token, {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        expires: session.expiresAt,
      });
      return {
        address: session.address,
        expiresAt: session.expiresAt.toISOString(),
        token: session.token,
      };
    },
  );

  app.get(
    '/api/auth/session',
    {
      schema: {
        tags: ['auth'],
        summary: 'The signed-in wallet of this request (session cookie, session token or API key)',
        response: {
          200: Type.Object({
            address: Address,
            via: Type.Union([Type.Literal('session'), Type.Literal('apiKey')]),
            expiresAt: Type.Union([IsoDate, Type.Null()]),
          }),
          ...errors(401),
        },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const session = await ctx.auth.sessionOf(principal);
      return {
        address: session.address,
        via: principal.via,
        expiresAt: session.expiresAt?.toISOString() ?? null,
      };
    },
  );

  app.post(
    '/api/auth/logout',
    {
      config: { public: true },
      schema: {
        tags: ['auth'],
        summary: 'Sign out: end the session and clear its cookie (harmless when not signed in)',
        response: { 200: Type.Object({ ok: Type.Literal(true) }) },
      },
    },
    async (request, reply) => {
      if (request.principal) await ctx.auth.signOut(request.principal);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return { ok: true as const };
    },
  );
}
