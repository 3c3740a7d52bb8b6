/**
 * `openledger chat` (a streamed chat completion from a running node's OpenAI-compatible API, or
 * an interactive conversation on a terminal) and `openledger adapters list|load|unload` (the
 * adapters a node serves, over /v1/lora_adapters and vLLM's load/unload endpoints) and
 * `adapters merge|lineage` (/api/adapters/merge and /api/adapters/:id/lineage).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { OpenLedgerError } from '../../errors.ts';
import {
  describeAdapters,
  readChatStream,
  StreamError,
  type ChatUsage,
  type OpenLedgerInfo,
  type StreamedChat,
} from '../../util/openai-stream.ts';
import { NodeClient } from '../client.ts';
import { RemoteError, type Output } from '../output.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';

export type KeyFlags = AuthFlags & { key?: string };

interface ChatFlags extends KeyFlags {
  model?: string;
  adapter?: string[];
  system?: string;
  maxTokens?: string;
  temperature?: string;
}

interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

interface AdapterView {
  id: string;
  names: string[];
  base_model: string;
  bytes: number;
  pinned: boolean;
  resident: boolean;
  uses: number;
  last_used_at: number | null;
}

/** An API key given with --key wins; otherwise as every other command (keys.ts). */
export async function client(flags: KeyFlags): Promise<NodeClient> {
  if (flags.key !== undefined) {
    if (!/^olk_\S+$/.test(flags.key))
      throw new OpenLedgerError('BAD_REQUEST', '--key must be an API key (olk_…).', {
        hint: 'Create one with `openledger keys create --name <name>`.',
      });
    return new NodeClient(flags.url, { apiKey: flags.key });
  }
  return authenticatedClient(flags);
}

/**
 * `name[:weight]`. The prefixes of `model:<id>` and `adapter:<sha256>` are not names followed by
 * a weight, so `model:3` is the model 3 at weight 1 and `model:3:0.5` the same at 0.5.
 */
export function parseAdapterFlag(value: string): { id: string; weight: number } {
  const match = /^(.+):(-?\d+(?:\.\d+)?)$/.exec(value);
  if (!match || /^(model|adapter|sha256)$/.test(match[1]!)) return { id: value, weight: 1 };
  return { id: match[1]!, weight: Number(match[2]) };
}

export function numberFlag(name: string, value: string | undefined, integer: boolean) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isSafeInteger(n)))
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `--${name} ${value}: expected a ${integer ? 'whole' : ''} number.`,
    );
  return n;
}

/** The errors of /v1 are OpenAI's `{ error: { message, type, code } }`. */
export async function remoteError(response: Response): Promise<RemoteError> {
  const text = await response.text();
  let error: { code?: string | null; message?: string } | undefined;
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error;
  } catch {
    // not JSON
  }
  return new RemoteError(response.status, {
    code: error?.code ?? `http_${response.status}`,
    message: error?.message ?? `The node answered HTTP ${response.status}.`,
  });
}

export interface ChatSession {
  node: NodeClient;
  model: string;
  adapters: { id: string; weight: number }[];
  maxTokens: number | undefined;
  temperature: number | undefined;
}

/** One streamed turn: the request, its text handed to onDelta as it comes. */
export async function streamChat(
  session: ChatSession,
  messages: readonly Message[],
  onDelta: (text: string) => void,
  signal?: AbortSignal,
): Promise<StreamedChat> {
  let response: Response;
  try {
    response = await fetch(new URL('/v1/chat/completions', session.node.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...session.node.authorization() },
      body: JSON.stringify({
        model: session.model,
        messages,
        ...(session.adapters.length > 0 ? { adapters: session.adapters } : {}),
        ...(session.maxTokens === undefined ? {} : { max_tokens: session.maxTokens }),
        ...(session.temperature === undefined ? {} : { temperature: session.temperature }),
        stream: true,
        stream_options: { include_usage: true },
      }),
      ...(signal ? { signal } : {}),
    });
  } catch (cause) {
    if (signal?.aborted) throw cause;
    throw new OpenLedgerError(
      'NODE_UNREACHABLE',
      `No OpenLedger node answers at ${session.node.url}.`,
      {
        hint: 'Start one with `openledger up`, or point to it with --url or OPENLEDGER_URL.',
        cause,
      },
    );
  }
  if (!response.ok || !response.body) throw await remoteError(response);
  try {
    return await readChatStream(response.body, onDelta);
  } catch (error) {
    if (error instanceof StreamError)
      throw new RemoteError(500, {
        code: error.error.code ?? 'server_error',
        message: error.error.message,
      });
    throw error;
  }
}

