import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { IsoDate, errors } from '../schemas.ts';

const KeyView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart.' }),
  createdAt: IsoDate,
  lastUsedAt: Type.Union([IsoDate, Type.Null()]),
  revokedAt: Type.Union([IsoDate, Type.Null()]),
});

export function keyRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/keys',
    {
      schema: {
        tags: ['keys'],
        summary: "The caller's API keys, newest first (secrets are never shown again)",
        response: { 200: Type.Object({ keys: Type.Array(KeyView) }), ...errors(401) },
      },
    },
    async (request) => ({ keys: await ctx.auth.listApiKeys(requirePrincipal(request).address) }),
  );

  app.post(
    '/api/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'Create an API key for the signed-in wallet; the secret is in this answer only',
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 64 }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            ...KeyView.properties,
            key: Type.String({ description: 'The secret bearer key. Store it now.' }),
          }),
          ...errors(400, 401, 409),
        },
      },
    },
    async (request, reply) => {
      const { name } = request.body as { name: string };
      const created = await ctx.auth.createApiKey(requirePrincipal(request).address, name);
      return reply.status(201).send(created);
    },
  );

  app.delete(
    '/api/keys/:id',
    {
      schema: {
        tags: ['keys'],
        summary: 'Revoke one of your API keys (idempotent)',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: KeyView, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      return ctx.auth.revokeApiKey(requirePrincipal(request).address, id);
    },
  );
}
