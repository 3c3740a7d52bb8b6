/**
 * Per-example gradient sketches for the influence channel of attribution: the gradient of one
 * example's loss with respect to every LoRA parameter, projected to a few dimensions per group
 * of parameters by a seeded random projection, and the two influence estimates that use them
 * (TracIn and DataInf's closed form).
 *
 * The projection. The parameters are split into groups: one per LoRA tensor by default (each A
 * and each B, DataInf's "layers"), or one per transformer block. A group of d values is
 * projected to k = min(K, d) values:
 *
 *     ŝ[j] = (1/√k) · Σ_i R[j][i] · g[i],   R[j][i] ∈ {−1, +1} uniformly at random
 *
 * (Rademacher, Achlioptas 2003), so E[ŝ·ŝ′] = g·g′ and the inner product of two sketches
 * estimates that of the gradients with a standard deviation about √((‖g‖²‖g′‖² + (g·g′)²)/k).
 * A group with d ≤ K is stored as it is (exact). R is never stored: the column of parameter p,
 * coordinate i, is the next ⌈k/32⌉ words of `new Prng(seed, SKETCH_STREAM + p)` (bit j of word
 * w is row 32w + j; 1 means +1; the unused high bits of the last word are dropped), drawn for
 * every coordinate in order, zeros included. Generated column by column this needs O(k) memory,
 * and anyone with (seed, layout) regenerates the same R bit for bit: xoshiro128** uses only
 * 32-bit integer operations, and the sums run in float64 in a fixed order.
 *
 * Why written here rather than taken from npm: the projection must be regenerated bit for bit
 * from our own seeded PRNG (for `attribution verify`), which no JL-projection package offers.
 */
import { OpenLedgerError } from '../../errors.ts';
import type { LoraAdapter } from './lora.ts';
import { Prng } from './prng.ts';
import { makeTrainBatch } from './training-model.ts';
import type { TrainExample, TrainingNetwork } from './training-model.ts';

/**
 * The PRNG stream of parameter 0 (parameter p uses SKETCH_STREAM + p): far from the streams the
 * trainer uses with the same seed (0 init, 1 dropout, 1000 + epoch data order).
 */
export const SKETCH_STREAM = 0x40000000;

/** One group per LoRA tensor (A and B apart: the default), or one per transformer block (`blk.N`). */
export type SketchGrouping = 'block' | 'tensor';

export interface SketchParam {
  /** As in GGUF files, e.g. `blk.3.attn_q.weight.lora_a`. */
  name: string;
  /** Its number of values. */
  size: number;
  /** Index into `groups`. */
  group: number;
}

export interface SketchGroup {
  /** `blk.N` for block grouping, the parameter's name for tensor grouping. */
  name: string;
  /** d: the gradient values of the group (Σ of its parameters' sizes). */
  size: number;
  /** Its dimensions in a sketch: min(K, d). */
  k: number;
  /** Where its k values start in a sketch. */
  offset: number;
  /** 'identity' when d ≤ K: the gradient itself, exact. */
  projection: 'rademacher' | 'identity';
}

/**
 * Which parameters a sketch covers and how they are grouped; with the seed it fixes the
 * projection. Parameters are in the order `TrainingModel.parameters()` gives them (layer by
 * layer, target by target, A before B), and a group's coordinates are its parameters'
 * values in that order, each row-major.
 */
export interface SketchLayout {
  grouping: SketchGrouping;
  /** K: the dimensions per group asked for. */
  k: number;
  /** Dimensions of a whole sketch: Σ groups' k. */
  dims: number;
  params: SketchParam[];
  groups: SketchGroup[];
}

/** Default K: see docs/factory.md "Gradient sketches" for the measurement behind it. */
export const DEFAULT_SKETCH_K = 128;

function invalid(message: string): never {
  throw new OpenLedgerError('VALIDATION_FAILED', `gradient sketch: ${message}`);
}

/** The group a parameter belongs to: `blk.N` of `blk.N.…`, or the name itself. */
function groupName(name: string, grouping: SketchGrouping): string {
  if (grouping === 'tensor') return name;
  const match = /^blk\.\d+\./.exec(name);
  return match === null ? name : match[0].slice(0, -1);
}

/** The layout of sketches of `params` (in that order) with K = `k` per group. */
export function sketchLayout(
  params: readonly { name: string; size: number }[],
  options: { k?: number; grouping?: SketchGrouping } = {},
): SketchLayout {
  const k = options.k ?? DEFAULT_SKETCH_K;
  const grouping = options.grouping ?? 'tensor';
  if (!Number.isSafeInteger(k) || k < 1 || k > 65536) invalid(`k must be 1 … 65536, not ${k}`);
  if (grouping !== 'block' && grouping !== 'tensor')
    invalid(`unknown grouping ${String(grouping)}`);
  if (params.length === 0) invalid('no parameters');
  const groups: SketchGroup[] = [];
  const index = new Map<string, number>();
  const names = new Set<string>();
  const out: SketchParam[] = params.map(({ name, size }) => {
    if (names.has(name)) invalid(`parameter ${name} is listed twice`);
    names.add(name);
    if (!Number.isSafeInteger(size) || size < 1) invalid(`parameter ${name} has size ${size}`);
    const g = groupName(name, grouping);
    let group = index.get(g);
    if (group === undefined) {
      group = groups.length;
      index.set(g, group);
      groups.push({ name: g, size: 0, k: 0, offset: 0, projection: 'rademacher' });
    }
    groups[group]!.size += size;
    return { name, size, group };
  });
  let offset = 0;
  for (const group of groups) {
    group.k = Math.min(k, group.size);
    group.projection = group.size <= k ? 'identity' : 'rademacher';
    group.offset = offset;
    offset += group.k;
  }
  return { grouping, k, dims: offset, params: out, groups };
}

