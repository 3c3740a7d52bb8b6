import { Type } from 'typebox';

/** Shared pieces of the route schemas (they become the OpenAPI document's components). */
export const Address = Type.String({
  pattern: '^0x[0-9a-fA-F]{40}$',
  description: 'An EVM address.',
});
export const Wei = Type.String({
  pattern: '^[0-9]+$',
  description: 'An amount in wei, as a decimal string.',
});
export const TxHash = Type.String({ pattern: '^0x[0-9a-fA-F]{64}$' });
export const IsoDate = Type.String({ format: 'date-time' });
export const ErrorRef = Type.Unsafe<unknown>({ $ref: 'Error#' });

/** The error answers a route may give, by status, for the OpenAPI document. */
export function errors(...statuses: number[]): Record<number, typeof ErrorRef> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorRef]));
}
