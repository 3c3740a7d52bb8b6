/**
 * The prompt of a RAG answer: one system message with the rules and the numbered sources, then
 * the caller's own conversation. ContextCite rebuilds it with some sources left out, keeping each
 * source's original number, so this is the one place that shapes it.
 */
import type { ChatMessage } from '../serving/index.ts';
import type { Source } from './types.ts';
import { NOT_IN_SOURCES } from './cite.ts';

export const RAG_INSTRUCTIONS =
  'Answer using only the numbered sources. After each sentence, cite the sources it uses as [n]. ' +
  `If the sources do not contain the answer, say: ${NOT_IN_SOURCES}`;

/** The text of a message (string or text parts). */
export function messageText(message: ChatMessage): string {
  if (typeof message.content === 'string') return message.content;
  return (message.content ?? []).map((part) => part.text ?? '').join('');
}

/** The question: the last user message. */
export function questionOf(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--)
    if (messages[i]!.role === 'user') return messageText(messages[i]!).trim();
  return '';
}

/** The conversation with the sources in front, numbered as `sources` says. */
export function ragMessages(
  messages: readonly ChatMessage[],
  sources: readonly Pick<Source, 'n' | 'text'>[],
): ChatMessage[] {
  const listed = sources.map((s) => `[${s.n}] ${s.text.replace(/\s+/g, ' ').trim()}`).join('\n');
  return [{ role: 'system', content: `${RAG_INSTRUCTIONS}\n\nSources:\n${listed}` }, ...messages];
}
