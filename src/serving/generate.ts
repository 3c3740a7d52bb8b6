import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import type { AdapterUse, BaseRuntime } from './runtime.ts';

export interface SamplingOptions {
  maxTokens: number;
  temperature: number;
  topP: number | undefined;
  seed: number | undefined;
  presencePenalty: number | undefined;
  frequencyPenalty: number | undefined;
  /** Strings that end the completion (not included in it). */
  stop: readonly string[];
}

export type FinishReason = 'stop' | 'length';

export interface GenerationResult {
  text: string;
  completionTokens: number;
  finishReason: FinishReason;
  /** Why it ended early, beyond OpenAI's finish reasons. */
  ended: 'eos' | 'stop' | 'max_tokens' | 'time_limit' | 'cancelled';
  /** Milliseconds to the first generated token. */
  firstTokenMs: number | undefined;
}

/** One admitted request, as a generator runs it: the tokens are final, the limits checked. */
export interface GenerationJob {
  base: BaseRuntime;
  adapters: readonly AdapterUse[];
  prompt: Token[];
  options: SamplingOptions & { signal: AbortSignal; deadline: number };
  /** Called once, when tokens are about to flow (a stream's headers go out then). */
  onStart(): void;
  onText(delta: string): void;
}

export interface GenerationOutcome extends GenerationResult {
  /** Whether an adapter had to be attached (or loaded remotely) for this request. */
  coldAdapters: boolean;
  /** The remote server that generated, when not this node. */
  backend: string | undefined;
}

/**
 * Where tokens are generated: llama.cpp in this process (`localGenerator`) or a remote
 * OpenAI-compatible LoRA server (remote.ts). The engine does everything around it the same
 * way for both: resolving, tokenizing, limits, payment, scheduling and the usage row.
 */
export interface Generator {
  /** Refuses, before the request is queued, an adapter set this generator cannot serve. */
  check?(adapters: readonly AdapterUse[]): void;
  run(job: GenerationJob): Promise<GenerationOutcome>;
  /** Readies a queued request's adapters while it waits (best effort, never throws). */
  prefetch?(base: BaseRuntime, adapters: readonly AdapterUse[]): void;
}

/** Generation on a pooled llama.cpp sequence of the base model loaded here. */
export const localGenerator: Generator = {
  async run(job) {
    const lease = await job.base.lease(job.adapters);
    try {
      job.onStart();
      const result = await generate(
        lease.model,
        lease.sequence,
        job.prompt,
        job.options,
        job.onText,
      );
      return { ...result, coldAdapters: lease.cold, backend: undefined };
    } finally {
      await lease.release();
    }
  },
  prefetch(base, adapters) {
    base.prefetch(adapters);
  },
};

/**
 * Generates from `prompt` on the sequence, handing out text as it becomes final: a piece is
 * held back while it ends in an incomplete UTF-8 character or could be the start of a stop
 * string, so a client never sees text that is then taken back.
 */
export async function generate(
  model: LlamaModel,
  sequence: LlamaContextSequence,
  prompt: Token[],
  options: SamplingOptions & { signal: AbortSignal; deadline: number },
  onText: (delta: string) => void,
): Promise<GenerationResult> {
  const started = performance.now();
  const generated: Token[] = [];
  let pending: Token[] = [];
  let text = '';
  let emitted = 0;
  let firstTokenMs: number | undefined;
  let ended: GenerationResult['ended'] = 'max_tokens';
  const stops = options.stop.filter((s) => s.length > 0);
  const penalties =
    options.presencePenalty || options.frequencyPenalty
      ? {
          repeatPenalty: {
            punishTokens: () => generated,
            penalty: 1,
            presencePenalty: options.presencePenalty ?? 0,
            frequencyPenalty: options.frequencyPenalty ?? 0,
          },
        }
      : {};

  if (options.maxTokens > 0) {
    for await (const token of sequence.evaluate(prompt, {
      temperature: options.temperature,
      ...(options.topP === undefined ? {} : { topP: options.topP }),
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...penalties,
    })) {
      firstTokenMs ??= performance.now() - started;
      if (options.signal.aborted) {
        ended = 'cancelled';
        break;
      }
      if (model.isEogToken(token)) {
        ended = 'eos';
        break;
      }
      generated.push(token);
      pending.push(token);
      const piece = model.detokenize(
        pending,
        false,
        generated.slice(-pending.length - 8, -pending.length),
      );
      // A token may be a part of a multi-byte character: wait (a little) for the rest.
      if (!(piece.endsWith('\uFFFD') && pending.length < 4)) {
        text += piece;
        pending = [];
      }
      const stopAt = firstStop(text, stops, Math.max(0, emitted - longest(stops)));
      if (stopAt >= 0) {
        text = text.slice(0, stopAt);
        ended = 'stop';
        break;
      }
      const safe = text.length - heldBack(text, stops);
      if (safe > emitted) {
        onText(text.slice(emitted, safe));
        emitted = safe;
      }
      if (generated.length >= options.maxTokens) {
        ended = 'max_tokens';
        break;
      }
      if (Date.now() >= options.deadline) {
        ended = 'time_limit';
        break;
      }
    }
  }
  if (ended !== 'cancelled' && text.length > emitted) onText(text.slice(emitted));
  return {
    text,
    completionTokens: generated.length,
    finishReason: ended === 'eos' || ended === 'stop' ? 'stop' : 'length',
    ended,
    firstTokenMs,
  };
}

function longest(stops: readonly string[]): number {
  return stops.reduce((max, s) => Math.max(max, s.length), 0);
}

function firstStop(text: string, stops: readonly string[], from: number): number {
  let first = -1;
  for (const stop of stops) {
    const at = text.indexOf(stop, from);
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  return first;
}

/** How many characters at the end of `text` might begin a stop string (or a split character). */
function heldBack(text: string, stops: readonly string[]): number {
  let hold = text.endsWith('\uFFFD') ? 1 : 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > hold; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}
