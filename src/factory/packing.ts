/**
 * Sequence packing: with `packing` on, the examples of a step (or of an evaluation set) are
 * concatenated into rows of up to maxTokens (first-fit decreasing by length), and the rows are
 * grouped into micro-batches of similar length, each padded only to its own longest row. Without
 * it, each example has a row of its own, in the order given, in chunks of maxBatch.
 *
 * Why this trains exactly what the examples ask: a packed row carries per-token positions
 * (engine/train makePackedBatch), so attention never crosses from one example into another and
 * RoPE / learned position embeddings restart at 0 for each; no target crosses a boundary. A
 * packed row therefore gives the same loss and gradients as its examples in separate rows
 * (test/engine-packing.test.ts checks it bit for bit in float64).
 *
 * What stays exact for the books: the trainer scales every micro-batch's backward by 1 / (targets
 * of the whole step), so a step split into several micro-batches has the gradient of the step's
 * mean loss (up to float rounding; dropout masks are drawn in a different order, deterministically
 * for a seed). The loss mask of every example is carried over unchanged: the targets each example
 * contributes are the same with and without packing (test/factory-eval.test.ts checks it).
 */
import {
  makePackedBatch,
  makeTrainBatch,
  type TrainBatch,
  type TrainExample,
} from '../engine/index.ts';

/**
 * What one more micro-batch costs, in padded positions: a micro-batch is split off only when
 * that saves at least this much padding. Each forward and backward has a fixed cost per call
 * (buffer setup, per-matmul dispatch); 32 positions is a few percent of a 256-token row.
 */
export const MICRO_BATCH_OVERHEAD_POSITIONS = 32;

export interface MicroBatch {
  batch: TrainBatch;
  /** Indices, into the examples given, of the examples of each row of `batch`, in order. */
  rows: number[][];
  /** rows.flat(): every example of the micro-batch, row by row. */
  members: number[];
}

export interface PlanOptions {
  /** Pack and group by length (true) or one example per row in the given order (false). */
  packing: boolean;
  /** At most this many rows per micro-batch (default: all of them). */
  maxBatch?: number;
  /**
   * Tokens per packed row: a row holds examples whose n − 1 inputs sum to at most maxTokens − 1
   * (the positions one example of maxTokens takes). Default: the longest example's length.
   */
  maxTokens?: number;
  /** See MICRO_BATCH_OVERHEAD_POSITIONS. */
  overhead?: number;
}

/**
 * Rows of packed examples, first-fit decreasing: `lengths[i]` is example i's token count and it
 * takes lengths[i] − 1 positions; the examples, longest first (ties by index), each go into the
 * first row that still has room in `capacity` positions, or start a new one. An example longer
 * than the capacity gets a row of its own. Each row lists its examples in the order they went in.
 */
export function packRows(lengths: readonly number[], capacity: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const rows: number[][] = [];
  const used: number[] = [];
  for (const i of order) {
    const span = Math.max(1, lengths[i]! - 1);
    let r = used.findIndex((u) => u + span <= capacity);
    if (r < 0) {
      r = rows.length;
      rows.push([]);
      used.push(0);
    }
    rows[r]!.push(i);
    used[r] = used[r]! + span;
  }
  return rows;
}

/**
 * Which rows go together: `lengths[i]` is row i's token count (for a packed row, its positions
 * + 1). Without packing,
 * consecutive chunks of maxBatch. With packing, the examples sorted by length (longest first,
 * ties by index) and cut into contiguous groups minimising Σ (members × longest − 1) + overhead
 * per group, with at most maxBatch members each. For this cost a contiguous cut of the sorted
 * order is optimal (an exchange argument: swapping a longer member into a shorter group never
 * lowers either group's longest), so the dynamic programme over cut points, O(n · maxBatch),
 * finds the best grouping.
 */
export function planMicroBatches(lengths: readonly number[], options: PlanOptions): number[][] {
  const n = lengths.length;
  const maxBatch = Math.max(1, Math.min(options.maxBatch ?? n, n));
  if (n === 0) return [];
  if (!options.packing) {
    const groups: number[][] = [];
    for (let i = 0; i < n; i += maxBatch)
      groups.push(Array.from({ length: Math.min(maxBatch, n - i) }, (_, k) => i + k));
    return groups;
  }
  const overhead = options.overhead ?? MICRO_BATCH_OVERHEAD_POSITIONS;
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const positions = (i: number) => Math.max(1, lengths[order[i]!]! - 1);
  // best[j]: the least cost of the first j sorted examples; cut[j]: where its last group starts
  const best = new Float64Array(n + 1).fill(Infinity);
  const cut = new Int32Array(n + 1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    for (let i = Math.max(0, j - maxBatch); i < j; i++) {
      const cost = best[i]! + (j - i) * positions(i) + overhead;
      if (cost < best[j]!) {
        best[j] = cost;
        cut[j] = i;
      }
    }
  }
  const groups: number[][] = [];
  for (let j = n; j > 0; j = cut[j]!) groups.push(order.slice(cut[j]!, j));
  return groups.reverse();
}

/**
 * The examples as micro-batches: with packing, packed into rows (packRows) that are grouped by
 * length (planMicroBatches), each micro-batch padded to its longest row; without, one example
 * per row in chunks of maxBatch.
 */
export function packExamples(
  examples: readonly TrainExample[],
  options: PlanOptions & { padToken: number },
): MicroBatch[] {
  const lengths = examples.map((e) => e.tokens.length);
  const { padToken } = options;
  if (!options.packing) {
    return planMicroBatches(lengths, options).map((members) => ({
      rows: members.map((i) => [i]),
      members,
      batch: makeTrainBatch(
        members.map((i) => examples[i]!),
        { padToken },
      ),
    }));
  }
  if (examples.length === 0) return [];
  const longest = Math.max(...lengths);
  const capacity = Math.max(options.maxTokens ?? longest, longest) - 1;
  const packed = packRows(lengths, capacity);
  const rowLengths = packed.map((row) => 1 + row.reduce((n, i) => n + lengths[i]! - 1, 0));
  return planMicroBatches(rowLengths, options).map((group) => {
    const rows = group.map((r) => packed[r]!);
    return {
      rows,
      members: rows.flat(),
      batch: makePackedBatch(
        rows.map((row) => row.map((i) => examples[i]!)),
        { padToken },
      ),
    };
  });
}

/**
 * The loss targets (mask sum) of each example of a micro-batch, in `members` order: in a packed
 * row the examples are its first segments (a segment starts where the position is 0), the
 * padding after them its last.
 */
export function targetsPerMember(micro: MicroBatch): number[] {
  const { T, mask, positions } = micro.batch;
  const counts: number[] = [];
  micro.rows.forEach((row, b) => {
    const first = counts.length;
    for (let k = 0; k < row.length; k++) counts.push(0);
    let segment = 0;
    for (let t = 0; t < T; t++) {
      if (t > 0 && positions !== undefined && positions[b * T + t] === 0) segment++;
      if (segment < row.length)
        counts[first + segment] = counts[first + segment]! + mask[b * T + t]!;
    }
  });
  return counts;
}

/**
 * Positions the forward runs (B·T summed over micro-batches) and how many of them hold a real
 * input (an example of n tokens has n − 1): the rest is padding.
 */
export function batchPositions(
  micro: readonly MicroBatch[],
  lengths: readonly number[],
): { positions: number; real: number } {
  let positions = 0;
  let real = 0;
  for (const m of micro) {
    positions += m.batch.B * m.batch.T;
    for (const i of m.members) real += lengths[i]! - 1;
  }
  return { positions, real };
}
