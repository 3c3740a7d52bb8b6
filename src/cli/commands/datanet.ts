import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createPublicClient,
  getAddress,
  http,
  sha256,
  type Address,
  type Hex,
  type LocalAccount,
} from 'viem';
import { DatanetRegistryAbi, resolveSigner } from '../../chain/index.ts';
import {
  buildVersionTree,
  contributionTypedData,
  normalizeMetadata,
  metadataHash,
  proofFor,
  purposeHash,
  registryTypedData,
  type DatanetMetadataInput,
  type SigningContext,
} from '../../datanets/index.ts';
import { rowHash, type RowContent } from '../../datanets/ingest/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import type { AuthFlags } from './keys.ts';

/** A signed-in client plus the wallet that signs registry actions and contribution statements. */
async function actingWallet(
  flags: AuthFlags,
): Promise<{ client: NodeClient; signer: LocalAccount }> {
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
  return { client, signer };
}

/** Builds the signing context for a registry action: the signer's current nonce, one hour to live. */
async function signingContext(client: NodeClient, signer: Address): Promise<SigningContext> {
  const info = await client.request<{ chainId: number; registry: Address; nonce: string }>(
    'GET',
    `/api/datanets/signing-info?address=${signer}`,
  );
  return {
    chainId: info.chainId,
    registry: info.registry,
    nonce: BigInt(info.nonce),
    deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
  };
}

function authorization(signature: Hex, ctx: SigningContext) {
  return { signature, deadline: ctx.deadline.toString() };
}

interface DatanetView {
  id: number;
  name: string;
  summary: string;
  owner: string;
  policy: string;
  modality: string;
  license: string;
  tags: string[];
  stats: {
    contributions: { pending: number; approved: number; rejected: number };
    approvedRows: number;
    latestVersion: number;
  };
}

export async function datanetCreate(
  flags: AuthFlags & {
    name: string;
    summary?: string;
    description?: string;
    descriptionFile?: string;
    tags?: string;
    modality?: 'text' | 'image' | 'audio';
    license?: string;
    policy?: 'open' | 'permissioned';
    acceptedTypes?: string;
    maxFileBytes?: string;
    dailyQuota?: string;
  },
  out: Output,
): Promise<void> {
  const description = flags.descriptionFile
    ? await readFile(flags.descriptionFile, 'utf8')
    : flags.description;
  const input: DatanetMetadataInput = {
    name: flags.name,
    ...(flags.summary ? { summary: flags.summary } : {}),
    ...(description ? { description } : {}),
    ...(flags.tags ? { tags: flags.tags.split(',') } : {}),
    ...(flags.modality ? { modality: flags.modality } : {}),
    ...(flags.license ? { license: flags.license } : {}),
    ...(flags.policy ? { policy: flags.policy } : {}),
    rules: {
      ...(flags.acceptedTypes ? { acceptedTypes: flags.acceptedTypes.split(',') } : {}),
      ...(flags.maxFileBytes ? { maxFileBytes: Number(flags.maxFileBytes) } : {}),
      ...(flags.dailyQuota ? { dailyQuotaPerContributor: Number(flags.dailyQuota) } : {}),
    },
  };
  const metadata = normalizeMetadata(input);
  const { client, signer } = await actingWallet(flags);
  const ctx = await signingContext(client, signer.address);
  const signature = await signer.signTypedData(
    registryTypedData.createDatanet(ctx, {
      owner: signer.address,
      metadataHash: metadataHash(metadata),
      policy: metadata.policy,
    }),
  );
  out.progress('registering the datanet on-chain');
  const created = await client.request<DatanetView & { txHash: string }>('POST', '/api/datanets', {
    metadata,
    authorization: authorization(signature, ctx),
  });
  out.result(
    created,
    (d) =>
      `created datanet ${d.id} "${d.name}" (${d.policy}, ${d.modality}) owned by ${d.owner}\n  tx ${d.txHash}`,
  );
}