/** `42 tokens, 51.3 tokens/s · tiny + style-a (×0.7) · receipt 1f3a…` */
export function summaryLine(usage: ChatUsage | undefined, info: OpenLedgerInfo | undefined) {
  const parts: string[] = [];
  if (usage) parts.push(`${usage.completion_tokens} tokens`);
  if (info) {
    parts.push(`${info.timings.tokens_per_second.toFixed(1)} tokens/s`);
    parts.push(`${info.base_model} + ${describeAdapters(info.adapters)}`);
    if (info.receipt.hash) parts.push(`receipt ${info.receipt.hash.slice(0, 16)}…`);
  }
  return parts.join(' · ');
}

export async function defaultModel(node: NodeClient): Promise<string> {
  const { data } = await node.request<{
    data: { id: string; openledger?: { kind: string } }[];
  }>('GET', '/v1/models');
  const base = data.find((m) => m.openledger?.kind === 'base');
  if (!base)
    throw new OpenLedgerError('MODEL_NOT_FOUND', 'The node offers no base model to chat with.', {
      hint: 'Add one with `openledger models add`, or name one with --model.',
    });
  return base.id;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function chat(message: string | undefined, flags: ChatFlags, out: Output) {
  const maxTokens = numberFlag('max-tokens', flags.maxTokens, true);
  const temperature = numberFlag('temperature', flags.temperature, false);
  const adapters = (flags.adapter ?? []).map(parseAdapterFlag);
  const node = await client(flags);
  const session: ChatSession = {
    node,
    model: flags.model ?? (await defaultModel(node)),
    adapters,
    maxTokens,
    temperature,
  };
  const messages: Message[] = flags.system ? [{ role: 'system', content: flags.system }] : [];

  const interactive = message === undefined && process.stdin.isTTY === true && !out.json;
  if (interactive) return conversation(session, messages);

  const text = message ?? (await readStdin()).trim();
  if (!text)
    throw new OpenLedgerError('BAD_REQUEST', 'Nothing to send.', {
      hint: 'Give a message, pipe one on stdin, or run `openledger chat` on a terminal to converse.',
    });
  messages.push({ role: 'user', content: text });

  if (out.json) {
    // One document: the answer read whole from the same stream, with its usage and receipt.
    const answer = await streamChat(session, messages, () => {});
    out.result(
      {
        id: answer.id,
        model: answer.model,
        answer: answer.text,
        finish_reason: answer.finishReason,
        usage: answer.usage,
        openledger: answer.openledger,
      },
      () => '',
    );
    return;
  }
  const answer = await streamChat(session, messages, (delta) => process.stdout.write(delta));
  process.stdout.write('\n');
  process.stderr.write(`— ${summaryLine(answer.usage, answer.openledger)}\n`);
}

/** The interactive loop: the conversation is kept and sent whole with each turn. */
async function conversation(session: ChatSession, messages: Message[]): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  let running: AbortController | undefined;
  let closed = false;
  rl.on('SIGINT', () => {
    // Ctrl-C stops the answer being written; at the prompt it ends the conversation.
    if (running) running.abort(new Error('stopped'));
    else rl.close();
  });
  rl.on('close', () => (closed = true));
  process.stderr.write(
    `chatting with ${session.model}${session.adapters.length ? ` + ${describeAdapters(session.adapters.map((a) => ({ ...a, name: a.id })))}` : ''} — an empty line or Ctrl-D ends\n`,
  );
  while (!closed) {
    let line: string;
    try {
      line = (await rl.question('> ')).trim();
    } catch {
      break; // closed while asking
    }
    if (line === '' || line === '/exit') break;
    messages.push({ role: 'user', content: line });
    running = new AbortController();
    let written = '';
    try {
      const answer = await streamChat(
        session,
        messages,
        (delta) => {
          written += delta;
          process.stdout.write(delta);
        },
        running.signal,
      );
      process.stdout.write('\n');
      process.stderr.write(`— ${summaryLine(answer.usage, answer.openledger)}\n`);
      messages.push({ role: 'assistant', content: answer.text });
    } catch (error) {
      process.stdout.write('\n');
      if (running.signal.aborted) {
        // What was shown stays in the conversation, as the model's (cut) answer.
        messages.push({ role: 'assistant', content: written });
        process.stderr.write('— stopped\n');
      } else {
        messages.pop();
        const body = error instanceof RemoteError ? error.body : undefined;
        process.stderr.write(
          `error${body ? ` [${body.code}]` : ''}: ${error instanceof Error ? error.message : String(error)}\n`,
        );
      }
    } finally {
      running = undefined;
    }
  }
  rl.close();
}

// ----- adapters ---------------------------------------------------------------------------------

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

