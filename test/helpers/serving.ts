import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sha256, stringToHex, type Address, type LocalAccount } from 'viem';
import { DatanetRegistryAbi, ModelRegistryAbi, devAccount } from '../../src/chain/index.ts';
import { schema } from '../../src/db/index.ts';
import { resolveConfig, type ServingConfig } from '../../src/config.ts';
import { GGML_TYPE, gguf, writeGguf, type GgufValue } from '../../src/engine/gguf/index.ts';
import { LORA_TARGETS, LoraAdapter, Prng, saveLoraGguf } from '../../src/engine/index.ts';
import type { LlamaConfig } from '../../src/engine/model/index.ts';
import { startNode, type RunningNode } from '../../src/node/index.ts';
import { call, signIn } from './http.ts';
import { randomTensors, SHAPE, syntheticVocab } from './models.ts';
import { WEB_DIR } from './node.ts';

/** The tiny random llama the serving tests run (SHAPE of helpers/models.ts, context 256). */
export const TINY_CONTEXT = 256;
export const TINY_CONFIG: LlamaConfig = {
  dim: SHAPE.dim,
  hiddenDim: SHAPE.hidden,
  nLayers: SHAPE.layers,
  nHeads: SHAPE.heads,
  nKvHeads: SHAPE.kvHeads,
  headDim: SHAPE.dim / SHAPE.heads,
  vocabSize: 512,
  contextLength: TINY_CONTEXT,
  ropeFreqBase: 10000,
  ropeDim: SHAPE.dim / SHAPE.heads,
  ropeType: 'normal',
  rmsEps: 1e-5,
};

/**
 * A random llama (F32) with the synthetic vocabulary: always available, a few hundred KB, and
 * fast enough on two cores for hundreds of requests. Its text is gibberish; the tests check
 * the serving, not the prose.
 */
export async function writeTinyModel(file: string, name = 'tiny'): Promise<void> {
  const { dim, hidden, layers, heads, kvHeads } = SHAPE;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['general.name', gguf.string(name)],
    ['llama.context_length', gguf.uint32(TINY_CONTEXT)],
    ['llama.embedding_length', gguf.uint32(dim)],
    ['llama.feed_forward_length', gguf.uint32(hidden)],
    ['llama.block_count', gguf.uint32(layers)],
    ['llama.attention.head_count', gguf.uint32(heads)],
    ['llama.attention.head_count_kv', gguf.uint32(kvHeads)],
    ['llama.rope.dimension_count', gguf.uint32(dim / heads)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.float32(1e-5)],
    ...syntheticVocab(),
  ];
  await mkdir(path.dirname(file), { recursive: true });
  await writeGguf(file, {
    metadata,
    tensors: randomTensors(512).map((t) => ({
      ...t,
      type: GGML_TYPE.F32,
    })),
  });
}

/** A random adapter of the tiny model (B random too, so it changes the output). */
export async function writeTinyAdapter(
  file: string,
  seed: number,
  options: { rank?: number; scale?: number; baseModelName?: string; randomB?: boolean } = {},
): Promise<void> {
  const rank = options.rank ?? 4;
  const adapter = LoraAdapter.create(
    TINY_CONFIG,
    { rank, alpha: rank, dropout: 0, targets: [...LORA_TARGETS] },
    seed,
  );
  const random = new Prng(seed + 1_000_000);
  if (options.randomB !== false)
    for (const layer of adapter.layers)
      for (const pair of Object.values(layer))
        for (let i = 0; i < pair.b.length; i++)
          pair.b[i] = (options.scale ?? 0.05) * random.normal();
  await saveLoraGguf(file, adapter, {
    alpha: rank,
    baseModelName: options.baseModelName ?? 'tiny',
  });
}

export interface ServingNode {
  url: string;
  node: RunningNode;
  dataDir: string;
  /** API keys: dev account 0 (the node's signer: an operator) and dev account 1 (a caller). */
  operatorKey: string;
  callerKey: string;
  close(): Promise<void>;
}