export async function datanetList(
  flags: { url: string; owner?: string; q?: string },
  out: Output,
): Promise<void> {
  const params = new URLSearchParams({
    ...(flags.owner ? { owner: flags.owner } : {}),
    ...(flags.q ? { q: flags.q } : {}),
  });
  const { datanets } = await new NodeClient(flags.url).request<{ datanets: DatanetView[] }>(
    'GET',
    `/api/datanets?${params}`,
  );
  out.result({ datanets }, ({ datanets: list }) =>
    list.length === 0
      ? 'no datanets'
      : list
          .map(
            (d) =>
              `${String(d.id).padStart(4)}  ${d.name.padEnd(28)} ${d.policy.padEnd(12)} v${d.stats.latestVersion}  ${d.stats.approvedRows} rows  ${d.stats.contributions.pending} pending`,
          )
          .join('\n'),
  );
}

export async function datanetShow(flags: AuthFlags & { id: string }, out: Output): Promise<void> {
  const client = await optionallySignedIn(flags);
  const datanet = await client.request<
    DatanetView & {
      description: string;
      curators: string[];
      versions: { version: number; root: string; rowCount: number; txHash: string }[];
      canRead: boolean;
    }
  >('GET', `/api/datanets/${flags.id}`);
  out.result(datanet, (d) =>
    [
      `datanet ${d.id}: ${d.name}`,
      d.summary ? `  ${d.summary}` : '',
      `  owner ${d.owner} · ${d.policy} · ${d.modality} · licence ${d.license}${d.tags.length ? ` · tags ${d.tags.join(', ')}` : ''}`,
      `  curators ${d.curators.length ? d.curators.join(', ') : 'none'}`,
      `  contributions: ${d.stats.contributions.pending} pending, ${d.stats.contributions.approved} approved, ${d.stats.contributions.rejected} rejected; ${d.stats.approvedRows} approved rows`,
      `  you ${d.canRead ? 'may' : 'may not'} read its content`,
      ...d.versions.map(
        (v) => `  v${v.version}  ${v.rowCount} rows  root ${v.root}  tx ${v.txHash}`,
      ),
    ]
      .filter(Boolean)
      .join('\n'),
  );
}

/** Signed in when a wallet is given (for permissioned reads), anonymous otherwise. */
async function optionallySignedIn(flags: AuthFlags): Promise<NodeClient> {
  if (flags.account !== undefined || flags.keystore || process.env.OPENLEDGER_PRIVATE_KEY)
    return (await actingWallet(flags)).client;
  return new NodeClient(flags.url, { apiKey: process.env.OPENLEDGER_API_KEY || undefined });
}

export async function datanetContribute(
  flags: AuthFlags & {
    id: string;
    files: string[];
    rows?: string;
    consent?: boolean;
    license?: string;
  },
  out: Output,
): Promise<void> {
  if (!flags.consent) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'Contributing grants the datanet its licence over your data: pass --consent to agree.',
      {
        hint: 'See the licence with `openledger datanet show <id>`.',
      },
    );
  }
  if (flags.files.length === 0 && !flags.rows) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'Name the files to contribute, or --rows FILE.json with an array of rows.',
    );
  }
  const { client, signer } = await actingWallet(flags);
  const datanet = await client.request<DatanetView & { license: string }>(
    'GET',
    `/api/datanets/${flags.id}`,
  );
  const status = await client.request<{ chainId: number; contracts: { DatanetRegistry: Address } }>(
    'GET',
    '/api/status',
  );
  const license = flags.license ?? datanet.license;
  const sign = (contentHash: Hex, nonce: bigint) =>
    signer.signTypedData(
      contributionTypedData(status.chainId, status.contracts.DatanetRegistry, {
        datanetId: BigInt(datanet.id),
        contentHash,
        license,
        consent: true,
        nonce,
      }),
    );
  const results: unknown[] = [];
  if (flags.rows) {
    const rows = JSON.parse(await readFile(flags.rows, 'utf8')) as RowContent[];
    const nonce = randomNonce();
    const { canonicalJson } = await import('../../datanets/ingest/index.ts');
    const signature = await sign(sha256(new TextEncoder().encode(canonicalJson(rows))), nonce);
    out.progress(`contributing ${rows.length} rows`);
    results.push(
      await client.request('POST', `/api/datanets/${datanet.id}/contributions`, {
        rows,
        license,
        consent: true,
        nonce: nonce.toString(),
        signature,
      }),
    );
  }
  for (const file of flags.files) {
    const bytes = await readFile(file);
    const nonce = randomNonce();
    const signature = await sign(sha256(bytes), nonce);
    out.progress(`uploading ${path.basename(file)} (${formatBytes(bytes.byteLength)})`);
    const query = new URLSearchParams({
      fileName: path.basename(file),
      license,
      consent: 'true',
      nonce: nonce.toString(),
      signature,
    });
    results.push(
      await client.requestBytes(
        'POST',
        `/api/datanets/${datanet.id}/contributions?${query}`,
        bytes,
      ),
    );
  }
  out.progressDone('contributed');
  out.result({ contributions: results as ContributionView[] }, ({ contributions }) =>
    contributions
      .map(
        (c) =>
          `${c.id}  ${c.status.padEnd(8)} ${c.acceptedRowCount}/${c.rowCount} rows accepted  score ${c.score.toFixed(2)}${c.reasons.length ? `\n    ${c.reasons.join('\n    ')}` : ''}`,
      )
      .join('\n'),
  );
}

