/**
 * Optimisation: AdamW (Loshchilov and Hutter, 2019; PyTorch's `torch.optim.AdamW` update),
 * a linear-warmup + cosine-decay learning rate (llm.c's `get_learning_rate`), and global-norm
 * gradient clipping (`torch.nn.utils.clip_grad_norm_`). Nothing here draws random numbers, so a
 * run is reproducible from its data order and seed alone.
 */
import { OpenLedgerError } from '../../errors.ts';

export interface AdamWOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay λ (default 0): p ← p − lr·λ·p, apart from the Adam step. */
  weightDecay?: number;
}

/**
 * AdamW over float32 parameters with float32 moments; each update computes in float64:
 *
 *     t ← t + 1
 *     m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
 *     m̂ = m / (1 − β1ᵗ)              v̂ = v / (1 − β2ᵗ)
 *     p ← p − lr·λ·p − lr · m̂ / (√v̂ + ε)
 */
export class AdamW {
  readonly params: Float32Array[];
  /** First and second moments, one per parameter. */
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Updates done so far (t). */
  t = 0;

  constructor(params: Float32Array[], options: AdamWOptions = {}) {
    this.params = params;
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    const ok = (x: number, lo: number, hi: number): boolean => x >= lo && x < hi;
    if (
      !ok(this.beta1, 0, 1) ||
      !ok(this.beta2, 0, 1) ||
      !(this.eps > 0) ||
      !(this.weightDecay >= 0)
    ) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `AdamW: beta1 ${this.beta1} and beta2 ${this.beta2} must be in [0, 1), eps ${this.eps} > 0, weightDecay ${this.weightDecay} ≥ 0`,
      );
    }
  }

  /** One update with gradients in the order of `params`, at learning rate lr. */
  step(grads: readonly ArrayLike<number>[], lr: number): void {
    if (grads.length !== this.params.length) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `AdamW: ${grads.length} gradients for ${this.params.length} parameters`,
      );
    }
    this.t++;
    const { beta1, beta2, eps, weightDecay } = this;
    const c1 = 1 - Math.pow(beta1, this.t);
    const c2 = 1 - Math.pow(beta2, this.t);
    const decay = 1 - lr * weightDecay;
    for (let j = 0; j < this.params.length; j++) {
      const p = this.params[j]!;
      const g = grads[j]!;
      const m = this.m[j]!;
      const v = this.v[j]!;
      if (g.length !== p.length) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `AdamW: gradient ${j} has ${g.length} values, its parameter ${p.length}`,
        );
      }
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * gi;
        const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i]! * decay - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
      }
    }
  }
}

export interface LrSchedule {
  /** The peak learning rate, reached at the end of the warmup. */
  learningRate: number;
  /** Steps of linear warmup (default 0). */
  warmupSteps?: number;
  /** Steps of the whole run. */
  totalSteps: number;
  /** The floor of the cosine (default 0). */
  minLearningRate?: number;
}

/**
 * The learning rate of step `step` (0-based), as llm.c and Hugging Face's cosine schedule give
 * it: lr·(step+1)/warmup during the warmup, then minLr + ½(1 + cos(π·progress))·(lr − minLr)
 * with progress = (step − warmup) / (totalSteps − warmup), which would reach minLr at step
 * totalSteps (so the last step still learns a little).
 */
export function learningRateAt(step: number, schedule: LrSchedule): number {
  const lr = schedule.learningRate;
  const warmup = schedule.warmupSteps ?? 0;
  const minLr = schedule.minLearningRate ?? 0;
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const decaySteps = schedule.totalSteps - warmup;
  if (decaySteps <= 0) return lr;
  const progress = Math.min(1, (step - warmup) / decaySteps);
  return minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (lr - minLr);
}

/** Throws VALIDATION_FAILED unless `schedule` makes sense. */
export function checkLrSchedule(schedule: LrSchedule): void {
  const { learningRate, totalSteps } = schedule;
  const warmup = schedule.warmupSteps ?? 0;
  const minLr = schedule.minLearningRate ?? 0;
  const problems: string[] = [];
  if (!(learningRate > 0 && Number.isFinite(learningRate))) {
    problems.push(`learningRate ${learningRate} must be positive`);
  }
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 1) {
    problems.push(`totalSteps ${totalSteps} must be a positive integer`);
  }
  if (!Number.isSafeInteger(warmup) || warmup < 0) {
    problems.push(`warmupSteps ${warmup} must be a non-negative integer`);
  }
  if (!(minLr >= 0 && minLr <= learningRate)) {
    problems.push(`minLearningRate ${minLr} must be in 0 … learningRate`);
  }
  if (problems.length > 0) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `learning-rate schedule: ${problems.join('; ')}`,
    );
  }
}

/**
 * The global L2 norm of all gradients; when it exceeds maxNorm, every gradient is scaled by
 * maxNorm / norm in place. Returns the norm before clipping.
 */
export function clipGradNorm(
  grads: readonly Float64Array[] | readonly Float32Array[],
  maxNorm: number,
): number {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const k = maxNorm / norm;
    for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * k;
  }
  return norm;
}
