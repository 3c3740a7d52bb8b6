/**
 * What every decoder-only model of the engine offers, whatever its architecture: a forward pass of
 * one token or of a sequence over a KV cache, and greedy generation. The architectures (llama.ts:
 * Llama, Mistral, Qwen2; gpt2.ts: GPT-2) supply the transformer itself by implementing
 * `runBatch` and `classify`; this class does the positions, the checks and the decoding loop.
 */
import { OpenLedgerError } from '../../errors.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { argmax } from './ops.ts';

/** The architectures the engine runs, as GGUF's `general.architecture` names them. */
export type DecoderArchitecture = 'llama' | 'qwen2' | 'gpt2';

/** What all architectures' configs have. */
export interface DecoderConfig {
  /** Embedding length (model width). */
  dim: number;
  nLayers: number;
  vocabSize: number;
  /** Positions the KV cache holds: the most tokens one sequence may have. */
  contextLength: number;
}

export interface GenerateOptions {
  /** Stop when the model produces EOS (default true); EOS is not included in the result. */
  stopAtEos?: boolean;
  /** For a text prompt: prepend BOS (default: the tokenizer's add_bos_token). */
  addBos?: boolean;
  /** Called with each generated token as soon as it is chosen. */
  onToken?: (token: number) => void;
}

export interface GenerateResult {
  /** The prompt's tokens, BOS included when added. */
  promptTokens: number[];
  /** The generated tokens. */
  tokens: number[];
  /** The generated text (a continuation: its leading space is kept); '' without a tokenizer. */
  text: string;
  stoppedBy: 'eos' | 'maxTokens' | 'context';
}

/** The surface callers use, common to every architecture. */
export interface LanguageModel {
  readonly arch: DecoderArchitecture;
  readonly config: DecoderConfig;
  readonly tokenizer: Tokenizer | undefined;
  readonly parameterCount: number;
  forward(token: number, pos: number): Float32Array;
  forwardSequence(tokens: ArrayLike<number>, startPos?: number): Float32Array;
  generate(
    prompt: string | readonly number[],
    maxTokens: number,
    options?: GenerateOptions,
  ): GenerateResult;
}

/** Tokens per batch in `forwardSequence`: bounds the scratch memory (T rows of every buffer). */
export const BATCH = 32;

/**
 * A model with its KV cache. The cache makes it stateful: one instance runs one sequence at a time
 * (positions are explicit, so a new sequence simply starts again at position 0).
 */
export abstract class DecoderModel<
  C extends DecoderConfig,
  Tok extends Tokenizer,
