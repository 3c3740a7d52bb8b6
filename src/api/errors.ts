import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OpenLedgerError, type ErrorBody } from '../errors.ts';

/** The JSON Schema of every error answer, referenced from each route's responses. */
export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          description: 'Stable machine-readable code, e.g. VALIDATION_FAILED.',
        },
        message: { type: 'string', description: 'What went wrong, for a person.' },
        hint: { type: 'string', description: 'What to do about it.' },
        details: {},
      },
    },
  },
} as const;

const FASTIFY_CODES: Record<string, OpenLedgerError['code']> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};

/** Turns anything thrown in a handler into `{ error: { code, message, hint?, details? } }`. */
export function toErrorBody(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof OpenLedgerError) return { status: error.status, body: error.toJSON() };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const issues = fastifyError.validation.map((v) => ({
      path: `${fastifyError.validationContext ?? 'request'}${v.instancePath || ''}`,
      message: v.message ?? 'is invalid',
    }));
    const first = issues[0];
    return {
      status: 400,
      body: {
        error: {
          code: 'VALIDATION_FAILED',
          message: first ? `${first.path} ${first.message}` : 'The request is invalid.',
          details: { issues },
        },
      },
    };
  }
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) return toErrorBody(new OpenLedgerError(mapped, fastifyError.message));
  if (
    typeof fastifyError.statusCode === 'number' &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    return {
      status: fastifyError.statusCode,
      body: { error: { code: 'BAD_REQUEST', message: fastifyError.message } },
    };
  }
  return {
    status: 500,
    body: {
      error: {
        code: 'INTERNAL',
        message: 'The node failed to handle this request; the details are in its log.',
      },
    },
  };
}

/**
 * Answers an error: logs it (server faults at error level), sets Retry-After on a 429, and sends
 * the body in the node's shape — or in another one (`shape`: OpenAI's under /v1).
 */
export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
  shape: (status: number, error: ErrorBody['error']) => unknown = (_, e) => ({ error: e }),
): FastifyReply {
  const { status, body } = toErrorBody(error);
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: body.error.code }, body.error.message);
  const retryAfter = (body.error.details as { retryAfterSeconds?: unknown } | undefined)
    ?.retryAfterSeconds;
  if (status === 429 && typeof retryAfter === 'number')
    reply.header('retry-after', String(Math.ceil(retryAfter)));
  return reply.status(status).type('application/json').send(shape(status, body.error));
}
