/**
 * Cached adapter merges (issue #5, item 4): several llama.cpp LoRA adapters of one base model
 * become one new adapter, stored in the blob store under the sha256 of its bytes, with its recipe
 * and sources recorded in `adapter_merges` (its lineage). The same recipe asked again is answered
 * from that table without recomputing.
 *
 * llama.cpp applies a LoRA pair as W + s·B·A with s = scale · alpha / r (r = ne[0] of lora_b, per
 * tensor; alpha 0 or absent: s = scale). A is ne [in, r] (row-major [r][in]), B is ne [r, out]
 * (row-major [out][r]), so ΔW = s·B·A is row-major [out][in].
 *
 * Methods:
 * - `linear`: ΔW' = Σ wᵢ ΔWᵢ exactly, by concatenating along the rank: A' = [A₁; …; Aₙ],
 *   B' = [w₁s₁B₁ | … | wₙsₙBₙ]. With `rank`, the sum is truncated to that rank by SVD instead.
 * - `ties` (Yadav et al. 2023, as PEFT's `ties`): each ΔWᵢ keeps its `density` fraction of entries
 *   of largest magnitude; each entry's sign is elected as the sign of the sum of the trimmed
 *   deltas (≥ 0: +); the merged entry is the mean, over the sources that agree with that sign,
 *   of wᵢ·ΔWᵢ (divided by how many agree).
 * - `dare` (Yu et al. 2023, PEFT's `dare_linear`): each entry of each ΔWᵢ is kept with probability
 *   `density` and rescaled by 1/density (else dropped), then ΔW' = Σ wᵢ ΔWᵢ. Deterministic per
 *   `seed`.
 * - `dare_ties`: DARE's random drop, then TIES's sign election and disjoint mean.
 * Except for exact `linear`, the merged ΔW' of each tensor is brought back to a LoRA of `rank` by
 * truncated SVD (B' = U_k Σ_k, A' = V_kᵀ), and the relative Frobenius error of that truncation is
 * reported.
 *
 * Memory is bounded by one target tensor: the deltas are produced a block of rows at a time from
 * the small A and B factors; only the merged ΔW' of the current tensor (out × in float32) and, for
 * TIES, one source's full delta while its magnitude threshold is found are whole.
 */
import { createHash } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { OpenLedgerError } from '../errors.ts';
import { canonicalJson } from '../datanets/ingest/hash.ts';
import type { BlobStore } from '../blobs/index.ts';
import { schema, type Db } from '../db/index.ts';
import {
  GGML_TYPE,
  encodeGguf,
  gguf,
  ggufString,
  readGguf,
  type GgufFile,
  type GgufTensorInfo,
  type GgufTensorInput,
  type GgufValue,
} from '../engine/gguf/index.ts';
import { Prng } from '../engine/train/prng.ts';
import type { AdapterRequest, ServingEngine } from './engine.ts';

export const MERGE_METHODS = ['linear', 'ties', 'dare', 'dare_ties'] as const;
export type MergeMethod = (typeof MERGE_METHODS)[number];

export const MIN_MERGE_SOURCES = 2;
export const MAX_MERGE_SOURCES = 8;
export const MAX_MERGE_WEIGHT = 10;
export const MAX_MERGE_RANK = 512;
/**
 * Default densities: TIES's paper keeps the top 20 % (k = 20); DARE is robust up to dropping 90 %
 * of a fine-tune's delta, but a LoRA delta is brought back to a low rank afterwards, which undoes
 * part of the rescaled drop, so the default drops half.
 */
export const DEFAULT_DENSITY: Readonly<Record<Exclude<MergeMethod, 'linear'>, number>> = {
  ties: 0.2,
  dare: 0.5,
  dare_ties: 0.5,
};

/** A method's parameters with every default filled in: what the recipe hash covers. */
export interface MergeParams {
  /** ties, dare, dare_ties: the fraction of each delta's entries kept. */
  density?: number;
  /** The merged adapter's rank (SVD truncation); linear without it: exact (Σ of source ranks). */
  rank?: number;
  /** dare, dare_ties: the seed of the random drop. */
  seed?: number;
}

function validation(message: string, field: string, hint?: string): OpenLedgerError {
  return new OpenLedgerError('VALIDATION_FAILED', message, {
    details: { field },
    ...(hint === undefined ? {} : { hint }),
  });
}

/**
 * Checks a method's parameters and fills in its defaults (`rank` of SVD methods: `defaultRank`,
 * the largest source rank), so that equal merges get equal recipes however they were asked.
 */
