/**
 * SentencePiece-style llama vocabularies between Hugging Face `tokenizer.json` and GGUF
 * `tokenizer.ggml.*`.
 *
 * Hugging Face stores a llama tokenizer converted from SentencePiece as a byte-fallback BPE
 * (`model.type` "BPE", `byte_fallback` true): the vocabulary in id order and the merges, which
 * transformers' SpmConverter ordered by the score of the merged piece. llama.cpp's SentencePiece
 * tokenizer instead merges the adjacent pair whose merged piece has the highest score. So a piece
 * made by merge rank k gets the score −k here, which makes both algorithms choose the same
 * merges; pieces no merge makes (single characters, bytes, specials) score below every merged
 * piece, or 0 for bytes and specials, as in SentencePiece models. `Unigram` tokenizers carry their
 * scores and are taken as they are.
 *
 * Token types follow llama.cpp's convert_hf_to_gguf (LlamaHfVocab): `<0xXX>` pieces are BYTE, the
 * unknown token UNKNOWN, special added tokens CONTROL, other added tokens USER_DEFINED.
 */
import { OpenLedgerError } from '../../errors.ts';
import {
  gguf,
  ggufArray,
  ggufBool,
  ggufNumber,
  type GgufMetadata,
  type GgufValue,
} from '../gguf/index.ts';

const TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, BYTE: 6 } as const;
const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

interface TokenizerJson {
  added_tokens?: AddedToken[];
  model?: {
    type?: string;
    vocab?: Record<string, number> | [string, number][];
    merges?: (string | [string, string])[];
    unk_token?: string | null;
    unk_id?: number | null;
    byte_fallback?: boolean;
  };
}

/** The parts of tokenizer_config.json (and config.json) that name special tokens. */
export interface TokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
}

function invalid(message: string): OpenLedgerError {
  return new OpenLedgerError('FILE_INVALID', `tokenizer.json: ${message}`, {
    hint: 'a llama tokenizer.json (SentencePiece converted to byte-fallback BPE, or Unigram) is expected',
  });
}

function contentOf(token: TokenizerConfig['bos_token']): string | undefined {
  if (token === null || token === undefined) return undefined;
  return typeof token === 'string' ? token : token.content;
}

/**
 * The `tokenizer.ggml.*` metadata of a llama tokenizer.json, with bos/eos/pad and the add_*
 * flags from tokenizer_config.json (ids from config.json as a fallback), padded to `vocabSize`
 * with `[PADn]` tokens as convert_hf_to_gguf pads.
 */
