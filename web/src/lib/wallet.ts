// Signers for Sign-In with Ethereum: the anvil dev accounts (local chain only)
// and an injected EIP-1193 wallet (window.ethereum).
import type { HDAccount } from 'viem/accounts';
import { createSiweMessage } from 'viem/siwe';
import {
  getAddress,
  getTypesForEIP712Domain,
  serializeTypedData,
  toHex,
  type Hex,
  type TypedData,
  type TypedDataDefinition,
  type TypedDataDomain,
  type TypedDataParameter,
} from 'viem';
import { api, ApiError, type Address, type NodeStatus, type Session } from './api';

export const DEV_MNEMONIC = 'test test test test test test test test test test test junk';
export const DEV_ACCOUNT_COUNT = 10;
export const SIWE_STATEMENT = 'Sign in to this OpenLedger node.';

export type SignerChoice = { kind: 'dev'; index: number } | { kind: 'injected' };

interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | object }): Promise<unknown>;
}

declare global {
  interface Window {
    ethereum?: Eip1193Provider;
  }
}

export function injectedProvider(): Eip1193Provider | undefined {
  const eth = typeof window !== 'undefined' ? window.ethereum : undefined;
  return eth && typeof eth.request === 'function' ? eth : undefined;
}

let devAccounts: Promise<HDAccount[]> | undefined;

/** Derives the well-known anvil accounts 0..9 in the browser (cached). */
export function loadDevAccounts(): Promise<HDAccount[]> {
  devAccounts ??= (async () => {
    const { mnemonicToAccount } = await import('viem/accounts');
    const out: HDAccount[] = [];
    for (let i = 0; i < DEV_ACCOUNT_COUNT; i++) {
      out.push(mnemonicToAccount(DEV_MNEMONIC, { addressIndex: i }));
      // Key derivation is CPU-bound; yield so the dialog stays responsive.
      await new Promise((r) => setTimeout(r, 0));
    }
    return out;
  })();
  devAccounts.catch(() => {
    devAccounts = undefined;
  });
  return devAccounts;
}

const STORAGE_KEY = 'openledger.signer';

export function loadSignerChoice(): SignerChoice | null {
  try {
    const raw = window.localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const v = JSON.parse(raw) as Partial<{ kind: string; index: number }>;
    if (
      v.kind === 'dev' &&
      Number.isInteger(v.index) &&
      v.index! >= 0 &&
      v.index! < DEV_ACCOUNT_COUNT
    ) {
      return { kind: 'dev', index: v.index! };
    }
    if (v.kind === 'injected') return { kind: 'injected' };
  } catch {
    /* storage unavailable or corrupt: ignore */
  }
  return null;
}

export function saveSignerChoice(choice: SignerChoice | null): void {
  try {
    if (choice) window.localStorage.setItem(STORAGE_KEY, JSON.stringify(choice));
    else window.localStorage.removeItem(STORAGE_KEY);
  } catch {
    /* ignore */
  }
}

export type SignInStep = 'connecting' | 'nonce' | 'signing' | 'verifying';