export function normalizeMergeParams(
  method: string,
  input: { density?: number | undefined; rank?: number | undefined; seed?: number | undefined },
  defaultRank: number,
): { method: MergeMethod; params: MergeParams } {
  if (!(MERGE_METHODS as readonly string[]).includes(method)) {
    throw validation(`"${method}" is not a merge method (${MERGE_METHODS.join(', ')}).`, 'method');
  }
  const m = method as MergeMethod;
  const params: MergeParams = {};
  if (input.rank !== undefined) {
    if (!Number.isInteger(input.rank) || input.rank < 1 || input.rank > MAX_MERGE_RANK)
      throw validation(`rank must be a whole number from 1 to ${MAX_MERGE_RANK}.`, 'rank');
    params.rank = input.rank;
  }
  if (m === 'linear') {
    if (input.density !== undefined)
      throw validation('density is for ties, dare and dare_ties, not linear.', 'density');
    if (input.seed !== undefined)
      throw validation('seed is for dare and dare_ties, not linear.', 'seed');
    return { method: m, params };
  }
  const density = input.density ?? DEFAULT_DENSITY[m];
  if (!Number.isFinite(density) || density <= 0 || density > 1)
    throw validation('density must be a number in (0, 1].', 'density');
  params.density = density;
  params.rank ??= Math.min(defaultRank, MAX_MERGE_RANK);
  if (m === 'dare' || m === 'dare_ties') {
    const seed = input.seed ?? 0;
    if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw validation('seed must be a whole number from 0 to 4294967295.', 'seed');
    params.seed = seed;
  } else if (input.seed !== undefined) {
    throw validation('seed is for dare and dare_ties (ties is not random).', 'seed');
  }
  return { method: m, params };
}

// ----- reading adapters ---------------------------------------------------------------------------

/** One LoRA pair of an adapter file. */
export interface LoraPairInfo {
  /** The base tensor it modifies (e.g. `blk.0.attn_q.weight`). */
  target: string;
  a: GgufTensorInfo;
  b: GgufTensorInfo;
  rank: number;
  /** ΔW is rows × cols = out × in. */
  rows: number;
  cols: number;
}

export interface LoraFileInfo {
  file: GgufFile;
  architecture: string;
  /** `adapter.lora.alpha`; 0 when absent (llama.cpp then applies B·A unscaled). */
  alpha: number;
  pairs: Map<string, LoraPairInfo>;
  maxRank: number;
}

const LORA_TENSOR = /^(.+)\.lora_([ab])$/;

/** Reads a llama.cpp LoRA GGUF's header and pairs its tensors (ADAPTER_INVALID when it cannot). */
export async function readLoraFile(path: string): Promise<LoraFileInfo> {
  const file = await readGguf(path).catch((error: unknown) => {
    throw new OpenLedgerError(
      'ADAPTER_INVALID',
      `The adapter is not a readable GGUF file: ${(error as Error).message}`,
      { cause: error },
    );
  });
  const invalid = (message: string) =>
    new OpenLedgerError('ADAPTER_INVALID', `${path}: the adapter is malformed: ${message}.`);
  const meta = file.metadata;
  if (meta.get('general.type')?.value !== 'adapter' || meta.get('adapter.type')?.value !== 'lora')
    throw invalid('general.type must be "adapter" and adapter.type "lora"');
  const alphaValue = meta.get('adapter.lora.alpha');
  if (alphaValue !== undefined && alphaValue.type !== 'float32')
    throw invalid(`adapter.lora.alpha is ${alphaValue.type}, llama.cpp needs float32`);
  const halves = new Map<string, { a?: GgufTensorInfo; b?: GgufTensorInfo }>();
  for (const tensor of file.tensors) {
    const match = LORA_TENSOR.exec(tensor.name);
    if (!match || tensor.dims.length !== 2)
      throw invalid(`tensor "${tensor.name}" is not a 2-D lora_a or lora_b tensor`);
    const half = halves.get(match[1]!) ?? {};
    half[match[2] as 'a' | 'b'] = tensor;
    halves.set(match[1]!, half);
  }
  const pairs = new Map<string, LoraPairInfo>();
  let maxRank = 0;
  for (const [target, { a, b }] of halves) {
    if (!a || !b) throw invalid(`"${target}" lacks its lora_${a ? 'b' : 'a'} tensor`);
    if (a.dims[1] !== b.dims[0])
      throw invalid(`"${target}" has ranks ${a.dims[1]} and ${b.dims[0]}`);
    const rank = b.dims[0]!;
    pairs.set(target, { target, a, b, rank, rows: b.dims[1]!, cols: a.dims[0]! });
    maxRank = Math.max(maxRank, rank);
  }
  if (pairs.size === 0) throw invalid('it has no tensors');
  return {
    file,
    architecture: ggufString(meta, 'general.architecture', ''),
    alpha: alphaValue === undefined ? 0 : (alphaValue.value as number),
    pairs,
    maxRank,
  };
}

/** llama.cpp's per-tensor scale for adapter scale 1: alpha / r, or 1 when alpha is 0. */
export function loraScale(alpha: number, rank: number): number {
  return alpha ? alpha / rank : 1;
}

// ----- merging deltas -----------------------------------------------------------------------------

/** One source's delta of one tensor, produced a block of rows at a time. */
export interface DeltaSource {
  weight: number;
  /** Writes rows [from, to) of the (scaled) delta into `out`, row-major. */
  rows(from: number, to: number, out: Float32Array): void;
}

/** A delta held whole (row-major rows × cols), as a DeltaSource. */
export function denseDelta(delta: Float32Array, cols: number, weight: number): DeltaSource {
  return { weight, rows: (from, to, out) => out.set(delta.subarray(from * cols, to * cols)) };
}