/** The layout of an adapter's sketches (its parameters in `TrainingModel.parameters()` order). */
export function adapterSketchLayout(
  adapter: LoraAdapter,
  options: { k?: number; grouping?: SketchGrouping } = {},
): SketchLayout {
  return sketchLayout(
    adapter.parameters().map((p) => ({ name: p.name, size: p.value.length })),
    options,
  );
}

/** Throws VALIDATION_FAILED unless `layout` is consistent (e.g. one read back from a file). */
export function checkSketchLayout(layout: SketchLayout): void {
  const again = sketchLayout(layout.params, { k: layout.k, grouping: layout.grouping });
  // field by field: a layout read back from canonical JSON has its keys in another order
  const same =
    again.dims === layout.dims &&
    again.params.every((p, i) => {
      const q = layout.params[i]!;
      return p.name === q.name && p.size === q.size && p.group === q.group;
    }) &&
    again.groups.length === layout.groups.length &&
    again.groups.every((g, i) => {
      const h = layout.groups[i]!;
      return (
        g.name === h.name &&
        g.size === h.size &&
        g.k === h.k &&
        g.offset === h.offset &&
        g.projection === h.projection
      );
    });
  if (!same) invalid('the layout is inconsistent');
}

/** Gradients by parameter name, or a list in the layout's parameter order. */
export type GradientSource =
  ReadonlyMap<string, ArrayLike<number>> | readonly { name: string; grad: ArrayLike<number> }[];

/**
 * Projects a gradient with the layout and seed of a set of sketches: the sketch of a new
 * gradient (e.g. of a served output's loss) comparable with the stored ones. Answers float64;
 * stored sketches are these values rounded to float32.
 */
export function projectGradient(
  header: { seed: number; layout: SketchLayout },
  gradients: GradientSource,
): Float64Array {
  const { seed, layout } = header;
  const byName =
    gradients instanceof Map
      ? (gradients as ReadonlyMap<string, ArrayLike<number>>)
      : new Map(
          (gradients as readonly { name: string; grad: ArrayLike<number> }[]).map((g) => [
            g.name,
            g.grad,
          ]),
        );
  const out = new Float64Array(layout.dims);
  const filled = new Array<number>(layout.groups.length).fill(0); // identity groups: values so far
  layout.params.forEach((param, p) => {
    const grad = byName.get(param.name);
    if (grad === undefined) invalid(`no gradient for ${param.name}`);
    if (grad.length !== param.size)
      invalid(`${param.name} has ${grad.length} gradient values; the layout says ${param.size}`);
    const group = layout.groups[param.group]!;
    if (group.projection === 'identity') {
      const at = group.offset + filled[param.group]!;
      for (let i = 0; i < param.size; i++) out[at + i] = grad[i]!;
      filled[param.group] = filled[param.group]! + param.size;
      return;
    }
    projectColumns(out, group.offset, group.k, grad, new Prng(seed, SKETCH_STREAM + p));
  });
  for (const group of layout.groups) {
    if (group.projection === 'identity') continue;
    const scale = 1 / Math.sqrt(group.k);
    for (let j = group.offset; j < group.offset + group.k; j++) out[j] = out[j]! * scale;
  }
  return out;
}

/** out[offset + j] += Σ_i R[j][i]·x[i], R's columns drawn from `prng` (see the module comment). */
function projectColumns(
  out: Float64Array,
  offset: number,
  k: number,
  x: ArrayLike<number>,
  prng: Prng,
): void {
  const words = Math.ceil(k / 32);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v === 0) {
      for (let w = 0; w < words; w++) prng.nextUint32(); // keep the stream aligned
      continue;
    }
    for (let w = 0; w < words; w++) {
      const bits = prng.nextUint32();
      const base = offset + 32 * w;
      const n = Math.min(32, k - 32 * w);
      for (let b = 0; b < n; b++) {
        out[base + b] = out[base + b]! + (((bits >>> b) & 1) === 1 ? v : -v);
      }
    }
  }
}

/** One example's loss (the mean over its unmasked targets) and the number of those targets. */
export interface ExampleLoss {
  loss: number;
  tokens: number;
}

/**
 * The gradient of one example's mean loss over its unmasked targets, at the network's current
 * weights and without dropout (the adapter as served), left in `network.parameters()`' grads.
 * A batch of one: exact, and no padding enters anything.
 */
