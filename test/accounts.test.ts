import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { decryptKeystore, devAccount, resolveSigner } from '../src/chain/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';

// The PBKDF2 test vector of the Web3 Secret Storage definition (keystore v3).
const VECTOR = {
  crypto: {
    cipher: 'aes-128-ctr',
    cipherparams: { iv: '6087dab2f9fdbbfaddc31a909735c1e6' },
    ciphertext: '5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46',
    kdf: 'pbkdf2',
    kdfparams: {
      c: 262144,
      dklen: 32,
      prf: 'hmac-sha256',
      salt: 'ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd',
    },
    mac: '517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2',
  },
  id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
  version: 3,
};
const SECRET = '0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d';

describe('accounts and signers', () => {
  it('derives anvil dev accounts from the public test mnemonic', () => {
    assert.equal(devAccount(0).address, '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
    assert.equal(devAccount(1).address, '0x70997970C51812dc3A010C7d01b50e0d17dc79C8');
    assert.throws(
      () => devAccount(10),
      (error: OpenLedgerError) => error.code === 'BAD_REQUEST',
    );
  });

  it('decrypts the keystore v3 test vector, and refuses a wrong password', async () => {
    assert.equal(await decryptKeystore(JSON.stringify(VECTOR), 'testpassword'), SECRET);
    await assert.rejects(
      decryptKeystore(JSON.stringify(VECTOR), 'wrong'),
      (error: OpenLedgerError) =>
        error.code === 'KEYSTORE_INVALID' && /password/.test(error.message),
    );
    await assert.rejects(
      decryptKeystore('{not json', 'x'),
      (error: OpenLedgerError) => error.code === 'KEYSTORE_INVALID',
    );
  });

  it('picks the signer from a private key, a keystore file or a dev account, in that order', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'openledger-keystore-'));
    try {
      const file = path.join(dir, 'key.json');
      await writeFile(file, JSON.stringify(VECTOR));
      const fromKeystore = await resolveSigner({
        keystore: file,
        keystorePassword: 'testpassword',
        local: false,
      });
      assert.equal(
        fromKeystore.address.toLowerCase(),
        '0x008aeeda4d805471df9b2a5b0f38a0c3bcba786b',
      );
      const fromKey = await resolveSigner({ privateKey: SECRET, account: 1, local: true });
      assert.equal(fromKey.address, fromKeystore.address);
      assert.equal(
        (await resolveSigner({ account: 1, local: true })).address,
        devAccount(1).address,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses dev accounts off the local chain and asks for a signer when none is given', async () => {
    await assert.rejects(
      resolveSigner({ account: 0, local: false }),
      (error: OpenLedgerError) => error.code === 'SIGNER_REQUIRED',
    );
    await assert.rejects(
      resolveSigner({ local: true }),
      (error: OpenLedgerError) => error.code === 'SIGNER_REQUIRED',
    );
    await assert.rejects(
      resolveSigner({ privateKey: '0x12', local: true }),
      (error: OpenLedgerError) => error.code === 'BAD_REQUEST',
    );
  });
});
