/**
 * `openledger attribution receipt|verify|earnings|claim|epochs|run`: the receipts of paid calls,
 * their independent verification, earnings, claims and the epochs a node posted.
 *
 * `verify` recomputes a receipt on this machine, trusting the node for nothing: the model's terms
 * and the penalties come from the chain (any RPC) at the receipt's block, every blob is checked
 * against the sha256 it is named by, and the base model is a local file with the receipt's hash.
 */
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { getAddress, type Address, type Hex } from 'viem';
import { nodeWallet, send } from '../wallet.ts';
import type { ChainConnection } from '../../chain/clients.ts';
import {
  AttributionSettlementAbi,
  DatanetRegistryAbi,
  OpenTokenAbi,
} from '../../chain/generated/contracts.ts';
import {
  attributeInference,
  attributionReceiptHash,
  catalogueModelBySha,
  chainSources,
  ragEvidenceOf,
  verifyAttributionReceipt,
  type AttributionReceipt,
  type ReceiptVerification,
} from '../../attribution/index.ts';
import { connectChain } from '../../chain/clients.ts';
import { resolveConfig } from '../../config.ts';
import { OpenLedgerError } from '../../errors.ts';
import { ModelCatalog } from '../../factory/models.ts';
import { writeFileAtomic } from '../../util/fs.ts';
import { formatOpen } from '../../payments/escrow.ts';
import type { InferenceReceipt } from '../../serving/usage.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';

type SignerOptions = (command: Command) => Command;

/** What `attribution receipt --save` writes and `verify` reads: all a verifier needs. */
export interface ReceiptBundle {
  kind: 'openledger.attribution-bundle';
  receipt: AttributionReceipt;
  inferenceReceipt: InferenceReceipt;
  promptTokens: number[];
  output: string;
}

interface ReceiptAnswer {
  id: string;
  status: 'attributed' | 'failed' | 'pending';
  hash: string | null;
  receipt: AttributionReceipt | null;
  inferenceReceipt: InferenceReceipt;
  epoch: number | null;
  collected: string | null;
  error: { code: string; message: string } | null;
  promptTokens?: number[];
  output?: string;
}

const open = (wei: string | bigint) => `${formatOpen(BigInt(wei))} OPEN`;

async function fetchReceipt(client: NodeClient, id: string): Promise<ReceiptAnswer> {
  return client.request<ReceiptAnswer>(
    'GET',
    `/api/attribution/receipts/${encodeURIComponent(id)}`,
  );
}

function describeReceipt(r: ReceiptAnswer): string {
  if (!r.receipt)
    return `inference ${r.id}: ${r.status}${r.error ? ` — [${r.error.code}] ${r.error.message}` : ''}`;
  const x = r.receipt;
  const lines = [
    `attribution receipt ${r.hash}`,
    `  inference ${x.inference.id}  model ${x.inference.publishedModelId}  fee ${open(x.inference.fee)}  ${x.inference.promptTokens}+${x.inference.completionTokens} tokens`,
    `  epoch ${r.epoch ?? '(not charged yet)'}${r.collected !== null && r.collected !== x.inference.fee ? `  collected ${open(r.collected)}` : ''}  block ${x.block}`,
    'payouts:',
    ...x.payouts.map(
      (p) =>
        `  ${p.address}  ${open(p.amount).padStart(24)}  ${Object.entries(p.detail)
          .map(([role, v]) => `${role} ${formatOpen(BigInt(v))}`)
          .join(', ')}`,
    ),
  ];
  const spans = x.channels.span?.evidence ?? [];
  if (spans.length > 0) {
    lines.push('spans:');
    for (const s of spans)
      lines.push(
        `  [${s.start}, ${s.end}) ${s.count}× ${s.bits.toFixed(1)} bits ${JSON.stringify(s.text ?? '')} → ${[...new Set(s.occurrences.map((o) => o.contributor))].join(', ')}`,
      );
  }
  const rows = x.channels.influence?.evidence ?? [];
  if (rows.length > 0) {
    lines.push(`influence (${x.channels.influence!.method}):`);
    for (const e of rows.slice(0, 5))
      lines.push(
        `  row ${e.rowHash.slice(0, 12)}… datanet ${e.datanetId} ${e.contributor} ${e.score.toExponential(3)}`,
      );
  }
  if (x.penalized.length > 0) lines.push(`penalized (rewards cut): ${x.penalized.join(', ')}`);
  return lines.join('\n');
}