/** s·B·A of a LoRA pair (B row-major [rows][r], A row-major [r][cols]) as a DeltaSource. */
export function loraDelta(
  a: Float32Array,
  b: Float32Array,
  rank: number,
  cols: number,
  scale: number,
  weight: number,
): DeltaSource {
  return {
    weight,
    rows(from, to, out) {
      out.fill(0, 0, (to - from) * cols);
      for (let row = from; row < to; row++) {
        const o = (row - from) * cols;
        for (let j = 0; j < rank; j++) {
          const c = scale * b[row * rank + j]!;
          if (c === 0) continue;
          const aj = j * cols;
          for (let x = 0; x < cols; x++) out[o + x]! += c * a[aj + x]!;
        }
      }
    },
  };
}

/** A stream of the DARE mask: the same seed, source and tensor give the same mask. */
function dareStream(seed: number, source: number, tensor: string): Prng {
  const digest = createHash('sha256').update(`${source}\0${tensor}`).digest();
  return new Prng(seed, digest.readUInt32LE(0));
}

/**
 * The magnitude threshold that keeps exactly `k` entries of `delta`: every entry above `threshold`
 * and, in row-major order, the first `quota` entries equal to it (PEFT's topk keeps exactly k;
 * the order makes our choice among equal magnitudes reproducible).
 */
export function magnitudeThreshold(
  delta: Float32Array,
  k: number,
): { threshold: number; quota: number } {
  if (k <= 0) return { threshold: Infinity, quota: 0 };
  if (k >= delta.length) return { threshold: 0, quota: delta.length };
  const abs = new Float32Array(delta.length);
  for (let i = 0; i < delta.length; i++) abs[i] = Math.abs(delta[i]!);
  const threshold = selectKthLargest(abs, k);
  let above = 0;
  for (let i = 0; i < delta.length; i++) if (Math.abs(delta[i]!) > threshold) above++;
  return { threshold, quota: k - above };
}

/**
 * The k-th largest value (1-based) of `values`, which it reorders: quickselect with a three-way
 * partition, so runs of equal values (pruned zeros) cost no more than distinct ones.
 */
function selectKthLargest(values: Float32Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  let want = k - 1; // index in descending order
  let state = 0x9e3779b9;
  for (;;) {
    if (lo >= hi) return values[lo]!;
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const pivot = values[lo + (state % (hi - lo + 1))]!;
    // [lo, gt) > pivot, [gt, i) == pivot, (lt, hi] < pivot
    let gt = lo;
    let i = lo;
    let lt = hi;
    while (i <= lt) {
      const v = values[i]!;
      if (v > pivot) {
        values[i] = values[gt]!;
        values[gt++] = v;
        i++;
      } else if (v < pivot) {
        values[i] = values[lt]!;
        values[lt--] = v;
      } else i++;
    }
    if (want < gt - lo) hi = gt - 1;
    else if (want < i - lo) return pivot;
    else {
      want -= i - lo;
      lo = i;
    }
  }
}

/** Lets the event loop run between blocks of work: a merge must not stall the node's serving. */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The merged delta of one tensor (row-major rows × cols) by `method`. `tensor` names it in the
 * DARE stream, `sourceIndex[i]` is source i's position in the recipe (also for the stream).
 */
export async function mergeDeltas(
  method: MergeMethod,
  sources: readonly DeltaSource[],
  rows: number,
  cols: number,
  options: { density?: number; seed?: number; tensor?: string; sourceIndex?: readonly number[] },
): Promise<Float32Array> {
  const n = sources.length;
  const density = method === 'linear' ? 1 : (options.density ?? DEFAULT_DENSITY[method]);
  const size = rows * cols;
  // TIES: each source's magnitude threshold over its whole delta, one source at a time.
  const thresholds: { threshold: number; quota: number }[] = [];
  if (method === 'ties') {
    const whole = new Float32Array(size);
    for (const source of sources) {
      source.rows(0, rows, whole);
      thresholds.push(magnitudeThreshold(whole, Math.floor(density * size)));
      await breathe();
    }
  }
  const streams =
    method === 'dare' || method === 'dare_ties'
      ? sources.map((_, i) =>
          dareStream(options.seed ?? 0, options.sourceIndex?.[i] ?? i, options.tensor ?? ''),
        )
      : [];
  const merged = new Float32Array(size);
  const blockRows = Math.max(1, Math.min(rows, Math.floor((1 << 18) / Math.max(1, cols))));
  const blocks = sources.map(() => new Float32Array(blockRows * cols));
  const signed = method === 'ties' || method === 'dare_ties';
  for (let from = 0; from < rows; from += blockRows) {
    const to = Math.min(rows, from + blockRows);
    const length = (to - from) * cols;
    for (let s = 0; s < n; s++) {
      const block = blocks[s]!;
      sources[s]!.rows(from, to, block);
      if (method === 'ties') {
        const t = thresholds[s]!;
        for (let i = 0; i < length; i++) {
          const v = Math.abs(block[i]!);
          if (v > t.threshold) continue;
          if (v === t.threshold && t.quota > 0) t.quota--;
          else block[i] = 0;
        }
      } else if (streams.length > 0) {
        const stream = streams[s]!;
        const keep = density * 4294967296;
        for (let i = 0; i < length; i++)
          block[i] = stream.nextUint32() < keep ? block[i]! / density : 0;
      }
    }
    for (let i = 0; i < length; i++) {
      let value = 0;
      if (!signed) {
        for (let s = 0; s < n; s++) value += sources[s]!.weight * blocks[s]![i]!;
      } else {
        let total = 0;
        for (let s = 0; s < n; s++) total += blocks[s]![i]!;
        const sign = total >= 0 ? 1 : -1;
        let agree = 0;
        for (let s = 0; s < n; s++) {
          const v = blocks[s]![i]!;
          if (Math.sign(v) === sign) {
            value += sources[s]!.weight * v;
            agree++;
          }
        }
        if (agree > 1) value /= agree;
      }
      merged[from * cols + i] = value;
    }
    await breathe();
  }
  return merged;
}

