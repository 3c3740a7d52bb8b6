/**
 * The public data attribution reads, as the node and a verifier both get it: the model's terms,
 * penalties and the platform's address from the chain at a given block (any RPC), and the base
 * model from a local catalogue, checked by its sha256. Blobs differ (the node's store, or the
 * node's API for a verifier), so they are passed in.
 */
import { stat } from 'node:fs/promises';
import { getAddress, zeroAddress, type Address } from 'viem';
import type { ChainPublicClient } from '../chain/clients.ts';
import {
  AttributionSettlementAbi,
  ContributionBondsAbi,
  ModelRegistryAbi,
  ModelStakingAbi,
} from '../chain/generated/contracts.ts';
import { OpenLedgerError } from '../errors.ts';
import type { ModelCatalog } from '../factory/models.ts';
import { sha256File } from '../serving/adapters.ts';
import type { AttributionSources, ModelTerms } from './attribute.ts';

export interface ChainSourceContracts {
  ModelRegistry: Address;
  AttributionSettlement: Address;
  ContributionBonds?: Address | undefined;
  /** Absent from deployments before model staking (issue #8): no model has stakers then. */
  ModelStaking?: Address | undefined;
}

const shaCache = new Map<string, { key: string; sha256: string }>();

/** sha256 of a model file, cached by its size and modification time. */
async function modelSha256(file: string): Promise<string> {
  const info = await stat(file);
  const key = `${info.size}:${info.mtimeMs}`;
  const hit = shaCache.get(file);
  if (hit?.key === key) return hit.sha256;
  const sha256 = await sha256File(file);
  shaCache.set(file, { key, sha256 });
  return sha256;
}

/** The catalogue model named `name` whose file hashes to `sha256`, or any with that hash. */
export async function catalogueModelBySha(
  catalog: ModelCatalog,
  name: string,
  sha256: string,
): Promise<string> {
  const models = await catalog.list();
  const named = models.find((m) => m.name === name);
  if (named && (await modelSha256(named.path)) === sha256) return named.path;
  for (const m of models) if (m !== named && (await modelSha256(m.path)) === sha256) return m.path;
  throw new OpenLedgerError(
    'BASE_MODEL_MISMATCH',
    `No local base model has sha256 ${sha256} (the call ran on "${name}"${named ? ', whose file here hashes differently' : ''}).`,
    {
      hint: 'Put the exact GGUF file the node served into a model folder (OPENLEDGER_MODELS_DIR), then verify again.',
      details: { name, sha256 },
    },
  );
}

/** Reads ModelRegistry, ContributionBonds and AttributionSettlement at the block asked for. */
export function chainSources(
  client: ChainPublicClient,
  contracts: ChainSourceContracts,
): Pick<AttributionSources, 'terms' | 'penalized' | 'platform'> {
  const registry = { address: contracts.ModelRegistry, abi: ModelRegistryAbi } as const;
  return {
    async terms(modelId: number, block: bigint): Promise<ModelTerms> {
      const id = BigInt(modelId);
      const staking = contracts.ModelStaking;
      const [model, owner, datanets, weights, platformBps, stakes] = await Promise.all([
        client.readContract({ ...registry, functionName: 'model', args: [id], blockNumber: block }),
        client.readContract({
          ...registry,
          functionName: 'ownerOf',
          args: [id],
          blockNumber: block,
        }),
        client.readContract({
          ...registry,
          functionName: 'datanetVersionsOf',
          args: [id],
          blockNumber: block,
        }),
        client.readContract({
          ...registry,
          functionName: 'channelWeightsOf',
          args: [id],
          blockNumber: block,
        }),
        client.readContract({ ...registry, functionName: 'platformFeeBps', blockNumber: block }),
        // The stakers as they were at the receipt's block (a block before ModelStaking existed
        // has none): they share the model's stakers part by stake.
        staking && staking !== zeroAddress
          ? client
              .readContract({
                address: staking,
                abi: ModelStakingAbi,
                functionName: 'stakesOf',
                args: [id],
                blockNumber: block,
              })
              .catch(async (error: unknown) => {
                const code = await client.getCode({ address: staking, blockNumber: block });
                if (!code || code === '0x') return [[], []] as const;
                throw error;
              })
          : ([[], []] as const),
      ]);
      return {
        id: modelId,
        owner: getAddress(owner).toLowerCase(),
        baseModelSha256: model.baseModel.slice(2),
        adapterHash: model.adapterHash.slice(2),
        manifestHash: model.manifestHash.slice(2),
        price: { pricePer1kInput: model.pricePer1kInput, pricePer1kOutput: model.pricePer1kOutput },
        platformBps: Number(platformBps),
        split: {
          owner: model.split.owner,
          stakers: model.split.stakers,
          contributors: model.split.contributors,
        },
        channelWeights: { span: weights.span, influence: weights.influence, rag: weights.rag },
        datanets: datanets.map((d) => ({ id: Number(d.datanetId), version: Number(d.version) })),
        stakers: stakes[0].map((address, i) => ({
          address: getAddress(address).toLowerCase(),
          stake: stakes[1][i]!,
        })),
      };
    },
    async penalized(addresses: readonly string[], block: bigint): Promise<string[]> {
      const bonds = contracts.ContributionBonds;
      if (!bonds || bonds === zeroAddress) return [];
      const cut = await Promise.all(
        addresses.map((a) =>
          client.readContract({
            address: bonds,
            abi: ContributionBondsAbi,
            functionName: 'rewardsCut',
            args: [getAddress(a)],
            blockNumber: block,
          }),
        ),
      );
      return addresses.filter((_, i) => cut[i]).map((a) => a.toLowerCase());
    },
    async platform(): Promise<string> {
      const treasury = await client.readContract({
        address: contracts.AttributionSettlement,
        abi: AttributionSettlementAbi,
        functionName: 'treasury',
      });
      return treasury.toLowerCase();
    },
  };
}
