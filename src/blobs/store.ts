import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OpenLedgerError } from '../errors.ts';
import { temporaryPath, writeFileAtomic } from '../util/fs.ts';

/** A blob is named by the sha256 of its bytes, as 64 lower-case hex digits. */
export type BlobId = string;

export interface BlobInfo {
  id: BlobId;
  size: number;
}

const BLOB_ID = /^[0-9a-f]{64}$/;

export function isBlobId(value: string): value is BlobId {
  return BLOB_ID.test(value);
}

export function blobIdOf(data: Uint8Array | string): BlobId {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Content-addressed storage on the local disk. Writes are atomic (temporary file, fsync, rename),
 * so a crash never leaves a partial blob under a real name; reads re-hash the bytes and refuse
 * ones that no longer match their name.
 */
export class BlobStore {
  constructor(readonly root: string) {}

  pathOf(id: BlobId): string {
    assertBlobId(id);
    return path.join(this.root, 'sha256', id.slice(0, 2), id.slice(2, 4), id);
  }

  async put(data: Uint8Array | string): Promise<BlobInfo> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const id = blobIdOf(bytes);
    const file = this.pathOf(id);
    if (!(await exists(file))) await writeFileAtomic(file, bytes);
    return { id, size: bytes.byteLength };
  }

  /** Streams into the store, hashing on the way; `maxBytes` aborts an oversized upload cleanly. */
  async putStream(source: Readable, options: { maxBytes?: number } = {}): Promise<BlobInfo> {
    const incoming = path.join(this.root, 'incoming');
    await mkdir(incoming, { recursive: true });
    const tmp = temporaryPath(path.join(incoming, 'upload'));
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.byteLength;
        if (options.maxBytes !== undefined && size > options.maxBytes) {
          done(
            new OpenLedgerError(
              'PAYLOAD_TOO_LARGE',
              `The upload is larger than ${options.maxBytes} bytes.`,
              {
                details: { maxBytes: options.maxBytes },
              },
            ),
          );
          return;
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      const sink = createWriteStream(tmp, { flags: 'wx' });
      await pipeline(source, meter, sink);
      const handle = await open(tmp, 'r');
      await handle.sync().finally(() => handle.close());
      const id = hash.digest('hex');
      const file = this.pathOf(id);
      if (await exists(file)) {
        await rm(tmp, { force: true });
      } else {
        await mkdir(path.dirname(file), { recursive: true });
        await rename(tmp, file);
      }
      return { id, size };
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  async has(id: BlobId): Promise<boolean> {
    return exists(this.pathOf(id));
  }

  async stat(id: BlobId): Promise<BlobInfo> {
    const info = await stat(this.pathOf(id)).catch(() => undefined);
    if (!info) throw notFound(id);
    return { id, size: info.size };
  }

  /** Reads a blob and checks that its bytes still hash to its name. */
  async get(id: BlobId): Promise<Buffer> {
    const bytes = await readFile(this.pathOf(id)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw notFound(id);
      throw error;
    });
    if (blobIdOf(bytes) !== id) {
      throw new OpenLedgerError(
        'BLOB_CORRUPT',
        `Blob ${id} is corrupt: its content no longer matches its hash.`,
        {
          hint: 'Restore the file from a backup or re-upload the original content.',
        },
      );
    }
    return bytes;
  }
}

function assertBlobId(id: string): asserts id is BlobId {
  if (!isBlobId(id)) {
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `"${id}" is not a blob id (64 lower-case hex digits of sha256).`,
    );
  }
}

function notFound(id: BlobId): OpenLedgerError {
  return new OpenLedgerError('BLOB_NOT_FOUND', `No blob ${id} in this store.`);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
