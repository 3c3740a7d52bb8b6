import { sha256, toBytes, type Hex } from 'viem';
import { OpenLedgerError } from '../errors.ts';
import { canonicalJson } from './ingest/index.ts';
import type { Policy } from './typed-data.ts';

/** What describes a datanet. Its sha256 (of the canonical JSON) is registered on-chain. */
export interface DatanetMetadata {
  name: string;
  summary: string;
  description: string;
  tags: string[];
  modality: 'text' | 'image' | 'audio';
  license: string;
  policy: Policy;
  rules: {
    acceptedTypes: string[];
    maxFileBytes: number;
    dailyQuotaPerContributor: number;
    dailyQuotaPerDatanet: number;
  };
}

export const TEXT_TYPES = ['txt', 'md', 'pdf', 'docx', 'json', 'jsonl', 'csv'];
export const DEFAULT_RULES: DatanetMetadata['rules'] = {
  acceptedTypes: TEXT_TYPES,
  maxFileBytes: 20 * 1024 * 1024,
  dailyQuotaPerContributor: 100,
  dailyQuotaPerDatanet: 10_000,
};
const MEDIA_TYPES = { image: ['image'], audio: ['audio'], text: TEXT_TYPES } as const;

export type DatanetMetadataInput = Partial<Omit<DatanetMetadata, 'rules'>> & {
  name: string;
  rules?: Partial<DatanetMetadata['rules']>;
};

/**
 * Fills defaults and checks a datanet's metadata. Deterministic: the CLI and the web app call it
 * too, so the hash a wallet signs is the hash the node computes.
 */
export function normalizeMetadata(input: DatanetMetadataInput): DatanetMetadata {
  const name = input.name.trim();
  if (name.length < 3 || name.length > 80) fail('name', 'must be 3 to 80 characters');
  const modality = input.modality ?? 'text';
  const rules = { ...DEFAULT_RULES, acceptedTypes: [...MEDIA_TYPES[modality]], ...input.rules };
  const allowed: readonly string[] = MEDIA_TYPES[modality];
  const badType = rules.acceptedTypes.find((t) => !allowed.includes(t));
  if (badType)
    fail(
      'rules.acceptedTypes',
      `"${badType}" is not a ${modality} type (allowed: ${allowed.join(', ')})`,
    );
  for (const key of ['maxFileBytes', 'dailyQuotaPerContributor', 'dailyQuotaPerDatanet'] as const) {
    if (!Number.isInteger(rules[key]) || rules[key] < 1)
      fail(`rules.${key}`, 'must be a positive integer');
  }
  const tags = [
    ...new Set((input.tags ?? []).map((t) => t.trim().toLowerCase()).filter(Boolean)),
  ].sort();
  if (tags.length > 20) fail('tags', 'at most 20 tags');
  return {
    name,
    summary: (input.summary ?? '').trim(),
    description: (input.description ?? '').trim(),
    tags,
    modality,
    license: (input.license ?? 'CC-BY-4.0').trim(),
    policy: input.policy ?? 'open',
    rules: { ...rules, acceptedTypes: [...new Set(rules.acceptedTypes)].sort() },
  };
}

export function metadataHash(metadata: DatanetMetadata): Hex {
  return sha256(toBytes(canonicalJson(metadata)));
}

function fail(field: string, message: string): never {
  throw new OpenLedgerError('VALIDATION_FAILED', `metadata.${field} ${message}.`, {
    details: { field },
  });
}
