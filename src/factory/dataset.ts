/**
 * The training set of a job and its provenance: the rows of the chosen datanet versions (read
 * access checked for the job's owner first), a held-out split chosen by row hash, and the
 * training manifest, canonical JSON naming every row used, whose it is and how many tokens of it
 * reached the loss.
 */
import { createHash } from 'node:crypto';
import { sha256, toBytes, type Address, type Hex } from 'viem';
import type { BlobStore } from '../blobs/index.ts';
import type { DatanetService } from '../datanets/index.ts';
import { canonicalJson } from '../datanets/ingest/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { DatanetRef, TrainParams } from './params.ts';
import type { ChatTurn } from './templates.ts';

/** One exported row, with where it came from. */
export interface DatasetRow {
  datanetId: number;
  version: number;
  rowHash: string;
  contributor: Address;
  contributionId: string;
  content: unknown;
  messages?: ChatTurn[];
}

export interface ResolvedDatanet {
  id: number;
  version: number;
  root: string;
  rowCount: number;
}

/**
 * Checks that `owner` may read every datanet (FORBIDDEN, or NOT_FOUND, before anything else is
 * done), then exports their rows, in the order of `refs` and each version's manifest order.
 */
export async function loadDatasetRows(
  datanets: DatanetService,
  owner: Address,
  refs: readonly DatanetRef[],
): Promise<{ datanets: ResolvedDatanet[]; rows: DatasetRow[] }> {
  for (const ref of refs) await datanets.assertCanRead(ref.id, owner);
  const resolved: ResolvedDatanet[] = [];
  const rows: DatasetRow[] = [];
  for (const ref of refs) {
    const exported = await datanets.exportVersion(ref.id, ref.version);
    const version = exported.version.version;
    resolved.push({
      id: ref.id,
      version,
      root: exported.version.root,
      rowCount: exported.rows.length,
    });
    for (const row of exported.rows)
      rows.push({
        datanetId: ref.id,
        version,
        rowHash: row.rowHash,
        contributor: row.contributor,
        contributionId: row.contributionId,
        content: row.content,
        ...(row.messages ? { messages: row.messages } : {}),
      });
  }
  if (rows.length === 0)
    throw new OpenLedgerError('VALIDATION_FAILED', 'The chosen datanet versions have no rows.');
  return { datanets: resolved, rows };
}

/** A row's bucket in [0, 10000): sha256 of its hash, so the split is stable and needs no state. */
export function splitBucket(rowHash: string): number {
  return (
    createHash('sha256').update(`openledger-split:${rowHash}`).digest().readUInt32BE(0) % 10_000
  );
}

/**
 * Which rows are held out: those whose bucket is below evalPercent %, so the same row is on the
 * same side in every job (and duplicates never straddle the split). With evalPercent > 0 and at
 * least two distinct rows, at least one row is held out and at least one trained on.
 */
export function heldOut(rows: readonly { rowHash: string }[], evalPercent: number): Set<string> {
  const hashes = [...new Set(rows.map((r) => r.rowHash))];
  const byBucket = hashes
    .map((h) => ({ h, b: splitBucket(h) }))
    .sort((x, y) => x.b - y.b || (x.h < y.h ? -1 : 1));
  if (evalPercent <= 0 || hashes.length < 2) return new Set();
  const chosen = byBucket.filter((x) => x.b < evalPercent * 100).map((x) => x.h);
  if (chosen.length === 0) chosen.push(byBucket[0]!.h);
  if (chosen.length === hashes.length) chosen.pop();
  return new Set(chosen);
}

export interface ManifestRow {
  datanetId: number;
  version: number;
  rowHash: string;
  contributor: Address;
  contributionId: string;
  split: 'train' | 'eval';
  /** Tokens of the row that were loss targets (after template masking and truncation). */
  tokens: number;
  truncated: boolean;
}

export interface TrainingManifest {
  kind: 'openledger.training-manifest';
  formatVersion: 1;
  jobId: string;
  owner: Address;
  baseModel: { name: string; sha256: string; bytes: number };
  template: TrainParams['template'];
  hyperparameters: TrainParams['hyperparameters'];
  datanets: ResolvedDatanet[];
  split: { method: 'sha256-bucket'; evalPercent: number };
  rows: ManifestRow[];
  /** Per contributor: rows trained on and their loss tokens (each row counted once). */
  contributors: Record<string, { rows: number; tokens: number }>;
  totals: { rows: number; trainRows: number; evalRows: number; tokens: number };
  /**
   * The blob of per-row gradient sketches (factory/sketches.ts) and its shape, so the manifest
   * hash on-chain also fixes the sketches the influence channel scores against.
   */
  gradientSketches?: {
    sha256: string;
    bytes: number;
    count: number;
    dims: number;
    k: number;
    grouping: 'block' | 'tensor';
    seed: number;
  };
}

export function contributorTotals(rows: readonly ManifestRow[]): TrainingManifest['contributors'] {
  const out: TrainingManifest['contributors'] = {};
  for (const row of rows) {
    if (row.split !== 'train') continue;
    const entry = (out[row.contributor] ??= { rows: 0, tokens: 0 });
    entry.rows += 1;
    entry.tokens += row.tokens;
  }
  return out;
}

/** Stores the manifest's canonical JSON as a blob; its hash is sha256 of those bytes. */
export async function storeManifest(
  blobs: BlobStore,
  manifest: TrainingManifest,
): Promise<{ manifestBlobId: string; manifestHash: Hex }> {
  const json = canonicalJson(manifest);
  const blob = await blobs.put(json);
  return { manifestBlobId: blob.id, manifestHash: sha256(toBytes(json)) };
}
