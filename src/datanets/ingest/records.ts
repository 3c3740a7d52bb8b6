import { OpenLedgerError } from '../../errors.ts';
import type { ChatMessage, ChatRole, RowContent } from './types.ts';

/** Where a record sits in its file, for error messages and row sources. */
export interface RecordPlace {
  /** 0-based position of the record in the file. */
  record: number;
  /** 1-based line where it starts, when known. */
  line?: number;
}

export const RECORD_FORMS =
  'alpaca {instruction, input?, output}, sharegpt {conversations: [{from, value}]}, ' +
  'OpenAI {messages: [{role, content}]} or {text}';

export function placeOf(place: RecordPlace): string {
  return place.line === undefined ? `at index ${place.record}` : `at line ${place.line}`;
}

export function recordError(place: RecordPlace, problem: string): OpenLedgerError {
  return new OpenLedgerError('FILE_INVALID', `The record ${placeOf(place)} ${problem}.`, {
    hint: `Each record must be in one of these forms: ${RECORD_FORMS}.`,
    details: { record: place.record, ...(place.line === undefined ? {} : { line: place.line }) },
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const OPENAI_ROLES: Record<string, ChatRole> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
};

const SHAREGPT_ROLES: Record<string, ChatRole> = {
  system: 'system',
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  chatgpt: 'assistant',
};

/**
 * Recognises one record's form and turns it into row content: `messages` (OpenAI) first, then
 * `conversations` (sharegpt), then `instruction`/`output` (alpaca), then `text`. Other keys (ids,
 * metadata) are ignored. Strings are trimmed and an empty alpaca `input` is dropped, so trivially
 * different copies of one example hash alike.
 */
export function parseRecord(value: unknown, place: RecordPlace): RowContent {
  if (!isObject(value)) {
    return fail(place, `is ${describe(value)}, not a JSON object`);
  }
  if ('messages' in value) return chat(value.messages, 'messages', 'role', 'content', place);
  if ('conversations' in value) {
    const content = chat(value.conversations, 'conversations', 'from', 'value', place);
    if (typeof value.system === 'string' && value.system.trim() !== '') {
      content.messages.unshift({ role: 'system', content: value.system.trim() });
    }
    return content;
  }
  if ('instruction' in value || 'output' in value) {
    const instruction = requiredString(value, 'instruction', place);
    const output = requiredString(value, 'output', place);
    const input = value.input;
    if (input !== undefined && input !== null && typeof input !== 'string') {
      return fail(place, `has an "input" that is ${describe(input)}, not a string`);
    }
    const trimmedInput = typeof input === 'string' ? input.trim() : '';
    return trimmedInput === ''
      ? { type: 'instruction', instruction, output }
      : { type: 'instruction', instruction, input: trimmedInput, output };
  }
  if ('text' in value) {
    const text = requiredString(value, 'text', place);
    const title = value.title;
    if (typeof title === 'string' && title.trim() !== '') {
      return { type: 'document', text, title: title.trim() };
    }
    return { type: 'document', text };
  }
  const keys = Object.keys(value);
  return fail(
    place,
    `is in none of the accepted forms (its keys: ${keys.length > 0 ? keys.slice(0, 10).join(', ') : 'none'})`,
  );
}

function chat(
  list: unknown,
  field: string,
  roleKey: string,
  contentKey: string,
  place: RecordPlace,
): { type: 'chat'; messages: ChatMessage[] } {
  const roles = field === 'messages' ? OPENAI_ROLES : SHAREGPT_ROLES;
  if (!Array.isArray(list) || list.length === 0) {
    return fail(place, `has "${field}" that is ${describe(list)}, not a non-empty array`);
  }
  const messages: ChatMessage[] = [];
  list.forEach((message: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(message)) fail(place, `has ${at} that is ${describe(message)}, not an object`);
    const roleName = message[roleKey];
    const role = typeof roleName === 'string' ? roles[roleName.toLowerCase()] : undefined;
    if (role === undefined) {
      const accepted = [...new Set(Object.keys(roles))].join(', ');
      fail(
        place,
        `has ${at}.${roleKey} ${typeof roleName === 'string' ? `"${roleName}"` : describe(roleName)}, not one of ${accepted}`,
      );
    }
    const content = textOf(message[contentKey]);
    if (content === undefined) {
      fail(place, `has ${at}.${contentKey} that is ${describe(message[contentKey])}, not text`);
    }
    messages.push({ role, content: content.trim() });
  });
  if (!messages.some((message) => message.role === 'assistant' && message.content !== '')) {
    fail(place, `has no non-empty assistant message in "${field}"`);
  }
  return { type: 'chat', messages };
}

/** A string, or OpenAI content parts that are all text. */
function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return undefined;
  let text = '';
  for (const part of value) {
    if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') return undefined;
    text += part.text;
  }
  return text;
}

function requiredString(value: Record<string, unknown>, key: string, place: RecordPlace): string {
  const field = value[key];
  if (typeof field !== 'string') {
    return fail(place, `has "${key}" that is ${describe(field)}, not a string`);
  }
  const trimmed = field.trim();
  if (trimmed === '') return fail(place, `has an empty "${key}"`);
  return trimmed;
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function fail(place: RecordPlace, problem: string): never {
  throw recordError(place, problem);
}

/** The row's text for dedup, quality and relevance: every string of the content, in order. */
export function flattenContent(content: RowContent): string {
  switch (content.type) {
    case 'document':
      return content.text;
    case 'instruction':
      return [content.instruction, content.input, content.output]
        .filter((part): part is string => part !== undefined && part !== '')
        .join('\n\n');
    case 'chat':
      return content.messages
        .map((message) => message.content)
        .filter((part) => part !== '')
        .join('\n\n');
  }
}

/**
 * For training export: an instruction becomes a user turn (instruction, then input) and an
 * assistant turn (output); a chat is copied as it is; a document has no chat form (export it as
 * `{text}`), so it gives null.
 */
export function toChatMessages(content: RowContent): { role: string; content: string }[] | null {
  switch (content.type) {
    case 'document':
      return null;
    case 'instruction':
      return [
        {
          role: 'user',
          content:
            content.input === undefined || content.input === ''
              ? content.instruction
              : `${content.instruction}\n\n${content.input}`,
        },
        { role: 'assistant', content: content.output },
      ];
    case 'chat':
      return content.messages.map((message) => ({ role: message.role, content: message.content }));
  }
}
