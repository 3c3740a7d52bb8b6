import { Command, CommanderError, Option } from 'commander';
import {
  CONFIG_ENV,
  DEFAULT_CHAIN_PORT,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_PORT,
} from '../config.ts';
import { OpenLedgerError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { DEFAULT_NODE_URL } from './client.ts';
import { deploy } from './commands/deploy.ts';
import { keysCreate, keysList, keysRevoke } from './commands/keys.ts';
import { status } from './commands/status.ts';
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
  .option('--json', 'print one JSON document on stdout (errors as JSON on stderr)')
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
  .action((options: Record<string, string>) => up(options, out));

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
