/**
 * Every failure a caller can cause or act on is an `OpenLedgerError`: a stable machine-readable
 * code, a one-line message that says what went wrong, and where useful a hint that says what to do.
 * The HTTP status lives with the code, in one table, so the API, the CLI and the docs agree.
 */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  ADAPTER_INVALID: 400,
  ADAPTER_BASE_MISMATCH: 400,
  ADAPTER_BUDGET_EXCEEDED: 400,
  CONTEXT_LENGTH_EXCEEDED: 400,
  ADAPTER_MIX_UNSUPPORTED: 400,
  UNAUTHENTICATED: 401,
  INVALID_SIGNATURE: 401,
  INVALID_API_KEY: 401,
  INSUFFICIENT_BALANCE: 402,
  SESSION_EXPIRED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  FAUCET_UNAVAILABLE: 404,
  DATANET_NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  ADAPTER_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  LIMIT_EXCEEDED: 409,
  NONCE_INVALID: 409,
  JOB_NOT_SUCCEEDED: 409,
  ALREADY_PUBLISHED: 409,
  INDEX_NOT_READY: 409,
  WITHDRAWAL_LOCKED: 409,
  NOTHING_TO_CLAIM: 409,
  AGENT_INACTIVE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNSUPPORTED_FILE_TYPE: 415,
  FILE_INVALID: 422,
  GGUF_INVALID: 422,
  GGUF_UNSUPPORTED: 422,
  MODEL_UNSUPPORTED: 422,
  SKETCH_MISMATCH: 422,
  BASE_MODEL_MISMATCH: 422,
  ATTRIBUTION_FAILED: 422,
  FAUCET_COOLDOWN: 429,
  QUOTA_EXCEEDED: 429,
  RATE_LIMITED: 429,
  SERVING_OVERLOADED: 429,
  INTERNAL: 500,
  MODEL_DOWNLOAD_FAILED: 502,
  NODE_FAILED: 502,
  BROADCAST_INCOMPLETE: 502,
  REMOTE_BACKEND_FAILED: 502,
  REMOTE_BACKEND_TIMEOUT: 504,
  CHAIN_UNAVAILABLE: 503,
  RELAYER_UNAVAILABLE: 503,
  ESCROW_UNAVAILABLE: 503,
  SETTLEMENT_UNAVAILABLE: 503,
  POSTER_UNBONDED: 503,
  DATABASE_UNAVAILABLE: 503,
  ENGINE_UNAVAILABLE: 503,
  EMBEDDER_MISSING: 503,
  RAG_UNAVAILABLE: 503,
  GOVERNANCE_UNAVAILABLE: 503,
  NO_NODE_AVAILABLE: 503,
  // Failures of the node's own setup; the CLI reports them, HTTP never does.
  CONFIG_INVALID: 500,
  NOT_DEPLOYED: 500,
  DEPLOY_FAILED: 500,
  CHAIN_START_FAILED: 500,
  BLOB_NOT_FOUND: 404,
  BLOB_CORRUPT: 500,
  NODE_UNREACHABLE: 503,
  SIGNER_REQUIRED: 400,
  KEYSTORE_INVALID: 400,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode | string; message: string; hint?: string; details?: unknown };
}

export class OpenLedgerError extends Error {
  override readonly name = 'OpenLedgerError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string | undefined;
  readonly details: unknown;

  constructor(
    code: ErrorCode,
    message: string,
    options: { hint?: string; details?: unknown; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.hint = options.hint;
    this.details = options.details;
  }

  toJSON(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.hint === undefined ? {} : { hint: this.hint }),
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export function isOpenLedgerError(value: unknown): value is OpenLedgerError {
  return value instanceof OpenLedgerError;
}