async function loadBundle(
  ref: string,
  flags: AuthFlags,
): Promise<{ bundle: ReceiptBundle; client: NodeClient }> {
  const looksLikeFile = ref.endsWith('.json') || ref.includes('/') || ref.includes(path.sep);
  if (looksLikeFile) {
    const bundle = JSON.parse(await readFile(ref, 'utf8')) as ReceiptBundle;
    if (bundle.kind !== 'openledger.attribution-bundle' || !bundle.receipt)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `${ref} is not a receipt bundle (save one with \`openledger attribution receipt <id> --save ${ref}\`).`,
      );
    return { bundle, client: new NodeClient(flags.url) };
  }
  const client = await authenticatedClient(flags);
  const answer = await fetchReceipt(client, ref);
  if (!answer.receipt)
    throw new OpenLedgerError('NOT_FOUND', `Inference ${ref} has no attribution receipt yet.`);
  if (answer.promptTokens === undefined || answer.output === undefined)
    throw new OpenLedgerError(
      'FORBIDDEN',
      'Only the caller of an inference gets its prompt and output, which verifying needs.',
      {
        hint: 'Ask the caller for the bundle (`openledger attribution receipt <id> --save FILE`).',
      },
    );
  return {
    bundle: {
      kind: 'openledger.attribution-bundle',
      receipt: answer.receipt,
      inferenceReceipt: answer.inferenceReceipt,
      promptTokens: answer.promptTokens,
      output: answer.output,
    },
    client,
  };
}

/** Recomputes a bundle's receipt on this machine (see the module comment). */
export async function verifyBundle(
  bundle: ReceiptBundle,
  client: NodeClient,
  options: {
    rpc?: string;
    modelsDirs?: string[];
    /** Look for the base model only in `modelsDirs` (not the usual folders). */
    onlyGivenDirs?: boolean;
    /** Where a base model downloaded from the node is kept (default: the system temp folder). */
    cacheDir?: string;
  } = {},
): Promise<ReceiptVerification> {
  const status = await client.request<{ rpcUrl: string; contracts: Record<string, Address> }>(
    'GET',
    '/api/status',
  );
  const c = status.contracts;
  if (!c.ModelRegistry || !c.AttributionSettlement)
    throw new OpenLedgerError(
      'SETTLEMENT_UNAVAILABLE',
      'The node names no attribution settlement.',
    );
  const chain = await connectChain(options.rpc ?? status.rpcUrl);
  const catalog = new ModelCatalog([
    ...(options.modelsDirs ?? []).map((d) => path.resolve(d)),
    ...(options.onlyGivenDirs ? [] : resolveConfig({}, process.env).modelsDirs),
  ]);
  const download = async (id: string): Promise<Uint8Array> => {
    const response = await fetch(new URL(`/api/attribution/blobs/${id}`, client.url), {
      headers: client.authorization(),
    });
    if (!response.ok)
      throw new OpenLedgerError(
        'BLOB_NOT_FOUND',
        `The node does not give ${id} (${response.status}).`,
      );
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (createHash('sha256').update(bytes).digest('hex') !== id)
      throw new OpenLedgerError('BLOB_CORRUPT', `The node's ${id} does not hash to its name.`);
    return bytes;
  };
  const claimed = bundle.receipt;
  const unproven = await ragSourcesOnChain(claimed, client, chain, c.DatanetRegistry);
  if (unproven) return unproven;
  const recomputed = await attributeInference(
    {
      inference: bundle.inferenceReceipt,
      inferenceHash: claimed.inference.receiptHash,
      promptTokens: bundle.promptTokens,
      output: bundle.output,
      block: BigInt(claimed.block),
      shards: claimed.datanets,
      traceOptions: claimed.channels.span?.options ?? {},
      // The RAG channel's scores are the node's model output: the weights and payouts that
      // follow from them are recomputed exactly (docs/rag.md "Verifying the RAG channel").
      rag: claimed.channels.rag ? ragEvidenceOf(claimed.channels.rag) : null,
    },
    {
      ...chainSources(chain.publicClient, {
        ModelRegistry: c.ModelRegistry,
        AttributionSettlement: c.AttributionSettlement,
        ContributionBonds: c.ContributionBonds,
        ModelStaking: c.ModelStaking,
      }),
      blob: download,
      baseModel: async (name, sha256) => {
        try {
          return await catalogueModelBySha(catalog, name, sha256);
        } catch (error) {
          // Not here (or built differently here): the node's own file, checked by its sha256.
          if (!(error instanceof OpenLedgerError) || error.code !== 'BASE_MODEL_MISMATCH')
            throw error;
          const dir = path.join(
            options.cacheDir ?? path.join(tmpdir(), 'openledger-verify'),
            sha256,
          );
          const file = path.join(dir, `${name.replace(/[^\w.-]/g, '_')}.gguf`);
          if ((await stat(file).catch(() => undefined))?.isFile()) return file;
          const bytes = await download(sha256);
          await writeFileAtomic(file, bytes);
          return file;
        }
      },
    },
  );
  return verifyAttributionReceipt(claimed, recomputed);
}