export function ggufVocabFromTokenizerJson(
  json: unknown,
  config: TokenizerConfig,
  modelConfig: { bos_token_id?: number; eos_token_id?: number; pad_token_id?: number },
  vocabSize: number,
): [string, GgufValue][] {
  const tok = json as TokenizerJson;
  const model = tok.model;
  if (typeof model !== 'object' || model === null) throw invalid('no "model"');
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  let unkId = -1;
  if (model.type === 'Unigram') {
    if (!Array.isArray(model.vocab)) throw invalid('a Unigram model needs a vocab list');
    for (const [i, entry] of model.vocab.entries()) {
      tokens[i] = entry[0];
      scores[i] = entry[1];
    }
    unkId = model.unk_id ?? -1;
  } else if (model.type === 'BPE') {
    if (model.byte_fallback !== true)
      throw new OpenLedgerError(
        'MODEL_UNSUPPORTED',
        'tokenizer.json is a BPE without byte fallback (GPT-2 style); only SentencePiece-style llama tokenizers convert here',
      );
    const vocab = model.vocab;
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab))
      throw invalid('a BPE model needs a vocab object');
    for (const [piece, id] of Object.entries(vocab)) tokens[id] = piece;
    const merges = model.merges ?? [];
    const rank = new Map<string, number>();
    merges.forEach((merge, k) => {
      const [left, right] = typeof merge === 'string' ? merge.split(' ') : merge;
      const piece = `${left}${right}`;
      if (!rank.has(piece)) rank.set(piece, k);
    });
    let unmerged = 0;
    for (let id = 0; id < tokens.length; id++) {
      const piece = tokens[id];
      if (piece === undefined) continue;
      const k = rank.get(piece);
      scores[id] =
        k !== undefined ? -k : BYTE_PIECE.test(piece) ? 0 : -(merges.length + unmerged++);
    }
    if (model.unk_token) unkId = vocab[model.unk_token] ?? -1;
  } else {
    throw new OpenLedgerError(
      'MODEL_UNSUPPORTED',
      `tokenizer.json has a ${String(model.type)} model; only SentencePiece-style llama tokenizers (BPE with byte fallback, Unigram) convert here`,
    );
  }
  const special = new Set<number>();
  const added = new Set<number>();
  for (const token of tok.added_tokens ?? []) {
    tokens[token.id] = token.content;
    scores[token.id] ??= 0;
    added.add(token.id);
    if (token.special) special.add(token.id);
  }
  const n = Math.max(vocabSize, tokens.length);
  for (let id = 0; id < n; id++) {
    if (tokens[id] === undefined) {
      tokens[id] = `[PAD${id}]`;
      scores[id] = -1000;
      types[id] = 5; // UNUSED
      continue;
    }
    const piece = tokens[id]!;
    if (BYTE_PIECE.test(piece)) types[id] = TYPE.BYTE;
    else if (id === unkId) types[id] = TYPE.UNKNOWN;
    else if (special.has(id)) types[id] = TYPE.CONTROL;
    else if (added.has(id)) types[id] = TYPE.USER_DEFINED;
    else types[id] = TYPE.NORMAL;
    if (types[id] === TYPE.BYTE || types[id] === TYPE.CONTROL || types[id] === TYPE.UNKNOWN)
      scores[id] = 0;
  }
  const idOf = (name: 'bos' | 'eos' | 'pad'): number | undefined => {
    const content = contentOf(config[`${name}_token`]);
    const byContent = content === undefined ? -1 : tokens.indexOf(content);
    if (byContent >= 0) return byContent;
    return modelConfig[`${name}_token_id`];
  };
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.pre', gguf.string('default')],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    ['tokenizer.ggml.scores', gguf.array('float32', scores)],
    ['tokenizer.ggml.token_type', gguf.array('int32', types)],
  ];
  const bos = idOf('bos');
  const eos = idOf('eos');
  const pad = idOf('pad');
  if (bos !== undefined) out.push(['tokenizer.ggml.bos_token_id', gguf.uint32(bos)]);
  if (eos !== undefined) out.push(['tokenizer.ggml.eos_token_id', gguf.uint32(eos)]);
  if (unkId >= 0) out.push(['tokenizer.ggml.unknown_token_id', gguf.uint32(unkId)]);
  if (pad !== undefined) out.push(['tokenizer.ggml.padding_token_id', gguf.uint32(pad)]);
  if (config.add_bos_token !== undefined)
    out.push(['tokenizer.ggml.add_bos_token', gguf.bool(config.add_bos_token)]);
  if (config.add_eos_token !== undefined)
    out.push(['tokenizer.ggml.add_eos_token', gguf.bool(config.add_eos_token)]);
  return out;
}

/**
 * A Hugging Face tokenizer.json and tokenizer_config.json for a GGUF SentencePiece vocabulary:
 * byte-fallback BPE with merges ordered as transformers' SpmConverter orders them (by the merged
 * piece's score, then by the ids of its two parts).
 */
