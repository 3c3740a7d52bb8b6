import { Command, CommanderError, Option } from 'commander';
import {
  type ConfigFlags,
  CONFIG_ENV,
  DEFAULT_CHAIN_PORT,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_PORT,
} from '../config.ts';
import { OpenLedgerError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { DEFAULT_NODE_URL } from './client.ts';
import {
  datanetApprove,
  datanetContribute,
  datanetCreate,
  datanetCurator,
  datanetExport,
  datanetGrant,
  datanetList,
  datanetPending,
  datanetReject,
  datanetRequestAccess,
  datanetShow,
  datanetVerify,
  datanetVersions,
} from './commands/datanet.ts';
import { registerAttributionCommands } from './commands/attribution.ts';
import { registerAskCommand } from './commands/ask.ts';
import { registerChatCommands } from './commands/chat.ts';
import { deploy } from './commands/deploy.ts';
import { registerBondCommands } from './commands/bonds.ts';
import { registerEscrowCommands } from './commands/escrow.ts';
import { registerExportCommand } from './commands/export.ts';
import { registerMarketCommands } from './commands/market.ts';
import {
  registerAgentCommands,
  registerGovernanceCommands,
  registerStakeCommands,
} from './commands/governance.ts';
import { registerProposalCommands } from './commands/proposals.ts';
import { registerJobsCommands } from './commands/jobs.ts';
import { keysCreate, keysList, keysRevoke } from './commands/keys.ts';
import { registerModelsCommand } from './commands/models.ts';
import { registerRouterCommand } from './commands/router.ts';
import { publish } from './commands/publish.ts';
import { status } from './commands/status.ts';
import { train } from './commands/train.ts';
import { up } from './commands/up.ts';
import { createOutput, type Output } from './output.ts';

/** `--json` may stand anywhere on the line, so it is read before commander parses. */
const json = process.argv.includes('--json');
const out: Output = createOutput(json);

const program = new Command()
  .name('openledger')
  .description(
    'OpenLedger node: datanets, model factory, LoRA serving, proof of attribution, OPEN settlement.',
  )
  .version(VERSION)
  // Root options only before the command, so a command may have options of the same name
  // (`datanet verify --version N`).
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({ writeErr: (text) => void (json ? undefined : process.stderr.write(text)) });

const nodeUrl = () =>
  new Option('--url <url>', 'URL of a running node')
    .env('OPENLEDGER_URL')
    .default(DEFAULT_NODE_URL);

program
  .command('up')
  .description(
    'run the whole node (chain, database, API, web app) until SIGINT/SIGTERM; prints "ready <url>"',
  )
  .addOption(
    new Option('--port <port>', `HTTP port, 0 for any free one (default ${DEFAULT_PORT})`).env(
      CONFIG_ENV.port,
    ),
  )
  .addOption(
    new Option('--host <host>', `interface to bind (default ${DEFAULT_HOST})`).env(CONFIG_ENV.host),
  )
  .addOption(
    new Option(
      '--data-dir <dir>',
      `where chain state, database and blobs live (default ${DEFAULT_DATA_DIR})`,
    ).env(CONFIG_ENV.dataDir),
  )
  .addOption(
    new Option('--rpc-url <url>', 'use this EVM chain instead of starting a local one').env(
      CONFIG_ENV.rpcUrl,
    ),
  )
  .addOption(
    new Option(
      '--chain-port <port>',
      `port of the local chain, 0 for any free one (default ${DEFAULT_CHAIN_PORT})`,
    ).env(CONFIG_ENV.chainPort),
  )
  .addOption(
    new Option('--database-url <url>', 'PostgreSQL server instead of the embedded database').env(
      CONFIG_ENV.databaseUrl,
    ),
  )
  .addOption(
    new Option(
      '--log-level <level>',
      'fatal, error, warn, info, debug, trace or silent (default info)',
    ).env(CONFIG_ENV.logLevel),
  )
  // Serving (docs/serving.md); commas in OPENLEDGER_BASE_MODELS / OPENLEDGER_OPERATORS.
  .option(
    '--base-model <name|path|owner/name>',
    'base model to load at start: a catalogue name, a GGUF file, a Hugging Face folder or repo id (added to <data-dir>/models first; repeatable; the first is the default)',
    (value: string, previous: string[] = []) => [...previous, value],
  )
  .addOption(
    new Option(
      '--adapter-budget <bytes>',
      'bytes of LoRA adapters per loaded base model, e.g. 256MiB (default 256MiB)',
    ).env(CONFIG_ENV.adapterBudget),
  )
  .option('--max-concurrent <n>', 'requests generating at once (default 4)')
  .option('--max-queue <n>', 'requests waiting; beyond it 429 (default 64)')
  .option(
    '--max-contexts <n>',
    'llama.cpp contexts pooled per base model, one per adapter set in use (default 8)',
  )
  .option('--max-tokens <n>', 'cap on max_tokens (default 512)')
  .option('--max-request-seconds <n>', 'generation time limit per request (default 120)')
  .option('--context-size <n>', 'tokens per sequence, prompt and completion (default 2048)')
  .option('--threads <n>', 'llama.cpp threads (default: every core)')
  .addOption(
    new Option(
      '--embedding-model <path>',
      'BERT-family GGUF that embeds datanet chunks for RAG (default: the built-in static embedder)',
    ).env(CONFIG_ENV.embeddingModel),
  )
  .option(
    '--operator <address>',
    'wallet allowed to load/unload adapters, besides the node signer (repeatable)',
    (value: string, previous: string[] = []) => [...previous, value],
  )
  // Remote backends (docs/serving.md "Remote backends"); commas in OPENLEDGER_REMOTE_BACKENDS.
  .option(
    '--remote-backend <url>',
    'forward generation to this OpenAI-compatible LoRA server (vLLM, SGLang, an OpenLedger node), e.g. http://gpu:8000/v1 (repeatable)',
    (value: string, previous: string[] = []) => [...previous, value],
  )
  .addOption(
    new Option('--remote-api-key <key>', 'Bearer key for the remote backends').env(
      CONFIG_ENV.remoteApiKey,
    ),
  )
  .addOption(
    new Option(
      '--remote-model <name>',
      'the base model name the remote backends serve (default: the local base model name)',
    ).env(CONFIG_ENV.remoteModel),
  )
  .addOption(
    new Option(
      '--remote-adapter-dir <dir[=remote dir]>',
      'folder where the node writes adapters for the remote backends to load, and its path as they see it',
    ).env(CONFIG_ENV.remoteAdapterDir),
  )
  .addOption(
    new Option(
      '--remote-adapter-format <format>',
      'adapters as the remote backends load them: peft (vLLM, SGLang) or gguf (OpenLedger, llama.cpp) (default peft)',
    ).env(CONFIG_ENV.remoteAdapterFormat),
  )
  .action((options: ConfigFlags) => up(options, out));

program
  .command('status')
  .description('show what a running node is and whether its database, chain and engine are healthy')
  .addOption(nodeUrl())
  .action((options: { url: string }) => status(options.url, out));

program
  .command('deploy')
  .description('deploy the contract suite (OPEN token; faucet on the local chain) to any EVM chain')
  .addOption(new Option('--rpc-url <url>', 'the chain to deploy to').env(CONFIG_ENV.rpcUrl))
  .addOption(
    new Option('--private-key <key>', 'deployer key (prefer the environment variable)').env(
      CONFIG_ENV.privateKey,
    ),
  )
  .option(
    '--keystore <file>',
    'encrypted keystore (v3) of the deployer; password in OPENLEDGER_KEYSTORE_PASSWORD',
  )
  .option('--account <n>', 'act as anvil dev account N (local chain only)')
  .option('--treasury <address>', 'receives the whole OPEN supply (default: the deployer)')
  .addOption(
    new Option(
      '--data-dir <dir>',
      `where to record the addresses (default ${DEFAULT_DATA_DIR})`,
    ).env(CONFIG_ENV.dataDir),
  )
  .option('--force', 'deploy again even if a live deployment is recorded')
  .action((options) => deploy(options, out));

const keys = program.command('keys').description('manage API keys of a wallet on a running node');
const signerOptions = (command: Command) =>
  command
    .addOption(nodeUrl())
    .option('--account <n>', 'sign in as anvil dev account N (local chain only)')
    .option(
      '--keystore <file>',
      'sign in with an encrypted keystore; password in OPENLEDGER_KEYSTORE_PASSWORD',
    );
signerOptions(keys.command('create').description('create an API key (the secret is printed once)'))
  .requiredOption('--name <name>', 'a name to recognise the key by')
  .action((options) => keysCreate(options, out));
signerOptions(keys.command('list').description('list your API keys')).action((options) =>
  keysList(options, out),
);
signerOptions(
  keys.command('revoke').description('revoke an API key').argument('<id>', 'the key id'),
).action((id: string, options) => keysRevoke({ ...options, id }, out));

const datanet = program
  .command('datanet')
  .description('community datasets: create, contribute, curate, version, access, export, verify');
signerOptions(
  datanet.command('create').description('create a datanet, registered on-chain with you as owner'),
)
  .requiredOption('--name <name>', 'a name (3-80 characters)')
  .option('--summary <text>', 'one line about it')
  .option('--description <markdown>', 'what belongs in it (also used to judge relevance)')
  .option('--description-file <file>', 'the description, from a markdown file')
  .option('--tags <a,b>', 'comma-separated tags')
  .option('--modality <text|image|audio>', 'what it holds (default text)')
  .option('--license <spdx>', 'licence contributors grant (default CC-BY-4.0)')
  .option('--policy <open|permissioned>', 'who may read it (default open)')
  .option('--accepted-types <list>', 'accepted file types, e.g. txt,md,jsonl')
  .option('--max-file-bytes <n>', 'largest accepted contribution')
  .option('--daily-quota <n>', 'contributions per contributor per day')
  .action((options) => datanetCreate(options, out));
signerOptions(
  datanet
    .command('curator')
    .description('appoint (or --remove) a curator, on-chain (owner)')
    .argument('<id>')
    .argument('<address>'),
)
  .option('--remove', 'remove the curator instead')
  .action((id: string, address: string, options) =>
    datanetCurator({ ...options, id, address }, out),
  );
datanet
  .command('list')
  .description('list datanets')
  .addOption(nodeUrl())
  .option('--owner <address>', 'only those of this owner')
  .option('--q <text>', 'search names and summaries')
  .action((options) => datanetList(options, out));
signerOptions(
  datanet.command('show').description('one datanet: metadata, curators, versions').argument('<id>'),
).action((id: string, options) => datanetShow({ ...options, id }, out));
signerOptions(
  datanet
    .command('contribute')
    .description(
      'contribute files (txt, md, pdf, docx, json, jsonl, csv; images, audio) or rows, signed by you',
    )
    .argument('<id>')
    .argument('[files...]'),
)
  .option(
    '--rows <file.json>',
    'a JSON array of rows ({type:"document"|"instruction"|"chat", ...})',
  )
  .option('--license <spdx>', "the licence you grant (default: the datanet's)")
  .option('--consent', 'agree to contribute under the licence (required)')
  .action((id: string, files: string[], options) =>
    datanetContribute({ ...options, id, files }, out),
  );
signerOptions(
  datanet
    .command('pending')
    .description('pending contributions (owner and curators)')
    .argument('<id>'),
).action((id: string, options) => datanetPending({ ...options, id }, out));
signerOptions(
  datanet
    .command('approve')
    .description('approve contributions and commit a new version on-chain')
    .argument('<id>')
    .argument('<contributions...>'),
).action((id: string, contributions: string[], options) =>
  datanetApprove({ ...options, id, contributions }, out),
);
signerOptions(
  datanet
    .command('reject')
    .description('reject contributions with a reason')
    .argument('<id>')
    .argument('<contributions...>'),
)
  .requiredOption('--reason <text>', 'why, for the contributor')
  .action((id: string, contributions: string[], options) =>
    datanetReject({ ...options, id, contributions }, out),
  );
signerOptions(
  datanet
    .command('request-access')
    .description('ask the owner of a permissioned datanet for access')
    .argument('<id>'),
)
  .requiredOption('--purpose <text>', 'what you will use the data for')
  .action((id: string, options) => datanetRequestAccess({ ...options, id }, out));
signerOptions(
  datanet
    .command('grant')
    .description('grant (or --deny, --revoke) an account access, on-chain')
    .argument('<id>')
    .argument('<address>'),
)
  .option('--deny', 'deny the request instead')
  .option('--revoke', 'revoke a grant instead')
  .option('--reason <text>', 'a reason, for a denial')
  .action((id: string, address: string, options) => datanetGrant({ ...options, id, address }, out));
datanet
  .command('versions')
  .description('version history with roots and transactions')
  .argument('<id>')
  .addOption(nodeUrl())
  .action((id: string, options) => datanetVersions({ ...options, id }, out));
signerOptions(
  datanet
    .command('export')
    .description('a version as JSONL for training (read access needed)')
    .argument('<id>'),
)
  .option('--version <n>', 'version number (default latest)')
  .option('--out <file>', 'write to a file instead of stdout')
  .action((id: string, options) => datanetExport({ ...options, id }, out));
datanet
  .command('verify')
  .description("prove a row of an export is in a committed version, against the chain's root")
  .argument('<id>')
  .addOption(nodeUrl())
  .requiredOption('--version <n>', 'the version the export is of')
  .requiredOption('--export <file>', 'the JSONL export')
  .requiredOption('--line <n>', 'the row to check (1-based line number)')
  .option('--rpc-url <url>', "the chain to check against (default: the node's)")
  .action((id: string, options) => datanetVerify({ ...options, id }, out));

signerOptions(
  program
    .command('train')
    .description(
      'train a LoRA adapter on datanet versions (model factory) and follow it; Ctrl-C stops following, not the job',
    ),
)
  .option(
    '--base <model>',
    'a base model of the node, by name (`openledger models list`; default: the built-in openledger-base-1m)',
  )
  .requiredOption(
    '--datanet <id@version>',
    'a datanet version to train on (repeatable; @latest or no version: the latest)',
    (value: string, previous: string[] = []) => [...previous, value],
  )
  .option('--template <name>', 'llama2, chatml or plain (default llama2)')
  .option('--steps <n>', 'optimizer steps (default 100)')
  .option('--rank <r>', 'LoRA rank (default 8)')
  .option('--lr <x>', 'learning rate (default 1e-3)')
  .option('--batch-size <n>', 'examples per step (default 8)')
  .option('--seed <n>', 'seed of the adapter, data order and dropout (default 0)')
  .option('--quantize-base <bits>', 'QLoRA: the frozen base as q8_0 or q4_0 blocks (default none)')
  .action((options) => train(options, out));
registerExportCommand(program, out, signerOptions);
registerModelsCommand(program, out, signerOptions);
registerJobsCommands(program, out, signerOptions);
registerChatCommands(program, out, signerOptions);
registerAskCommand(program, out, signerOptions);
registerAttributionCommands(program, out, signerOptions);
registerEscrowCommands(program, out, signerOptions);
registerBondCommands(program, out, signerOptions);
registerMarketCommands(program, out, signerOptions);
registerAgentCommands(program, out, signerOptions);
registerStakeCommands(program, out, signerOptions);
registerGovernanceCommands(program, out, signerOptions);
registerProposalCommands(program, out, signerOptions);
registerRouterCommand(program, out);

signerOptions(
  program
    .command('publish')
    .description(
      "register a succeeded training job's adapter on-chain as a model (an ERC-721 Model ID) and list it for serving",
    )
    .argument('<jobId>', 'the training job (yours, succeeded)'),
)
  .requiredOption('--price-in <open>', 'OPEN per 1,000 input tokens, e.g. 0.01')
  .requiredOption('--price-out <open>', 'OPEN per 1,000 output tokens, e.g. 0.02')
  .option(
    '--split <shares>',
    'revenue split after the platform fee, in basis points or %: owner=6000,stakers=1000,contributors=3000 (the default)',
  )
  .option('--name <name>', 'a name (default "<base model> LoRA <job id prefix>")')
  .option('--description <text>', 'what the model is for')
  .action((jobId: string, options) => publish({ ...options, jobId }, out));

/** `--json` on every command, documented in each command's help. */
function addJsonOption(command: Command): void {
  if (command.commands.length === 0)
    command.option('--json', 'print one JSON document on stdout (errors as JSON on stderr)');
  for (const sub of command.commands) addJsonOption(sub);
}
for (const command of program.commands) addJsonOption(command);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) process.exit(0); // --help, --version
    if (json) out.error(new OpenLedgerError('BAD_REQUEST', error.message.replace(/^error: /, '')));
    process.exit(2);
  }
  out.error(error);
  process.exit(1);
}
