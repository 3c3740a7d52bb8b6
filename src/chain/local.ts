import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rename, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { OpenLedgerError } from '../errors.ts';

/** anvil's default chain id; the DevFaucet contract refuses to deploy anywhere else. */
export const LOCAL_CHAIN_ID = 31337;

export interface LocalChain {
  rpcUrl: string;
  chainId: number;
  pid: number;
  /** Stops anvil with SIGINT, which makes it write its state file, and waits for it to exit. */
  stop(): Promise<void>;
  /** Resolves when the process exits, for whatever reason. */
  exited: Promise<number | null>;
}

export interface StartLocalChainOptions {
  dataDir: string;
  /** 0 picks a free port. */
  port?: number;
  chainId?: number;
  /** How often anvil also writes its state while running, so a crash loses at most this much. */
  stateIntervalSeconds?: number;
  onLog?: (line: string) => void;
  startTimeoutMs?: number;
}

/** Path of the anvil binary that the `@foundry-rs/anvil` npm package installed for this platform. */
export function anvilBinaryPath(): string {
  const require = createRequire(import.meta.url);
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil');
  } catch (cause) {
    throw new OpenLedgerError(
      'CHAIN_START_FAILED',
      `No anvil binary for ${process.platform}-${process.arch}.`,
      {
        hint: `Reinstall dependencies so that ${pkg} is present, or run against an external chain with --rpc-url.`,
        cause,
      },
    );
  }
}

/**
 * Starts anvil bound to 127.0.0.1 with its state in `<dataDir>/chain/state.json`, loaded at start
 * and written on exit and every `stateIntervalSeconds`. anvil's HOME points into the data dir so it
 * leaves nothing in the user's home.
 */
export async function startLocalChain(options: StartLocalChainOptions): Promise<LocalChain> {
  const chainDir = path.join(options.dataDir, 'chain');
  const home = path.join(chainDir, 'home');
  await mkdir(home, { recursive: true });
  const stateFile = path.join(chainDir, 'state.json');
  await quarantineEmptyState(stateFile);
  const chainId = options.chainId ?? LOCAL_CHAIN_ID;
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(options.port ?? 0),
    '--chain-id',
    String(chainId),
    '--state',
    stateFile,
    '--state-interval',
    String(options.stateIntervalSeconds ?? 5),
  ];
  const child = spawn(anvilBinaryPath(), args, {
    env: { ...process.env, HOME: home, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const output: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(`anvil did not start within ${options.startTimeoutMs ?? 20_000} ms`),
      options.startTimeoutMs ?? 20_000,
    );
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(
        new OpenLedgerError('CHAIN_START_FAILED', `The local chain failed to start: ${why}.`, {
          details: { output: output.slice(-20) },
          hint: 'Check that the chain port is free (--chain-port) and that the data dir is writable.',
        }),
      );
    };
    const onLine = (line: string) => {
      output.push(line);
      options.onLog?.(line);
      const match = /Listening on [\d.]+:(\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    lines(child.stdout, onLine);
    lines(child.stderr, onLine);
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code) => fail(`anvil exited with code ${code}`));
  });
  return {
    rpcUrl: `http://127.0.0.1:${port}`,
    chainId,
    pid: child.pid ?? -1,
    exited,
    stop: () => stopChild(child, exited),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  const timeout = new Promise<'timeout'>((resolve) =>
    setTimeout(() => resolve('timeout'), 10_000).unref(),
  );
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** A zero-byte state file (a crash mid-write) would stop anvil from starting; set it aside. */
async function quarantineEmptyState(stateFile: string): Promise<void> {
  const info = await stat(stateFile).catch(() => undefined);
  if (info && info.size === 0) await rename(stateFile, `${stateFile}.empty-${Date.now()}`);
}

function lines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, newline).trimEnd());
      buffered = buffered.slice(newline + 1);
    }
  });
}