export function tokenizerJsonFromGguf(meta: GgufMetadata): {
  tokenizer: unknown;
  config: TokenizerConfig & Record<string, unknown>;
} {
  const tokens = ggufArray(meta, 'tokenizer.ggml.tokens', 'string');
  const scores = ggufArray(meta, 'tokenizer.ggml.scores', 'float32');
  const types = ggufArray(meta, 'tokenizer.ggml.token_type', 'int32');
  const vocab: Record<string, number> = {};
  tokens.forEach((piece, id) => (vocab[piece] = id));
  const candidates = tokens
    .map((piece, id) => ({ piece, id }))
    .filter(({ piece, id }) => types[id] === TYPE.NORMAL && [...piece].length > 1)
    .sort((a, b) => scores[b.id]! - scores[a.id]! || a.id - b.id);
  const merges: [string, string][] = [];
  for (const { piece } of candidates) {
    const chars = [...piece];
    const splits: [string, string, number, number][] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      const l = vocab[left];
      const r = vocab[right];
      if (l !== undefined && r !== undefined) splits.push([left, right, l, r]);
    }
    splits.sort((a, b) => a[2] - b[2] || a[3] - b[3]);
    for (const [left, right] of splits) merges.push([left, right]);
  }
  const bos = ggufNumber(meta, 'tokenizer.ggml.bos_token_id', 1);
  const eos = ggufNumber(meta, 'tokenizer.ggml.eos_token_id', 2);
  const unk = ggufNumber(meta, 'tokenizer.ggml.unknown_token_id', 0);
  const added = tokens
    .map((content, id) => ({ content, id }))
    .filter(
      ({ id }) =>
        types[id] === TYPE.CONTROL || types[id] === TYPE.UNKNOWN || types[id] === TYPE.USER_DEFINED,
    )
    .map(({ content, id }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: types[id] === TYPE.USER_DEFINED,
      special: types[id] !== TYPE.USER_DEFINED,
    }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: tokens[unk] ?? null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const config = {
    add_bos_token: ggufBool(meta, 'tokenizer.ggml.add_bos_token', true),
    add_eos_token: ggufBool(meta, 'tokenizer.ggml.add_eos_token', false),
    bos_token: tokens[bos] ?? null,
    eos_token: tokens[eos] ?? null,
    unk_token: tokens[unk] ?? null,
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: 2048 as number,
    tokenizer_class: 'LlamaTokenizer',
    sp_model_kwargs: {},
  };
  return { tokenizer, config };
}

/**
 * The `tokenizer.ggml.*` metadata of a byte-level BPE tokenizer.json (GPT-2 style: Qwen2, GPT-2),
 * as llama.cpp's convert_hf_to_gguf writes it (`_set_vocab_gpt2`): model "gpt2", the given
 * pre-tokenizer name, tokens in id order padded to `vocabSize` with UNUSED `[PADn]`, added tokens
 * CONTROL when special and USER_DEFINED otherwise, the merges as "left right" strings, and the
 * special ids found as for SentencePiece vocabularies.
 */
