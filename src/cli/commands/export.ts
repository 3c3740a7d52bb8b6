import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { OpenLedgerError } from '../../errors.ts';
import { EXPORT_FORMATS, isExportFormat } from '../../factory/exports.ts';
import { temporaryPath } from '../../util/fs.ts';
import type { NodeClient } from '../client.ts';
import { RemoteError, type Output } from '../output.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';

interface ExportFlags extends AuthFlags {
  format: string;
  out: string;
  type?: string;
  ropeLayout?: string;
}

interface SavedFile {
  path: string;
  bytes: number;
  sha256: string;
}

/**
 * GETs `apiPath` and streams the answer into `file` atomically (temporary file, fsync, rename),
 * hashing it on the way; an error answer becomes the node's error.
 */
async function download(client: NodeClient, apiPath: string, file: string): Promise<SavedFile> {
  let response: Response;
  try {
    response = await fetch(new URL(apiPath, client.url), { headers: client.authorization() });
  } catch (cause) {
    throw new OpenLedgerError('NODE_UNREACHABLE', `No OpenLedger node answers at ${client.url}.`, {
      cause,
    });
  }
  if (!response.ok || !response.body) {
    const text = await response.text();
    let error: { code: string; message: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code: string; message: string } }).error;
    } catch {
      // not a JSON error body
    }
    throw new RemoteError(
      response.status,
      error ?? { code: 'INTERNAL', message: `HTTP ${response.status}` },
    );
  }
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = temporaryPath(file);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const handle = await open(tmp, 'w', 0o644);
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        await handle.write(chunk);
        bytes += chunk.byteLength;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return { path: file, bytes, sha256: hash.digest('hex') };
}

/** `openledger export <jobId> --format gguf|peft|merged --out <path>`. */
export async function exportAdapter(jobId: string, flags: ExportFlags, out: Output): Promise<void> {
  if (!isExportFormat(flags.format))
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `--format ${flags.format}: expected one of ${EXPORT_FORMATS.join(', ')}.`,
    );
  const type = flags.type?.toLowerCase();
  if (type !== undefined && type !== 'f16' && type !== 'f32')
    throw new OpenLedgerError('BAD_REQUEST', `--type ${flags.type}: expected f16 or f32.`);
  if (flags.ropeLayout !== undefined && flags.ropeLayout !== 'hf' && flags.ropeLayout !== 'gguf')
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `--rope-layout ${flags.ropeLayout}: expected hf or gguf.`,
    );
  const client = await authenticatedClient(flags);
  const query = new URLSearchParams({ format: flags.format });
  if (type !== undefined) query.set('type', type);
  if (flags.ropeLayout !== undefined) query.set('ropeLayout', flags.ropeLayout);
  const endpoint = `/api/factory/jobs/${encodeURIComponent(jobId)}/export?${query}`;
  const target = path.resolve(flags.out);
  out.progress(`exporting job ${jobId} as ${flags.format}`);
  let files: SavedFile[];
  if (flags.format === 'peft') {
    // A folder: the listing names the files, each downloaded on its own.
    const listing = await client.request<{
      files: { name: string; url: string; sha256: string }[];
    }>('GET', endpoint);
    files = [];
    for (const file of listing.files) {
      const saved = await download(client, file.url, path.join(target, file.name));
      if (saved.sha256 !== file.sha256)
        throw new OpenLedgerError(
          'INTERNAL',
          `${file.name} arrived with sha256 ${saved.sha256}; the listing said ${file.sha256}.`,
        );
      files.push(saved);
    }
  } else {
    files = [await download(client, endpoint, target)];
  }
  out.progressDone();
  out.result({ jobId, format: flags.format, out: target, files }, (r) =>
    [
      `exported job ${r.jobId} as ${r.format}`,
      ...r.files.map((f) => `  ${f.path}  ${f.bytes} bytes  sha256 ${f.sha256}`),
    ].join('\n'),
  );
}

/** Registers `export` on the program (signer options as the other wallet commands have them). */
export function registerExportCommand(
  program: Command,
  out: Output,
  signerOptions: (command: Command) => Command,
): void {
  signerOptions(
    program
      .command('export')
      .argument('<jobId>', 'a succeeded training job')
      .description(
        "export a training job's adapter: gguf (llama.cpp LoRA file), peft (Hugging Face PEFT folder) or merged (full GGUF)",
      ),
  )
    .requiredOption('--format <format>', 'gguf, peft or merged')
    .requiredOption('--out <path>', 'the file to write (gguf, merged) or the folder (peft)')
    .option('--type <type>', 'merged: f16 (default) or f32 weights')
    .option(
      '--rope-layout <layout>',
      'peft: hf (default: q/k rows for the Hugging Face model) or gguf',
    )
    .action((jobId: string, options: ExportFlags) => exportAdapter(jobId, options, out));
}
