import { createHash } from 'node:crypto';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type, type Static } from 'typebox';
import { OpenLedgerError } from '../../errors.ts';
import {
  EXPORT_FORMATS,
  exportJob,
  type ExportFile,
  type ExportFormat,
} from '../../factory/exports.ts';
import { parseHubRef, resolveModelSource } from '../../factory/download.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { errors } from '../schemas.ts';

const ExportQuery = Type.Object(
  {
    format: Type.Union(
      EXPORT_FORMATS.map((f) => Type.Literal(f)),
      {
        description: 'gguf (llama.cpp LoRA), peft (Hugging Face PEFT folder) or merged (full GGUF)',
      },
    ),
    type: Type.Optional(
      Type.Union([Type.Literal('f16'), Type.Literal('f32')], {
        description: 'merged: the type of the merged weights (default f16)',
      }),
    ),
    ropeLayout: Type.Optional(
      Type.Union([Type.Literal('hf'), Type.Literal('gguf')], {
        description:
          'peft: q/k lora_B rows in Hugging Face order (default, for the HF model) or as in the GGUF',
      }),
    ),
    file: Type.Optional(
      Type.Union([Type.Literal('adapter_config.json'), Type.Literal('adapter_model.safetensors')], {
        description: 'peft: the file to download; without it, the listing of the folder',
      }),
    ),
  },
  { additionalProperties: false },
);

function sendFile(reply: FastifyReply, file: ExportFile) {
  return reply
    .header('content-disposition', `attachment; filename="${file.name}"`)
    .header('x-openledger-sha256', createHash('sha256').update(file.bytes).digest('hex'))
    .type(file.contentType)
    .send(Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength));
}

/**
 * Exports of a succeeded training job's adapter, for the wallet that started the job (others get
 * 404, as for the job itself). `gguf` and `merged` answer the file; `peft` answers a JSON listing
 * of the folder's two files with their URLs, each then downloaded with `&file=<name>`.
 */
export function factoryExportRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/api/factory/jobs/:id/export',
    {
      schema: {
        tags: ['factory'],
        summary:
          "Export a succeeded training job's adapter: gguf (llama.cpp LoRA), peft (JSON listing; &file= for each file) or merged (full GGUF)",
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        querystring: ExportQuery,
        response: errors(400, 401, 404, 409),
      },
    },
    async (request, reply) => {
      const caller = requirePrincipal(request).address;
      const { id } = request.params as { id: string };
      const query = request.query as Static<typeof ExportQuery>;
      const job = await ctx.jobs.get(id);
      if (job.owner !== caller) throw new OpenLedgerError('NOT_FOUND', `You have no job ${id}.`);
      const format = query.format as ExportFormat;
      if (query.file !== undefined && format !== 'peft')
        throw new OpenLedgerError('BAD_REQUEST', '`file` is for format=peft only.');
      const files = await exportJob(ctx, job, format, {
        mergedType: query.type === 'f32' ? 'F32' : 'F16',
        ropeLayout: query.ropeLayout ?? 'hf',
      });
      if (format !== 'peft') return sendFile(reply, files[0]!);
      if (query.file !== undefined)
        return sendFile(
          reply,
          files.find((f) => f.name === query.file)!,
        );
      const base = `/api/factory/jobs/${id}/export?format=peft${query.ropeLayout ? `&ropeLayout=${query.ropeLayout}` : ''}`;
      return {
        format: 'peft',
        files: files.map((f) => ({
          name: f.name,
          bytes: f.bytes.byteLength,
          sha256: createHash('sha256').update(f.bytes).digest('hex'),
          url: `${base}&file=${f.name}`,
        })),
      };
    },
  );

  const ImportBody = Type.Object(
    {
      source: Type.String({
        minLength: 3,
        maxLength: 300,
        description: 'A Hugging Face repo: owner/name[@revision][:file.gguf]',
      }),
      name: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 128,
          description: 'default: from the repo or file',
        }),
      ),
    },
    { additionalProperties: false },
  );

  app.post(
    '/api/factory/models',
    {
      schema: {
        tags: ['factory'],
        summary:
          'Add a base model from the Hugging Face hub (synchronous: answers 201 once it is downloaded and converted; the node must be online)',
        body: ImportBody,
        response: errors(400, 401, 409, 422, 502),
      },
    },
    async (request, reply) => {
      requirePrincipal(request);
      const body = request.body as Static<typeof ImportBody>;
      // Only hub references: an API caller never names a path on the node's disk.
      if (parseHubRef(body.source) === undefined)
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `"${body.source}" is not a Hugging Face repo id (owner/name[@revision][:file.gguf]).`,
          {
            hint: 'local files and folders are added on the node machine with `openledger models add`',
            details: { field: 'source' },
          },
        );
      const model = await resolveModelSource(body.source, {
        modelsDir: ctx.config.modelsDirs[0]!,
        ...(body.name === undefined ? {} : { name: body.name }),
      });
      return reply.status(201).send({ ...model, path: path.basename(model.path) });
    },
  );
}
