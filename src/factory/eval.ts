/**
 * The evaluation of a trained adapter against its base model: the loss and perplexity of both on
 * the held-out rows, and side-by-side greedy samples (base, adapter, reference answer) for a few
 * held-out prompts or for prompts the caller gives.
 *
 * It runs on the inference engine (engine/model LlamaModel: `forwardSequence` for the losses,
 * `generate` for the samples), with the adapter merged into a copy of the adapted weights
 * (`mergeLora`), so what is measured is the model a user would serve, not the training graph.
 * Everything is deterministic: greedy decoding, rows in manifest order.
 */
import {
  mergeLora,
  type DecodeOptions,
  type GgufModel,
  type LoraAdapter,
} from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { renderExample, type TemplateName, type TemplateRow } from './templates.ts';

export const DEFAULT_SAMPLES = 3;
export const DEFAULT_SAMPLE_TOKENS = 48;
export const MAX_SAMPLE_TOKENS = 256;
export const MAX_CUSTOM_PROMPTS = 16;

export interface EvalPrompt {
  prompt: string;
  /** What a good answer would be, shown beside the generations (optional). */
  reference?: string;
}

export interface EvalSample {
  /** A held-out row (its hash) or a prompt of the caller. */
  source: 'held-out' | 'custom';
  rowHash?: string;
  /** The prompt as the model sees it: the template's rendering, special tokens included. */
  prompt: string;
  reference: string | null;
  base: string;
  adapter: string;
}

export interface Evaluation {
  /** Held-out rows with at least one loss target. */
  heldOutRows: number;
  /** Loss targets over those rows. */
  targets: number;
  baseLoss: number | null;
  adapterLoss: number | null;
  /** exp(loss): the mean branching factor the model needs per target token. */
  basePerplexity: number | null;
  adapterPerplexity: number | null;
  samples: EvalSample[];
  maxNewTokens: number;
  seconds: number;
}

export interface EvalInput {
  model: GgufModel;
  adapter: LoraAdapter;
  template: TemplateName;
  /** The held-out rows, in manifest order. */
  heldOut: readonly { rowHash: string; row: TemplateRow }[];
  /** Tokens per row (the job's effective maxTokens). */
  maxTokens: number;
  /** Prompts of the caller; absent: the first `samples` held-out rows. */
  prompts?: readonly EvalPrompt[] | undefined;
  samples?: number | undefined;
  maxNewTokens?: number | undefined;
}

/** A template's end-of-turn text that a vocabulary may not have as a token (cut from samples). */
const END_OF_TURN: Partial<Record<TemplateName, string>> = { chatml: '<|im_end|>' };

// SentencePiece options; a BPE tokenizer reads `special` and ignores the rest (it adds no space).
const REFERENCE_DECODE: DecodeOptions = { stripLeadingSpace: true };
const PROMPT_DECODE: DecodeOptions = { special: true, stripLeadingSpace: false };

function logSumExp(row: Float32Array, from: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (row[from + i]! > max) max = row[from + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(row[from + i]! - max);
  return max + Math.log(sum);
}

/** Σ −log p(target) over the targets of the mask (index ≥ 1), and their count. */
function sequenceLoss(model: GgufModel, tokens: readonly number[], mask: readonly number[]) {
  const V = model.config.vocabSize;
  const logits = model.forwardSequence(tokens.slice(0, -1));
  let sum = 0;
  let count = 0;
  for (let t = 0; t + 1 < tokens.length; t++) {
    if (mask[t + 1] !== 1) continue;
    sum += logSumExp(logits, t * V, V) - logits[t * V + tokens[t + 1]!]!;
    count += 1;
  }
  return { sum, count };
}

/**
 * Where a rendered example splits into the prompt and the answer: before its first trained
 * token; a row trained from its start (a document) is cut in half, the first half the prompt.
 */
export function promptSplit(mask: readonly number[]): { at: number; end: number } {
  let at = 1;
  while (at < mask.length && mask[at] !== 1) at++;
  if (at >= mask.length) return { at: mask.length, end: mask.length };
  if (at <= 1) at = Math.max(1, Math.floor(mask.length / 2));
  let end = at;
  while (end < mask.length && mask[end] === 1) end++;
  return { at, end };
}

function checkSampleOptions(input: EvalInput): { samples: number; maxNewTokens: number } {
  const samples = input.samples ?? DEFAULT_SAMPLES;
  const maxNewTokens = input.maxNewTokens ?? DEFAULT_SAMPLE_TOKENS;
  if (!Number.isSafeInteger(samples) || samples < 0 || samples > MAX_CUSTOM_PROMPTS)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `samples is ${samples}; it must be an integer in [0, ${MAX_CUSTOM_PROMPTS}]`,
    );
  if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens > MAX_SAMPLE_TOKENS)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `maxTokens is ${maxNewTokens}; it must be an integer in [1, ${MAX_SAMPLE_TOKENS}]`,
    );
  if (input.prompts && input.prompts.length > MAX_CUSTOM_PROMPTS)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `${input.prompts.length} prompts; at most ${MAX_CUSTOM_PROMPTS} per evaluation`,
    );
  return { samples, maxNewTokens };
}

