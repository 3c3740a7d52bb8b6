import path from 'node:path';
import { OpenLedgerError } from './errors.ts';
import { BUILTIN_MODELS_DIR } from './factory/builtin/paths.ts';

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
  /**
   * Folders of base models (GGUF) the node offers: `<data-dir>/models`, then
   * OPENLEDGER_MODELS_DIR, then the package's built-in model folder.
   */
  modelsDirs: string[];
  /**
   * The BERT-family GGUF that embeds datanet chunks for RAG (docs/rag.md); absent: the built-in
   * static embedder, built at install.
   */
  embeddingModel: string | undefined;
  /** OpenLoRA serving (docs/serving.md). */
  serving: ServingConfig;
}

export interface ServingConfig {
  /** Base models to load at start, by catalogue name or GGUF path; the first is the default. */
  baseModels: string[];
  /** Bytes of LoRA adapters one loaded base model may hold before it is recycled. */
  adapterBudgetBytes: number;
  /** Requests generating at once (one llama.cpp sequence each). */
  maxConcurrent: number;
  /** Requests waiting for a slot; beyond it callers get 429 with Retry-After. */
  maxQueue: number;
  /** Cap on max_tokens (and its default). */
  maxTokens: number;
  /** Generation stops (finish_reason "length") after this long. */
  maxRequestSeconds: number;
  /** Tokens per sequence, prompt and completion together (capped by the model's own). */
  contextSize: number;
  /** llama.cpp threads; default: every core. */
  threads: number | undefined;
  /**
   * Contexts pooled per base model (one per adapter set in use; idle ones closed least recently
   * used first). Each holds its KV cache and llama.cpp's compute and logits buffers, which scale
   * with the vocabulary: with large vocabularies they, not the adapters, dominate memory.
   */
  maxContexts: number;
  /** Wallets allowed to load and unload adapters, besides the node's own signer. */
  operators: string[];
  /** OpenAI-compatible LoRA servers that generate for this node; absent: llama.cpp here. */
  remote?: RemoteConfig | undefined;
}

/** `up --remote-backend …`: forward generation to vLLM, an OpenLedger node, … (docs/serving.md). */
export interface RemoteConfig {
  /** Base URLs of the servers' OpenAI API (`…/v1`). */
  backends: string[];
  /** Bearer key sent to every backend. */
  apiKey: string | undefined;
  /** The model name the backends serve the base under; default: the local base's name. */
  model: string | undefined;
  /**
   * Where the node writes adapters for the backends to load, and that folder as the backends
   * see it (the same path when they share a file system); absent: adapters cannot be served.
   */
  adapterDir: { local: string; remote: string } | undefined;
  /** What the backends load: PEFT folders (vLLM) or GGUF files (llama.cpp, OpenLedger). */
  adapterFormat: RemoteAdapterFormat;
}

export const REMOTE_ADAPTER_FORMATS = ['peft', 'gguf'] as const;
export type RemoteAdapterFormat = (typeof REMOTE_ADAPTER_FORMATS)[number];

export const SERVING_DEFAULTS = {
  adapterBudgetBytes: 256 * 1024 * 1024,
  maxConcurrent: 4,
  maxQueue: 64,
  maxTokens: 512,
  maxRequestSeconds: 120,
  contextSize: 2048,
  maxContexts: 8,
} as const;

export const DEFAULT_PORT = 7070;
export const DEFAULT_CHAIN_PORT = 8545;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = './.openledger';

export type ConfigFlags = Partial<
  Record<
    | 'host'
    | 'port'
    | 'dataDir'
    | 'rpcUrl'
    | 'chainPort'
    | 'databaseUrl'
    | 'logLevel'
    | 'embeddingModel',
    string
  >
> &
  ServingFlags;

/** `up`'s serving options, as commander hands them over. */
export interface ServingFlags {
  baseModel?: string[];
  adapterBudget?: string;
  maxConcurrent?: string;
  maxQueue?: string;
  maxTokens?: string;
  maxRequestSeconds?: string;
  contextSize?: string;
  threads?: string;
  maxContexts?: string;
  operator?: string[];
  remoteBackend?: string[];
  remoteApiKey?: string;
  remoteModel?: string;
  remoteAdapterDir?: string;
  remoteAdapterFormat?: string;
}

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
  baseModels: 'OPENLEDGER_BASE_MODELS',
  adapterBudget: 'OPENLEDGER_ADAPTER_BUDGET',
  operators: 'OPENLEDGER_OPERATORS',
  remoteBackends: 'OPENLEDGER_REMOTE_BACKENDS',
  remoteApiKey: 'OPENLEDGER_REMOTE_API_KEY',
  remoteModel: 'OPENLEDGER_REMOTE_MODEL',
  remoteAdapterDir: 'OPENLEDGER_REMOTE_ADAPTER_DIR',
  remoteAdapterFormat: 'OPENLEDGER_REMOTE_ADAPTER_FORMAT',
  embeddingModel: 'OPENLEDGER_EMBEDDING_MODEL',
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
    modelsDirs: [
      path.join(dataDir, 'models'),
      ...extraModels.map((d) => path.resolve(d)),
      BUILTIN_MODELS_DIR,
    ],
    trustProxy: ['1', 'true', 'yes'].includes((env[CONFIG_ENV.trustProxy] ?? '').toLowerCase()),
    embeddingModel: pick('embeddingModel'),
    serving: resolveServing(flags, env),
  };
}

