/**
 * Reading a streamed OpenAI chat completion (`stream: true`) as this node sends it: server-sent
 * events of `data: <json>` ending in `data: [DONE]`, the last content chunk carrying the
 * `openledger` field (receipt, adapters, timings; `rag` and a top-level `citations` on answers from
 * datanets) and, with `stream_options.include_usage`, a
 * chunk with `usage` and no choices. Browser-safe (no Node.js imports): the CLI's `chat` and the
 * web app's Playground both read streams with it.
 *
 * Written by hand rather than with `eventsource-parser`: the subset OpenAI-style servers send
 * (`data:` lines, blank-line separators, `:` comments) is a few lines, and a dependency would be
 * new to both the CLI and the web bundle.
 */

export interface ServedAdapterInfo {
  id: string;
  name: string | null | undefined;
  weight: number;
}

/** Where a RAG source's text is: its row and the chunk's characters (src/rag/answer.ts `rowView`). */
export interface RagRowRef {
  datanet_id: number;
  version: number;
  row_id: string;
  row_hash: string;
  contributor: string;
  char_start: number;
  char_end: number;
}

/** A `[n]` of a RAG answer after the node's support check (src/rag/answer.ts `citationView`). */
export interface RagCitation extends RagRowRef {
  n: number;
  /** Index of the answer sentence that carries it. */
  sentence: number;
  supported: boolean;
  url: string;
}

/** A numbered source given to the model (src/rag/answer.ts `sourceView`). */
export interface RagSource extends RagRowRef {
  n: number;
  text: string;
  score: number;
}

/** `openledger.rag` of an answer from datanets (the request's `rag` field). */
export interface RagInfo {
  strict: boolean;
  /** Whose words: the model's, a source sentence (strict fallback), or the fixed refusal. */
  answer: 'model' | 'extractive' | 'not-in-sources';
  sources: RagSource[];
  /** Retrieved but left out for lack of context. */
  dropped_sources: number;
}

/** The node's `openledger` extension of a completion. */
export interface OpenLedgerInfo {
  receipt: { id: string; hash: string | undefined };
  base_model: string;
  adapters: ServedAdapterInfo[];
  published_model_id: number | null | undefined;
  timings: {
    queue_ms: number;
    first_token_ms: number | null;
    total_ms: number;
    tokens_per_second: number;
    cold_adapters: boolean;
    ended: string;
  };
  /** Present on answers from datanets. */
  rag?: RagInfo;
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface StreamedChat {
  id: string | undefined;
  model: string | undefined;
  text: string;
  finishReason: string | null;
  usage: ChatUsage | undefined;
  openledger: OpenLedgerInfo | undefined;
  /** An answer from datanets: its checked citations (the final chunk's top-level field). */
  citations: RagCitation[] | undefined;
}

/** An error object sent in the stream after it had begun (OpenAI's shape). */
export class StreamError extends Error {
  constructor(readonly error: { message: string; type?: string; code?: string | null }) {
    super(error.message);
    this.name = 'StreamError';
  }
}

/** The JSON payload of each `data:` event, until `[DONE]` or the end of the body. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // An event ends at a blank line; `\r\n` line ends are allowed by the SSE format.
      let newline: number;
      while ((newline = buffer.search(/\r?\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer[newline] === '\r' ? 2 : 1));
        if (line === '') {
          if (data.length > 0) {
            const payload = data.join('\n');
            data = [];
            if (payload === '[DONE]') return;
            yield JSON.parse(payload) as unknown;
          }
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line[5] === ' ' ? 6 : 5));
        }
        // `:` comments, `event:`, `id:` and `retry:` lines carry nothing a completion needs.
      }
      if (done) break;
    }
    if (data.length > 0 && data.join('\n') !== '[DONE]') yield JSON.parse(data.join('\n'));
  } finally {
    reader.releaseLock();
  }
}

interface ChunkShape {
  id?: string;
  model?: string;
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: ChatUsage | null;
  openledger?: OpenLedgerInfo;
  citations?: RagCitation[];
  error?: { message: string; type?: string; code?: string | null };
}

/**
 * Reads a chat completion stream to its end, handing each piece of text to `onDelta` as it
 * arrives. Throws StreamError when the node reports an error inside the stream.
 */
export async function readChatStream(
  body: ReadableStream<Uint8Array>,
  onDelta: (text: string) => void,
): Promise<StreamedChat> {
  const result: StreamedChat = {
    id: undefined,
    model: undefined,
    text: '',
    finishReason: null,
    usage: undefined,
    openledger: undefined,
    citations: undefined,
  };
  for await (const event of sseData(body)) {
    const chunk = event as ChunkShape;
    if (chunk.error) throw new StreamError(chunk.error);
    result.id ??= chunk.id;
    result.model ??= chunk.model;
    const choice = chunk.choices?.[0];
    const delta = choice?.delta?.content;
    if (delta) {
      result.text += delta;
      onDelta(delta);
    }
    if (choice?.finish_reason) result.finishReason = choice.finish_reason;
    if (chunk.usage) result.usage = chunk.usage;
    if (chunk.openledger) result.openledger = chunk.openledger;
    if (chunk.citations) result.citations = chunk.citations;
  }
  return result;
}

/** `style-a (×0.7) + adapter:3f9a…` — the adapters that served an answer, for people. */
export function describeAdapters(adapters: readonly ServedAdapterInfo[]): string {
  if (adapters.length === 0) return 'no adapter';
  return adapters
    .map((a) => {
      const name = a.name ?? `adapter:${a.id.slice(0, 12)}…`;
      return a.weight === 1 ? name : `${name} (×${a.weight})`;
    })
    .join(' + ');
}