/** A whole node whose catalogue holds the tiny model (as `tiny`), with serving options. */
export async function startServingNode(serving: Partial<ServingConfig> = {}): Promise<ServingNode> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-serving-'));
  await writeTinyModel(path.join(dataDir, 'models', 'tiny.gguf'));
  const base = resolveConfig({ port: '0', chainPort: '0', dataDir, logLevel: 'silent' }, {});
  const node = await startNode({
    ...base,
    modelsDirs: [path.join(dataDir, 'models')],
    webDir: WEB_DIR, // for the Playground's browser test
    // One thread: two on two shared cores spin against other processes and run 100× slower.
    serving: { ...base.serving, baseModels: ['tiny'], threads: 1, ...serving },
  });
  const key = async (account: LocalAccount) => {
    const session = await signIn(node.url, account);
    const created = await call(node.url, 'POST', '/api/keys', {
      token: session,
      body: { name: 'serving test' },
    });
    return created.body.key as string;
  };
  return {
    url: node.url,
    node,
    dataDir,
    operatorKey: await key(devAccount(0)),
    callerKey: await key(devAccount(1)),
    close: async () => {
      await node.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The glibc allocator settings docs/serving.md recommends for a serving node: two arenas and a
 * fixed mmap threshold, so the buffers of unloaded adapters go back to the system.
 */
export const SERVING_MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };

/** Resident set size of this process in bytes, from /proc (what the kernel charges it). */
export async function residentBytes(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/**
 * A published model as the publish flow leaves it, without training a job: a datanet version
 * and a ModelRegistry record on-chain (signed by `owner`), and the node's mirror rows (a
 * succeeded job, the model). Answers the Model ID.
 */
export async function publishServingModel(
  node: ServingNode,
  options: {
    owner: LocalAccount;
    adapterBlob: string;
    name: string;
    price?: { pricePer1kInput: bigint; pricePer1kOutput: bigint };
  },
): Promise<number> {
  const { owner, adapterBlob, name } = options;
  const price = options.price ?? { pricePer1kInput: 0n, pricePer1kOutput: 0n };
  const conn = node.node.context.chain;
  const contracts = node.node.contracts;
  const hash = (text: string) => sha256(stringToHex(text));
  const send = async (address: Address, abi: unknown, fn: string, args: unknown[]) => {
    const { request } = await conn.publicClient.simulateContract({
      address,
      abi,
      functionName: fn,
      args,
      account: owner,
    } as never);
    const tx = await conn.walletFor(owner).writeContract(request as never);
    await conn.publicClient.waitForTransactionReceipt({ hash: tx });
  };
  await send(contracts.DatanetRegistry!, DatanetRegistryAbi, 'createDatanet', [hash(name), 0]);
  const datanetId = await conn.publicClient.readContract({
    address: contracts.DatanetRegistry!,
    abi: DatanetRegistryAbi,
    functionName: 'datanetCount',
  });
  await send(contracts.DatanetRegistry!, DatanetRegistryAbi, 'commitVersion', [
    datanetId,
    hash('root'),
    1n,
    hash('manifest'),
  ]);
  await send(contracts.ModelRegistry!, ModelRegistryAbi, 'publish', [
    {
      baseModel: hash('tiny'),
      adapterHash: `0x${adapterBlob}`,
      manifestHash: hash('manifest'),
      metadataHash: hash(name),
      datanets: [{ datanetId, version: 1n }],
      ...price,
      split: { owner: 6000, stakers: 1000, contributors: 3000 },
    },
  ]);
  const id = Number(
    await conn.publicClient.readContract({
      address: contracts.ModelRegistry!,
      abi: ModelRegistryAbi,
      functionName: 'modelCount',
    }),
  );
  const db = node.node.context.database.db;
  const [job] = await db
    .insert(schema.jobs)
    .values({ kind: 'factory.train', owner: owner.address, status: 'succeeded', params: {} })
    .returning();
  const zero = '0'.repeat(64);
  await db.insert(schema.models).values({
    id,
    owner: owner.address,
    jobId: job!.id,
    name,
    description: '',
    baseModelName: 'tiny',
    baseModelSha256: zero,
    adapterBlobId: adapterBlob,
    manifestHash: zero,
    manifestBlobId: zero,
    metadataHash: zero,
    datanets: [{ id: Number(datanetId), version: 1 }],
    pricePer1kInput: price.pricePer1kInput.toString(),
    pricePer1kOutput: price.pricePer1kOutput.toString(),
    split: { owner: 6000, stakers: 1000, contributors: 3000 },
    txHash: `0x${zero}`,
  });
  return id;
}
