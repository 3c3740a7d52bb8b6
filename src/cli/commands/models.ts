import path from 'node:path';
import { Option, type Command } from 'commander';
import { CONFIG_ENV, DEFAULT_DATA_DIR } from '../../config.ts';
import { OpenLedgerError } from '../../errors.ts';
import { buildBuiltinModel } from '../../factory/builtin/build.ts';
import { resolveModelSource } from '../../factory/download.ts';
import { DEFAULT_NODE_URL, NodeClient } from '../client.ts';
import type { Output } from '../output.ts';

interface ListedModel {
  name: string;
  bytes: number;
  architecture: string;
  contextLength?: number;
  title?: string;
}

/**
 * `openledger models add <path|owner/name[@rev][:file.gguf]>`: an operator's command, run on the
 * node's machine. It writes `<data-dir>/models/<name>.gguf` (linking a local GGUF, converting a
 * Hugging Face folder, or downloading from the hub when online); a running node offers the model
 * at once, as its catalogue reads the folder on each request.
 */
export async function modelsAdd(
  ref: string,
  flags: { name?: string; dataDir: string },
  out: Output,
): Promise<void> {
  const modelsDir = path.join(path.resolve(flags.dataDir), 'models');
  out.progress(`adding ${ref}`);
  const model = await resolveModelSource(ref, {
    modelsDir,
    ...(flags.name === undefined ? {} : { name: flags.name }),
    onProgress: (file, received, total) =>
      out.progressUpdate(
        `downloading ${file}: ${(received / 2 ** 20).toFixed(1)} MiB${total ? ` of ${(total / 2 ** 20).toFixed(1)} MiB` : ''}`,
      ),
  });
  out.progressDone();
  out.result(model, (m) => `added ${m.name} (${m.source})\n  ${m.path}\n  sha256 ${m.sha256}`);
}

/** `openledger models list`: the base models a running node offers. */
export async function modelsList(flags: { url: string }, out: Output): Promise<void> {
  const { models } = await new NodeClient(flags.url).request<{ models: ListedModel[] }>(
    'GET',
    '/api/factory/models',
  );
  out.result({ models }, ({ models: list }) =>
    list.length === 0
      ? 'no base models; add one with `openledger models add <gguf|folder|owner/name>`'
      : list
          .map(
            (m) =>
              `${m.name}  ${m.architecture}  ${(m.bytes / 2 ** 20).toFixed(1)} MiB${m.contextLength ? `  ctx ${m.contextLength}` : ''}${m.title ? `  "${m.title}"` : ''}`,
          )
          .join('\n'),
  );
}

/**
 * `openledger models build-base`: trains the built-in base model from its recipe (what
 * `npm install` does once) into the package's models/ folder; kept when already current.
 */
export async function modelsBuildBase(
  flags: { force?: boolean; backend: 'auto' | 'onnxruntime' | 'typescript'; steps?: string },
  out: Output,
): Promise<void> {
  const steps = flags.steps === undefined ? undefined : Number(flags.steps);
  if (steps !== undefined && (!Number.isSafeInteger(steps) || steps < 1)) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `--steps must be a positive integer, not ${flags.steps}`,
    );
  }
  out.progress('building the built-in base model');
  const result = await buildBuiltinModel({
    backend: flags.backend,
    ...(flags.force === true ? { force: true } : {}),
    ...(steps === undefined ? {} : { steps }),
    onProgress: (p) => {
      const line = `training the built-in base model: step ${p.step}/${p.of}, loss ${p.loss.toFixed(3)}${p.validationLoss === undefined ? '' : `, validation ${p.validationLoss.toFixed(3)}`}, ${p.tokensPerSecond} tokens/s, ${p.etaSeconds} s left`;
      // a line every 25 steps where there is no spinner (npm install's log, CI)
      if (p.step % 25 === 0 || p.validationLoss !== undefined) out.progress(line);
      else out.progressUpdate(line);
    },
  });
  out.progressDone();
  const { card } = result;
  out.result(
    { path: result.path, built: result.built, card },
    () =>
      `${result.built ? 'built' : 'already current:'} ${card.name} (${(card.gguf.bytes / 2 ** 20).toFixed(1)} MiB, ${card.metrics.parameters.toLocaleString('en')} parameters)\n` +
      `  ${result.path}\n` +
      `  validation loss ${card.metrics.validationLoss.toFixed(3)} (perplexity ${card.metrics.validationPerplexity.toFixed(1)}; unigram baseline ${card.metrics.unigramValidationLoss.toFixed(3)}) after ${card.metrics.tokensSeen.toLocaleString('en')} tokens in ${card.metrics.trainingSeconds.toFixed(0)} s on ${card.metrics.matmulBackend}`,
  );
}

/** Registers `models add`, `models list` and `models build-base`. */
export function registerModelsCommand(program: Command, out: Output): void {
  const models = program.command('models').description('base models of the node (model factory)');
  models
    .command('add')
    .argument(
      '<source>',
      'a GGUF file, a Hugging Face folder, or owner/name[@revision][:file.gguf]',
    )
    .description(
      'add a base model to <data-dir>/models: link a GGUF, convert a Hugging Face folder, or download from the hub (online; HF_TOKEN for gated repos)',
    )
    .option('--name <name>', 'the name to offer it by (default: from the file, folder or repo)')
    .addOption(
      new Option('--data-dir <dir>', `the node's data dir (default ${DEFAULT_DATA_DIR})`)
        .env(CONFIG_ENV.dataDir)
        .default(DEFAULT_DATA_DIR),
    )
    .action((source: string, options: { name?: string; dataDir: string }) =>
      modelsAdd(source, options, out),
    );
  models
    .command('list')
    .description('the base models a running node offers')
    .addOption(
      new Option('--url <url>', 'URL of a running node')
        .env('OPENLEDGER_URL')
        .default(DEFAULT_NODE_URL),
    )
    .action((options: { url: string }) => modelsList(options, out));
  models
    .command('build-base')
    .description(
      'train the built-in base model from its recipe (npm install does this once; kept when current)',
    )
    .option('--force', 'rebuild even when the current file matches the recipe')
    .addOption(
      new Option('--backend <backend>', 'where matrix products run')
        .choices(['auto', 'onnxruntime', 'typescript'])
        .default('auto'),
    )
    .option('--steps <n>', "train for n steps instead of the recipe's (a quick, smaller model)")
    .action(
      (options: {
        force?: boolean;
        backend: 'auto' | 'onnxruntime' | 'typescript';
        steps?: string;
      }) => modelsBuildBase(options, out),
    );
}