// ----- truncated SVD ------------------------------------------------------------------------------
//
// Written here rather than taken from ml-matrix (the well-kept npm choice): its SVD is a full
// Golub–Kahan decomposition, O(min(m,n)·m·n) on the whole delta — minutes for a 4096×4096
// projection — while a rank-k LoRA needs only the top k triplets. A randomized range finder
// (Halko, Martinsson & Tropp 2011, alg. 4.4 with two power iterations) reduces the problem to a
// (k+10)×n matrix, whose SVD one-sided Jacobi gives accurately in a few lines.

const OVERSAMPLE = 10;
const POWER_ITERATIONS = 2;

export interface TruncatedSvd {
  /** B = U_k·Σ_k, row-major [rows][k]. */
  b: Float32Array;
  /** A = V_kᵀ, row-major [k][cols]. */
  a: Float32Array;
  rank: number;
  singularValues: Float64Array;
  /** ‖M − B·A‖_F and ‖M‖_F, computed directly. */
  residual: number;
  norm: number;
}

/** Orthonormalizes the columns of row-major m × l `q` in place (twice Gram–Schmidt). */
function orthonormalize(q: Float64Array, m: number, l: number): void {
  const column = new Float64Array(m);
  let largest = 0;
  for (let j = 0; j < l; j++) {
    for (let i = 0; i < m; i++) column[i] = q[i * l + j]!;
    let original = 0;
    for (let i = 0; i < m; i++) original += column[i]! * column[i]!;
    largest = Math.max(largest, Math.sqrt(original));
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[i * l + p]! * column[i]!;
        if (dot !== 0) for (let i = 0; i < m; i++) column[i]! -= dot * q[i * l + p]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += column[i]! * column[i]!;
    norm = Math.sqrt(norm);
    // A column in the span of the earlier ones (the matrix has lower rank) becomes zero.
    const keep = norm > 1e-13 * largest && norm > 0;
    for (let i = 0; i < m; i++) q[i * l + j] = keep ? column[i]! / norm : 0;
  }
}

/** y (m × l) = M (m × n) · x (n × l), all row-major. */
function multiply(
  mat: Float32Array,
  m: number,
  n: number,
  x: Float64Array,
  l: number,
): Float64Array {
  const y = new Float64Array(m * l);
  for (let i = 0; i < m; i++) {
    const yi = i * l;
    for (let c = 0; c < n; c++) {
      const v = mat[i * n + c]!;
      if (v === 0) continue;
      const xc = c * l;
      for (let j = 0; j < l; j++) y[yi + j]! += v * x[xc + j]!;
    }
  }
  return y;
}

/** z (n × l) = Mᵀ (n × m) · q (m × l). */
function multiplyTransposed(
  mat: Float32Array,
  m: number,
  n: number,
  q: Float64Array,
  l: number,
): Float64Array {
  const z = new Float64Array(n * l);
  for (let i = 0; i < m; i++) {
    const qi = i * l;
    for (let c = 0; c < n; c++) {
      const v = mat[i * n + c]!;
      if (v === 0) continue;
      const zc = c * l;
      for (let j = 0; j < l; j++) z[zc + j]! += v * q[qi + j]!;
    }
  }
  return z;
}

/**
 * The best rank-`k` approximation B·A of row-major `rows` × `cols` matrix `mat` (to the accuracy
 * of the randomized range finder: exact when the matrix has rank ≤ k + 10, or k + 10 ≥ its
 * smaller side). Deterministic per `seed`.
 */