> implements LanguageModel {
  abstract readonly arch: DecoderArchitecture;
  readonly config: C;
  readonly tokenizer: Tok | undefined;
  // logits of one token: [vocab]; the token `forward` runs
  protected readonly logits: Float32Array;
  private readonly one = new Int32Array(1);

  protected constructor(config: C, tokenizer: Tok | undefined) {
    this.config = config;
    this.tokenizer = tokenizer;
    if (tokenizer !== undefined && tokenizer.vocabSize > config.vocabSize) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `the tokenizer has ${tokenizer.vocabSize} tokens, the model only ${config.vocabSize}`,
      );
    }
    this.logits = new Float32Array(config.vocabSize);
  }

  /** The number of weights (a tied output matrix counted once). */
  abstract get parameterCount(): number;

  /**
   * The transformer for tokens[from … from+T) at positions pos0 …, writing the KV cache; leaves
   * the final hidden states of the T tokens for `classify`.
   */
  protected abstract runBatch(
    tokens: ArrayLike<number>,
    from: number,
    T: number,
    pos0: number,
  ): void;

  /** out [rows][vocab] = the logits of the `rows` batch rows starting at row `first`. */
  protected abstract classify(out: Float32Array, rows: number, first: number): void;

  /** Grows the batch buffers to hold T ≤ BATCH tokens. */
  protected abstract ensureCapacity(T: number): void;

  /**
   * Runs one token at position `pos` (0-based), reading the KV cache for positions < pos and
   * writing position pos. Returns the logits [vocab] in a buffer that the next call overwrites
   * (copy it with `.slice()` to keep it).
   */
  forward(token: number, pos: number): Float32Array {
    const one = this.one;
    one[0] = token;
    this.checkTokens(one, pos);
    this.ensureCapacity(1);
    this.runBatch(one, 0, 1, pos);
    this.classify(this.logits, 1, 0);
    return this.logits;
  }

  /**
   * Runs `tokens` at positions startPos, startPos + 1, … (filling the KV cache as `forward` does)
   * and returns the logits of every position: a new Float32Array [tokens.length][vocab], row t
   * predicting the token after tokens[t]. Equal, bit for bit, to calling `forward` per token.
   */
  forwardSequence(tokens: ArrayLike<number>, startPos = 0): Float32Array {
    this.checkTokens(tokens, startPos);
    const { vocabSize } = this.config;
    const out = new Float32Array(tokens.length * vocabSize);
    for (let done = 0; done < tokens.length; done += BATCH) {
      const T = Math.min(BATCH, tokens.length - done);
      this.ensureCapacity(T);
      this.runBatch(tokens, done, T, startPos + done);
      this.classify(out.subarray(done * vocabSize, (done + T) * vocabSize), T, 0);
    }
    return out;
  }

  /**
   * Greedy decoding (argmax at each step; temperature 0) from a text prompt (tokenized with the
   * model's tokenizer) or from token ids, for at most `maxTokens` new tokens.
   */
  generate(
    prompt: string | readonly number[],
    maxTokens: number,
    options: GenerateOptions = {},
  ): GenerateResult {
    const tokenizer = this.tokenizer;
    let promptTokens: number[];
    if (typeof prompt === 'string') {
      if (tokenizer === undefined) {
        throw new OpenLedgerError('VALIDATION_FAILED', 'this model has no tokenizer', {
          hint: 'give the prompt as token ids, or load the model with a tokenizer',
        });
      }
      promptTokens = tokenizer.encode(prompt, { addBos: options.addBos, addEos: false });
    } else {
      promptTokens = [...prompt];
    }
    if (promptTokens.length === 0) {
      throw new OpenLedgerError('VALIDATION_FAILED', 'the prompt has no tokens', {
        hint: 'give a non-empty prompt, or start from BOS',
      });
    }
    const { contextLength, vocabSize } = this.config;
    if (promptTokens.length > contextLength) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `the prompt has ${promptTokens.length} tokens; the context holds ${contextLength}`,
      );
    }
    const stopAtEos = options.stopAtEos ?? true;
    const eos = tokenizer?.eosId ?? 2;

    // Prompt: one batched pass that computes only the last position's logits.
    this.checkTokens(promptTokens, 0);
    const n = promptTokens.length;
    for (let done = 0; done < n; done += BATCH) {
      const T = Math.min(BATCH, n - done);
      this.ensureCapacity(T);
      this.runBatch(promptTokens, done, T, done);
    }
    this.classify(this.logits, 1, (n - 1) % BATCH); // the last token's row of the last batch

    const tokens: number[] = [];
    let stoppedBy: GenerateResult['stoppedBy'] = 'maxTokens';
    for (let pos = n; tokens.length < maxTokens; pos++) {
      const next = argmax(this.logits, vocabSize);
      if (stopAtEos && next === eos) {
        stoppedBy = 'eos';
        break;
      }
      tokens.push(next);
      options.onToken?.(next);
      if (tokens.length === maxTokens) break;
      if (pos >= contextLength) {
        stoppedBy = 'context';
        break;
      }
      this.forward(next, pos);
    }
    const text =
      tokenizer === undefined
        ? ''
        : tokenizer
            .decode([...promptTokens, ...tokens])
            .slice(tokenizer.decode(promptTokens).length);
    return { promptTokens, tokens, text, stoppedBy };
  }

  protected checkTokens(tokens: ArrayLike<number>, startPos: number): void {
    const { contextLength, vocabSize } = this.config;
    if (!Number.isInteger(startPos) || startPos < 0 || startPos + tokens.length > contextLength) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `positions ${startPos} to ${startPos + tokens.length - 1} are outside the context of ${contextLength}`,
        { hint: 'start a new sequence, or load the model with a longer contextLength' },
      );
    }
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (!Number.isInteger(token) || token < 0 || token >= vocabSize) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `token ${token} (at index ${i}) is outside the vocabulary of ${vocabSize}`,
        );
      }
    }
  }
}
