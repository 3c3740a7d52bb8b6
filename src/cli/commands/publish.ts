import { formatUnits, parseUnits, type Address, type Hex } from 'viem';
import { resolveSigner } from '../../chain/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import {
  modelTypedData,
  publishFieldsFromPlan,
  type RevenueSplit,
} from '../../models/typed-data.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import type { AuthFlags } from './keys.ts';

/** Signatures stay valid for an hour, as with the datanet commands. */
const DEADLINE_SECONDS = 3600;

interface ModelJson {
  id: number;
  name: string;
  owner: string;
  baseModelName: string;
  baseModelSha256: string;
  adapterBlobId: string;
  manifestHash: string;
  datanets: { id: number; version: number }[];
  pricePer1kInput: string;
  pricePer1kOutput: string;
  split: RevenueSplit;
  txHash: string;
  created?: boolean;
}

interface PlanAnswer {
  existing: ModelJson | null;
  publish?: Parameters<typeof publishFieldsFromPlan>[0];
  signing?: { chainId: number; registry: Address; nonce: string };
}

/** An amount of OPEN per 1,000 tokens ("0.01") in wei. */
export function parseOpen(flag: string, value: string): bigint {
  if (!/^\d+(\.\d{1,18})?$/.test(value.trim()))
    throw new OpenLedgerError(
      'BAD_REQUEST',
      `${flag} ${value}: expected an amount of OPEN per 1,000 tokens, e.g. 0.01.`,
    );
  return parseUnits(value.trim(), 18);
}

/**
 * `owner=6000,stakers=1000,contributors=3000` in basis points, or the same with percentages
 * (`owner=60%`); a part left out is 0. The node checks that the parts add up to 10000.
 */
export function parseSplit(text: string): RevenueSplit {
  const split: RevenueSplit = { owner: 0, stakers: 0, contributors: 0 };
  for (const part of text.split(',')) {
    const match = /^\s*(owner|stakers|contributors)\s*=\s*(\d+(?:\.\d+)?)(%?)\s*$/.exec(part);
    if (!match)
      throw new OpenLedgerError(
        'BAD_REQUEST',
        `--split ${text}: expected owner=N,stakers=N,contributors=N in basis points (or N%).`,
      );
    const value = match[3] ? Number(match[2]) * 100 : Number(match[2]);
    if (!Number.isInteger(value))
      throw new OpenLedgerError('BAD_REQUEST', `--split ${part}: whole basis points only.`);
    split[match[1] as keyof RevenueSplit] = value;
  }
  return split;
}

/** `openledger publish <jobId>`: registers a succeeded job's adapter as a model on-chain. */
export async function publish(
  flags: AuthFlags & {
    jobId: string;
    priceIn: string;
    priceOut: string;
    split?: string;
    name?: string;
    description?: string;
  },
  out: Output,
): Promise<void> {
  const body = {
    jobId: flags.jobId,
    pricePer1kInput: parseOpen('--price-in', flags.priceIn).toString(),
    pricePer1kOutput: parseOpen('--price-out', flags.priceOut).toString(),
    ...(flags.split ? { split: parseSplit(flags.split) } : {}),
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags.description ? { description: flags.description } : {}),
  };
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

  const plan = await client.request<PlanAnswer>('POST', '/api/models/plan', body);
  let model: ModelJson;
  if (plan.existing) {
    model = { ...plan.existing, created: false };
  } else {
    const signing = plan.signing!;
    const ctx = {
      chainId: signing.chainId,
      registry: signing.registry,
      nonce: BigInt(signing.nonce),
      deadline: BigInt(Math.floor(Date.now() / 1000) + DEADLINE_SECONDS),
    };
    const signature: Hex = await signer.signTypedData(
      modelTypedData.publish(ctx, {
        ...publishFieldsFromPlan(plan.publish!),
        owner: signer.address,
      }),
    );
    out.progress('registering the model on-chain');
    model = await client.request<ModelJson>('POST', '/api/models', {
      ...body,
      authorization: { signature, deadline: ctx.deadline.toString() },
    });
    out.progressDone('registered');
  }
  out.result(model, (m) =>
    [
      `${m.created ? 'published' : 'already published:'} model ${m.id} "${m.name}" owned by ${m.owner}`,
      `  base      ${m.baseModelName} (sha256 ${m.baseModelSha256})`,
      `  adapter   blob ${m.adapterBlobId} (GGUF LoRA)`,
      `  trained   on ${m.datanets.map((d) => `datanet ${d.id} v${d.version}`).join(', ')}; manifest ${m.manifestHash}`,
      `  price     ${formatUnits(BigInt(m.pricePer1kInput), 18)} OPEN per 1k input tokens, ${formatUnits(BigInt(m.pricePer1kOutput), 18)} per 1k output tokens`,
      `  split     owner ${m.split.owner / 100}%, stakers ${m.split.stakers / 100}%, contributors ${m.split.contributors / 100}% (after the platform fee)`,
      `  tx        ${m.txHash}`,
    ].join('\n'),
  );
}