export async function truncatedSvd(
  mat: Float32Array,
  rows: number,
  cols: number,
  k: number,
  seed = 0,
): Promise<TruncatedSvd> {
  const m = rows;
  const n = cols;
  const rank = Math.min(k, m, n);
  const l = Math.min(rank + OVERSAMPLE, m, n);
  const random = new Prng(seed, 0x5fd);
  const omega = new Float64Array(n * l);
  for (let i = 0; i < omega.length; i++) omega[i] = random.normal();
  let q = multiply(mat, m, n, omega, l);
  orthonormalize(q, m, l);
  await breathe();
  for (let it = 0; it < POWER_ITERATIONS; it++) {
    const z = multiplyTransposed(mat, m, n, q, l);
    orthonormalize(z, n, l);
    q = multiply(mat, m, n, z, l);
    orthonormalize(q, m, l);
    await breathe();
  }
  // S = Qᵀ·M, l × n, row-major: its rows are the vectors one-sided Jacobi makes orthogonal.
  const zt = multiplyTransposed(mat, m, n, q, l); // n × l = (QᵀM)ᵀ
  const s = new Float64Array(l * n);
  for (let c = 0; c < n; c++) for (let j = 0; j < l; j++) s[j * n + c] = zt[c * l + j]!;
  // Hestenes: rotate pairs of rows of S until all are orthogonal; S = R·S', R (l × l) orthogonal.
  const r = new Float64Array(l * l);
  for (let j = 0; j < l; j++) r[j * l + j] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < l - 1; p++) {
      for (let t = p + 1; t < l; t++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let c = 0; c < n; c++) {
          const x = s[p * n + c]!;
          const y = s[t * n + c]!;
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const tan = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cos = 1 / Math.sqrt(1 + tan * tan);
        const sin = cos * tan;
        for (let c = 0; c < n; c++) {
          const x = s[p * n + c]!;
          const y = s[t * n + c]!;
          s[p * n + c] = cos * x - sin * y;
          s[t * n + c] = sin * x + cos * y;
        }
        for (let i = 0; i < l; i++) {
          const x = r[i * l + p]!;
          const y = r[i * l + t]!;
          r[i * l + p] = cos * x - sin * y;
          r[i * l + t] = sin * x + cos * y;
        }
      }
    }
    if (!rotated) break;
    await breathe();
  }
  const sigma = new Float64Array(l);
  for (let j = 0; j < l; j++) {
    let sum = 0;
    for (let c = 0; c < n; c++) sum += s[j * n + c]! ** 2;
    sigma[j] = Math.sqrt(sum);
  }
  const order = [...sigma.keys()].sort((x, y) => sigma[y]! - sigma[x]!).slice(0, rank);
  // M ≈ Q·S = (Q·R)·S': B = Q·R[:, order] (U·Σ, as S' rows carry σ), A = S'[order] / σ.
  const b = new Float32Array(m * rank);
  const a = new Float32Array(rank * n);
  for (const [kk, j] of order.entries()) {
    const sj = sigma[j]!;
    for (let i = 0; i < m; i++) {
      let sum = 0;
      for (let p = 0; p < l; p++) sum += q[i * l + p]! * r[p * l + j]!;
      b[i * rank + kk] = sum * sj;
    }
    if (sj > 0) for (let c = 0; c < n; c++) a[kk * n + c] = s[j * n + c]! / sj;
  }
  // The error of the rank-k factors as stored (float32), measured rather than inferred from σ:
  // ‖M‖² − Σσ² cancels catastrophically when the truncation is (nearly) exact.
  let residual = 0;
  let norm = 0;
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let kk = 0; kk < rank; kk++) {
      const c = b[i * rank + kk]!;
      if (c !== 0) for (let x = 0; x < n; x++) row[x]! += c * a[kk * n + x]!;
    }
    for (let x = 0; x < n; x++) {
      const v = mat[i * n + x]!;
      norm += v * v;
      residual += (v - row[x]!) ** 2;
    }
  }
  return {
    b,
    a,
    rank,
    singularValues: Float64Array.from(order.map((j) => sigma[j]!)),
    residual: Math.sqrt(residual),
    norm: Math.sqrt(norm),
  };
}

// ----- merging adapter files ----------------------------------------------------------------------

export interface MergeFilesInput {
  method: MergeMethod;
  params: MergeParams;
  sources: readonly { path: string; weight: number }[];
  /** Written as `general.base_model.0.name`. */
  baseModel: string;
  /** More metadata (the `openledger.merge.*` keys), written after the adapter's own. */
  metadata?: readonly [string, GgufValue][];
  name?: string;
}

export interface MergedAdapter {
  bytes: Uint8Array;
  /** The largest rank of any merged tensor. */
  rank: number;
  /** √(Σ residual²) / √(Σ ‖ΔW'‖²) over the tensors brought back by SVD; undefined when exact. */
  truncationError: number | undefined;
  tensors: number;
}

/**
 * Merges LoRA GGUF files (all of one base: same architecture, same shape per target tensor) into
 * the bytes of a new one. A target present in only some sources is merged from those.
 */
