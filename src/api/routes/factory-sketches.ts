import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { jobSketches, loadSketches } from '../../factory/sketches.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const SketchQuery = Type.Object(
  {
    part: Type.Optional(
      Type.Literal('header', {
        description: 'header: only the JSON header (seed, layout, rows), not the binary file',
      }),
    ),
  },
  { additionalProperties: false },
);

/**
 * The per-row gradient sketches of a succeeded training job (docs/factory.md, "Gradient
 * sketches"), for the wallet that started it (others get 404, as for the job itself).
 */
export function factorySketchRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/factory/jobs/:id/sketches',
    {
      schema: {
        tags: ['factory'],
        summary:
          "A succeeded training job's per-row LoRA gradient sketches (binary OLSKETCH file; ?part=header for its JSON header)",
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        querystring: SketchQuery,
        response: errors(400, 401, 404, 409),
      },
    },
    async (request, reply) => {
      const caller = requirePrincipal(request).address;
      const { id } = request.params as { id: string };
      const query = request.query as Static<typeof SketchQuery>;
      const { bytes, summary } = await jobSketches(ctx, await ctx.jobs.get(id), caller);
      if (query.part === 'header') return loadSketches(bytes).header;
      return reply
        .header('content-disposition', `attachment; filename="sketches-${id.slice(0, 8)}.olsketch"`)
        .header('x-openledger-sha256', summary.sha256)
        .type('application/octet-stream')
        .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
  );
}
