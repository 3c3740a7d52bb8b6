/**
 * The influence channel of attribution (docs/attribution.md, "The influence channel"): how much
 * each trained row of an adapter made a served output more likely, from the per-row gradient
 * sketches its training job stored (factory/sketches.ts) and the gradient of the output's loss
 * projected with exactly the same projection; then per-contributor weights from the positive
 * scores only.
 *
 * A pure module over engine objects: the caller loads the base model, the adapter and the sketch
 * blob; nothing here reads the database or the blob store.
 */
import { createHash } from 'node:crypto';
import {
  SKETCH_STREAM,
  adapterSketchLayout,
  createTrainingNetwork,
  dataInfScores,
  exampleGradient,
  loadLoraGguf,
  projectGradient,
  tracInScores,
  type LoraAdapter,
  type MatmulBackend,
  type SketchLayout,
  type TrainableModel,
} from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { SketchHeader, Sketches } from '../factory/sketches.ts';
import { addFraction, fraction, normalisePpb, type Fraction } from './fixed.ts';

/** DataInf's closed form (the default), or TracIn at the final adapter (the fallback). */
export type InfluenceMethod = 'datainf' | 'tracin';

/** A served call: the tokens it was conditioned on and the tokens it produced. */
export interface ServedExample {
  promptTokens: readonly number[];
  outputTokens: readonly number[];
}

export interface OutputSketchOptions {
  /** The job's gradient sketches (loadSketches of its blob). */
  sketches: Sketches;
  /** The base model the adapter was trained on, as the engine loads it. */
  model: TrainableModel;
  /**
   * The job's adapter: its GGUF bytes (then checked against the header's adapterSha256 and
   * loaded), or an adapter already loaded (then only its layout is checked).
   */
  adapter: LoraAdapter | Uint8Array;
  example: ServedExample;
  /** Where the matrix products run (default: the TypeScript loops, bit-for-bit reproducible). */
  backend?: MatmulBackend;
}

export interface InfluenceOptions extends OutputSketchOptions {
  method?: InfluenceMethod;
  /** DataInf's damping, λ_l = lambdaScale · mean ‖g_il‖² / d_l (default 0.1, the paper's). */
  lambdaScale?: number;
}

export interface OutputSketch {
  /** The output's gradient, projected as the stored rows were (float64). */
  query: Float64Array;
  /** The output's mean loss per token under the adapter, and the tokens it is over. */
  loss: number;
  tokens: number;
}

export interface InfluenceResult extends OutputSketch {
  method: InfluenceMethod;
  /** Per sketch row (header.rows order): positive = the row made the output more likely. */
  scores: Float64Array;
}

function mismatch(message: string, hint?: string): never {
  throw new OpenLedgerError('SKETCH_MISMATCH', `influence: ${message}`, {
    ...(hint === undefined ? {} : { hint }),
  });
}

/** Field by field: a header read back from canonical JSON has its keys in another order. */
function sameLayout(a: SketchLayout, b: SketchLayout): string | null {
  if (a.grouping !== b.grouping || a.k !== b.k) return `grouping/k ${b.grouping}/${b.k}`;
  if (a.params.length !== b.params.length) return `${b.params.length} parameters`;
  for (const [i, p] of a.params.entries()) {
    const q = b.params[i]!;
    if (p.name !== q.name || p.size !== q.size || p.group !== q.group)
      return `parameter ${i} ${q.name} of ${q.size} values`;
  }
  if (a.dims !== b.dims || a.groups.length !== b.groups.length) return `${b.dims} dims`;
  for (const [i, g] of a.groups.entries()) {
    const h = b.groups[i]!;
    if (g.name !== h.name || g.k !== h.k || g.offset !== h.offset || g.projection !== h.projection)
      return `group ${i} ${h.name}`;
  }
  return null;
}

/** Refuses sketches whose projection this code would not regenerate exactly. */
function checkHeader(header: SketchHeader): void {
  if (header.stream !== SKETCH_STREAM)
    mismatch(`the sketches use PRNG stream ${header.stream}, not ${SKETCH_STREAM}`);
  if (header.projection !== 'rademacher' || header.loss !== 'mean' || header.dropout !== false)
    mismatch(
      `the sketches are of a kind this version cannot match (${header.projection}, loss ${header.loss}, dropout ${String(header.dropout)})`,
    );
}

/**
 * The gradient of the served output's loss (the mean over the output tokens, each conditioned on
 * the prompt and the output before it) with respect to every LoRA parameter, at the adapter as
 * served (no dropout), projected with the seed, stream and layout of the stored sketches. One
 * forward and one backward of prompt + output on the training network.
 */
