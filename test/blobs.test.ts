import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BlobStore, blobIdOf } from '../src/blobs/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';

describe('blob store', () => {
  let root: string;
  let store: BlobStore;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'openledger-blobs-'));
    store = new BlobStore(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('names content by its sha256 and reads it back', async () => {
    const { id, size } = await store.put('hello world');
    assert.equal(id, 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
    assert.equal(size, 11);
    assert.equal((await store.get(id)).toString(), 'hello world');
    assert.equal(await store.has(id), true);
    assert.deepEqual(await store.stat(id), { id, size: 11 });
  });

  it('stores the same content once, whichever way it arrives', async () => {
    const bytes = Buffer.alloc(300_000, 7);
    const a = await store.put(bytes);
    const b = await store.putStream(
      Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]),
    );
    assert.deepEqual(a, b);
    assert.equal(a.id, blobIdOf(bytes));
  });

  it('refuses a blob whose bytes no longer match its name', async () => {
    const { id } = await store.put('original');
    await writeFile(store.pathOf(id), 'tampered');
    await assert.rejects(store.get(id), (error: OpenLedgerError) => error.code === 'BLOB_CORRUPT');
  });

  it('answers BLOB_NOT_FOUND for a missing blob and BAD_REQUEST for a malformed id', async () => {
    await assert.rejects(
      store.get('0'.repeat(64)),
      (error: OpenLedgerError) => error.code === 'BLOB_NOT_FOUND',
    );
    await assert.rejects(
      store.get('../../etc/passwd'),
      (error: OpenLedgerError) => error.code === 'BAD_REQUEST',
    );
  });

  it('leaves nothing behind when an upload is too large or its source fails', async () => {
    await assert.rejects(
      store.putStream(Readable.from([Buffer.alloc(2000)]), { maxBytes: 1000 }),
      (error: OpenLedgerError) => error.code === 'PAYLOAD_TOO_LARGE',
    );
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(10));
        this.destroy(new Error('connection reset'));
      },
    });
    await assert.rejects(store.putStream(failing), /connection reset/);
    assert.deepEqual(await readdir(path.join(root, 'incoming')), []);
  });
});
