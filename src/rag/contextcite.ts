/**
 * ContextCite (Cohen-Wang, Shah, Georgiev and Madry, 2024, arXiv 2409.00729): how much each
 * retrieved source made a generated answer likely. Score the fixed answer under random ablations
 * of the sources (each kept with p = ½), fit a sparse linear surrogate y ≈ b + Σ w_j·kept_j of the
 * answer's logit on the masks, and read the weights. Held-out ablations check the surrogate: the
 * Spearman correlation of its predictions with the real scores is the paper's LDS.
 *
 * Reproducibility: the masks come from a sha256 stream of the seed, so a verifier redraws them;
 * the logits are quantised to multiples of 2^-16 and recorded, so the fit is recomputed from them
 * without re-scoring (`refitFromRecorded`); the fit itself uses only IEEE-754 +, −, ×, ÷ and sqrt
 * (all correctly rounded, none "implementation-approximated" in ECMAScript) in a fixed order, so
 * it gives the same bits on every platform. Only the scoring (log and exp of a model's outputs)
 * may differ between machines, which the recorded, quantised y absorbs.
 */
import { createHash } from 'node:crypto';
import { OpenLedgerError } from '../errors.ts';

/** The mask stream, for receipts: key = sha256(seed); block i = sha256(key ‖ uint32be(i)). */
export const MASK_STREAM = 'sha256-ctr-v1';
export const CONTEXTCITE_DEFAULTS = { m: 32, holdout: 8, alpha: 0.01, sweeps: 200 } as const;
/** y is quantised to multiples of 2^-QUANT_BITS (like span `bits`), so it is exact in JSON. */
export const QUANT_BITS = 16;
/** |y| is clamped here: an answer of probability 1 (or 0) in float64 has an infinite logit. */
export const LOGIT_LIMIT = 2 ** 20;

function invalid(message: string): never {
  throw new OpenLedgerError('VALIDATION_FAILED', `contextcite: ${message}`);
}

function count(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min)
    invalid(`${name} must be a whole number ≥ ${min}`);
}

// ---- Masks -------------------------------------------------------------------------------------

/**
 * 1 + m + holdout ablation masks over `sources` sources: first the full mask (every source
 * kept), then m masks to fit on, then `holdout` masks to check the fit on. In the random ones each
 * source is kept with p = ½: bit j of the stream (little-endian bit order within each byte) says
 * whether mask ⌊j / sources⌋ keeps source j mod sources. The same seed gives the same masks.
 */
export function ablationMasks(
  seed: Uint8Array | string,
  sources: number,
  m: number = CONTEXTCITE_DEFAULTS.m,
  holdout: number = CONTEXTCITE_DEFAULTS.holdout,
): boolean[][] {
  count('sources', sources, 1);
  count('m', m, 1);
  count('holdout', holdout, 0);
  const key = createHash('sha256').update(seed).digest();
  const bits = (m + holdout) * sources;
  const stream = Buffer.alloc(Math.ceil(bits / 256) * 32);
  const counter = Buffer.alloc(4);
  for (let block = 0; block * 32 < stream.length; block++) {
    counter.writeUInt32BE(block);
    createHash('sha256')
      .update(key)
      .update(counter)
      .digest()
      .copy(stream, block * 32);
  }
  const masks: boolean[][] = [Array.from({ length: sources }, () => true)];
  for (let i = 0; i < m + holdout; i++)
    masks.push(
      Array.from({ length: sources }, (_, j) => {
        const bit = i * sources + j;
        return ((stream[bit >> 3]! >> (bit & 7)) & 1) === 1;
      }),
    );
  return masks;
}

// ---- Statistics --------------------------------------------------------------------------------

export interface LassoFit {
  /** Per column, on the original (unstandardised) scale. */
  weights: number[];
  bias: number;
}

/**
 * Lasso by cyclic coordinate descent: min (1/2n)·‖y − b − Zw‖² + α‖w‖₁ over the standardised
 * columns Z (mean 0, population variance 1; a constant column gets weight 0), the objective and
 * standardisation of scikit-learn's `Lasso` after a `StandardScaler`, as the paper's code uses.
 * A fixed number of sweeps over the columns in order (no early stop, so the result depends on
 * nothing but the input), then rescaled: weight_j = w_j / σ_j, bias = ȳ − Σ weight_j·μ_j.
 */