export async function adaptersList(flags: KeyFlags, out: Output): Promise<void> {
  const node = await client(flags);
  const answer = await node.request<{ data: AdapterView[]; engine: unknown }>(
    'GET',
    '/v1/lora_adapters',
  );
  out.result({ adapters: answer.data, engine: answer.engine }, ({ adapters }) =>
    adapters.length === 0
      ? 'no adapters known to the node yet; name one with `openledger adapters load <name> <path>`'
      : adapters
          .map(
            (a) =>
              `${a.names.length ? a.names.join(', ') : '(unnamed)'}  adapter:${a.id}\n` +
              `  base ${a.base_model}  ${mib(a.bytes)}  ${a.resident ? 'in memory' : 'on disk'}${a.pinned ? ', pinned' : ''}  ${a.uses} use${a.uses === 1 ? '' : 's'}`,
          )
          .join('\n'),
  );
}

export async function adaptersLoad(
  name: string,
  file: string,
  flags: KeyFlags & { baseModel?: string; pinned?: boolean },
  out: Output,
): Promise<void> {
  const node = await client(flags);
  // The node reads the path on its own disk; a path that exists here is made absolute, as the
  // node's working folder is not this shell's. Blob hashes and hf: references go as they are.
  const lora_path = !/^(sha256|hf):/.test(file) && existsSync(file) ? path.resolve(file) : file;
  const loaded = await node.request<AdapterView & { name: string }>(
    'POST',
    '/v1/load_lora_adapter',
    {
      lora_name: name,
      lora_path,
      ...(flags.baseModel === undefined ? {} : { base_model: flags.baseModel }),
      ...(flags.pinned ? { pinned: true } : {}),
    },
  );
  out.result(
    loaded,
    (a) =>
      `loaded ${a.name}: adapter:${a.id}\n  base ${a.base_model}  ${mib(a.bytes)}${a.pinned ? '  pinned' : ''}`,
  );
}

export async function adaptersUnload(name: string, flags: KeyFlags, out: Output): Promise<void> {
  const node = await client(flags);
  const result = await node.request<{ name: string; id: string; deleted: boolean }>(
    'POST',
    '/v1/unload_lora_adapter',
    { lora_name: name },
  );
  out.result(
    result,
    (r) =>
      `unloaded ${r.name} (adapter:${r.id} stays callable by its hash while in the blob store)`,
  );
}

interface MergeFlags extends KeyFlags {
  method: string;
  adapter?: string[];
  name?: string;
  baseModel?: string;
  density?: string;
  rank?: string;
  seed?: string;
}

interface MergeAnswer {
  id: string;
  name: string | null;
  cached: boolean;
  lineage: {
    method: string;
    params: Record<string, number>;
    baseModel: string;
    sources: { id: string; weight: number; ref: string }[];
    rank: number;
    bytes: number;
  };
  truncationError?: number;
}

/** `adapters merge`: POST /api/adapters/merge (docs/serving.md, "Merging adapters"). */
export async function adaptersMerge(flags: MergeFlags, out: Output): Promise<void> {
  const node = await client(flags);
  const density = numberFlag('density', flags.density, false);
  const rank = numberFlag('rank', flags.rank, true);
  const seed = numberFlag('seed', flags.seed, true);
  const merged = await node.request<MergeAnswer>('POST', '/api/adapters/merge', {
    method: flags.method,
    adapters: (flags.adapter ?? []).map(parseAdapterFlag),
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(flags.baseModel === undefined ? {} : { baseModel: flags.baseModel }),
    ...(density === undefined ? {} : { density }),
    ...(rank === undefined ? {} : { rank }),
    ...(seed === undefined ? {} : { seed }),
  });
  out.result(merged, (m) => {
    const params = Object.entries(m.lineage.params).map(([k, v]) => `${k} ${v}`);
    return [
      `${m.cached ? 'cached' : 'merged'} ${m.name ? `${m.name}: ` : ''}adapter:${m.id}`,
      `  ${m.lineage.method}${params.length ? ` (${params.join(', ')})` : ''} over base ${m.lineage.baseModel}: rank ${m.lineage.rank}, ${mib(m.lineage.bytes)}` +
        (m.truncationError === undefined
          ? ''
          : `, truncation error ${(100 * m.truncationError).toPrecision(3)} %`),
      ...m.lineage.sources.map((s) => `  ${s.weight} × ${s.ref} (adapter:${s.id})`),
    ].join('\n');
  });
}

interface LineageNode {
  id: string;
  weight?: number;
  ref?: string;
  merge?: { method: string; params: Record<string, number>; baseModel: string };
  sources?: LineageNode[];
}