function resolveServing(flags: ServingFlags, env: NodeJS.ProcessEnv): ServingConfig {
  const list = (value: string | undefined) =>
    (value ?? '')
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
  const int = (value: string | undefined, name: string, fallback: number, min = 1) => {
    if (value === undefined || value === '') return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new OpenLedgerError(
        'CONFIG_INVALID',
        `${name} must be an integer ≥ ${min}, got "${value}".`,
      );
    }
    return n;
  };
  const budget = flags.adapterBudget ?? env[CONFIG_ENV.adapterBudget];
  const operators = flags.operator?.length ? flags.operator : list(env[CONFIG_ENV.operators]);
  for (const operator of operators) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(operator)) {
      throw new OpenLedgerError('CONFIG_INVALID', `--operator "${operator}" is not an address.`);
    }
  }
  return {
    baseModels: flags.baseModel?.length ? flags.baseModel : list(env[CONFIG_ENV.baseModels]),
    adapterBudgetBytes:
      budget === undefined || budget === ''
        ? SERVING_DEFAULTS.adapterBudgetBytes
        : parseBytes(budget, '--adapter-budget'),
    maxConcurrent: int(flags.maxConcurrent, '--max-concurrent', SERVING_DEFAULTS.maxConcurrent),
    maxQueue: int(flags.maxQueue, '--max-queue', SERVING_DEFAULTS.maxQueue, 0),
    maxTokens: int(flags.maxTokens, '--max-tokens', SERVING_DEFAULTS.maxTokens),
    maxRequestSeconds: int(
      flags.maxRequestSeconds,
      '--max-request-seconds',
      SERVING_DEFAULTS.maxRequestSeconds,
    ),
    contextSize: int(flags.contextSize, '--context-size', SERVING_DEFAULTS.contextSize, 16),
    threads: flags.threads === undefined ? undefined : int(flags.threads, '--threads', 1),
    maxContexts: int(flags.maxContexts, '--max-contexts', SERVING_DEFAULTS.maxContexts),
    operators: operators.map((o) => o.toLowerCase()),
    remote: resolveRemote(flags, env, list),
  };
}

function resolveRemote(
  flags: ServingFlags,
  env: NodeJS.ProcessEnv,
  list: (value: string | undefined) => string[],
): RemoteConfig | undefined {
  const pick = (flag: string | undefined, name: keyof typeof CONFIG_ENV) => {
    const value = flag ?? env[CONFIG_ENV[name]];
    return value === undefined || value === '' ? undefined : value;
  };
  const backends = flags.remoteBackend?.length
    ? flags.remoteBackend
    : list(env[CONFIG_ENV.remoteBackends]);
  const apiKey = pick(flags.remoteApiKey, 'remoteApiKey');
  const model = pick(flags.remoteModel, 'remoteModel');
  const dir = pick(flags.remoteAdapterDir, 'remoteAdapterDir');
  const format = pick(flags.remoteAdapterFormat, 'remoteAdapterFormat') ?? 'peft';
  if (backends.length === 0) {
    const stray = [
      [apiKey, '--remote-api-key'],
      [model, '--remote-model'],
      [dir, '--remote-adapter-dir'],
      [flags.remoteAdapterFormat ?? env[CONFIG_ENV.remoteAdapterFormat], '--remote-adapter-format'],
    ].find(([value]) => value !== undefined && value !== '');
    if (stray) {
      throw new OpenLedgerError('CONFIG_INVALID', `${stray[1]} needs --remote-backend.`);
    }
    return undefined;
  }
  const urls = backends.map((backend) => {
    const url = parseUrl(backend, '--remote-backend');
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OpenLedgerError(
        'CONFIG_INVALID',
        `--remote-backend must be an http(s) URL, got "${backend}".`,
      );
    }
    // OpenAI clients take the base URL with /v1; accept the server's root too.
    const base = url.href.replace(/\/+$/, '');
    return /\/v1$/.test(url.pathname.replace(/\/+$/, '')) ? base : `${base}/v1`;
  });
  if (new Set(urls).size !== urls.length) {
    throw new OpenLedgerError('CONFIG_INVALID', '--remote-backend names the same server twice.');
  }
  if (!(REMOTE_ADAPTER_FORMATS as readonly string[]).includes(format)) {
    throw new OpenLedgerError(
      'CONFIG_INVALID',
      `--remote-adapter-format must be one of ${REMOTE_ADAPTER_FORMATS.join(', ')}, got "${format}".`,
    );
  }
  let adapterDir: RemoteConfig['adapterDir'];
  if (dir !== undefined) {
    // "<local>=<remote>": the remote path may differ (a container's mount point).
    const at = dir.indexOf('=');
    const local = at < 0 ? dir : dir.slice(0, at);
    const remote = at < 0 ? dir : dir.slice(at + 1);
    if (local === '' || remote === '') {
      throw new OpenLedgerError(
        'CONFIG_INVALID',
        `--remote-adapter-dir must be <dir> or <local dir>=<dir as the backends see it>, got "${dir}".`,
      );
    }
    adapterDir = {
      local: path.resolve(local),
      remote: at < 0 ? path.resolve(remote) : remote.replace(/\/+$/, '') || '/',
    };
  }
  return {
    backends: urls,
    apiKey,
    model,
    adapterDir,
    adapterFormat: format as RemoteAdapterFormat,
  };
}

/** "268435456", "256MiB", "1.5GB", "512k": bytes (k/M/G are powers of 1024, as RAM is sold). */
export function parseBytes(value: string, name: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(value);
  if (!match) {
    throw new OpenLedgerError(
      'CONFIG_INVALID',
      `${name} must be a size like 256MiB, got "${value}".`,
    );
  }
  const unit = (match[2] ?? 'b').toLowerCase()[0]!;
  const scale = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit]!;
  return Math.floor(Number(match[1]) * scale);
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
