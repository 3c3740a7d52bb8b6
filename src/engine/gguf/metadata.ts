/**
 * Typed access to GGUF metadata: building values to write (`gguf.uint32(64)`), reading them back
 * with a check of their type (`ggufNumber(meta, 'llama.block_count')`), and the hyperparameters
 * of the architectures the trainer knows.
 */
import { OpenLedgerError } from '../../errors.ts';
import { describeType } from './reader.ts';
import type {
  GgufArrayItems,
  GgufArrayValue,
  GgufItemType,
  GgufMetadata,
  GgufValue,
} from './types.ts';

// ---------------------------------------------------------------------------------------------
// Building values

type NumericItemType = Exclude<GgufItemType, 'bool' | 'string' | 'array'>;

const TYPED_ARRAY = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
  uint64: BigUint64Array,
  int64: BigInt64Array,
} as const;

/** What `gguf.array` accepts for each item type: the stored form, or plain numbers/bigints. */
type ArrayInput<K extends GgufItemType> = K extends 'uint64' | 'int64'
  ? GgufArrayItems[K] | ArrayLike<bigint>
  : K extends NumericItemType
    ? GgufArrayItems[K] | ArrayLike<number>
    : GgufArrayItems[K];

/**
 * Constructors for metadata values, so that a key gets the type llama.cpp expects:
 *
 *     metadata.set('llama.block_count', gguf.uint32(4));
 *     metadata.set('tokenizer.ggml.scores', gguf.array('float32', scores));
 */
export const gguf = {
  uint8: (value: number): GgufValue => ({ type: 'uint8', value }),
  int8: (value: number): GgufValue => ({ type: 'int8', value }),
  uint16: (value: number): GgufValue => ({ type: 'uint16', value }),
  int16: (value: number): GgufValue => ({ type: 'int16', value }),
  uint32: (value: number): GgufValue => ({ type: 'uint32', value }),
  int32: (value: number): GgufValue => ({ type: 'int32', value }),
  float32: (value: number): GgufValue => ({ type: 'float32', value: Math.fround(value) }),
  float64: (value: number): GgufValue => ({ type: 'float64', value }),
  uint64: (value: bigint | number): GgufValue => ({ type: 'uint64', value: BigInt(value) }),
  int64: (value: bigint | number): GgufValue => ({ type: 'int64', value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  /** An array; numbers may be given as a plain array and are stored as the typed array. */
  array<K extends GgufItemType>(itemType: K, items: ArrayInput<K>): GgufArrayValue {
    if (itemType in TYPED_ARRAY) {
      const Typed = TYPED_ARRAY[itemType as NumericItemType];
      const value =
        items instanceof Typed ? items : (Typed.from as (items: unknown) => unknown)(items);
      return { type: 'array', itemType, value } as GgufArrayValue;
    }
    return {
      type: 'array',
      itemType,
      value: Array.from(items as ArrayLike<unknown>),
    } as GgufArrayValue;
  },
};

// ---------------------------------------------------------------------------------------------
// Reading values

function lookup(meta: GgufMetadata, key: string): GgufValue | undefined {
  return meta.get(key);
}

function missing(key: string): OpenLedgerError {
  return new OpenLedgerError('GGUF_INVALID', `GGUF metadata has no key '${key}'`, {
    details: { key },
  });
}

function wrongType(key: string, value: GgufValue, expected: string): OpenLedgerError {
  return new OpenLedgerError(
    'GGUF_INVALID',
    `GGUF metadata key '${key}' has type ${describeType(value)}, expected ${expected}`,
    { details: { key, found: describeType(value), expected } },
  );
}

/** A string value; `fallback` when the key is absent (without one, absence is an error). */
export function ggufString(meta: GgufMetadata, key: string, fallback?: string): string {
  const value = lookup(meta, key);
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw missing(key);
  }
  if (value.type !== 'string') throw wrongType(key, value, 'a string');
  return value.value;
}

/**
 * A numeric value of any type (uint8 … float64), as a number. A 64-bit integer beyond
 * Number.MAX_SAFE_INTEGER is refused rather than rounded.
 */
export function ggufNumber(meta: GgufMetadata, key: string, fallback?: number): number {
  const value = lookup(meta, key);
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw missing(key);
  }
  if (value.type === 'uint64' || value.type === 'int64') {
    const n = Number(value.value);
    if (!Number.isSafeInteger(n)) {
      throw new OpenLedgerError(
        'GGUF_INVALID',
        `GGUF metadata key '${key}' is ${value.value}, beyond Number.MAX_SAFE_INTEGER`,
        { details: { key } },
      );
    }
    return n;
  }
  if (typeof value.value !== 'number') throw wrongType(key, value, 'a number');
  return value.value;
}

export function ggufBool(meta: GgufMetadata, key: string, fallback?: boolean): boolean {
  const value = lookup(meta, key);
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw missing(key);
  }
  if (value.type !== 'bool') throw wrongType(key, value, 'a bool');
  return value.value;
}

/**
 * An array value. With `itemType`, checks it and returns the items (a typed array for numbers,
 * string[] for strings); without, returns the tagged array.
 */
export function ggufArray<K extends GgufItemType>(
  meta: GgufMetadata,
  key: string,
  itemType: K,
): GgufArrayItems[K];
export function ggufArray(meta: GgufMetadata, key: string): GgufArrayValue;
export function ggufArray(
  meta: GgufMetadata,
  key: string,
  itemType?: GgufItemType,
): GgufArrayValue | GgufArrayItems[GgufItemType] {
  const value = lookup(meta, key);
  if (value === undefined) throw missing(key);
  if (value.type !== 'array')
    throw wrongType(key, value, `an array${itemType ? ` of ${itemType}` : ''}`);
  if (itemType === undefined) return value;
  if (value.itemType !== itemType) throw wrongType(key, value, `an array of ${itemType}`);
  return value.value;
}