/** Runs the full SIWE flow: nonce → EIP-4361 message → signature → verify (sets the session cookie). */
export async function signInWithEthereum(
  choice: SignerChoice,
  status: NodeStatus,
  onStep: (step: SignInStep) => void = () => {},
): Promise<Session> {
  onStep('connecting');
  let address: Address;
  let sign: (message: string) => Promise<`0x${string}`>;

  if (choice.kind === 'dev') {
    if (!status.local) {
      throw new ApiError({
        status: 0,
        code: 'DEV_ACCOUNTS_UNAVAILABLE',
        message: 'Dev accounts can only be used on the local dev chain.',
      });
    }
    const account = (await loadDevAccounts())[choice.index];
    if (!account)
      throw new ApiError({
        status: 0,
        code: 'CLIENT_ERROR',
        message: `No dev account #${choice.index}.`,
      });
    address = account.address;
    sign = (message) => account.signMessage({ message });
  } else {
    const provider = injectedProvider();
    if (!provider) {
      throw new ApiError({
        status: 0,
        code: 'NO_INJECTED_WALLET',
        message: 'No browser wallet was found.',
        hint: 'Install or unlock a wallet extension, then try again.',
      });
    }
    const accounts = (await provider.request({ method: 'eth_requestAccounts' })) as string[];
    if (!accounts?.[0])
      throw new ApiError({
        status: 0,
        code: 'NO_ACCOUNT',
        message: 'The wallet returned no account.',
      });
    address = getAddress(accounts[0]);
    sign = async (message) =>
      (await provider.request({
        method: 'personal_sign',
        params: [toHex(message), address],
      })) as `0x${string}`;
  }

  onStep('nonce');
  const { nonce } = await api.nonce();
  const message = createSiweMessage({
    domain: window.location.host,
    uri: window.location.origin,
    version: '1',
    chainId: status.chainId,
    nonce,
    address,
    statement: SIWE_STATEMENT,
    issuedAt: new Date(),
  });

  onStep('signing');
  const signature = await sign(message);

  onStep('verifying');
  const result = await api.verify(message, signature);
  saveSignerChoice(choice);
  return { address: result.address, expiresAt: result.expiresAt };
}

/**
 * Signs EIP-712 typed data with the signer the session was opened with: a dev account signs in
 * the browser; an injected wallet is asked for `eth_signTypedData_v4` (JSON, bigints as decimal
 * strings, EIP712Domain type included). Refuses when the signer is not the signed-in `address`.
 */
export async function signTypedData<
  const typedData extends TypedData | Record<string, unknown>,
  primaryType extends keyof typedData | 'EIP712Domain' = keyof typedData,
>(
  choice: SignerChoice | null,
  address: Address,
  typed: TypedDataDefinition<typedData, primaryType>,
): Promise<Hex> {
  const mismatch = (actual: string) =>
    new ApiError({
      status: 0,
      code: 'SIGNER_MISMATCH',
      message: `The wallet account ${actual} is not the signed-in account ${address}.`,
      hint: 'Sign out, then sign in again with the account you want to act as.',
    });
  if (!choice) {
    throw new ApiError({
      status: 0,
      code: 'NO_SIGNER',
      message: 'This browser does not know which wallet signed you in.',
      hint: 'Sign out, then sign in again to choose a wallet.',
    });
  }
  if (choice.kind === 'dev') {
    const account = (await loadDevAccounts())[choice.index];
    if (!account)
      throw new ApiError({
        status: 0,
        code: 'CLIENT_ERROR',
        message: `No dev account #${choice.index}.`,
      });
    if (getAddress(account.address) !== getAddress(address)) throw mismatch(account.address);
    return account.signTypedData(typed);
  }
  const provider = injectedProvider();
  if (!provider) {
    throw new ApiError({
      status: 0,
      code: 'NO_INJECTED_WALLET',
      message: 'No browser wallet was found.',
      hint: 'Install or unlock a wallet extension, then try again.',
    });
  }
  const accounts = (await provider.request({ method: 'eth_accounts' })) as string[] | undefined;
  const current = accounts?.find((a) => getAddress(a) === getAddress(address));
  if (!current) throw mismatch(accounts?.[0] ?? 'none');
  const { domain, message, primaryType, types } = typed as unknown as {
    domain?: TypedDataDomain;
    message: Record<string, unknown>;
    primaryType: string;
    types: Record<string, readonly TypedDataParameter[]>;
  };
  // As viem's wallet action does: the domain's type listed, then JSON with bigints as strings.
  const json = serializeTypedData({
    domain,
    message,
    primaryType,
    types: { EIP712Domain: getTypesForEIP712Domain({ domain }), ...types },
  } as unknown as TypedDataDefinition);
  return (await provider.request({
    method: 'eth_signTypedData_v4',
    params: [getAddress(address), json],
  })) as Hex;
}
