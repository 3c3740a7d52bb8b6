import { resolveSigner } from '../../chain/index.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';

export interface AuthFlags {
  url: string;
  account?: string;
  keystore?: string;
}

interface KeyView {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/**
 * A client acting for a wallet: an API key from OPENLEDGER_API_KEY when set, otherwise a fresh
 * Sign-In with Ethereum as the chosen signer (dev account, private key or keystore).
 */
export async function authenticatedClient(flags: AuthFlags): Promise<NodeClient> {
  const apiKey = process.env.OPENLEDGER_API_KEY;
  if (apiKey && flags.account === undefined && flags.keystore === undefined)
    return new NodeClient(flags.url, { apiKey });
  const client = new NodeClient(flags.url);
  const { local } = await client.request<{ local: boolean }>('GET', '/api/status');
  const signer = await resolveSigner({
    account: flags.account === undefined ? undefined : Number(flags.account),
    privateKey: process.env.OPENLEDGER_PRIVATE_KEY,
    keystore: flags.keystore,
    keystorePassword: process.env.OPENLEDGER_KEYSTORE_PASSWORD,
    local,
  });
  await client.signIn(signer);
  return client;
}

export async function keysCreate(flags: AuthFlags & { name: string }, out: Output): Promise<void> {
  const client = await authenticatedClient(flags);
  const key = await client.request<KeyView & { key: string }>('POST', '/api/keys', {
    name: flags.name,
  });
  out.result(key, (k) =>
    [
      `created API key "${k.name}" (${k.id})`,
      '',
      `  ${k.key}`,
      '',
      'Store it now: it is not shown again.',
    ].join('\n'),
  );
}

export async function keysList(flags: AuthFlags, out: Output): Promise<void> {
  const client = await authenticatedClient(flags);
  const { keys } = await client.request<{ keys: KeyView[] }>('GET', '/api/keys');
  out.result({ keys }, ({ keys: list }) =>
    list.length === 0
      ? 'no API keys'
      : list
          .map(
            (k) =>
              `${k.id}  ${k.prefix}…  ${k.name.padEnd(20)} ${k.revokedAt ? `revoked ${k.revokedAt}` : `created ${k.createdAt}`}`,
          )
          .join('\n'),
  );
}

export async function keysRevoke(flags: AuthFlags & { id: string }, out: Output): Promise<void> {
  const client = await authenticatedClient(flags);
  const key = await client.request<KeyView>('DELETE', `/api/keys/${encodeURIComponent(flags.id)}`);
  out.result(key, (k) => `revoked API key "${k.name}" (${k.id}) at ${k.revokedAt}`);
}