// ---------------------------------------------------------------------------------------------
// Hyperparameters

export type ModelArchitecture = 'llama' | 'qwen2' | 'gpt2';

export interface ModelHyperparams {
  arch: ModelArchitecture;
  /** `<arch>.context_length`: the context the model was trained with. */
  contextLength: number;
  /** `<arch>.embedding_length`: the model width (dim). */
  embeddingLength: number;
  /** `<arch>.block_count`: the number of transformer layers. */
  blockCount: number;
  /** `<arch>.feed_forward_length`: the hidden width of the MLP. */
  feedForwardLength: number;
  /** `<arch>.attention.head_count`. */
  headCount: number;
  /** `<arch>.attention.head_count_kv` (grouped-query attention); defaults to headCount. */
  headCountKv: number;
  /** embeddingLength / headCount. */
  headDim: number;
  /** `<arch>.rope.freq_base`, default 10000; unused when `positions` is 'learned'. */
  ropeFreqBase: number;
  /** `<arch>.rope.dimension_count`: how many dimensions of a head RoPE rotates (default headDim). */
  ropeDimensionCount: number;
  /**
   * The normalisation epsilon: `attention.layer_norm_rms_epsilon` for llama and qwen2 (RMSNorm),
   * `attention.layer_norm_epsilon` for gpt2 (LayerNorm; see `norm`).
   */
  rmsEps: number;
  /** `<arch>.vocab_size`, or the length of `tokenizer.ggml.tokens`. */
  vocabSize: number;
  norm: 'rms' | 'layer';
  /** RoPE (llama, qwen2) or learned position embeddings (gpt2). */
  positions: 'rope' | 'learned';
}

const ARCHITECTURES: readonly ModelArchitecture[] = ['llama', 'qwen2', 'gpt2'];

/**
 * The hyperparameters of a llama, qwen2 or gpt2 GGUF model, read from the same keys llama.cpp
 * reads, with its defaults. Throws GGUF_INVALID for a missing required key or inconsistent shape,
 * GGUF_UNSUPPORTED for another architecture.
 */
export function llamaHyperparams(meta: GgufMetadata): ModelHyperparams {
  const arch = ggufString(meta, 'general.architecture');
  if (!ARCHITECTURES.includes(arch as ModelArchitecture)) {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `GGUF architecture '${arch}' is not supported (supported: ${ARCHITECTURES.join(', ')})`,
      { details: { arch } },
    );
  }
  const a = arch as ModelArchitecture;
  const embeddingLength = ggufNumber(meta, `${a}.embedding_length`);
  const headCount = perLayerNumber(meta, `${a}.attention.head_count`);
  const headCountKv = perLayerNumber(meta, `${a}.attention.head_count_kv`, headCount);
  const norm = a === 'gpt2' ? 'layer' : 'rms';
  const epsilonKey =
    norm === 'rms' ? `${a}.attention.layer_norm_rms_epsilon` : `${a}.attention.layer_norm_epsilon`;

  let vocabSize: number;
  if (meta.has(`${a}.vocab_size`)) vocabSize = ggufNumber(meta, `${a}.vocab_size`);
  else if (meta.has('tokenizer.ggml.tokens'))
    vocabSize = ggufArray(meta, 'tokenizer.ggml.tokens', 'string').length;
  else throw missing(`${a}.vocab_size' or 'tokenizer.ggml.tokens`);

  if (headCount <= 0 || embeddingLength % headCount !== 0) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `embedding length ${embeddingLength} is not a multiple of the head count ${headCount}`,
    );
  }
  if (headCountKv <= 0 || headCount % headCountKv !== 0) {
    throw new OpenLedgerError(
      'GGUF_INVALID',
      `head count ${headCount} is not a multiple of the key/value head count ${headCountKv}`,
    );
  }
  const headDim = embeddingLength / headCount;
  return {
    arch: a,
    contextLength: ggufNumber(meta, `${a}.context_length`),
    embeddingLength,
    blockCount: ggufNumber(meta, `${a}.block_count`),
    feedForwardLength: perLayerNumber(meta, `${a}.feed_forward_length`),
    headCount,
    headCountKv,
    headDim,
    ropeFreqBase: ggufNumber(meta, `${a}.rope.freq_base`, 10000),
    ropeDimensionCount: ggufNumber(meta, `${a}.rope.dimension_count`, headDim),
    rmsEps: ggufNumber(meta, epsilonKey),
    vocabSize,
    norm,
    positions: a === 'gpt2' ? 'learned' : 'rope',
  };
}

/**
 * A number that llama.cpp also accepts as one value per layer (`get_key_or_arr`): an array whose
 * values are all equal is that value; per-layer differences are not supported.
 */
function perLayerNumber(meta: GgufMetadata, key: string, fallback?: number): number {
  const value = meta.get(key);
  if (value?.type !== 'array') return ggufNumber(meta, key, fallback);
  const items = value.value;
  const first = items[0];
  if (
    typeof first !== 'number' ||
    !Array.prototype.every.call(items, (item: unknown) => item === first)
  ) {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `GGUF metadata key '${key}' differs between layers, which is not supported`,
      { details: { key } },
    );
  }
  return first;
}
