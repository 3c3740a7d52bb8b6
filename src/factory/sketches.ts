/**
 * The gradient sketches of a training job (docs/factory.md, "Gradient sketches"): after
 * training, the gradient of every trained row's loss at the final adapter, projected with
 * engine/train/sketch.ts, stored as one blob whose sha256 the training manifest names, so the
 * influence channel of attribution can score rows against a served output's gradient later.
 *
 * The blob:
 *
 *     "OLSKETCH"                     8 bytes, ASCII
 *     header length H                uint32, little-endian
 *     header                         H bytes: canonical JSON (RFC 8785) of `SketchHeader`, UTF-8
 *     padding                        0 … 3 zero bytes, so the values start at a multiple of 4
 *     values                         count × layout.dims float32, little-endian; sketch i is
 *                                    row i, of manifest row header.rows[i].index
 */
import { createHash } from 'node:crypto';
import type { BlobStore } from '../blobs/index.ts';
import { canonicalJson } from '../datanets/ingest/index.ts';
import {
  DEFAULT_SKETCH_K,
  SKETCH_STREAM,
  adapterSketchLayout,
  checkSketchLayout,
  createMatmulBackend,
  createTrainingNetwork,
  projectGradient,
  sketchExamples,
  type LoraAdapter,
  type SketchGrouping,
  type SketchLayout,
  type TrainExample,
  type TrainableModel,
} from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { JobRow } from '../jobs/index.ts';
import type { TrainingManifest } from './dataset.ts';

export const SKETCH_MAGIC = 'OLSKETCH';

/** What a set of sketches is, enough to regenerate its projection and score against it. */
export interface SketchHeader {
  kind: 'openledger.gradient-sketches';
  formatVersion: 1;
  /** The projection's seed (the job's training seed); see engine/train/sketch.ts. */
  seed: number;
  /** The PRNG stream of parameter 0 (parameter p uses stream + p). */
  stream: number;
  projection: 'rademacher';
  /** Each gradient is of the row's mean loss over its unmasked target tokens. */
  loss: 'mean';
  /** Gradients are taken without dropout, on the adapter as served. */
  dropout: false;
  /** Optimizer steps of the adapter the gradients were taken at (the final one). */
  step: number;
  /** sha256 of the adapter GGUF (the job's adapter blob id). */
  adapterSha256: string;
  /** The matrix backend the gradients ran on ('onnxruntime' or 'typescript'). */
  backend: string;
  layout: SketchLayout;
  count: number;
  /** Per sketch, in order: its manifest row (index into manifest.rows), loss targets, loss. */
  rows: { index: number; rowHash: string; tokens: number; loss: number }[];
}

/** The sketches of a job as the job result and the manifest describe them. */
export interface SketchSummary {
  /** The blob's id: sha256 of its bytes (64 hex digits). */
  sha256: string;
  bytes: number;
  count: number;
  dims: number;
  k: number;
  grouping: SketchGrouping;
  seed: number;
  /** Time the per-example gradients took (in the worker). */
  seconds: number;
}

/**
 * A job's sketches stay within this many float32 per row (32 KB): K per tensor is 128 (see
 * docs/factory.md for the measurement), lowered for adapters of many tensors, never below 16.
 */
export const SKETCH_MAX_DIMS = 8192;

/** K per tensor for an adapter of `tensors` LoRA tensors (A and B counted apart). */
export function jobSketchK(tensors: number): number {
  return Math.min(
    DEFAULT_SKETCH_K,
    Math.max(16, Math.floor(SKETCH_MAX_DIMS / Math.max(1, tensors))),
  );
}

/** A decoded sketch blob: `values` holds count × header.layout.dims float32. */
export interface Sketches {
  header: SketchHeader;
  values: Float32Array;
}

function corrupt(message: string): never {
  throw new OpenLedgerError('FILE_INVALID', `gradient sketches: ${message}`);
}

/** The blob of `header` and `values` (see the module comment). */
export function encodeSketches(header: SketchHeader, values: Float32Array): Uint8Array {
  if (values.length !== header.count * header.layout.dims)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `gradient sketches: ${values.length} values are not ${header.count} × ${header.layout.dims}`,
    );
  const json = new TextEncoder().encode(canonicalJson(header));
  const start = 12 + json.length + ((4 - ((12 + json.length) % 4)) % 4);
  const bytes = new Uint8Array(start + 4 * values.length);
  bytes.set(new TextEncoder().encode(SKETCH_MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, json.length, true);
  bytes.set(json, 12);
  for (let i = 0; i < values.length; i++) view.setFloat32(start + 4 * i, values[i]!, true);
  return bytes;
}