export async function mergeLoraFiles(input: MergeFilesInput): Promise<MergedAdapter> {
  const { method, params } = input;
  if (input.sources.length < MIN_MERGE_SOURCES || input.sources.length > MAX_MERGE_SOURCES)
    throw validation(
      `A merge takes ${MIN_MERGE_SOURCES} to ${MAX_MERGE_SOURCES} adapters; ${input.sources.length} given.`,
      'adapters',
    );
  const files = await Promise.all(input.sources.map((s) => readLoraFile(s.path)));
  const architecture = files[0]!.architecture;
  const targets = new Map<string, number[]>(); // target → indices of the sources that have it
  const shape = new Map<string, [number, number]>();
  for (const [i, f] of files.entries()) {
    if (f.architecture !== architecture)
      throw new OpenLedgerError(
        'ADAPTER_BASE_MISMATCH',
        `adapters[${i}] is for architecture "${f.architecture}", adapters[0] for "${architecture}".`,
        { hint: 'Merge adapters of one base model.' },
      );
    for (const [target, pair] of f.pairs) {
      const seen = shape.get(target);
      if (seen && (seen[0] !== pair.rows || seen[1] !== pair.cols))
        throw new OpenLedgerError(
          'ADAPTER_BASE_MISMATCH',
          `adapters[${i}] changes "${target}" as [${pair.cols}, ${pair.rows}], an earlier adapter as [${seen[1]}, ${seen[0]}].`,
          { hint: 'Merge adapters of one base model.' },
        );
      shape.set(target, [pair.rows, pair.cols]);
      targets.set(target, [...(targets.get(target) ?? []), i]);
    }
  }

  const out: {
    target: string;
    a: Float32Array;
    b: Float32Array;
    rank: number;
    cols: number;
    rows: number;
  }[] = [];
  let residual2 = 0;
  let norm2 = 0;
  let truncated = false;
  for (const [target, which] of targets) {
    const [rows, cols] = shape.get(target)!;
    const factors = await Promise.all(
      which.map(async (i) => {
        const pair = files[i]!.pairs.get(target)!;
        return {
          i,
          rank: pair.rank,
          scale: loraScale(files[i]!.alpha, pair.rank),
          a: await files[i]!.file.tensorFloat32(pair.a),
          b: await files[i]!.file.tensorFloat32(pair.b),
        };
      }),
    );
    const total = factors.reduce((sum, f) => sum + f.rank, 0);
    if (method === 'linear' && (params.rank === undefined || params.rank >= total)) {
      // Exact: concatenate along the rank, each source's weight and scale folded into its B.
      const a = new Float32Array(total * cols);
      const b = new Float32Array(rows * total);
      let at = 0;
      for (const f of factors) {
        a.set(f.a, at * cols);
        const c = input.sources[f.i]!.weight * f.scale;
        for (let row = 0; row < rows; row++)
          for (let j = 0; j < f.rank; j++) b[row * total + at + j] = c * f.b[row * f.rank + j]!;
        at += f.rank;
      }
      out.push({ target, a, b, rank: total, rows, cols });
      continue;
    }
    const deltas = factors.map((f) =>
      loraDelta(f.a, f.b, f.rank, cols, f.scale, input.sources[f.i]!.weight),
    );
    const merged = await mergeDeltas(method, deltas, rows, cols, {
      ...(params.density === undefined ? {} : { density: params.density }),
      ...(params.seed === undefined ? {} : { seed: params.seed }),
      tensor: target,
      sourceIndex: which,
    });
    if (merged.every((v) => v === 0)) continue; // nothing survived: leave the tensor out
    const svd = await truncatedSvd(merged, rows, cols, params.rank ?? total, params.seed ?? 0);
    truncated = true;
    residual2 += svd.residual ** 2;
    norm2 += svd.norm ** 2;
    out.push({ target, a: svd.a, b: svd.b, rank: svd.rank, rows, cols });
  }
  if (out.length === 0)
    throw validation(
      'The merge is empty: no entry of any delta survived.',
      'density',
      'Raise density, or check the weights.',
    );

  // llama.cpp scales each pair by alpha / r with one alpha for the file: B already holds the
  // whole scale, so alpha = the largest rank and each B is multiplied back by r / alpha.
  const alpha = Math.max(...out.map((t) => t.rank));
  const tensors: GgufTensorInput[] = [];
  for (const t of out) {
    if (t.rank !== alpha) for (let i = 0; i < t.b.length; i++) t.b[i]! *= t.rank / alpha;
    tensors.push(
      { name: `${t.target}.lora_a`, dims: [t.cols, t.rank], type: GGML_TYPE.F32, data: t.a },
      { name: `${t.target}.lora_b`, dims: [t.rank, t.rows], type: GGML_TYPE.F32, data: t.b },
    );
  }
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string(architecture)],
    ['general.type', gguf.string('adapter')],
    ...(input.name === undefined
      ? []
      : [['general.name', gguf.string(input.name)] as [string, GgufValue]]),
    ['general.base_model.count', gguf.uint32(1)],
    ['general.base_model.0.name', gguf.string(input.baseModel)],
    ['adapter.type', gguf.string('lora')],
    ['adapter.lora.alpha', gguf.float32(alpha)],
    ...(input.metadata ?? []),
  ];
  return {
    bytes: encodeGguf({ metadata, tensors }),
    rank: alpha,
    truncationError: truncated ? (norm2 > 0 ? Math.sqrt(residual2 / norm2) : 0) : undefined,
    tensors: out.length,
  };
}

// ----- the service: recipes, cache, lineage -------------------------------------------------------

export interface MergeRequest {
  method: string;
  adapters: readonly AdapterRequest[];
  baseModel?: string | undefined;
  name?: string | undefined;
  density?: number | undefined;
  rank?: number | undefined;
  seed?: number | undefined;
}

export interface MergeSourceRecord {
  /** sha256 of the source adapter. */
  id: string;
  weight: number;
  /** The reference as the caller wrote it (a name, `model:<id>`, `adapter:<sha256>`). */
  ref: string;
  publishedModelId?: number;
}

export interface MergeResult {
  id: string;
  name: string | undefined;
  cached: boolean;
  recipeHash: string;
  method: MergeMethod;
  params: MergeParams;
  baseModel: string;
  sources: MergeSourceRecord[];
  truncationError: number | undefined;
  rank: number;
  bytes: number;
  createdBy: string;
  createdAt: string;
}

export interface LineageNode {
  id: string;
  weight?: number;
  ref?: string;
  /** The recipe, when this adapter was made by a merge on this node. */
  merge?: {
    recipeHash: string;
    method: MergeMethod;
    params: MergeParams;
    baseModel: string;
    truncationError: number | undefined;
    rank: number;
    createdBy: string;
    createdAt: string;
  };
  sources?: LineageNode[];
}

