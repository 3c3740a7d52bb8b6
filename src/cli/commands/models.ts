import path from 'node:path';
import { Option, type Command } from 'commander';
import type { Address, Hex } from 'viem';
import { resolveSigner } from '../../chain/index.ts';
import { CONFIG_ENV, DEFAULT_DATA_DIR } from '../../config.ts';
import { OpenLedgerError } from '../../errors.ts';
import { buildBuiltinModel } from '../../factory/builtin/build.ts';
import { resolveModelSource } from '../../factory/download.ts';
import { buildBuiltinEmbedder } from '../../rag/embedder/build.ts';
import { modelTypedData, type ModelChannelWeights } from '../../models/typed-data.ts';
import { DEFAULT_NODE_URL, NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import type { AuthFlags } from './keys.ts';

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

/**
 * `openledger models build-embedder`: builds the built-in embedding model for RAG
 * (`openledger-embed-static`, a static BERT GGUF computed from the built-in corpus; what
 * `npm install` does once after the base model) into the package's models/ folder; kept when
 * already current.
 */
export async function modelsBuildEmbedder(flags: { force?: boolean }, out: Output): Promise<void> {
  out.progress('building the built-in embedding model');
  const result = await buildBuiltinEmbedder({
    ...(flags.force === true ? { force: true } : {}),
    onProgress: (p) => {
      const line = `building the built-in embedding model: ${p.message} (${p.seconds.toFixed(1)} s)`;
      // a line per phase where there is no spinner (npm install's log, CI)
      if (p.phase === 'svd' && p.message.includes('step')) out.progressUpdate(line);
      else out.progress(line);
    },
  });
  out.progressDone();
  const { card } = result;
  out.result(
    { path: result.path, built: result.built, card },
    () =>
      `${result.built ? 'built' : 'already current:'} ${card.name} (${(card.gguf.bytes / 2 ** 20).toFixed(1)} MiB, ${card.vocabSize.toLocaleString('en')} tokens, ${card.dimensions} dimensions)\n` +
      `  ${result.path}\n` +
      `  ${card.tokensWithVectors.toLocaleString('en')} token vectors from ${card.corpusTokens.toLocaleString('en')} corpus tokens in ${card.buildSeconds.toFixed(1)} s`,
  );
}

/** Signatures stay valid for an hour, as with `publish`. */
const DEADLINE_SECONDS = 3600;
const CHANNELS = ['span', 'influence', 'rag'] as const;

/**
 * `openledger models channel-weights <id> [--span N --influence N --rag N]`: shows a published
 * model's Proof of Attribution channel weights, or (with the three flags) has its holder set
 * them: the CLI's wallet signs SetChannelWeights and the node relays it to the ModelRegistry.
 */
export async function modelsChannelWeights(
  flags: AuthFlags & { id: string; span?: string; influence?: string; rag?: string },
  out: Output,
): Promise<void> {
  const id = Number(flags.id);
  if (!Number.isSafeInteger(id) || id < 1)
    throw new OpenLedgerError('BAD_REQUEST', `${flags.id}: expected a Model ID (1, 2, ...).`);
  const given = CHANNELS.filter((c) => flags[c] !== undefined);
  const client = new NodeClient(flags.url);
  const show = (m: { id: number; channelWeights: ModelChannelWeights; txHash?: string }) =>
    [
      `model ${m.id} channel weights (share of the contributor pool)`,
      ...CHANNELS.map((c) => `  ${c.padEnd(10)}${m.channelWeights[c] / 100}%`),
      ...(m.txHash ? [`  tx        ${m.txHash}`] : []),
    ].join('\n');
  if (given.length === 0) {
    const model = await client.request<{ id: number; channelWeights: ModelChannelWeights }>(
      'GET',
      `/api/models/${id}`,
    );
    out.result({ modelId: model.id, channelWeights: model.channelWeights }, () => show(model));
    return;
  }
  if (given.length !== CHANNELS.length)
    throw new OpenLedgerError(
      'BAD_REQUEST',
      'Give all of --span, --influence and --rag (basis points adding up to 10000), or none to show the weights.',
    );
  const weights = Object.fromEntries(
    CHANNELS.map((c) => {
      const text = flags[c]!.trim();
      if (!/^\d{1,5}$/.test(text))
        throw new OpenLedgerError('BAD_REQUEST', `--${c} ${text}: expected whole basis points.`);
      return [c, Number(text)];
    }),
  ) as unknown as ModelChannelWeights;

  const { local } = await client.request<{ local: boolean }>('GET', '/api/status');
  const signer = await resolveSigner({
    account: flags.account === undefined ? undefined : Number(flags.account),
    privateKey: process.env.OPENLEDGER_PRIVATE_KEY,
    keystore: flags.keystore,
    keystorePassword: process.env.OPENLEDGER_KEYSTORE_PASSWORD,
    local,
  });
  await client.signIn(signer);
  const signing = await client.request<{ chainId: number; registry: Address; nonce: string }>(
    'GET',
    `/api/models/signing-info?address=${signer.address}`,
  );
  const ctx = {
    chainId: signing.chainId,
    registry: signing.registry,
    nonce: BigInt(signing.nonce),
    deadline: BigInt(Math.floor(Date.now() / 1000) + DEADLINE_SECONDS),
  };
  const signature: Hex = await signer.signTypedData(
    modelTypedData.setChannelWeights(ctx, {
      owner: signer.address,
      modelId: BigInt(id),
      weights,
    }),
  );
  out.progress('setting the channel weights on-chain');
  const set = await client.request<{
    modelId: number;
    channelWeights: ModelChannelWeights;
    txHash: string;
  }>('PUT', `/api/models/${id}/channel-weights`, {
    ...weights,
    authorization: { signature, deadline: ctx.deadline.toString() },
  });
  out.progressDone('set');
  out.result(set, (r) =>
    show({ id: r.modelId, channelWeights: r.channelWeights, txHash: r.txHash }),
  );
}

/**
 * Registers `models add`, `models list`, `models build-base`, `models build-embedder` and
 * `models channel-weights`.
 */
export function registerModelsCommand(
  program: Command,
  out: Output,
  signerOptions: (command: Command) => Command,
): void {
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
  models
    .command('build-embedder')
    .description(
      'build the built-in embedding model for RAG from the built-in corpus (npm install does this once; kept when current)',
    )
    .option('--force', 'rebuild even when the current file matches the recipe')
    .action((options: { force?: boolean }) => modelsBuildEmbedder(options, out));
  signerOptions(
    models
      .command('channel-weights')
      .description(
        "show a published model's Proof of Attribution channel weights, or set them as its holder (all three flags, basis points adding up to 10000)",
      )
      .argument('<id>', 'the Model ID'),
  )
    .option('--span <bps>', 'weight of exact span matches against the training data')
    .option('--influence <bps>', 'weight of training influence (gradient sketches)')
    .option('--rag <bps>', 'weight of retrieval (RAG) citations')
    .action(
      (id: string, options: AuthFlags & { span?: string; influence?: string; rag?: string }) =>
        modelsChannelWeights({ ...options, id }, out),
    );
}
