import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * The script a test spawns as `openledger`: the compiled `dist/cli/main.js` when it is newer
 * than every source file, else `bin/openledger.js` (which runs the sources through tsx).
 * Starting from dist/ saves ~2 s of TypeScript compilation per spawn — most of a CLI test's time —
 * and CI always has a fresh dist/ (`npm install` builds it); after an edit without a rebuild the
 * sources run, so a test can never exercise stale code.
 */
export const CLI_ENTRY = pickEntry();

function pickEntry(): string {
  const compiled = path.join(ROOT, 'dist/cli/main.js');
  const built = statSync(compiled, { throwIfNoEntry: false })?.mtimeMs;
  if (built !== undefined && newestSource(path.join(ROOT, 'src')) <= built) return compiled;
  return path.join(ROOT, 'bin/openledger.js');
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

export interface CliRun {
  code: number | null;
  /** The JSON document printed: the result on stdout, or the error on stderr. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read any field
  json: any;
  stdout: string;
  stderr: string;
}

/**
 * Runs `openledger <args> --json --url <url>` as a user would, with no API key or private key
 * from the environment (the args name the signer), and parses what it printed.
 */
export function runCli(url: string, args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args, '--json', '--url', url], {
      env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      let json: unknown;
      try {
        json = JSON.parse((code === 0 ? stdout : stderr).trim().split('\n').pop() ?? '');
      } catch {
        json = undefined;
      }
      resolve({ code, json, stdout, stderr });
    });
  });
}