export function lasso(
  X: readonly (readonly boolean[])[] | readonly (readonly number[])[],
  y: readonly number[],
  alpha: number = CONTEXTCITE_DEFAULTS.alpha,
  sweeps: number = CONTEXTCITE_DEFAULTS.sweeps,
): LassoFit {
  const n = X.length;
  if (n === 0 || y.length !== n) invalid(`X has ${n} rows and y ${y.length} values`);
  const p = X[0]!.length;
  if (!X.every((row) => row.length === p)) invalid('the rows of X differ in length');
  if (!y.every(Number.isFinite)) invalid('y must be finite');
  if (!(alpha >= 0) || !Number.isFinite(alpha)) invalid('alpha must be a finite number ≥ 0');
  count('sweeps', sweeps, 0);
  const cell = (i: number, j: number) => Number(X[i]![j]!);

  let yMean = 0;
  for (let i = 0; i < n; i++) yMean += y[i]!;
  yMean /= n;
  const mean: number[] = [];
  const sd: number[] = [];
  // Column-major standardised copy: z[j][i].
  const z: Float64Array[] = [];
  for (let j = 0; j < p; j++) {
    let mu = 0;
    for (let i = 0; i < n; i++) mu += cell(i, j);
    mu /= n;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const d = cell(i, j) - mu;
      v += d * d;
    }
    v /= n;
    const sigma = Math.sqrt(v);
    if (!Number.isFinite(mu) || !Number.isFinite(sigma)) invalid('X must be finite');
    mean.push(mu);
    sd.push(sigma);
    const col = new Float64Array(n);
    if (sigma > 0) for (let i = 0; i < n; i++) col[i] = (cell(i, j) - mu) / sigma;
    z.push(col);
  }

  const w = new Float64Array(p);
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) r[i] = y[i]! - yMean;
  for (let sweep = 0; sweep < sweeps; sweep++)
    for (let j = 0; j < p; j++) {
      if (sd[j] === 0) continue;
      const col = z[j]!;
      // ρ = (1/n)·z_jᵀ(r + z_j·w_j) = (1/n)·z_jᵀr + w_j, since (1/n)·z_jᵀz_j = 1.
      let dot = 0;
      for (let i = 0; i < n; i++) dot += col[i]! * r[i]!;
      const rho = dot / n + w[j]!;
      const next = Math.abs(rho) > alpha ? Math.sign(rho) * (Math.abs(rho) - alpha) : 0;
      const step = next - w[j]!;
      if (step !== 0) {
        for (let i = 0; i < n; i++) r[i] = r[i]! - col[i]! * step;
        w[j] = next;
      }
    }

  const weights: number[] = [];
  let bias = yMean;
  for (let j = 0; j < p; j++) {
    const weight = sd[j]! > 0 ? w[j]! / sd[j]! : 0;
    weights.push(weight);
    bias -= weight * mean[j]!;
  }
  return { weights, bias };
}

/** Ranks from 1, ties given the average of the ranks they span. */
function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v || a.i - b.i);
  const out = new Array<number>(values.length);
  for (let k = 0; k < order.length;) {
    let end = k + 1;
    while (end < order.length && order[end]!.v === order[k]!.v) end++;
    const rank = (k + 1 + end) / 2;
    for (let t = k; t < end; t++) out[order[t]!.i] = rank;
    k = end;
  }
  return out;
}

/**
 * Spearman's rank correlation (the Pearson correlation of the ranks, ties averaged). 0 when it is
 * undefined: fewer than two values, or either side constant.
 */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) invalid(`spearman of ${a.length} and ${b.length} values`);
  if (![...a, ...b].every(Number.isFinite)) invalid('spearman of values that are not finite');
  const n = a.length;
  if (n < 2) return 0;
  const ra = ranks(a);
  const rb = ranks(b);
  const mid = (n + 1) / 2; // the mean of any ranking with averaged ties
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    const da = ra[i]! - mid;
    const db = rb[i]! - mid;
    cov += da * db;
    va += da * da;
    vb += db * db;
  }
  if (va === 0 || vb === 0) return 0;
  return cov / Math.sqrt(va * vb);
}

