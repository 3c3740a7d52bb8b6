import ora from 'ora';
import { OpenLedgerError } from '../errors.ts';

/**
 * How a command talks: with `--json`, exactly one JSON document on stdout (errors as JSON on
 * stderr); otherwise readable text. Progress always goes to stderr, as a spinner on a terminal
 * and as plain lines elsewhere, so stdout stays clean for scripts.
 */
export interface Output {
  json: boolean;
  result<T>(value: T, human: (value: T) => string): void;
  progress(text: string): void;
  /** Refreshes the running step's text on a terminal (a percentage, say); silent elsewhere. */
  progressUpdate(text: string): void;
  progressDone(text?: string): void;
  error(error: unknown): void;
}

export function createOutput(json: boolean): Output {
  const interactive = !json && process.stderr.isTTY === true;
  const spinner = interactive ? ora({ stream: process.stderr }) : undefined;
  return {
    json,
    result(value, human) {
      spinner?.stop();
      process.stdout.write(
        json ? `${JSON.stringify(value, bigintReplacer)}\n` : `${human(value)}\n`,
      );
    },
    progress(text) {
      if (spinner) spinner.start(text);
      else if (!json) process.stderr.write(`… ${text}\n`);
    },
    progressUpdate(text) {
      if (spinner) spinner.text = text;
    },
    progressDone(text) {
      if (spinner) spinner.succeed(text);
    },
    error(error) {
      spinner?.stop();
      const body = errorBody(error);
      if (json) {
        process.stderr.write(`${JSON.stringify(body)}\n`);
      } else {
        process.stderr.write(`error [${body.error.code}]: ${body.error.message}\n`);
        if (body.error.hint) process.stderr.write(`hint: ${body.error.hint}\n`);
      }
    },
  };
}

function errorBody(error: unknown): {
  error: { code: string; message: string; hint?: string; details?: unknown };
} {
  if (error instanceof OpenLedgerError) return error.toJSON();
  if (error instanceof RemoteError) return { error: error.body };
  const message = error instanceof Error ? error.message : String(error);
  return { error: { code: 'INTERNAL', message } };
}

/** An error answer from a node's API, carried to the CLI's output unchanged. */
export class RemoteError extends Error {
  constructor(
    readonly status: number,
    readonly body: { code: string; message: string; hint?: string; details?: unknown },
  ) {
    super(body.message);
  }
}

export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * Serves until SIGINT or SIGTERM, then closes gracefully (`doing` says what closing waits for);
 * a second signal exits at once.
 */
export function runUntilSignal(
  out: Output,
  doing: string,
  close: () => Promise<void>,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`second ${signal}: exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      if (!out.json) process.stderr.write(`${signal}: shutting down (${doing})…\n`);
      close().then(resolve, (error: unknown) => {
        out.error(error);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