/** `adapters lineage`: GET /api/adapters/:id/lineage, printed as a tree. */
export async function adaptersLineage(id: string, flags: KeyFlags, out: Output): Promise<void> {
  const node = await client(flags);
  const lineage = await node.request<LineageNode>(
    'GET',
    `/api/adapters/${encodeURIComponent(id)}/lineage`,
  );
  const lines = (n: LineageNode, indent: string): string[] => {
    const head =
      `${indent}${n.weight === undefined ? '' : `${n.weight} × `}` +
      `${n.ref && n.ref !== `adapter:${n.id}` ? `${n.ref} ` : ''}adapter:${n.id}` +
      (n.merge
        ? `  = ${n.merge.method}(${Object.entries(n.merge.params)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}) over ${n.merge.baseModel}`
        : '');
    return [head, ...(n.sources ?? []).flatMap((s) => lines(s, `${indent}  `))];
  };
  out.result(lineage, (l) => lines(l, '').join('\n'));
}

/** `--key`, beside the signer options of commands that call /v1. */
export function withKeyOption(command: Command): Command {
  return command.option(
    '--key <olk_…>',
    'an API key (default: OPENLEDGER_API_KEY, else sign in with --account/--keystore)',
  );
}

/** Registers `chat` and `adapters list|load|unload|merge|lineage`. */
export function registerChatCommands(
  program: Command,
  out: Output,
  signerOptions: (command: Command) => Command,
): void {
  const withKey = (command: Command) => withKeyOption(signerOptions(command));
  withKey(
    program
      .command('chat')
      .description(
        "chat with a node's model: streams the answer (on a terminal with no message: a conversation)",
      )
      .argument('[message]', 'what to say (default: read from stdin)'),
  )
    .option(
      '--model <name>',
      "a base model, model:<id>, an adapter name or adapter:<sha256> (default: the node's first base model)",
    )
    .option(
      '--adapter <id[:weight]>',
      'compose an adapter at a weight (repeatable), e.g. style-a:0.7 or model:3',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--system <text>', 'a system prompt')
    .option('--max-tokens <n>', 'most tokens in an answer')
    .option('--temperature <x>', 'sampling temperature (0 to 2)')
    .action((message: string | undefined, options: ChatFlags) => chat(message, options, out));

  const adapters = program
    .command('adapters')
    .description('LoRA adapters a running node serves (load and unload: operators only)');
  withKey(adapters.command('list').description('adapters the node knows, in memory or not')).action(
    (options: KeyFlags) => adaptersList(options, out),
  );
  withKey(
    adapters
      .command('load')
      .description(
        "name an adapter on the node's disk, in its blob store or on Hugging Face (vLLM's load_lora_adapter)",
      )
      .argument('<name>', 'the name to call it by')
      .argument(
        '<path>',
        'a llama.cpp LoRA GGUF file, a folder holding one .gguf, a PEFT folder (adapter_config.json + adapter_model.safetensors, imported), sha256:<hex> of a blob, or hf:owner/name[@revision][/subfolder|/file.gguf] (downloaded when online)',
      ),
  )
    .option(
      '--base-model <name>',
      "the base model it is for (default: as its file or a PEFT folder's base_model_name_or_path says)",
    )
    .option('--pinned', 'keep it in memory through model recycles')
    .action((name: string, file: string, options) => adaptersLoad(name, file, options, out));
  withKey(
    adapters
      .command('unload')
      .description("forget an adapter's name (vLLM's unload_lora_adapter)")
      .argument('<name>'),
  ).action((name: string, options: KeyFlags) => adaptersUnload(name, options, out));
  withKey(
    adapters
      .command('merge')
      .description(
        'merge 2-8 adapters of one base into a new adapter (cached by recipe, lineage recorded)',
      )
      .requiredOption('--method <method>', 'linear (exact), ties, dare or dare_ties')
      .option(
        '--adapter <id[:weight]>',
        'a source adapter at a weight (repeatable, 2-8), e.g. style-a:0.7, adapter:<sha256>, model:3',
        (value: string, previous: string[] = []) => [...previous, value],
      )
      .option('--name <name>', 'register the merge under this name (operators only)')
      .option('--base-model <name>', "the base model (default: the first adapter's)")
      .option('--density <d>', 'ties/dare: fraction of each delta kept, in (0, 1]')
      .option('--rank <r>', 'rank of the merged adapter (default: the largest source rank)')
      .option('--seed <s>', 'dare: seed of the random drop (default 0)'),
  ).action((options: MergeFlags) => adaptersMerge(options, out));
  withKey(
    adapters
      .command('lineage')
      .description("a merged adapter's recipe and sources, recursively")
      .argument('<id>', 'sha256, adapter:<sha256> or an adapter name'),
  ).action((id: string, options: KeyFlags) => adaptersLineage(id, options, out));
}
