import { readFile } from 'node:fs/promises';
import { Keystore } from 'ox';
import type { Hex, LocalAccount } from 'viem';
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
      throw new OpenLedgerError(
        'KEYSTORE_INVALID',
        `Cannot read the keystore ${options.keystore}.`,
        { cause },
      );
    });
    return privateKeyToAccount(await decryptKeystore(json, options.keystorePassword));
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

/**
 * Decrypts a Web3 Secret Storage (keystore v3) file, as written by geth, Foundry's `cast wallet`
 * and wallet exports, with `ox` (wevm's primitives, which viem itself is built on).
 */
export async function decryptKeystore(json: string, password: string): Promise<Hex> {
  let keystore: Keystore.Keystore;
  try {
    keystore = JSON.parse(json) as Keystore.Keystore;
  } catch (cause) {
    throw new OpenLedgerError('KEYSTORE_INVALID', 'The keystore is not JSON.', { cause });
  }
  // Some writers (geth before 1.9) spell the section "Crypto".
  const legacy = keystore as unknown as { Crypto?: Keystore.Keystore['crypto'] };
  if (!keystore.crypto && legacy.Crypto) keystore = { ...keystore, crypto: legacy.Crypto };
  if (keystore.version !== 3 || keystore.crypto?.cipher !== 'aes-128-ctr') {
    throw new OpenLedgerError(
      'KEYSTORE_INVALID',
      'Only version-3 keystores with aes-128-ctr are supported.',
    );
  }
  let key: Keystore.Key;
  try {
    key = await Keystore.toKeyAsync(keystore, { password });
  } catch (cause) {
    throw new OpenLedgerError(
      'KEYSTORE_INVALID',
      `The keystore's key derivation failed: ${(cause as Error).message}`,
      { cause },
    );
  }
  try {
    return Keystore.decrypt(keystore, key);
  } catch (cause) {
    throw new OpenLedgerError(
      'KEYSTORE_INVALID',
      'Wrong keystore password (the MAC does not match).',
      { cause },
    );
  }
}
