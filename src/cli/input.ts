import { readFile } from 'node:fs/promises';
import { OpenLedgerError } from '../errors.ts';

/** A JSON file a command takes (an agent or proposal specification), with errors that say which. */
export async function readJsonFile(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((cause: unknown) => {
    throw new OpenLedgerError('BAD_REQUEST', `Cannot read ${file}: ${String(cause)}`);
  });
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new OpenLedgerError('VALIDATION_FAILED', `${file} is not JSON: ${String(cause)}`);
  }
}
