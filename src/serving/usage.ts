import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson } from '../datanets/ingest/hash.ts';
import { schema, type Db } from '../db/index.ts';
import type { InferenceStatus } from '../db/schema.ts';

export type InferenceEndpoint = 'chat.completions' | 'completions' | 'embeddings';

/**
 * What a node attests about one inference call. Its canonical JSON (RFC 8785) hashes to the
 * receipt hash returned to the caller and stored with the usage row, so either side can later
 * show exactly what was served. `fee` is the OPEN wei charged (decimal string; null for a free
 * call), and attribution will reference receipts by hash.
 */
export interface InferenceReceipt {
  version: 1;
  id: string;
  chainId: number;
  caller: string;
  endpoint: InferenceEndpoint;
  model: string;
  baseModel: { name: string; sha256: string };
  adapters: { id: string; weight: number }[];
  publishedModelId: number | null;
  promptTokens: number;
  completionTokens: number;
  /** sha256 of the exact prompt tokens (as little-endian uint32) and of the output text. */
  inputSha256: string;
  outputSha256: string;
  status: InferenceStatus;
  latencyMs: number;
  createdAt: string;
  /** OPEN wei (decimal string) at the model's on-chain price; null when the call is free. */
  fee: string | null;
}

export interface UsageInput {
  id?: string;
  chainId: number;
  caller: { address: string; credentialId: string };
  endpoint: InferenceEndpoint;
  model: string;
  baseModel: { name: string; sha256: string };
  adapters: { id: string; weight: number }[];
  publishedModelId: number | undefined;
  promptTokens: readonly number[];
  /** Counted separately: embeddings have no completion. */
  completionTokens: number;
  output: string;
  status: InferenceStatus;
  latencyMs: number;
  /** The fee in OPEN wei; undefined for a free call. */
  feeWei?: bigint | undefined;
}

export function receiptHash(receipt: InferenceReceipt): string {
  return createHash('sha256').update(canonicalJson(receipt)).digest('hex');
}

/** Writes the usage row with its receipt; returns the receipt and its hash. */
export async function recordUsage(
  db: Db,
  input: UsageInput,
): Promise<{ receipt: InferenceReceipt; hash: string }> {
  const tokens = Buffer.alloc(input.promptTokens.length * 4);
  input.promptTokens.forEach((t, i) => tokens.writeUInt32LE(t, i * 4));
  const receipt: InferenceReceipt = {
    version: 1,
    id: input.id ?? randomUUID(),
    chainId: input.chainId,
    caller: input.caller.address.toLowerCase(),
    endpoint: input.endpoint,
    model: input.model,
    baseModel: input.baseModel,
    adapters: input.adapters,
    publishedModelId: input.publishedModelId ?? null,
    promptTokens: input.promptTokens.length,
    completionTokens: input.completionTokens,
    inputSha256: createHash('sha256').update(tokens).digest('hex'),
    outputSha256: createHash('sha256').update(input.output).digest('hex'),
    status: input.status,
    latencyMs: Math.round(input.latencyMs * 1000) / 1000,
    createdAt: new Date().toISOString(),
    fee: input.feeWei === undefined ? null : input.feeWei.toString(),
  };
  const hash = receiptHash(receipt);
  const row = {
    id: receipt.id,
    caller: receipt.caller,
    credentialId: input.caller.credentialId,
    endpoint: receipt.endpoint,
    model: receipt.model,
    baseModel: receipt.baseModel.name,
    adapters: receipt.adapters,
    publishedModelId: receipt.publishedModelId,
    promptTokens: receipt.promptTokens,
    completionTokens: receipt.completionTokens,
    latencyMs: receipt.latencyMs,
    status: receipt.status,
    receipt,
    receiptHash: hash,
    feeWei: receipt.fee,
    createdAt: new Date(receipt.createdAt),
  };
  if (receipt.fee === null) {
    await db.insert(schema.inferenceUsage).values(row);
  } else {
    // A paid call keeps what attribution reads (and what its caller needs to verify the
    // attribution receipt): the exact prompt tokens and the output.
    await db.transaction(async (tx) => {
      await tx.insert(schema.inferenceUsage).values(row);
      await tx.insert(schema.inferencePayloads).values({
        usageId: receipt.id,
        promptTokens: [...input.promptTokens],
        output: input.output,
      });
    });
  }
  return { receipt, hash };
}