/** Decodes a sketch blob; FILE_INVALID when it is not one (or is cut short). */
export function loadSketches(bytes: Uint8Array): Sketches {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== SKETCH_MAGIC)
    corrupt(`not a sketch file (no ${SKETCH_MAGIC} magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  if (12 + length > bytes.length) corrupt('the header runs past the end');
  let header: SketchHeader;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + length)),
    );
  } catch (cause) {
    throw new OpenLedgerError('FILE_INVALID', 'gradient sketches: the header is not JSON', {
      cause,
    });
  }
  if (header?.kind !== 'openledger.gradient-sketches' || header.formatVersion !== 1)
    corrupt(
      `unknown kind or format version (${String(header?.kind)} ${String(header?.formatVersion)})`,
    );
  try {
    checkSketchLayout(header.layout);
  } catch (cause) {
    throw new OpenLedgerError('FILE_INVALID', 'gradient sketches: the layout is inconsistent', {
      cause,
    });
  }
  if (!Number.isSafeInteger(header.count) || header.rows?.length !== header.count)
    corrupt(`count ${header.count} does not match ${header.rows?.length} rows`);
  const start = 12 + length + ((4 - ((12 + length) % 4)) % 4);
  const n = header.count * header.layout.dims;
  if (bytes.length !== start + 4 * n)
    corrupt(`${bytes.length} bytes; the header needs ${start + 4 * n}`);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = view.getFloat32(start + 4 * i, true);
  return { header, values };
}

/** The sketch of row i (a view into `values`). */
export function sketchRow(sketches: Sketches, i: number): Float32Array {
  const { dims } = sketches.header.layout;
  return sketches.values.subarray(i * dims, (i + 1) * dims);
}

/** A trained row of the job: its index in the manifest, its hash and its rendered example. */
export interface SketchRowInput {
  index: number;
  rowHash: string;
  example: TrainExample;
}

export interface SketchTrainingOptions {
  model: TrainableModel;
  /** The final adapter (as encoded in `adapterBytes`). */
  adapter: LoraAdapter;
  adapterBytes: Uint8Array;
  rows: readonly SketchRowInput[];
  seed: number;
  step: number;
  k?: number;
  grouping?: SketchGrouping;
}

/**
 * The sketch blob of a job's trained rows (in manifest order): one forward and backward of one
 * row at a time at the final adapter, on a backend of its own. A row listed twice (the same
 * content in two datanets) is computed once and stored twice, so each manifest row has its own.
 */
export async function sketchTrainingSet(
  options: SketchTrainingOptions,
): Promise<{ bytes: Uint8Array; seconds: number }> {
  const started = performance.now();
  const layout = adapterSketchLayout(options.adapter, {
    k: options.k ?? jobSketchK(options.adapter.parameters().length),
    grouping: options.grouping ?? 'tensor',
  });
  const seed = options.seed >>> 0;
  const backend = await createMatmulBackend();
  const unique = new Map<string, number>(); // rowHash → position in `distinct`
  const distinct: TrainExample[] = [];
  for (const row of options.rows) {
    if (unique.has(row.rowHash)) continue;
    unique.set(row.rowHash, distinct.length);
    distinct.push(row.example);
  }
  let computed: Awaited<ReturnType<typeof sketchExamples>>;
  try {
    const network = createTrainingNetwork(options.model, options.adapter, { backend });
    computed = await sketchExamples(network, distinct, { seed, layout });
  } finally {
    await backend.close();
  }
  const { dims } = layout;
  const values = new Float32Array(options.rows.length * dims);
  const rows = options.rows.map((row, i) => {
    const at = unique.get(row.rowHash)!;
    values.set(computed.values.subarray(at * dims, (at + 1) * dims), i * dims);
    const { loss, tokens } = computed.losses[at]!;
    return { index: row.index, rowHash: row.rowHash, tokens, loss };
  });
  const header: SketchHeader = {
    kind: 'openledger.gradient-sketches',
    formatVersion: 1,
    seed,
    stream: SKETCH_STREAM,
    projection: 'rademacher',
    loss: 'mean',
    dropout: false,
    step: options.step,
    adapterSha256: createHash('sha256').update(options.adapterBytes).digest('hex'),
    backend: backend.name,
    layout,
    count: rows.length,
    rows,
  };
  return { bytes: encodeSketches(header, values), seconds: (performance.now() - started) / 1000 };
}

/** Stores a job's sketch blob; answers what the result and the manifest say of it. */
export async function storeSketches(
  blobs: BlobStore,
  bytes: Uint8Array,
  seconds: number,
): Promise<SketchSummary> {
  const { header } = loadSketches(bytes);
  const blob = await blobs.put(bytes);
  return {
    sha256: blob.id,
    bytes: bytes.length,
    count: header.count,
    dims: header.layout.dims,
    k: header.layout.k,
    grouping: header.layout.grouping,
    seed: header.seed,
    seconds: Math.round(seconds * 1000) / 1000,
  };
}

/**
 * The sketch blob of a succeeded training job of `caller` (NOT_FOUND for anyone else's job, as
 * for the job itself; JOB_NOT_SUCCEEDED before it succeeds; NOT_FOUND for a job trained before
 * sketches were stored).
 */
export async function jobSketches(
  deps: { blobs: BlobStore },
  job: JobRow,
  caller: string,
): Promise<{ bytes: Uint8Array; summary: SketchSummary }> {
  if (job.owner.toLowerCase() !== caller.toLowerCase() || job.kind !== 'factory.train')
    throw new OpenLedgerError('NOT_FOUND', `You have no training job ${job.id}.`);
  if (job.status !== 'succeeded' || job.result === null)
    throw new OpenLedgerError(
      'JOB_NOT_SUCCEEDED',
      `Job ${job.id} is ${job.status}; only a succeeded training job has gradient sketches.`,
      { details: { status: job.status } },
    );
  const summary = (job.result as { sketches?: SketchSummary }).sketches;
  if (summary === undefined)
    throw new OpenLedgerError('NOT_FOUND', `Job ${job.id} has no gradient sketches.`, {
      hint: 'Jobs trained before sketches were stored have none; train again to get them.',
    });
  return { bytes: new Uint8Array(await deps.blobs.get(summary.sha256)), summary };
}

export { projectGradient };

/** What the training manifest records of the sketches (no timings: the manifest is content). */
export function manifestSketches(
  summary: SketchSummary,
): NonNullable<TrainingManifest['gradientSketches']> {
  const { seconds: _, ...rest } = summary;
  return rest;
}
