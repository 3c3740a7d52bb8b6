/** The parameters of a training job: defaults filled in, every value checked. */
import { LORA_TARGETS, type LoraTarget } from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { TEMPLATES, isTemplateName, type TemplateName } from './templates.ts';
import { BUILTIN_MODEL_NAME } from './builtin/paths.ts';

export interface Hyperparameters {
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
  learningRate: number;
  steps: number;
  batchSize: number;
  warmupSteps: number;
  seed: number;
  /** Longest training sequence; longer renderings are cut (default min(256, model context)). */
  maxTokens: number;
  /** Save a checkpoint every this many steps (default: about 10 per job). */
  checkpointEvery: number;
  /** Share of rows held out for evaluation, in percent, chosen by row hash (default 10). */
  evalPercent: number;
  /**
   * Sequence packing (default true): each step's short examples are concatenated into rows of
   * up to maxTokens, kept apart by per-token positions, and the rows grouped into micro-batches
   * of similar length, so that little compute goes to padding; the step's gradient is the same
   * (see packing.ts).
   */
  packing: boolean;
  /**
   * QLoRA (default 'none'): keep the frozen base's projections as 8-bit ('q8_0') or 4-bit
   * ('q4_0') blocks, dequantized inside each product; dims must be multiples of 32.
   */
  quantizeBase: 'none' | 'q8_0' | 'q4_0';
}

export interface DatanetRef {
  id: number;
  version: number | 'latest';
}

export interface TrainParams {
  /** A GGUF file on the node (a path, for now). */
  baseModel: string;
  datanets: DatanetRef[];
  template: TemplateName;
  hyperparameters: Hyperparameters;
}

export type TrainParamsInput = {
  baseModel?: unknown;
  datanets?: unknown;
  template?: unknown;
  hyperparameters?: Partial<Record<keyof Hyperparameters, unknown>>;
};

export const MAX_STEPS = 100_000;
export const DEFAULT_MAX_TOKENS = 256;

function invalid(message: string, hint?: string): never {
  throw new OpenLedgerError('VALIDATION_FAILED', message, hint === undefined ? {} : { hint });
}

function integer(name: string, value: unknown, fallback: number, min: number, max: number) {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    invalid(
      `hyperparameters.${name} is ${JSON.stringify(v)}; it must be an integer in [${min}, ${max}]`,
    );
  return v;
}

function real(
  name: string,
  value: unknown,
  fallback: number,
  ok: (v: number) => boolean,
  range: string,
) {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
    invalid(`hyperparameters.${name} is ${JSON.stringify(v)}; it must be ${range}`);
  return v;
}

function boolean(name: string, value: unknown, fallback: boolean): boolean {
  const v = value ?? fallback;
  if (typeof v !== 'boolean')
    invalid(`hyperparameters.${name} is ${JSON.stringify(v)}; it must be true or false`);
  return v;
}

/**
 * Fills in defaults and checks a training job's parameters; throws VALIDATION_FAILED naming the
 * first bad field. Idempotent: normalised parameters normalise to themselves.
 */
export function normalizeTrainParams(input: TrainParamsInput): TrainParams {
  const baseModel = input.baseModel ?? BUILTIN_MODEL_NAME;
  if (typeof baseModel !== 'string' || baseModel.length === 0)
    invalid(
      "baseModel must be the name of one of the node's base models (GET /api/factory/models); leave it out for the built-in one.",
    );
  if (!Array.isArray(input.datanets) || input.datanets.length === 0)
    invalid('datanets is required: at least one { id, version } to train on.');
  if (input.datanets.length > 32) invalid('at most 32 datanet versions per training job.');
  const seen = new Set<number>();
  const datanets = (input.datanets as unknown[]).map((entry, i): DatanetRef => {
    const ref = entry as { id?: unknown; version?: unknown };
    if (typeof ref.id !== 'number' || !Number.isSafeInteger(ref.id) || ref.id < 1)
      invalid(`datanets[${i}].id must be a positive integer.`);
    const version = ref.version ?? 'latest';
    if (
      version !== 'latest' &&
      (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    )
      invalid(`datanets[${i}].version must be a positive integer or "latest".`);
    if (seen.has(ref.id)) invalid(`datanet ${ref.id} is listed twice.`);
    seen.add(ref.id);
    return { id: ref.id, version: version as number | 'latest' };
  });
  const template = input.template ?? 'llama2';
  if (typeof template !== 'string' || !isTemplateName(template))
    invalid(
      `template ${JSON.stringify(template)} is unknown.`,
      `choose among ${TEMPLATES.join(', ')}`,
    );
  const hyperparameters = normalizeHyperparameters(input.hyperparameters ?? {});
  return {
    baseModel: baseModel as string,
    datanets,
    template,
    hyperparameters,
  };
}

/** Fills in the defaults of the hyperparameters and checks them (VALIDATION_FAILED). */
export function normalizeHyperparameters(
  h: Partial<Record<keyof Hyperparameters, unknown>>,
): Hyperparameters {
  if (typeof h !== 'object' || h === null || Array.isArray(h))
    invalid('hyperparameters must be an object.');
  const rank = integer('rank', h.rank, 8, 1, 256);
  const steps = integer('steps', h.steps, 100, 1, MAX_STEPS);
  const targets = h.targets ?? ['attn_q', 'attn_v'];
  if (
    !Array.isArray(targets) ||
    targets.length === 0 ||
    targets.some((t) => !(LORA_TARGETS as readonly unknown[]).includes(t)) ||
    new Set(targets).size !== targets.length
  )
    invalid(
      `hyperparameters.targets ${JSON.stringify(targets)} is not a list of distinct targets.`,
      `choose among ${LORA_TARGETS.join(', ')}`,
    );
  return {
    rank,
    alpha: real('alpha', h.alpha, 2 * rank, (v) => v > 0, 'a positive number'),
    dropout: real('dropout', h.dropout, 0.05, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    targets: LORA_TARGETS.filter((t) => (targets as unknown[]).includes(t)),
    learningRate: real('learningRate', h.learningRate, 1e-3, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    steps,
    batchSize: integer('batchSize', h.batchSize, 8, 1, 512),
    warmupSteps: integer(
      'warmupSteps',
      h.warmupSteps,
      Math.min(10, Math.floor(steps / 10)),
      0,
      steps - 1,
    ),
    seed: integer('seed', h.seed, 0, 0, 2 ** 31 - 1),
    maxTokens: integer('maxTokens', h.maxTokens, DEFAULT_MAX_TOKENS, 2, 32_768),
    checkpointEvery: integer(
      'checkpointEvery',
      h.checkpointEvery,
      Math.max(1, Math.ceil(steps / 10)),
      1,
      MAX_STEPS,
    ),
    evalPercent: integer('evalPercent', h.evalPercent, 10, 0, 50),
    packing: boolean('packing', h.packing, true),
    quantizeBase: oneOf('quantizeBase', h.quantizeBase, 'none', ['none', 'q8_0', 'q4_0'] as const),
  };
}

function oneOf<const T extends string>(
  name: string,
  value: unknown,
  fallback: T,
  allowed: readonly T[],
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    invalid(
      `hyperparameters.${name} ${JSON.stringify(value)} is not one of ${allowed.join(', ')}.`,
    );
  return value as T;
}