/**
 * The RAG channel names its sources' rows and contributors; each cited one must be in its datanet
 * version as committed on-chain (the registry's `verifyRow` over the node's Merkle proof), so a
 * receipt cannot pay a contributor for a row that is not theirs. Reading the proof needs read
 * access to the datanet, as the answer's caller had.
 */
async function ragSourcesOnChain(
  receipt: AttributionReceipt,
  client: NodeClient,
  chain: ChainConnection,
  registry: Address | undefined,
): Promise<ReceiptVerification | null> {
  const sources = receipt.channels.rag?.sources ?? [];
  if (sources.length === 0) return null;
  if (!registry)
    throw new OpenLedgerError(
      'NOT_DEPLOYED',
      'The node names no DatanetRegistry to check RAG sources against.',
    );
  for (const [i, source] of sources.entries()) {
    if (!source.cited) continue;
    const proof = await client.request<{
      leaf: { contributor: string; contributionIdBytes32: Hex };
      proof: Hex[];
    }>(
      'GET',
      `/api/datanets/${source.datanetId}/versions/${source.version}/proof?rowHash=${source.rowHash}`,
    );
    const included = await chain.publicClient.readContract({
      address: registry,
      abi: DatanetRegistryAbi,
      functionName: 'verifyRow',
      args: [
        BigInt(source.datanetId),
        BigInt(source.version),
        `0x${source.rowHash}`,
        getAddress(source.contributor),
        proof.leaf.contributionIdBytes32,
        proof.proof,
      ],
    });
    if (!included) {
      const hash = attributionReceiptHash(receipt);
      return {
        ok: false,
        path: `channels.rag.sources[${i}].contributor`,
        actual: source.contributor,
        expected: proof.leaf.contributor.toLowerCase(),
        hash,
        expectedHash: '',
      };
    }
  }
  return null;
}

function epochNumber(value: string): bigint {
  if (!/^\d+$/.test(value))
    throw new OpenLedgerError('BAD_REQUEST', `"${value}" is not an epoch number.`);
  return BigInt(value);
}

/** The CLI's wallet with the settlement and token the node names. */
async function walletContext(flags: AuthFlags) {
  const { chain, account, contracts } = await nodeWallet(flags);
  const settlement = contracts.AttributionSettlement;
  const token = contracts.OpenToken;
  if (!settlement || !token)
    throw new OpenLedgerError(
      'SETTLEMENT_UNAVAILABLE',
      'The node names no attribution settlement.',
    );
  return { chain, account, settlement, token };
}

