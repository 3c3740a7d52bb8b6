/**
 * Sequence packing, as this trainer can do it: the examples of a step (or of an evaluation set)
 * are grouped into micro-batches of similar length, each padded only to its own longest member,
 * so that little of the compute goes to padding.
 *
 * Why not concatenation ("packing" in the usual sense, several examples in one row of maxTokens):
 * the training forward (engine/train/training-model.ts) runs one causal attention over a whole
 * row (kernels.ts attentionForward has no document mask) and gives RoPE positions 0 … T−1 per
 * row. Concatenated examples would attend to each other and the later ones would be trained at
 * shifted positions, so the model would learn something other than what it is asked at
 * inference. True packing needs per-row segment ids in attentionForward/attentionBackward (a key
 * t2 is visible from t only within the same segment) and per-token positions in ropeForward/
 * ropeBackward (reset at each segment start); neither exists yet.
 *
 * What grouping keeps exact: the trainer scales every micro-batch's backward by 1 / (targets of
 * the whole step), so a step split into several micro-batches has the gradient of the step's mean
 * loss, the same as one padded batch (up to float rounding; dropout masks are drawn in a
 * different order, deterministically for a seed). Padding comes after each sequence, where causal
 * attention keeps it from touching real positions, so no example's loss depends on its
 * neighbours. The loss mask of every example is carried over unchanged: the tokens each row
 * contributes are the same with and without packing (test/factory-eval.test.ts checks it).
 */
import { makeTrainBatch, type TrainBatch, type TrainExample } from '../engine/index.ts';

/**
 * What one more micro-batch costs, in padded positions: a micro-batch is split off only when
 * that saves at least this much padding. Each forward and backward has a fixed cost per call
 * (buffer setup, per-matmul dispatch); 32 positions is a few percent of a 256-token row.
 */
export const MICRO_BATCH_OVERHEAD_POSITIONS = 32;

export interface MicroBatch {
  batch: TrainBatch;
  /** Indices, into the examples given, of the rows of `batch`, in row order. */
  members: number[];
}

export interface PlanOptions {
  /** Group by length (true) or keep the given order in chunks of maxBatch (false). */
  packing: boolean;
  /** At most this many examples per micro-batch (default: all of them). */
  maxBatch?: number;
  /** See MICRO_BATCH_OVERHEAD_POSITIONS. */
  overhead?: number;
}

/**
 * Which examples go together: `lengths[i]` is example i's token count. Without packing,
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

/** The examples as micro-batches (see planMicroBatches), each padded to its longest member. */
export function packExamples(
  examples: readonly TrainExample[],
  options: PlanOptions & { padToken: number },
): MicroBatch[] {
  const plan = planMicroBatches(
    examples.map((e) => e.tokens.length),
    options,
  );
  return plan.map((members) => ({
    members,
    batch: makeTrainBatch(
      members.map((i) => examples[i]!),
      { padToken: options.padToken },
    ),
  }));
}

/** The loss targets (mask sum) of each row of a micro-batch, in `members` order. */
export function targetsPerMember(micro: MicroBatch): number[] {
  const { T, mask } = micro.batch;
  return micro.members.map((_, b) => {
    let sum = 0;
    for (let t = 0; t < T; t++) sum += mask[b * T + t]!;
    return sum;
  });
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