export async function exampleGradient(
  network: TrainingNetwork,
  example: TrainExample,
): Promise<ExampleLoss> {
  network.zeroGrad();
  const result = await network.forward(makeTrainBatch([example]), { train: false });
  await network.backward(); // scale 1 / count: the gradient of the mean
  return { loss: result.loss, tokens: result.count };
}

/**
 * Sketches of every example (row i of the answer is example i): N × layout.dims float32
 * values, with each example's loss and targets. `onExample` sees each as it is done.
 */
export async function sketchExamples(
  network: TrainingNetwork,
  examples: readonly TrainExample[],
  header: { seed: number; layout: SketchLayout },
  onExample?: (done: number, of: number) => void,
): Promise<{ values: Float32Array; losses: ExampleLoss[] }> {
  const { dims } = header.layout;
  const values = new Float32Array(examples.length * dims);
  const losses: ExampleLoss[] = [];
  for (const [i, example] of examples.entries()) {
    losses.push(await exampleGradient(network, example));
    values.set(projectGradient(header, network.parameters()), i * dims);
    onExample?.(i + 1, examples.length);
  }
  return { values, losses };
}

// ---------------------------------------------------------------------------------------------
// Influence over sketches: reference implementations of what the attribution channel computes.

/** N sketches of one layout: row i is values[i·dims … (i+1)·dims). */
export interface SketchMatrix {
  layout: SketchLayout;
  count: number;
  values: ArrayLike<number>;
}

function checkQuery(sketches: SketchMatrix, query: ArrayLike<number>): void {
  const { dims } = sketches.layout;
  if (query.length !== dims) invalid(`the query has ${query.length} values; sketches have ${dims}`);
  if (sketches.values.length !== sketches.count * dims)
    invalid(`${sketches.values.length} values are not ${sketches.count} sketches of ${dims}`);
}

/**
 * TracIn (Pruthi et al., 2020) at the final adapter: score_i = ĝ_i · q̂, the first-order drop in
 * the query's loss from a gradient step on example i (the learning rate, one constant factor
 * at a single checkpoint, is left out). Positive: example i helped the query.
 */
export function tracInScores(sketches: SketchMatrix, query: ArrayLike<number>): Float64Array {
  checkQuery(sketches, query);
  const { dims } = sketches.layout;
  const out = new Float64Array(sketches.count);
  for (let i = 0; i < sketches.count; i++) {
    let dot = 0;
    for (let j = 0; j < dims; j++) dot += sketches.values[i * dims + j]! * query[j]!;
    out[i] = dot;
  }
  return out;
}

export interface DataInfOptions {
  /**
   * λ_l = lambdaScale · Σ_i ‖g_il‖² / (n·d_l), DataInf's damping (Kwon et al., 2024, after
   * Grosse et al., 2023), d_l the group's gradient size (default 0.1, the paper's choice).
   */
  lambdaScale?: number;
}

/**
 * DataInf (Kwon et al., ICLR 2024), per group l (a "layer"), with the query gradient v:
 *
 *     score_k = Σ_l (1/λ_l) · ( v_l·g_kl − (1/n) Σ_i (v_l·g_il)(g_il·g_kl) / (λ_l + ‖g_il‖²) )
 *
 * the inverse of each layer's damped Fisher (1/n Σ g_il g_ilᵀ + λ_l I) approximated by the mean
 * of the rank-one inverses (Sherman–Morrison). This is −I_DataInf: positive means upweighting
 * example k lowers the query's loss (it helped). O(n · dims): per group, w_l = v_l − (1/n)
 * Σ_i c_i g_il, then score_k = Σ_l w_l·g_kl / λ_l.
 */
export function dataInfScores(
  sketches: SketchMatrix,
  query: ArrayLike<number>,
  options: DataInfOptions = {},
): Float64Array {
  checkQuery(sketches, query);
  const lambdaScale = options.lambdaScale ?? 0.1;
  if (!(lambdaScale > 0)) invalid(`lambdaScale must be positive, not ${lambdaScale}`);
  const { layout, count: n, values } = sketches;
  const { dims } = layout;
  const out = new Float64Array(n);
  if (n === 0) return out;
  for (const group of layout.groups) {
    const { offset, k } = group;
    const norms = new Float64Array(n);
    const dots = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      let norm = 0;
      let dot = 0;
      for (let j = offset; j < offset + k; j++) {
        const g = values[i * dims + j]!;
        norm += g * g;
        dot += g * query[j]!;
      }
      norms[i] = norm;
      dots[i] = dot;
      total += norm;
    }
    const lambda = (lambdaScale * total) / (n * group.size);
    if (!(lambda > 0)) continue; // every gradient of the group is zero: it says nothing
    const w = new Float64Array(k);
    for (let j = 0; j < k; j++) w[j] = query[offset + j]!;
    for (let i = 0; i < n; i++) {
      const c = dots[i]! / (lambda + norms[i]!) / n;
      if (c === 0) continue;
      for (let j = 0; j < k; j++) w[j] = w[j]! - c * values[i * dims + offset + j]!;
    }
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let j = 0; j < k; j++) dot += w[j]! * values[i * dims + offset + j]!;
      out[i] = out[i]! + dot / lambda;
    }
  }
  return out;
}
