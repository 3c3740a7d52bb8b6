/**
 * Chat templates: how a datanet row becomes one training sequence, and which of its tokens are
 * trained. Only what the assistant says is a target; system and user turns, and the template's
 * markup around them, are context (masked out of the loss). A document row is trained whole.
 *
 *     llama2   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>
 *              (each further user turn opens a new <s>[INST] … [/INST])
 *     chatml   <|im_start|>{role}\n{content}<|im_end|>\n   per message (masked unless assistant)
 *     plain    the text as it is: a document's text, or the messages' contents one per line
 *
 * A template is rendered as segments, each tokenised on its own (BOS and EOS by id): the token
 * boundaries between the prompt and the answer are then exact, and rendering at inference in the
 * same way gives the same tokens. With a vocabulary that adds a space prefix (SentencePiece
 * Llama), every segment starts with "▁", which is what `[/INST] answer` tokenises to anyway.
 *
 * Special-token strings that the vocabulary lacks (`<|im_start|>` in a Llama vocabulary, say)
 * are tokenised as ordinary text: the model learns them as a short run of pieces. Where a
 * byte-level BPE vocabulary has them (Qwen2's `<|im_start|>`, `<|im_end|>`), chatml's text is
 * tokenised with special tokens recognised, as llama.cpp tokenises a rendered chat template. `<s>`
 * and `</s>` are never text: they are the vocabulary's BOS and EOS ids; a vocabulary without a
 * BOS (GPT-2 style BPE may have none) gets none.
 */
import type { BpeEncodeOptions, DecodeOptions, Tokenizer } from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';

export const TEMPLATES = ['llama2', 'chatml', 'plain'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

export interface ChatTurn {
  role: string;
  content: string;
}

/** What a template renders: a datanet row as exported (`messages` for chat and instruction rows). */
export interface TemplateRow {
  content?: unknown;
  messages?: readonly ChatTurn[] | undefined;
}

export interface RenderedExample {
  tokens: number[];
  /** Per token: 1 when it is a training target (an assistant's token, or a document's), else 0. */
  mask: number[];
  /** Tokens with mask 1, excluding the first token (it has no context to be predicted from). */
  trainedTokens: number;
  /** Whether the rendering was cut to maxTokens. */
  truncated: boolean;
}

export interface PreviewPiece {
  id: number;
  piece: string;
  masked: boolean;
}

type Segment = { text: string; trained: boolean } | { id: number; trained: boolean };

/** What templates need of a tokenizer (SentencePiece and byte-level BPE both have it). */
export type TemplateTokenizer = Tokenizer & { piece(id: number): string };

export function isTemplateName(value: string): value is TemplateName {
  return (TEMPLATES as readonly string[]).includes(value);
}

/** The row's turns, or its document text; throws VALIDATION_FAILED for a row with neither. */
function rowTurns(row: TemplateRow): { turns: ChatTurn[] } | { text: string } {
  if (row.messages && row.messages.length > 0) return { turns: [...row.messages] };
  const content = row.content as { type?: string; text?: unknown } | undefined;
  if (content?.type === 'document' && typeof content.text === 'string')
    return { text: content.text };
  throw new OpenLedgerError(
    'VALIDATION_FAILED',
    'A row to render needs chat messages or a document text.',
    { hint: 'File rows (images, audio) cannot be trained on by a text template.' },
  );
}

function segmentsOf(template: TemplateName, row: TemplateRow, bos: number, eos: number) {
  const source = rowTurns(row);
  const segments: Segment[] = [];
  if ('text' in source) {
    // A document: every template trains on all of it.
    if (template !== 'plain') segments.push({ id: bos, trained: false });
    segments.push({ text: source.text, trained: true });
    if (template !== 'plain') segments.push({ id: eos, trained: true });
    return segments;
  }
  const turns = source.turns;
  switch (template) {
    case 'plain':
      for (const turn of turns)
        segments.push({ text: `${turn.content}\n`, trained: turn.role === 'assistant' });
      return segments;
    case 'chatml':
      for (const turn of turns) {
        if (turn.role === 'assistant') {
          segments.push({ text: '<|im_start|>assistant\n', trained: false });
          segments.push({ text: `${turn.content}<|im_end|>\n`, trained: true });
        } else {
          segments.push({
            text: `<|im_start|>${turn.role}\n${turn.content}<|im_end|>\n`,
            trained: false,
          });
        }
      }
      return segments;
    case 'llama2': {
      let system: string | undefined;
      let pendingUser: string[] = [];
      const open = () => {
        const user = pendingUser.join('\n\n');
        const sys = system === undefined ? '' : `<<SYS>>\n${system}\n<</SYS>>\n\n`;
        system = undefined;
        pendingUser = [];
        segments.push({ id: bos, trained: false });
        segments.push({ text: `[INST] ${sys}${user} [/INST]`, trained: false });
      };
      for (const turn of turns) {
        if (turn.role === 'system')
          system = system === undefined ? turn.content : `${system}\n${turn.content}`;
        else if (turn.role === 'assistant') {
          open();
          segments.push({ text: turn.content, trained: true });
          segments.push({ id: eos, trained: true });
        } else pendingUser.push(turn.content);
      }
      if (pendingUser.length > 0 || system !== undefined) open(); // a trailing prompt, untrained
      return segments;
    }
  }
}

/**
 * A row rendered by `template` into at most `maxTokens` tokens, with the loss mask: only the
 * assistant's tokens (and EOS after them) are trained. Longer renderings are cut at the end.
 */
export function renderExample(
  template: TemplateName,
  row: TemplateRow,
  tokenizer: Tokenizer,
  maxTokens: number,
): RenderedExample {
  const tokens: number[] = [];
  const mask: number[] = [];
  // parseSpecial is read by the BPE tokenizer only (SentencePiece vocabularies here have no
  // special tokens written as text).
  const encodeOptions: BpeEncodeOptions = {
    addBos: false,
    addEos: false,
    parseSpecial: template === 'chatml',
  };
  for (const segment of segmentsOf(template, row, tokenizer.bosId, tokenizer.eosId)) {
    if ('id' in segment && segment.id < 0) continue; // the vocabulary has no such token
    const ids = 'id' in segment ? [segment.id] : tokenizer.encode(segment.text, encodeOptions);
    for (const id of ids) {
      tokens.push(id);
      mask.push(segment.trained ? 1 : 0);
    }
  }
  const truncated = tokens.length > maxTokens;
  if (truncated) {
    tokens.length = maxTokens;
    mask.length = maxTokens;
  }
  let trainedTokens = 0;
  for (let i = 1; i < mask.length; i++) trainedTokens += mask[i]!;
  return { tokens, mask, trainedTokens, truncated };
}

/** The rendering as pieces with a masked flag each (what the API's template preview shows). */
export function previewTemplate(
  template: TemplateName,
  row: TemplateRow,
  tokenizer: TemplateTokenizer,
  maxTokens: number,
): { pieces: PreviewPiece[]; trainedTokens: number; truncated: boolean; text: string } {
  const rendered = renderExample(template, row, tokenizer, maxTokens);
  const decodeOptions: DecodeOptions = { special: true, stripLeadingSpace: false };
  return {
    pieces: rendered.tokens.map((id, i) => ({
      id,
      piece: tokenizer.piece(id),
      masked: rendered.mask[i] === 0 || i === 0,
    })),
    trainedTokens: rendered.trainedTokens,
    truncated: rendered.truncated,
    text: tokenizer.decode(rendered.tokens, decodeOptions),
  };
}