export async function outputSketch(options: OutputSketchOptions): Promise<OutputSketch> {
  const { sketches, model, example } = options;
  const { header } = sketches;
  checkHeader(header);
  let adapter: LoraAdapter;
  if (options.adapter instanceof Uint8Array) {
    const sha = createHash('sha256').update(options.adapter).digest('hex');
    if (sha !== header.adapterSha256)
      mismatch(
        `the adapter's sha256 ${sha} is not the one the sketches were taken at (${header.adapterSha256})`,
        "score an output against its own adapter's training job",
      );
    adapter = await loadLoraGguf(options.adapter, { modelConfig: model.config });
  } else adapter = options.adapter;
  const expected = adapterSketchLayout(adapter, {
    k: header.layout.k,
    grouping: header.layout.grouping,
  });
  const differs = sameLayout(expected, header.layout);
  if (differs !== null)
    mismatch(
      `the sketches' layout does not fit the adapter (the sketches have ${differs}; the adapter gives another)`,
      "score an output against its own adapter's training job",
    );

  const { promptTokens, outputTokens } = example;
  const valid = (t: number) => Number.isSafeInteger(t) && t >= 0 && t < model.config.vocabSize;
  if (![...promptTokens, ...outputTokens].every(valid))
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `influence: tokens must be integers below the vocabulary size ${model.config.vocabSize}`,
    );
  // The first token has no context: with no prompt it is conditioned on nothing and not scored.
  if (outputTokens.length === 0 || promptTokens.length + outputTokens.length < 2)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'influence: the output needs at least one token after some context',
    );
  const length = promptTokens.length + outputTokens.length;
  // Inputs are all tokens but the last, so a window of context + 1 tokens fits.
  if (length > model.config.contextLength + 1)
    throw new OpenLedgerError(
      'CONTEXT_LENGTH_EXCEEDED',
      `influence: prompt and output are ${length} tokens; the model's context is ${model.config.contextLength}`,
    );
  const network = createTrainingNetwork(
    model,
    adapter,
    options.backend === undefined ? {} : { backend: options.backend },
  );
  const { loss, tokens } = await exampleGradient(network, {
    tokens: [...promptTokens, ...outputTokens],
    promptLength: promptTokens.length,
  });
  const query = projectGradient({ seed: header.seed, layout: header.layout }, network.parameters());
  return { query, loss, tokens };
}

/** Scores of every stored row against a projected output gradient `query`. */
export function influenceScores(
  sketches: Sketches,
  query: ArrayLike<number>,
  options: { method?: InfluenceMethod; lambdaScale?: number } = {},
): Float64Array {
  const method = options.method ?? 'datainf';
  const matrix = {
    layout: sketches.header.layout,
    count: sketches.header.count,
    values: sketches.values,
  };
  if (method === 'tracin') return tracInScores(matrix, query);
  if (method === 'datainf')
    return dataInfScores(
      matrix,
      query,
      options.lambdaScale === undefined ? {} : { lambdaScale: options.lambdaScale },
    );
  throw new OpenLedgerError(
    'VALIDATION_FAILED',
    `influence: unknown method ${String(method)} (datainf or tracin)`,
  );
}

/** The influence of every trained row of a job on one served output (see the module comment). */
export async function influenceOfOutput(options: InfluenceOptions): Promise<InfluenceResult> {
  const method = options.method ?? 'datainf';
  const sketch = await outputSketch(options);
  const scores = influenceScores(options.sketches, sketch.query, {
    method,
    ...(options.lambdaScale === undefined ? {} : { lambdaScale: options.lambdaScale }),
  });
  return { ...sketch, method, scores };
}

/**
 * The contributor of each sketch row, from the training manifest's rows (header.rows[i].index
 * is the manifest row; its rowHash must agree, or the manifest is not this job's).
 */
export function sketchContributors(
  header: SketchHeader,
  manifestRows: readonly { rowHash: string; contributor: string }[],
): string[] {
  return header.rows.map((entry, i) => {
    const row = manifestRows[entry.index];
    if (row === undefined || row.rowHash !== entry.rowHash)
      mismatch(`sketch row ${i} names manifest row ${entry.index}, which the manifest lacks`);
    return row.contributor;
  });
}

/** A positive finite double as the exact fraction it is (mantissa / 2^−exponent). */
function exactFraction(x: number): Fraction {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const exponent = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(view.getUint32(4));
  let e = -1074; // subnormal
  if (exponent !== 0) {
    mantissa |= 1n << 52n;
    e = exponent - 1075;
  }
  return e >= 0 ? fraction(mantissa << BigInt(e), 1n) : fraction(mantissa, 1n << BigInt(-e));
}

export interface InfluenceWeights {
  /** Per contributor (sorted): parts per billion summing to exactly 10^9, or empty. */
  weightsPpb: Map<string, bigint>;
  /** Sketch rows with a positive score, best first (ties: the lower row). */
  rows: { row: number; contributor: string; score: number }[];
}

/**
 * Per-contributor weights from per-row scores: each contributor's credit is the exact sum of
 * their rows' positive scores (a row that hurt the output, score ≤ 0, pays nothing and takes
 * nothing away), normalised to parts per billion by largest remainder. Exact rational sums, so
 * the weights do not depend on the order of the rows. Empty when no row helped.
 */
export function influenceWeights(
  scores: ArrayLike<number>,
  contributors: readonly string[],
): InfluenceWeights {
  if (scores.length !== contributors.length)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `influence: ${scores.length} scores for ${contributors.length} rows`,
    );
  const credits = new Map<string, Fraction>();
  const rows: InfluenceWeights['rows'] = [];
  for (let i = 0; i < scores.length; i++) {
    const score = scores[i]!;
    if (!Number.isFinite(score))
      throw new OpenLedgerError('VALIDATION_FAILED', `influence: row ${i} has score ${score}`);
    if (!(score > 0)) continue;
    const who = contributors[i]!;
    credits.set(who, addFraction(credits.get(who) ?? { num: 0n, den: 1n }, exactFraction(score)));
    rows.push({ row: i, contributor: who, score });
  }
  rows.sort((a, b) => b.score - a.score || a.row - b.row);
  const ppb = normalisePpb(credits);
  return { weightsPpb: new Map([...ppb].sort((a, b) => (a[0] < b[0] ? -1 : 1))), rows };
}
