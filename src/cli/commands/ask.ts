/**
 * `openledger ask "question" --datanet 1 [--datanet 2]`: a cited answer from datanets, through a
 * running node's chat completions with `rag` (docs/rag.md). Prints the answer, then one line per
 * source: its number, where it is (datanet, version, row) and who contributed it.
 */
import type { Command } from 'commander';
import { OpenLedgerError } from '../../errors.ts';
import type { ChatUsage, OpenLedgerInfo, RagCitation, RagInfo } from '../../util/openai-stream.ts';
import type { Output } from '../output.ts';
import {
  client,
  defaultModel,
  numberFlag,
  parseAdapterFlag,
  remoteError,
  withKeyOption,
  type KeyFlags,
} from './chat.ts';

interface AskFlags extends KeyFlags {
  datanet?: string[];
  model?: string;
  adapter?: string[];
  k?: string;
  strict: boolean;
  maxTokens?: string;
  temperature?: string;
}

interface AskResponse {
  choices: { message: { content: string } }[];
  citations: RagCitation[];
  usage: ChatUsage;
  openledger: OpenLedgerInfo & { rag: RagInfo };
}

function datanetIds(values: string[] | undefined): number[] {
  if (!values || values.length === 0)
    throw new OpenLedgerError('BAD_REQUEST', 'Name at least one datanet: --datanet <id>.');
  return values.map((value) => {
    const id = Number(value);
    if (!Number.isSafeInteger(id) || id < 1)
      throw new OpenLedgerError('BAD_REQUEST', `--datanet ${value}: expected a datanet id.`);
    return id;
  });
}

export async function ask(question: string, flags: AskFlags, out: Output): Promise<void> {
  if (question.trim() === '') throw new OpenLedgerError('BAD_REQUEST', 'The question is empty.');
  const datanets = datanetIds(flags.datanet);
  const k = numberFlag('k', flags.k, true);
  const maxTokens = numberFlag('max-tokens', flags.maxTokens, true);
  const temperature = numberFlag('temperature', flags.temperature, false);
  const node = await client(flags);
  const model = flags.model ?? (await defaultModel(node));
  const adapters = (flags.adapter ?? []).map(parseAdapterFlag);
  out.progress(
    `asking ${model} over datanet${datanets.length > 1 ? 's' : ''} ${datanets.join(', ')}`,
  );
  let response: Response;
  try {
    response = await fetch(new URL('/v1/chat/completions', node.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...node.authorization() },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: question }],
        rag: { datanets, strict: flags.strict, ...(k === undefined ? {} : { k }) },
        ...(adapters.length > 0 ? { adapters } : {}),
        ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
        ...(temperature === undefined ? {} : { temperature }),
      }),
    });
  } catch (cause) {
    throw new OpenLedgerError('NODE_UNREACHABLE', `No OpenLedger node answers at ${node.url}.`, {
      hint: 'Start one with `openledger up`, or point to it with --url or OPENLEDGER_URL.',
      cause,
    });
  }
  if (!response.ok) {
    out.progressDone();
    throw await remoteError(response);
  }
  const body = (await response.json()) as AskResponse;
  out.progressDone();
  const answer = body.choices[0]?.message.content ?? '';
  const rag = body.openledger.rag;
  out.result(
    {
      answer,
      kind: rag.answer,
      strict: rag.strict,
      citations: body.citations,
      sources: rag.sources,
      droppedSources: rag.dropped_sources,
      receipt: body.openledger.receipt,
      usage: body.usage,
    },
    () => {
      const cited = new Set(body.citations.filter((c) => c.supported).map((c) => c.n));
      const lines = [answer, ''];
      if (rag.sources.length === 0) lines.push('(no source matched the question)');
      for (const source of rag.sources) {
        const mark = cited.has(source.n) ? '*' : ' ';
        lines.push(
          `${mark}[${source.n}] datanet ${source.datanet_id} v${source.version} row ${source.row_id} · ${source.contributor}`,
        );
      }
      if (cited.size > 0) lines.push('', '* cited in the answer');
      lines.push(`receipt ${body.openledger.receipt.id}`);
      return lines.join('\n');
    },
  );
}

/** Registers `ask`. */
export function registerAskCommand(
  program: Command,
  out: Output,
  signerOptions: (command: Command) => Command,
): void {
  withKeyOption(
    signerOptions(
      program
        .command('ask')
        .description(
          'answer a question from datanets with numbered sources and checked [n] citations (RAG)',
        )
        .argument('<question>', 'what to ask'),
    ),
  )
    .option(
      '--datanet <id>',
      'a datanet to answer from (repeatable; you need read access to each)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--model <name>',
      "a base model, model:<id>, an adapter name or adapter:<sha256> (default: the node's first base model)",
    )
    .option(
      '--adapter <id[:weight]>',
      'compose an adapter at a weight (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--k <n>', 'sources to retrieve (default 8; fewer when the model context is small)')
    .option('--no-strict', "return the model's own text even where the sources do not support it")
    .option('--max-tokens <n>', 'most tokens in the answer')
    .option('--temperature <x>', 'sampling temperature (0 to 2)')
    .action((question: string, options: AskFlags) => ask(question, options, out));
}