interface ContributionView {
  id: string;
  contributor: string;
  fileName: string | null;
  status: string;
  score: number;
  reasons: string[];
  rowCount: number;
  acceptedRowCount: number;
  createdAt: string;
}

function formatBytes(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function randomNonce(): bigint {
  return BigInt(`0x${randomBytes(16).toString('hex')}`);
}

export async function datanetPending(
  flags: AuthFlags & { id: string },
  out: Output,
): Promise<void> {
  const { client } = await actingWallet(flags);
  const { contributions } = await client.request<{ contributions: ContributionView[] }>(
    'GET',
    `/api/datanets/${flags.id}/contributions?status=pending`,
  );
  out.result({ contributions }, ({ contributions: list }) =>
    list.length === 0
      ? 'no pending contributions'
      : list
          .map(
            (c) =>
              `${c.id}  ${c.contributor}  ${(c.fileName ?? 'rows').padEnd(20)} ${c.acceptedRowCount}/${c.rowCount} rows  score ${c.score.toFixed(2)}`,
          )
          .join('\n'),
  );
}

export async function datanetApprove(
  flags: AuthFlags & { id: string; contributions: string[] },
  out: Output,
): Promise<void> {
  const { client, signer } = await actingWallet(flags);
  const plan = await client.request<{
    version: number;
    root: Hex;
    rowCount: number;
    manifestId: Hex;
    chainId: number;
    registry: Address;
    nonce: string;
  }>('POST', `/api/datanets/${flags.id}/versions/plan`, { approve: flags.contributions });
  const ctx: SigningContext = {
    chainId: plan.chainId,
    registry: plan.registry,
    nonce: BigInt(plan.nonce),
    deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
  };
  const signature = await signer.signTypedData(
    registryTypedData.commitVersion(ctx, {
      committer: signer.address,
      id: BigInt(flags.id),
      root: plan.root,
      rowCount: BigInt(plan.rowCount),
      manifestId: plan.manifestId,
    }),
  );
  out.progress(`committing version ${plan.version} on-chain`);
  const committed = await client.request<{
    version: number;
    root: string;
    rowCount: number;
    addedRows: number;
    txHash: string;
  }>('POST', `/api/datanets/${flags.id}/versions`, {
    approve: flags.contributions,
    authorization: authorization(signature, ctx),
  });
  out.result(
    committed,
    (v) =>
      `committed version ${v.version}: ${v.rowCount} rows (${v.addedRows} new), root ${v.root}\n  tx ${v.txHash}`,
  );
}

export async function datanetReject(
  flags: AuthFlags & { id: string; contributions: string[]; reason: string },
  out: Output,
): Promise<void> {
  const { client } = await actingWallet(flags);
  const result = await client.request<{ rejected: string[]; reason: string }>(
    'POST',
    `/api/datanets/${flags.id}/reject`,
    {
      contributions: flags.contributions,
      reason: flags.reason,
    },
  );
  out.result(result, (r) => `rejected ${r.rejected.length} contribution(s): ${r.reason}`);
}

export async function datanetRequestAccess(
  flags: AuthFlags & { id: string; purpose: string },
  out: Output,
): Promise<void> {
  const { client, signer } = await actingWallet(flags);
  const ctx = await signingContext(client, signer.address);
  const signature = await signer.signTypedData(
    registryTypedData.requestAccess(ctx, {
      account: signer.address,
      id: BigInt(flags.id),
      purposeHash: purposeHash(flags.purpose.trim()),
    }),
  );
  const request = await client.request<{ id: string; status: string; requestTx: string }>(
    'POST',
    `/api/datanets/${flags.id}/access-requests`,
    {
      purpose: flags.purpose,
      authorization: authorization(signature, ctx),
    },
  );
  out.result(request, (r) => `access requested (${r.status}); tx ${r.requestTx}`);
}

export async function datanetGrant(
  flags: AuthFlags & {
    id: string;
    address: string;
    deny?: boolean;
    revoke?: boolean;
    reason?: string;
  },
  out: Output,
): Promise<void> {
  const decision = flags.deny ? 'deny' : flags.revoke ? 'revoke' : 'grant';
  const account = getAddress(flags.address);
  const { client, signer } = await actingWallet(flags);
  const ctx = await signingContext(client, signer.address);
  const base = { owner: signer.address, id: BigInt(flags.id), account };
  const typed =
    decision === 'grant'
      ? registryTypedData.grantAccess(ctx, base)
      : decision === 'revoke'
        ? registryTypedData.revokeAccess(ctx, base)
        : registryTypedData.denyAccess(ctx, {
            ...base,
            reasonHash: purposeHash(flags.reason ?? ''),
          });
  const signature = await signer.signTypedData(
    typed as Parameters<LocalAccount['signTypedData']>[0],
  );
  const result = await client.request<{ status: string; txHash: string }>(
    'POST',
    `/api/datanets/${flags.id}/access`,
    {
      account,
      decision,
      ...(flags.reason ? { reason: flags.reason } : {}),
      authorization: authorization(signature, ctx),
    },
  );
  out.result(result, (r) => `${account}: ${r.status}; tx ${r.txHash}`);
}

export async function datanetVersions(
  flags: { url: string; id: string },
  out: Output,
): Promise<void> {
  const { versions } = await new NodeClient(flags.url).request<{
    versions: {
      version: number;
      rowCount: number;
      addedRows: number;
      root: string;
      committedBy: string;
      txHash: string;
      committedAt: string;
    }[];
  }>('GET', `/api/datanets/${flags.id}/versions`);
  out.result({ versions }, ({ versions: list }) =>
    list.length === 0
      ? 'no versions yet'
      : list
          .map(
            (v) =>
              `v${v.version}  ${v.rowCount} rows (+${v.addedRows})  root ${v.root}  by ${v.committedBy}  tx ${v.txHash}`,
          )
          .join('\n'),
  );
}

export async function datanetExport(
  flags: AuthFlags & { id: string; version?: string; out?: string },
  out: Output,
): Promise<void> {
  const client = await optionallySignedIn(flags);
  const text = await client.requestText(
    'GET',
    `/api/datanets/${flags.id}/versions/${flags.version ?? 'latest'}/export`,
  );
  const lines = text.split('\n').filter(Boolean).length;
  if (flags.out) {
    await writeFile(flags.out, text);
    out.result({ file: flags.out, rows: lines }, (r) => `wrote ${r.rows} rows to ${r.file}`);
  } else if (out.json) {
    out.result(
      {
        rows: text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as unknown),
      },
      () => '',
    );
  } else {
    process.stdout.write(text);
  }
}

