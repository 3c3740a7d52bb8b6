import path from 'node:path';
import { OpenLedgerError } from './errors.ts';

/** Everything `openledger up` needs, resolved from flags, then `OPENLEDGER_*` variables, then defaults. */
export interface NodeConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  dataDir: string;
  /** An external chain; when absent the node runs its own local chain. */
  rpcUrl: string | undefined;
  /** Port of the local chain (0 picks a free one); ignored with `rpcUrl`. */
  chainPort: number;
  /** PostgreSQL server; when absent the node uses embedded PGlite in the data dir. */
  databaseUrl: string | undefined;
  /** Deployer key for an external chain whose contracts are not yet deployed. */
  privateKey: `0x${string}` | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Where the built web app lives; absent when the node serves the API only. */
  webDir: string | undefined;
  /** Behind a reverse proxy: honour X-Forwarded-Proto/-For (secure cookies, client addresses). */
  trustProxy: boolean;
  /** Folders of base models (GGUF) the node offers: `<data-dir>/models`, then OPENLEDGER_MODELS_DIR. */
  modelsDirs: string[];
}

export const DEFAULT_PORT = 7070;
export const DEFAULT_CHAIN_PORT = 8545;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = './.openledger';

export type ConfigFlags = Partial<
  Record<'host' | 'port' | 'dataDir' | 'rpcUrl' | 'chainPort' | 'databaseUrl' | 'logLevel', string>
>;

/** The environment variables `up` reads, in the order of the configuration reference. */
export const CONFIG_ENV = {
  host: 'OPENLEDGER_HOST',
  port: 'OPENLEDGER_PORT',
  dataDir: 'OPENLEDGER_DATA_DIR',
  rpcUrl: 'OPENLEDGER_RPC_URL',
  chainPort: 'OPENLEDGER_CHAIN_PORT',
  databaseUrl: 'DATABASE_URL',
  privateKey: 'OPENLEDGER_PRIVATE_KEY',
  logLevel: 'OPENLEDGER_LOG_LEVEL',
  trustProxy: 'OPENLEDGER_TRUST_PROXY',
  modelsDir: 'OPENLEDGER_MODELS_DIR',
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function resolveConfig(
  flags: ConfigFlags,
  env: NodeJS.ProcessEnv = process.env,
): NodeConfig {
  const pick = (key: keyof typeof CONFIG_ENV & keyof ConfigFlags): string | undefined => {
    const value = flags[key] ?? env[CONFIG_ENV[key]];
    return value === undefined || value === '' ? undefined : value;
  };
  const logLevel = pick('logLevel') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new OpenLedgerError('CONFIG_INVALID', `Unknown log level "${logLevel}".`, {
      hint: `Use one of: ${LOG_LEVELS.join(', ')}.`,
    });
  }
  const privateKey = env[CONFIG_ENV.privateKey];
  if (privateKey !== undefined && privateKey !== '' && !/^0x[0-9a-fA-F]{64}$/.test(privateKey)) {
    throw new OpenLedgerError(
      'CONFIG_INVALID',
      `${CONFIG_ENV.privateKey} is not a 32-byte hex private key.`,
      {
        hint: 'Expected 0x followed by 64 hex digits.',
      },
    );
  }
  const rpcUrl = pick('rpcUrl');
  if (rpcUrl !== undefined) parseUrl(rpcUrl, '--rpc-url');
  const databaseUrl = pick('databaseUrl');
  if (databaseUrl !== undefined) parseUrl(databaseUrl, 'DATABASE_URL');
  const dataDir = path.resolve(pick('dataDir') ?? DEFAULT_DATA_DIR);
  const extraModels = (env[CONFIG_ENV.modelsDir] ?? '').split(path.delimiter).filter(Boolean);
  return {
    host: pick('host') ?? DEFAULT_HOST,
    port: parsePort(pick('port') ?? String(DEFAULT_PORT), '--port'),
    dataDir,
    rpcUrl,
    chainPort: parsePort(pick('chainPort') ?? String(DEFAULT_CHAIN_PORT), '--chain-port'),
    databaseUrl,
    privateKey: privateKey ? (privateKey as `0x${string}`) : undefined,
    logLevel: logLevel as NodeConfig['logLevel'],
    webDir: undefined,
    modelsDirs: [path.join(dataDir, 'models'), ...extraModels.map((d) => path.resolve(d))],
    trustProxy: ['1', 'true', 'yes'].includes((env[CONFIG_ENV.trustProxy] ?? '').toLowerCase()),
  };
}

export function parsePort(value: string, name: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new OpenLedgerError(
      'CONFIG_INVALID',
      `${name} must be a port number from 0 to 65535, got "${value}".`,
    );
  }
  return port;
}

function parseUrl(value: string, name: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new OpenLedgerError('CONFIG_INVALID', `${name} is not a valid URL: "${value}".`);
  }
}