export function registerRewardCommands(attribution: Command, out: Output, signer: SignerOptions) {
  signer(
    attribution
      .command('receipt')
      .description("a paid call's attribution receipt: payouts, spans and rows credited")
      .argument('<id>', 'the inference id (x-openledger-receipt-id of the call)'),
  )
    .option('--save <file>', 'write the receipt bundle (receipt, prompt, output) for verify')
    .action(async (id: string, options: AuthFlags & { save?: string }) => {
      const client = await authenticatedClient(options);
      const answer = await fetchReceipt(client, id);
      if (options.save) {
        if (!answer.receipt || answer.promptTokens === undefined || answer.output === undefined)
          throw new OpenLedgerError(
            'FORBIDDEN',
            "A bundle needs the attributed receipt and the call's prompt and output (given to its caller).",
          );
        const bundle: ReceiptBundle = {
          kind: 'openledger.attribution-bundle',
          receipt: answer.receipt,
          inferenceReceipt: answer.inferenceReceipt,
          promptTokens: answer.promptTokens,
          output: answer.output,
        };
        await writeFile(options.save, `${JSON.stringify(bundle, null, 2)}\n`);
      }
      out.result(answer, describeReceipt);
    });

  signer(
    attribution
      .command('verify')
      .description(
        'recompute a receipt from public data (chain, blobs, base model) and compare it bit for bit',
      )
      .argument('<receipt>', 'an inference id (yours), or a bundle file saved by `receipt --save`'),
  )
    .option('--rpc <url>', "the chain's RPC (default: the node's)")
    .option(
      '--models-dir <dir>',
      'a folder holding the base model (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action(async (ref: string, options: AuthFlags & { rpc?: string; modelsDir?: string[] }) => {
      const { bundle, client } = await loadBundle(ref, options);
      out.progress('recomputing the receipt');
      const result = await verifyBundle(bundle, client, {
        ...(options.rpc ? { rpc: options.rpc } : {}),
        ...(options.modelsDir ? { modelsDirs: options.modelsDir } : {}),
      });
      out.result(result, (r) =>
        r.ok
          ? `✓ receipt ${r.hash} reproduced bit for bit`
          : [
              `✗ receipt ${r.hash} differs from the recomputed ${r.expectedHash}`,
              `  first difference at ${r.path || '(the whole document)'}:`,
              `    receipt:    ${JSON.stringify(r.actual)}`,
              `    recomputed: ${JSON.stringify(r.expected)}`,
            ].join('\n'),
      );
      if (!result.ok) process.exitCode = 1;
    });

  signer(
    attribution
      .command('earnings')
      .description(
        'earnings of an address (default: yours) by role, datanet and model, and its claim',
      )
      .argument('[address]', 'the address'),
  ).action(async (address: string | undefined, options: AuthFlags) => {
    const client = address ? new NodeClient(options.url) : await authenticatedClient(options);
    const who =
      address ?? (await client.request<{ address: string }>('GET', '/api/auth/session')).address;
    const e = await client.request<{
      address: string;
      total: string;
      inferences: number;
      byRole: Record<string, string>;
      byDatanet: { datanetId: number; amount: string }[];
      byModel: { modelId: number; amount: string; inferences: number }[];
      claim: { claimable: string; claimed: string; pendingPosted: string; pendingUnposted: string };
    }>('GET', `/api/attribution/earnings/${who}`);
    out.result(e, (x) =>
      [
        `${x.address}: ${open(x.total)} from ${x.inferences} paid call(s)`,
        ...Object.entries(x.byRole).map(([role, v]) => `  as ${role}: ${open(v)}`),
        ...(x.byDatanet.length ? ['by datanet:'] : []),
        ...x.byDatanet.map((d) => `  datanet ${d.datanetId}: ${open(d.amount)}`),
        ...(x.byModel.length ? ['by model:'] : []),
        ...x.byModel.map(
          (m) => `  model ${m.modelId}: ${open(m.amount)} (${m.inferences} call(s))`,
        ),
        `claimable now ${open(x.claim.claimable)}; claimed ${open(x.claim.claimed)}; in challenge window ${open(x.claim.pendingPosted)}; not posted yet ${open(x.claim.pendingUnposted)}`,
      ].join('\n'),
    );
  });

  signer(
    attribution
      .command('claim')
      .description(
        "claim your (or an address's) attributed rewards on-chain; the node pays the gas",
      )
      .argument('[address]', 'whose rewards (default: yours); the OPEN always goes to it'),
  )
    .option('--proof', 'only print the claim and its Merkle proof, without claiming')
    .action(async (address: string | undefined, options: AuthFlags & { proof?: boolean }) => {
      const client = await authenticatedClient(options);
      if (options.proof) {
        const who =
          address ??
          (await client.request<{ address: string }>('GET', '/api/auth/session')).address;
        const info = await client.request<{
          epoch: number | null;
          cumulative: string;
          claimable: string;
          proof: string[];
        }>('GET', `/api/attribution/claims/${who}`);
        out.result(info, (i) =>
          [
            `epoch ${i.epoch ?? '-'}  cumulative ${open(i.cumulative)}  claimable ${open(i.claimable)}`,
            ...i.proof.map((p) => `  ${p}`),
          ].join('\n'),
        );
        return;
      }
      const result = await client.request<{ tx: string; amount: string; epoch: number }>(
        'POST',
        '/api/attribution/claims',
        address ? { address } : {},
      );
      out.result(result, (r) => `claimed ${open(r.amount)} (epoch ${r.epoch}) in ${r.tx}`);
    });

  signer(
    attribution
      .command('revenue')
      .description(
        "a published model's attributed revenue: paid calls, fees, paid per role, top contributors",
      )
      .argument('<model>', 'the Model ID'),
  ).action(async (model: string, options: AuthFlags) => {
    if (!/^\d+$/.test(model))
      throw new OpenLedgerError('BAD_REQUEST', `"${model}" is not a Model ID.`);
    const client = new NodeClient(options.url);
    const r = await client.request<{
      modelId: number;
      inferences: number;
      fees: string;
      collected: string;
      byRole: Record<string, string>;
      topContributors: { address: string; amount: string }[];
    }>('GET', `/api/attribution/models/${model}/revenue`);
    out.result(r, (x) =>
      [
        `model ${x.modelId}: ${x.inferences} paid call(s), fees ${open(x.fees)}, collected ${open(x.collected)}`,
        ...Object.entries(x.byRole).map(([role, v]) => `  to ${role}s: ${open(v)}`),
        ...(x.topContributors.length ? ['top contributors:'] : []),
        ...x.topContributors.map((c) => `  ${c.address}  ${open(c.amount)}`),
      ].join('\n'),
    );
  });

  signer(attribution.command('epochs').description('the fee epochs the node posted')).action(
    async (options: AuthFlags) => {
      const client = new NodeClient(options.url);
      const { epochs } = await client.request<{
        epochs: {
          epoch: number;
          status: string;
          total: string;
          receipts: number;
          final: boolean;
          challengeEndsAt: number;
          gasUsed: number;
        }[];
      }>('GET', '/api/attribution/epochs');
      out.result({ epochs }, ({ epochs: list }) =>
        list.length === 0
          ? 'no epoch posted yet'
          : list
              .map(
                (e) =>
                  `epoch ${e.epoch}  ${e.status}${e.final ? ' (final)' : ` (challengeable until ${new Date(e.challengeEndsAt * 1000).toISOString()})`}  ${open(e.total)}  ${e.receipts} receipt(s)  gas ${e.gasUsed}`,
              )
              .join('\n'),
      );
    },
  );

  signer(
    attribution
      .command('challenge')
      .description(
        "dispute a posted epoch within its challenge window: bonds the settlement's challenge bond from your wallet (you pay the gas)",
      )
      .argument('<epoch>', 'the epoch')
      .requiredOption(
        '--evidence <file>',
        'what the arbiter should look at (e.g. a verify report or a bundle); its sha256 goes on-chain',
      ),
  ).action(async (epoch: string, options: AuthFlags & { evidence: string }) => {
    const { chain, account, settlement, token } = await walletContext(options);
    const evidenceHash = `0x${createHash('sha256')
      .update(await readFile(options.evidence))
      .digest('hex')}` as const;
    const bond = await chain.publicClient.readContract({
      address: settlement,
      abi: AttributionSettlementAbi,
      functionName: 'challengeBond',
    });
    out.progress(`approving the challenge bond of ${open(bond)}`);
    await send(chain, account, {
      address: token,
      abi: OpenTokenAbi,
      functionName: 'approve',
      args: [settlement, bond],
    });
    out.progress(`challenging epoch ${epoch}`);
    const tx = await send(chain, account, {
      address: settlement,
      abi: AttributionSettlementAbi,
      functionName: 'challenge',
      args: [epochNumber(epoch), evidenceHash],
    });
    out.result(
      { epoch: Number(epoch), evidenceHash, bond: bond.toString(), tx },
      (r) =>
        `challenged epoch ${r.epoch} (evidence ${r.evidenceHash}, bond ${open(r.bond)}) in ${r.tx}`,
    );
  });

  signer(
    attribution
      .command('resolve')
      .description(
        'arbiters: decide an open challenge (upheld: the poster is slashed, the epoch voided)',
      )
      .argument('<epoch>', 'the epoch'),
  )
    .option('--upheld', 'the challenge is right')
    .option('--rejected', 'the posting stands')
    .action(
      async (epoch: string, options: AuthFlags & { upheld?: boolean; rejected?: boolean }) => {
        if (Boolean(options.upheld) === Boolean(options.rejected))
          throw new OpenLedgerError('BAD_REQUEST', 'Give exactly one of --upheld or --rejected.');
        const { chain, account, settlement } = await walletContext(options);
        const tx = await send(chain, account, {
          address: settlement,
          abi: AttributionSettlementAbi,
          functionName: 'resolve',
          args: [epochNumber(epoch), Boolean(options.upheld)],
        });
        out.result(
          { epoch: Number(epoch), upheld: Boolean(options.upheld), tx },
          (r) => `${r.upheld ? 'upheld' : 'rejected'} the challenge of epoch ${r.epoch} in ${r.tx}`,
        );
      },
    );

  signer(
    attribution
      .command('run')
      .description('operators: attribute pending paid calls and post closed epochs now'),
  ).action(async (options: AuthFlags) => {
    const client = await authenticatedClient(options);
    const r = await client.request<{
      attributed: number;
      failed: number;
      assigned: number;
      posted: number[];
    }>('POST', '/api/attribution/run');
    out.result(
      r,
      (x) =>
        `attributed ${x.attributed} call(s) (${x.failed} failed), assigned ${x.assigned} to epochs, posted ${x.posted.length ? `epoch(s) ${x.posted.join(', ')}` : 'no epoch'}`,
    );
  });
}