export function ggufBpeVocabFromTokenizerJson(
  json: unknown,
  config: TokenizerConfig,
  modelConfig: { bos_token_id?: number; eos_token_id?: number; pad_token_id?: number },
  vocabSize: number,
  pre: string,
): [string, GgufValue][] {
  const tok = json as TokenizerJson;
  const model = tok.model;
  if (typeof model !== 'object' || model === null) throw invalid('no "model"');
  if (model.type !== 'BPE' || model.byte_fallback === true)
    throw new OpenLedgerError(
      'MODEL_UNSUPPORTED',
      `tokenizer.json has a ${String(model.type)}${model.byte_fallback ? ' (byte fallback)' : ''} model; a byte-level BPE (GPT-2 style) is expected for this architecture`,
    );
  const vocab = model.vocab;
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab))
    throw invalid('a BPE model needs a vocab object');
  const tokens: string[] = [];
  for (const [piece, id] of Object.entries(vocab)) tokens[id] = piece;
  const special = new Set<number>();
  const added = new Set<number>();
  for (const token of tok.added_tokens ?? []) {
    tokens[token.id] = token.content;
    added.add(token.id);
    if (token.special) special.add(token.id);
  }
  const n = Math.max(vocabSize, tokens.length);
  const types: number[] = [];
  for (let id = 0; id < n; id++) {
    if (tokens[id] === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = 5; // UNUSED
    } else
      types[id] = special.has(id) ? TYPE.CONTROL : added.has(id) ? TYPE.USER_DEFINED : TYPE.NORMAL;
  }
  const merges = (model.merges ?? []).map((m) => (typeof m === 'string' ? m : m.join(' ')));
  const idOf = (name: 'bos' | 'eos' | 'pad'): number | undefined => {
    const content = contentOf(config[`${name}_token`]);
    const byContent = content === undefined ? -1 : tokens.indexOf(content);
    if (byContent >= 0) return byContent;
    return modelConfig[`${name}_token_id`];
  };
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string(pre)],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    ['tokenizer.ggml.token_type', gguf.array('int32', types)],
    ['tokenizer.ggml.merges', gguf.array('string', merges)],
  ];
  const bos = idOf('bos');
  const eos = idOf('eos');
  const pad = idOf('pad');
  if (bos !== undefined) out.push(['tokenizer.ggml.bos_token_id', gguf.uint32(bos)]);
  if (eos !== undefined) out.push(['tokenizer.ggml.eos_token_id', gguf.uint32(eos)]);
  if (pad !== undefined) out.push(['tokenizer.ggml.padding_token_id', gguf.uint32(pad)]);
  if (config.add_bos_token !== undefined)
    out.push(['tokenizer.ggml.add_bos_token', gguf.bool(config.add_bos_token)]);
  if (config.add_eos_token !== undefined)
    out.push(['tokenizer.ggml.add_eos_token', gguf.bool(config.add_eos_token)]);
  return out;
}

/** Qwen2's pre-tokenizer regex, as its tokenizer.json carries it. */
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * A Hugging Face tokenizer.json and tokenizer_config.json for a GGUF byte-level BPE vocabulary
 * (`tokenizer.ggml.model` "gpt2"), with Qwen2's pre-tokenizer; the inverse of
 * `ggufBpeVocabFromTokenizerJson`.
 */
export function bpeTokenizerJsonFromGguf(meta: GgufMetadata): {
  tokenizer: unknown;
  config: TokenizerConfig & Record<string, unknown>;
} {
  const tokens = ggufArray(meta, 'tokenizer.ggml.tokens', 'string');
  const types = ggufArray(meta, 'tokenizer.ggml.token_type', 'int32');
  const merges = ggufArray(meta, 'tokenizer.ggml.merges', 'string');
  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  tokens.forEach((piece, id) => {
    if (types[id] === TYPE.CONTROL || types[id] === TYPE.USER_DEFINED)
      added.push({
        id,
        content: piece,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: types[id] === TYPE.USER_DEFINED,
        special: types[id] === TYPE.CONTROL,
      });
    else if (types[id] !== 5) vocab[piece] = id;
  });
  const tokenAt = (key: string): string | null =>
    meta.has(key) ? (tokens[ggufNumber(meta, key)] ?? null) : null;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_SPLIT }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: {
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: false,
      use_regex: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => m.split(' ')),
    },
  };
  // add_* only when the GGUF says: their absence keeps llama.cpp's per-pre-tokenizer default.
  const config = {
    ...(meta.has('tokenizer.ggml.add_bos_token')
      ? { add_bos_token: ggufBool(meta, 'tokenizer.ggml.add_bos_token') }
      : {}),
    ...(meta.has('tokenizer.ggml.add_eos_token')
      ? { add_eos_token: ggufBool(meta, 'tokenizer.ggml.add_eos_token') }
      : {}),
    bos_token: tokenAt('tokenizer.ggml.bos_token_id'),
    eos_token: tokenAt('tokenizer.ggml.eos_token_id'),
    pad_token: tokenAt('tokenizer.ggml.padding_token_id'),
    unk_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: 2048 as number,
    tokenizer_class: 'Qwen2Tokenizer',
  };
  return { tokenizer, config };
}