interface ExportLine {
  rowHash: string;
  contributor: Address;
  contributionId: string;
  content: RowContent;
}

/**
 * Checks a row's inclusion in a committed version against the chain itself: the row's hash is
 * recomputed from its content, the tree is rebuilt from the whole export, its root must equal the
 * root the registry holds, and the registry's `verifyRow` must accept the proof.
 */
export async function datanetVerify(
  flags: {
    url: string;
    id: string;
    version: string;
    export: string;
    line: string;
    rpcUrl?: string;
  },
  out: Output,
): Promise<void> {
  const status = await new NodeClient(flags.url).request<{
    rpcUrl: string;
    contracts: { DatanetRegistry: Address };
  }>('GET', '/api/status');
  const rows = (await readFile(flags.export, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ExportLine);
  const index = Number(flags.line) - 1;
  const row = rows[index];
  if (!row)
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `The export has no line ${flags.line} (it has ${rows.length}).`,
    );
  const recomputed = rowHash(row.content);
  const leaves = rows.map((r, i) => ({
    rowHash: i === index ? recomputed : r.rowHash,
    contributor: getAddress(r.contributor),
    contributionId: r.contributionId,
  }));
  const tree = buildVersionTree(leaves);
  const leaf = leaves[index]!;
  const proof = proofFor(tree, leaf)!;
  const chain = createPublicClient({ transport: http(flags.rpcUrl ?? status.rpcUrl) });
  const registry = status.contracts.DatanetRegistry;
  const onChain = await chain.readContract({
    address: registry,
    abi: DatanetRegistryAbi,
    functionName: 'version',
    args: [BigInt(flags.id), BigInt(flags.version)],
  });
  const { contributionIdToBytes32 } = await import('../../datanets/index.ts');
  const included = await chain.readContract({
    address: registry,
    abi: DatanetRegistryAbi,
    functionName: 'verifyRow',
    args: [
      BigInt(flags.id),
      BigInt(flags.version),
      `0x${leaf.rowHash}`,
      leaf.contributor,
      contributionIdToBytes32(leaf.contributionId),
      proof,
    ],
  });
  const result = {
    datanetId: Number(flags.id),
    version: Number(flags.version),
    line: Number(flags.line),
    rowHash: recomputed,
    rowHashMatchesExport: recomputed === row.rowHash,
    contributor: leaf.contributor,
    rootOnChain: onChain.root,
    rootOfExport: tree.root,
    included,
  };
  if (
    !included ||
    !result.rowHashMatchesExport ||
    onChain.root.toLowerCase() !== tree.root.toLowerCase()
  ) {
    throw new OpenLedgerError(
      'CONFLICT',
      `Line ${flags.line} is NOT proven to be in version ${flags.version} of datanet ${flags.id}.`,
      {
        details: result,
        hint: result.rowHashMatchesExport
          ? 'The export does not match the root committed on-chain.'
          : 'The row content was altered: its hash no longer matches.',
      },
    );
  }
  out.result(
    result,
    (r) =>
      `verified: line ${r.line} (row ${r.rowHash}, contributor ${r.contributor}) is in version ${r.version} of datanet ${r.datanetId}; root ${r.rootOnChain} on-chain`,
  );
}

export async function datanetCurator(
  flags: AuthFlags & { id: string; address: string; remove?: boolean },
  out: Output,
): Promise<void> {
  const curator = getAddress(flags.address);
  const enabled = !flags.remove;
  const { client, signer } = await actingWallet(flags);
  const ctx = await signingContext(client, signer.address);
  const signature = await signer.signTypedData(
    registryTypedData.setCurator(ctx, {
      owner: signer.address,
      id: BigInt(flags.id),
      curator,
      enabled,
    }),
  );
  const result = await client.request<{ curator: string; enabled: boolean; txHash: string }>(
    'POST',
    `/api/datanets/${flags.id}/curators`,
    { curator, enabled, authorization: authorization(signature, ctx) },
  );
  out.result(
    result,
    (r) =>
      `${r.curator} ${r.enabled ? 'is now a curator' : 'is no longer a curator'}; tx ${r.txHash}`,
  );
}