/** Losses, perplexities and samples of base and adapter (see the module comment). */
export function evaluateAdapter(input: EvalInput): Evaluation {
  const started = performance.now();
  const { model, template, maxTokens } = input;
  const { samples, maxNewTokens } = checkSampleOptions(input);
  const tokenizer = model.tokenizer;
  if (!tokenizer)
    throw new OpenLedgerError('GGUF_UNSUPPORTED', 'The base model has no tokenizer to evaluate.');
  const tuned = mergeLora(model, input.adapter);

  const rendered = input.heldOut.map((h) => ({
    rowHash: h.rowHash,
    ...renderExample(template, h.row, tokenizer, maxTokens),
  }));
  const usable = rendered.filter((r) => r.tokens.length >= 2 && r.trainedTokens > 0);
  let baseSum = 0;
  let tunedSum = 0;
  let targets = 0;
  for (const r of usable) {
    const b = sequenceLoss(model, r.tokens, r.mask);
    const a = sequenceLoss(tuned, r.tokens, r.mask);
    baseSum += b.sum;
    tunedSum += a.sum;
    targets += b.count;
  }
  const baseLoss = targets > 0 ? baseSum / targets : null;
  const adapterLoss = targets > 0 ? tunedSum / targets : null;

  // The prompts: the caller's, each rendered as a user turn that the assistant is to answer, or
  // the first held-out rows cut before their answer.
  const prompts: {
    tokens: number[];
    reference: string | null;
    source: EvalSample['source'];
    rowHash?: string;
  }[] = [];
  if (input.prompts) {
    for (const p of input.prompts) {
      if (typeof p.prompt !== 'string' || p.prompt.trim() === '')
        throw new OpenLedgerError('VALIDATION_FAILED', 'Every prompt needs a non-empty text.');
      const r = renderExample(
        template,
        {
          messages: [
            { role: 'user', content: p.prompt },
            { role: 'assistant', content: '' },
          ],
        },
        tokenizer,
        maxTokens,
      );
      const { at } = promptSplit(r.mask);
      prompts.push({
        tokens: r.tokens.slice(0, at),
        reference: p.reference ?? null,
        source: 'custom',
      });
    }
  } else {
    for (const r of usable) {
      if (prompts.length >= samples) break;
      const { at, end } = promptSplit(r.mask);
      if (at >= r.tokens.length) continue;
      const answer = r.tokens.slice(at, end).filter((id) => id !== tokenizer.eosId);
      prompts.push({
        tokens: r.tokens.slice(0, at),
        reference: tokenizer.decode(answer, REFERENCE_DECODE),
        source: 'held-out',
        rowHash: r.rowHash,
      });
    }
  }
  const end = END_OF_TURN[template];
  const answer = (m: GgufModel, tokens: number[]) => {
    const room = m.config.contextLength - tokens.length;
    if (room < 1) return '';
    const text = m.generate(tokens, Math.min(maxNewTokens, room)).text;
    const cut = end === undefined ? text : text.split(end)[0]!;
    return cut.trim();
  };
  const out: EvalSample[] = prompts.map((p) => ({
    source: p.source,
    ...(p.rowHash === undefined ? {} : { rowHash: p.rowHash }),
    prompt: tokenizer.decode(p.tokens, PROMPT_DECODE),
    reference: p.reference,
    base: answer(model, p.tokens),
    adapter: answer(tuned, p.tokens),
  }));
  return {
    heldOutRows: usable.length,
    targets,
    baseLoss,
    adapterLoss,
    basePerplexity: baseLoss === null ? null : Math.exp(baseLoss),
    adapterPerplexity: adapterLoss === null ? null : Math.exp(adapterLoss),
    samples: out,
    maxNewTokens,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The held-out rows among `rows` (those whose hash is in `evalHashes`), each hash once. */
export function heldOutRows(
  rows: readonly (TemplateRow & { rowHash: string })[],
  evalHashes: ReadonlySet<string>,
): EvalInput['heldOut'] {
  const seen = new Set<string>();
  const out: { rowHash: string; row: TemplateRow }[] = [];
  for (const row of rows) {
    if (!evalHashes.has(row.rowHash) || seen.has(row.rowHash)) continue;
    seen.add(row.rowHash);
    out.push({ rowHash: row.rowHash, row: { content: row.content, messages: row.messages } });
  }
  return out;
}