// ---- Weights -----------------------------------------------------------------------------------

/**
 * The answer's logit from its log-probability, y = log p − log(1 − p), quantised to 2^-16 and
 * clamped to ±LOGIT_LIMIT. log(1 − p) is computed as log(−expm1(log p)) near p = 1 and
 * log1p(−exp(log p)) elsewhere (Mächler 2012), so it keeps its precision at both ends.
 */
export function answerLogit(logp: number): number {
  if (Number.isNaN(logp)) invalid('a score is NaN');
  const lp = Math.min(logp, 0);
  const log1mp = lp > -Math.LN2 ? Math.log(-Math.expm1(lp)) : Math.log1p(-Math.exp(lp));
  const y = lp - log1mp;
  const clamped = y > LOGIT_LIMIT ? LOGIT_LIMIT : y < -LOGIT_LIMIT ? -LOGIT_LIMIT : y;
  return Math.round(clamped * 2 ** QUANT_BITS) / 2 ** QUANT_BITS;
}

export interface AblationResult {
  /** Per source, ≥ 0 (negative ones clipped); all 0 when `fallback`. */
  weights: number[];
  /** The answer's logit per mask (multiples of 2^-16), in mask order: record these. */
  y: number[];
  masks: boolean[][];
  /** Spearman of the surrogate's predictions with y on the held-out masks. */
  lds: number;
  /**
   * The surrogate says nothing usable (no positive weight, or lds < 0): the caller uses equal
   * weights over the supported citations instead.
   */
  fallback: boolean;
}

export interface AblationOptions {
  sources: number;
  /** log p(answer | the prompt with only the kept sources), in nats; called once per mask, in order. */
  score: (mask: readonly boolean[]) => Promise<number>;
  seed: Uint8Array | string;
  m?: number;
  holdout?: number;
  alpha?: number;
}

/**
 * The fit from recorded logits: the surrogate on the full mask and the m fitting masks (every
 * mask but the last `holdout`), LDS on the held-out ones, then the weights clipped at 0.
 * `ablationWeights` ends here too, so a verifier's refit gives its weights bit for bit.
 */
export function refitFromRecorded(
  masks: readonly (readonly boolean[])[],
  y: readonly number[],
  alpha: number = CONTEXTCITE_DEFAULTS.alpha,
  holdout: number = CONTEXTCITE_DEFAULTS.holdout,
): AblationResult {
  count('holdout', holdout, 0);
  if (masks.length !== y.length) invalid(`${masks.length} masks but ${y.length} scores`);
  const fit = masks.length - holdout;
  if (fit < 2) invalid(`${masks.length} masks leave fewer than 2 to fit after ${holdout} held out`);
  const { weights, bias } = lasso(masks.slice(0, fit), y.slice(0, fit), alpha);
  const predicted = masks.slice(fit).map((mask) => {
    let v = bias;
    for (const [j, kept] of mask.entries()) if (kept) v += weights[j]!;
    return v;
  });
  const lds = spearman(predicted, y.slice(fit));
  const clipped = weights.map((w) => (w > 0 ? w : 0));
  const fallback = clipped.every((w) => w === 0) || lds < 0;
  return {
    weights: fallback ? clipped.map(() => 0) : clipped,
    y: [...y],
    masks: masks.map((mask) => [...mask]),
    lds,
    fallback,
  };
}

/**
 * ContextCite weights of `sources` sources for one answer: draws the masks from `seed`, scores
 * each (sequentially, in mask order: the scorer is a model), turns the scores into quantised
 * logits and fits them (`refitFromRecorded`).
 */
export async function ablationWeights(options: AblationOptions): Promise<AblationResult> {
  const holdout = options.holdout ?? CONTEXTCITE_DEFAULTS.holdout;
  const masks = ablationMasks(
    options.seed,
    options.sources,
    options.m ?? CONTEXTCITE_DEFAULTS.m,
    holdout,
  );
  const y: number[] = [];
  for (const mask of masks) y.push(answerLogit(await options.score(mask)));
  return refitFromRecorded(masks, y, options.alpha ?? CONTEXTCITE_DEFAULTS.alpha, holdout);
}
