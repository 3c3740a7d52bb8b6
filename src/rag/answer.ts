/**
 * A cited answer, around one generation: retrieve and number the sources, fit them into the
 * model's context, then check what the answer cites and, in strict mode ("answer only from
 * sources"), return only supported sentences — the model's, else the best source sentence, else
 * the fixed "not in the sources" sentence. What was given and cited is stored by inference id, for
 * the receipt's RAG channel.
 */
import { createHash } from 'node:crypto';
import type { Address } from 'viem';
import type { Db } from '../db/index.ts';
import * as schema from '../db/schema.ts';
import { OpenLedgerError } from '../errors.ts';
import type { AdapterRequest, ChatMessage, ServingEngine } from '../serving/index.ts';
import {
  answerFromSources,
  checkCitations,
  NOT_IN_SOURCES,
  parseCitations,
  splitSentences,
} from './cite.ts';
import { questionOf, ragMessages } from './prompt.ts';
import type { RagService } from './service.ts';
import type { Citation, Source } from './types.ts';

export interface RagOptions {
  datanets: number[];
  k?: number;
  /** Answer only from the sources (default true). */
  strict?: boolean;
}

/** Tokens kept free for the answer when sources are fitted into a small context. */
const ANSWER_ROOM = 64;

export interface PreparedRag {
  question: string;
  /** The sources that fit, numbered from 1 in rank order. */
  sources: Source[];
  /** Retrieved but left out for lack of context. */
  dropped: number;
  messages: ChatMessage[];
  /** The caller's own messages (the prompt is these with the sources in front). */
  conversation: ChatMessage[];
  strict: boolean;
}

export async function prepareRag(
  deps: { rag: RagService; serving: ServingEngine },
  input: {
    caller: Address;
    model: string;
    adapters?: AdapterRequest[];
    messages: readonly ChatMessage[];
    options: RagOptions;
    maxTokens?: number;
    signal?: AbortSignal;
  },
): Promise<PreparedRag> {
  const question = questionOf(input.messages);
  if (question === '')
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'A RAG request needs a user message to answer.',
      {
        details: { field: 'messages' },
      },
    );
  const retrieved = await deps.rag.retrieve({
    caller: input.caller,
    datanets: input.options.datanets,
    query: question,
    ...(input.options.k === undefined ? {} : { k: input.options.k }),
    ...(input.signal ? { signal: input.signal } : {}),
  });
  // Lowest-ranked sources go first until the prompt leaves room for an answer.
  const room = Math.min(input.maxTokens ?? ANSWER_ROOM, ANSWER_ROOM);
  let sources = retrieved;
  while (sources.length > 0) {
    const measured = await deps.serving.measureChat({
      model: input.model,
      ...(input.adapters ? { adapters: input.adapters } : {}),
      messages: ragMessages(input.messages, sources),
    });
    if (measured.tokens + room <= measured.contextSize) break;
    sources = sources.slice(0, -1);
  }
  return {
    question,
    sources,
    dropped: retrieved.length - sources.length,
    messages: ragMessages(input.messages, sources),
    conversation: [...input.messages],
    strict: input.options.strict ?? true,
  };
}

export type AnswerKind = 'model' | 'extractive' | 'not-in-sources';

export interface FinishedRag {
  text: string;
  citations: Citation[];
  /** Whose words the answer is: the model's, a source sentence (strict), or the refusal. */
  kind: AnswerKind;
}

/**
 * Checks the generated text's citations. Strict: only the sentences a cited source supports are
 * kept (with their supported markers, and a marker added where the check found the support);
 * with none, the source sentence that answers the question; with none, NOT_IN_SOURCES. Not
 * strict: the model's text as it is, with each of its markers marked supported or not.
 */
export function finishRag(prepared: PreparedRag, generated: string): FinishedRag {
  const checked = checkCitations(generated, prepared.sources);
  if (!prepared.strict)
    return {
      text: generated,
      citations: checked.citations
        .filter((c) => !c.added)
        .map(({ n, sentence, supported }) => ({ n, sentence, supported })),
      kind: 'model',
    };
  // `cleaned` keeps only supported markers (and the added ones): a sentence with one is supported.
  const kept = splitSentences(checked.cleaned).filter((s) => parseCitations(s.text).length > 0);
  if (kept.length > 0) {
    const text = kept.map((s) => s.text).join(' ');
    const citations = splitSentences(text).flatMap((s, sentence) =>
      parseCitations(s.text).map((n) => ({ n, sentence, supported: true })),
    );
    return { text, citations, kind: 'model' };
  }
  const extract = answerFromSources(prepared.question, prepared.sources);
  if (extract) return { text: extract.answer, citations: extract.citations, kind: 'extractive' };
  return { text: NOT_IN_SOURCES, citations: [], kind: 'not-in-sources' };
}

/** A source as receipts and stored answers keep it: where it is, never its text. */
export type SourceRef = Omit<Source, 'text' | 'score'> & { textSha256: string };

export async function recordRagAnswer(
  db: Db,
  input: {
    usageId: string;
    prepared: PreparedRag;
    datanets: number[];
    finished: FinishedRag;
  },
): Promise<void> {
  const sources: SourceRef[] = input.prepared.sources.map(({ text, score: _score, ...where }) => ({
    ...where,
    textSha256: createHash('sha256').update(text).digest('hex'),
  }));
  await db
    .insert(schema.ragAnswers)
    .values({
      usageId: input.usageId,
      question: input.prepared.question,
      messages: input.prepared.conversation,
      datanets: input.datanets,
      sources,
      citations: input.finished.citations,
      answer: input.finished.text,
      kind: input.finished.kind,
      strict: input.prepared.strict,
    })
    .onConflictDoNothing();
}

/** Where a source's text is (OpenAI-style snake case), for citations and sources alike. */
function rowView(source: Source) {
  return {
    datanet_id: source.datanetId,
    version: source.version,
    row_id: source.rowId,
    row_hash: source.rowHash,
    contributor: source.contributor,
    char_start: source.charStart,
    char_end: source.charEnd,
  };
}

/** A citation as the API returns it, with the row it points at. */
export function citationView(citation: Citation, sources: readonly Source[]) {
  const source = sources.find((s) => s.n === citation.n)!;
  return {
    n: citation.n,
    sentence: citation.sentence,
    supported: citation.supported,
    ...rowView(source),
    url: `/datanets/${source.datanetId}/rows/${source.rowId}`,
  };
}

export function sourceView(source: Source) {
  return { n: source.n, ...rowView(source), text: source.text, score: source.score };
}