/** How deep `lineage` follows merges of merges (each level is one table lookup). */
const MAX_LINEAGE_DEPTH = 16;

/** sha256 of the canonical JSON of what determines a merge's bytes. */
export function recipeHash(recipe: {
  method: MergeMethod;
  params: MergeParams;
  sources: readonly { id: string; weight: number }[];
  baseModel: string;
}): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        method: recipe.method,
        params: recipe.params,
        sources: recipe.sources.map((s) => ({ id: s.id, weight: s.weight })),
        baseModel: recipe.baseModel,
      }),
    )
    .digest('hex');
}

type MergeRow = typeof schema.adapterMerges.$inferSelect;

/**
 * Merges the node's adapters on request, caching by recipe. Merges run one at a time (each is
 * CPU-bound, and yields to the event loop between blocks), so a burst of requests queues
 * instead of multiplying the node's memory; a recipe finished while a request waited is then a
 * cache hit.
 */
export class AdapterMergeService {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      engine: ServingEngine;
      blobs: BlobStore;
      db: Db;
    },
  ) {}

  /** `caller`: the wallet asking, and whether it is one of the node's operators. */
  async merge(
    request: MergeRequest,
    principal: { address: string; operator: boolean },
  ): Promise<MergeResult> {
    const { engine } = this.deps;
    const caller = principal.address.toLowerCase();
    const count = request.adapters.length;
    if (count < MIN_MERGE_SOURCES || count > MAX_MERGE_SOURCES)
      throw validation(
        `A merge takes ${MIN_MERGE_SOURCES} to ${MAX_MERGE_SOURCES} adapters; ${count} given.`,
        'adapters',
      );
    for (const [i, a] of request.adapters.entries()) {
      const w = a.weight ?? 1;
      if (!Number.isFinite(w) || Math.abs(w) > MAX_MERGE_WEIGHT)
        throw validation(
          `adapters[${i}].weight must be a number from -${MAX_MERGE_WEIGHT} to ${MAX_MERGE_WEIGHT}.`,
          `adapters[${i}].weight`,
        );
    }
    if (request.name !== undefined && !principal.operator)
      throw new OpenLedgerError('FORBIDDEN', 'Only the operators of this node may name adapters.', {
        hint: 'Leave out `name` and call the merge as adapter:<id>.',
      });
    normalizeMergeParams(request.method, request, 1); // bad parameters fail before any work
    // The base: as given, else the first source's.
    const first = request.adapters[0]!.id;
    const baseModel = (
      await engine.resolve(request.baseModel ?? first).catch((error: unknown) => {
        if (
          request.baseModel === undefined &&
          (error as OpenLedgerError).code === 'MODEL_NOT_FOUND'
        )
          throw new OpenLedgerError(
            'ADAPTER_NOT_FOUND',
            `There is no adapter "${first}" (adapters[0]).`,
            {
              hint: 'Name a loaded adapter, adapter:<sha256> or a published model (model:<id>).',
              details: { field: 'adapters[0].id' },
            },
          );
        throw error;
      })
    ).base.info.name;
    const sources: (MergeSourceRecord & { path: string })[] = [];
    for (const [i, a] of request.adapters.entries()) {
      const target = await engine.resolve(baseModel, [{ id: a.id }]).catch((error: unknown) => {
        if (error instanceof OpenLedgerError && error.details === undefined)
          throw new OpenLedgerError(error.code, `adapters[${i}]: ${error.message}`, {
            ...(error.hint === undefined ? {} : { hint: error.hint }),
            details: { field: `adapters[${i}].id` },
          });
        throw error;
      });
      const adapter = target.adapters[0]!.adapter;
      if (target.publishedModelId !== undefined)
        await this.checkPublished(target.publishedModelId, principal, i);
      sources.push({
        id: adapter.id,
        weight: a.weight ?? 1,
        ref: a.id,
        path: adapter.path,
        ...(target.publishedModelId === undefined
          ? {}
          : { publishedModelId: target.publishedModelId }),
      });
    }
    const maxRank = Math.max(
      ...(await Promise.all(sources.map(async (s) => (await readLoraFile(s.path)).maxRank))),
    );
    const { method, params } = normalizeMergeParams(request.method, request, maxRank);
    const recipe = recipeHash({ method, params, sources, baseModel });

    const run = this.queue.then(() =>
      this.materialise({ recipe, method, params, sources, baseModel, caller }),
    );
    this.queue = run.catch(() => undefined);
    const { row, cached } = await run;
    if (request.name !== undefined) await this.name(request.name, row.id, baseModel);
    return { ...view(row), name: request.name, cached };
  }

  /** The cached row of `recipe`, or a new merge written to the blob store and recorded. */
  private async materialise(input: {
    recipe: string;
    method: MergeMethod;
    params: MergeParams;
    sources: (MergeSourceRecord & { path: string })[];
    baseModel: string;
    caller: string;
  }): Promise<{ row: MergeRow; cached: boolean }> {
    const { db, blobs } = this.deps;
    const [existing] = await db
      .select()
      .from(schema.adapterMerges)
      .where(eq(schema.adapterMerges.recipeHash, input.recipe));
    if (existing && (await blobs.has(existing.id))) return { row: existing, cached: true };
    const merged = await mergeLoraFiles({
      method: input.method,
      params: input.params,
      sources: input.sources,
      baseModel: input.baseModel,
      name: `merge-${input.recipe.slice(0, 12)}`,
      metadata: [
        ['openledger.merge.method', gguf.string(input.method)],
        ['openledger.merge.params', gguf.string(canonicalJson(input.params))],
        ['openledger.merge.recipe', gguf.string(input.recipe)],
        [
          'openledger.merge.sources',
          gguf.array(
            'string',
            input.sources.map((s) => s.id),
          ),
        ],
        [
          'openledger.merge.weights',
          gguf.array(
            'float64',
            input.sources.map((s) => s.weight),
          ),
        ],
      ],
    });
    const blob = await blobs.put(merged.bytes);
    if (existing) return { row: existing, cached: true }; // its blob had gone: written again
    const [row] = await db
      .insert(schema.adapterMerges)
      .values({
        id: blob.id,
        recipeHash: input.recipe,
        method: input.method,
        params: input.params,
        sources: input.sources.map(({ path: _path, ...s }) => s),
        baseModel: input.baseModel,
        rank: merged.rank,
        bytes: blob.size,
        truncationError: merged.truncationError ?? null,
        createdBy: input.caller.toLowerCase(),
      })
      .onConflictDoNothing()
      .returning();
    if (row) return { row, cached: false };
    // Another node process sharing the database recorded the same recipe first.
    const [winner] = await db
      .select()
      .from(schema.adapterMerges)
      .where(eq(schema.adapterMerges.recipeHash, input.recipe));
    return { row: winner!, cached: true };
  }

  /** Registers `name` for the merged adapter (already so named: nothing to do). */
  private async name(name: string, id: string, baseModel: string): Promise<void> {
    const known = this.deps.engine.listAdapters().find((a) => a.names.includes(name));
    if (known?.id === id) return;
    await this.deps.engine.loadAdapter({ name, path: `sha256:${id}`, baseModel });
  }

  /**
   * Merged adapters are free to call by hash, so a published model (priced per call) may be a
   * source only of its owner's or an operator's merges.
   */
  private async checkPublished(
    modelId: number,
    caller: { address: string; operator: boolean },
    index: number,
  ): Promise<void> {
    if (caller.operator) return;
    const [model] = await this.deps.db
      .select({ owner: schema.models.owner })
      .from(schema.models)
      .where(eq(schema.models.id, modelId));
    if (model?.owner.toLowerCase() !== caller.address.toLowerCase())
      throw new OpenLedgerError(
        'FORBIDDEN',
        `adapters[${index}] is published model ${modelId}, which only its owner or an operator may merge.`,
        {
          hint: 'A merged adapter is free to call; merging a priced model would bypass its price.',
        },
      );
  }

  /** An adapter's lineage: its recipe and, recursively, its sources' (merges of merges). */
  async lineage(reference: string): Promise<LineageNode> {
    const id = await this.adapterId(reference);
    const [row] = await this.deps.db
      .select()
      .from(schema.adapterMerges)
      .where(eq(schema.adapterMerges.id, id));
    if (!row)
      throw new OpenLedgerError(
        'NOT_FOUND',
        `Adapter ${id} was not made by a merge on this node.`,
        {
          hint: 'Lineage is recorded for adapters made with POST /api/adapters/merge.',
        },
      );
    return this.node(row, 0);
  }

  private async node(row: MergeRow, depth: number): Promise<LineageNode> {
    const v = view(row);
    const sources: LineageNode[] = [];
    for (const source of row.sources) {
      const leaf: LineageNode = { id: source.id, weight: source.weight, ref: source.ref };
      const [child] =
        depth + 1 < MAX_LINEAGE_DEPTH
          ? await this.deps.db
              .select()
              .from(schema.adapterMerges)
              .where(eq(schema.adapterMerges.id, source.id))
          : [];
      sources.push(child ? { ...(await this.node(child, depth + 1)), ...leaf } : leaf);
    }
    return {
      id: row.id,
      merge: {
        recipeHash: v.recipeHash,
        method: v.method,
        params: v.params,
        baseModel: v.baseModel,
        truncationError: v.truncationError,
        rank: v.rank,
        createdBy: v.createdBy,
        createdAt: v.createdAt,
      },
      sources,
    };
  }

  /** A sha256, `adapter:`/`sha256:<sha256>`, an adapter name or `model:<id>`. */
  private async adapterId(reference: string): Promise<string> {
    const hash = reference.replace(/^(sha256|adapter):/, '');
    if (/^[0-9a-f]{64}$/.test(hash)) return hash;
    const target = await this.deps.engine.resolve(reference);
    const adapter = target.adapters[0];
    if (!adapter)
      throw new OpenLedgerError('ADAPTER_NOT_FOUND', `"${reference}" names no adapter.`, {
        hint: 'Give an adapter name, adapter:<sha256> or model:<id>.',
      });
    return adapter.adapter.id;
  }
}

function view(row: MergeRow): Omit<MergeResult, 'name' | 'cached'> {
  return {
    id: row.id,
    recipeHash: row.recipeHash,
    method: row.method as MergeMethod,
    params: row.params,
    baseModel: row.baseModel,
    sources: row.sources,
    truncationError: row.truncationError ?? undefined,
    rank: row.rank,
    bytes: row.bytes,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
  };
}
