import { readFile } from 'node:fs/promises';
import { ctr } from '@noble/ciphers/aes';
import { pbkdf2 } from '@noble/hashes/pbkdf2';
import { scrypt } from '@noble/hashes/scrypt';
import { sha256 } from '@noble/hashes/sha2';
import { keccak_256 } from '@noble/hashes/sha3';
import { bytesToHex, hexToBytes, type Hex, type LocalAccount } from 'viem';
import { mnemonicToAccount, privateKeyToAccount } from 'viem/accounts';
import { OpenLedgerError } from '../errors.ts';

/** The mnemonic of anvil's funded development accounts. Public: for the local chain only. */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk';
export const DEV_ACCOUNT_COUNT = 10;

export function devAccount(index: number): LocalAccount {
  if (!Number.isInteger(index) || index < 0 || index >= DEV_ACCOUNT_COUNT) {
    throw new OpenLedgerError('BAD_REQUEST', `There is no dev account ${index}.`, {
      hint: `Dev accounts are numbered 0 to ${DEV_ACCOUNT_COUNT - 1}.`,
    });
  }
  return mnemonicToAccount(DEV_MNEMONIC, { addressIndex: index });
}

export interface SignerOptions {
  /** Index of an anvil dev account (local chain only). */
  account?: number | undefined;
  privateKey?: string | undefined;
  keystore?: string | undefined;
  keystorePassword?: string | undefined;
  /** Whether the chain is the local development chain, where dev accounts are allowed. */
  local: boolean;
}

/** Picks the signer from, in order: a private key, an encrypted keystore, a dev account. */
export async function resolveSigner(options: SignerOptions): Promise<LocalAccount> {
  if (options.privateKey) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(options.privateKey)) {
      throw new OpenLedgerError('BAD_REQUEST', 'The private key is not 32 bytes of hex.', {
        hint: 'Expected 0x followed by 64 hex digits.',
      });
    }
    return privateKeyToAccount(options.privateKey as Hex);
  }
  if (options.keystore) {
    if (options.keystorePassword === undefined) {
      throw new OpenLedgerError('SIGNER_REQUIRED', 'The keystore needs a password.', {
        hint: 'Set OPENLEDGER_KEYSTORE_PASSWORD.',
      });
    }
    const json = await readFile(options.keystore, 'utf8').catch((cause: unknown) => {
      throw new OpenLedgerError('KEYSTORE_INVALID', `Cannot read the keystore ${options.keystore}.`, { cause });
    });
    return privateKeyToAccount(decryptKeystore(json, options.keystorePassword));
  }
  if (options.account !== undefined) {
    if (!options.local) {
      throw new OpenLedgerError('SIGNER_REQUIRED', 'Dev accounts exist only on the local chain.', {
        hint: 'On an external chain set OPENLEDGER_PRIVATE_KEY or pass --keystore.',
      });
    }
    return devAccount(options.account);
  }
  throw new OpenLedgerError('SIGNER_REQUIRED', 'This command needs a wallet to sign with.', {
    hint: options.local
      ? 'Pass --account N to act as anvil dev account N, or set OPENLEDGER_PRIVATE_KEY.'
      : 'Set OPENLEDGER_PRIVATE_KEY or pass --keystore FILE (password in OPENLEDGER_KEYSTORE_PASSWORD).',
  });
}

interface KeystoreV3 {
  version: number;
  crypto?: KeystoreCrypto;
  Crypto?: KeystoreCrypto;
}
interface KeystoreCrypto {
  cipher: string;
  ciphertext: string;
  cipherparams: { iv: string };
  kdf: 'scrypt' | 'pbkdf2';
  kdfparams: { dklen: number; salt: string; n?: number; r?: number; p?: number; c?: number; prf?: string };
  mac: string;
}

/**
 * Decrypts a Web3 Secret Storage (keystore v3) file, as written by geth, Foundry's `cast wallet`
 * and MetaMask exports. Written here on @noble primitives (already under viem) rather than pulling
 * in ethers for one function.
 */
export function decryptKeystore(json: string, password: string): Hex {
  let keystore: KeystoreV3;
  try {
    keystore = JSON.parse(json) as KeystoreV3;
  } catch (cause) {
    throw new OpenLedgerError('KEYSTORE_INVALID', 'The keystore is not JSON.', { cause });
  }
  const c = keystore.crypto ?? keystore.Crypto;
  if (keystore.version !== 3 || !c || c.cipher !== 'aes-128-ctr') {
    throw new OpenLedgerError('KEYSTORE_INVALID', 'Only version-3 keystores with aes-128-ctr are supported.');
  }
  const salt = hexToBytes(`0x${c.kdfparams.salt}`);
  const passwordBytes = new TextEncoder().encode(password);
  let derived: Uint8Array;
  if (c.kdf === 'scrypt') {
    const { n, r, p, dklen } = c.kdfparams;
    if (!n || !r || !p) throw new OpenLedgerError('KEYSTORE_INVALID', 'The keystore lacks scrypt parameters.');
    derived = scrypt(passwordBytes, salt, { N: n, r, p, dkLen: dklen, maxmem: 2 ** 31 });
  } else if (c.kdf === 'pbkdf2' && c.kdfparams.prf === 'hmac-sha256' && c.kdfparams.c) {
    derived = pbkdf2(sha256, passwordBytes, salt, { c: c.kdfparams.c, dkLen: c.kdfparams.dklen });
  } else {
    throw new OpenLedgerError('KEYSTORE_INVALID', `Unsupported key derivation "${c.kdf}".`);
  }
  const ciphertext = hexToBytes(`0x${c.ciphertext}`);
  const mac = keccak_256(new Uint8Array([...derived.slice(16, 32), ...ciphertext]));
  if (bytesToHex(mac) !== `0x${c.mac.toLowerCase()}`) {
    throw new OpenLedgerError('KEYSTORE_INVALID', 'Wrong keystore password (the MAC does not match).');
  }
  const key = ctr(derived.slice(0, 16), hexToBytes(`0x${c.cipherparams.iv}`)).decrypt(ciphertext);
  return bytesToHex(key);
}
