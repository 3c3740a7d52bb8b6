import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  domainSeparator,
  getAddress,
  keccak256,
  parseEventLogs,
  sha256,
  stringToHex,
  toBytes,
  toHex,
  zeroAddress,
  zeroHash,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import {
  DatanetRegistryBytecode,
  ModelRegistryBytecode,
} from '../src/chain/generated/contracts.ts';
import {
  DatanetRegistryAbi,
  ModelRegistryAbi,
  deployContracts,
  devAccount,
  ensureDeployment,
  writeDeployment,
  type ChainConnection,
} from '../src/chain/index.ts';
import { canonicalJson } from '../src/datanets/ingest/index.ts';
import { schema } from '../src/db/index.ts';
import type { ModelMetadata } from '../src/models/index.ts';
import {
  modelTypedData,
  type ModelSigningContext,
  type PublishFields,
} from '../src/models/typed-data.ts';
import { expectDeployRevert, expectRevert, startTestChain } from './helpers/chain.ts';
import { CLI_ENTRY } from './helpers/cli.ts';
import { call, signIn } from './helpers/http.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';

const deployer = devAccount(0);
const alice = devAccount(1); // publisher
const bob = devAccount(2); // buyer of a model NFT
const carol = devAccount(3); // stranger
const relayer = devAccount(9); // the node

const hash = (text: string) => sha256(stringToHex(text));
const PLATFORM_FEE = 500;

describe('ModelRegistry on a local chain', () => {
  let env: Awaited<ReturnType<typeof startTestChain>>;
  let conn: ChainConnection;
  let datanets: Address;
  let registry: Address;
  let datanetA: bigint; // two versions
  let datanetB: bigint; // one version

  const deploy = async (abi: unknown, bytecode: Hex, args: unknown[] = []) => {
    const txHash = await conn.walletFor(deployer).deployContract({ abi, bytecode, args } as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
    return getAddress(receipt.contractAddress!);
  };

  const send = async (
    account: LocalAccount,
    functionName: string,
    args: readonly unknown[],
    address: Address = registry,
    abi: unknown = ModelRegistryAbi,
  ): Promise<TransactionReceipt> => {
    const { request } = await conn.publicClient.simulateContract({
      address,
      abi,
      functionName,
      args,
      account,
    } as never);
    const txHash = await conn.walletFor(account).writeContract(request as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
    assert.equal(receipt.status, 'success');
    return receipt;
  };
  const read = (functionName: string, args: readonly unknown[] = []) =>
    conn.publicClient.readContract({
      address: registry,
      abi: ModelRegistryAbi,
      functionName,
      args,
    } as never) as Promise<unknown>;
  const events = (receipt: TransactionReceipt, eventName: string) =>
    parseEventLogs({ abi: ModelRegistryAbi, logs: receipt.logs, eventName } as never).map(
      (log) => (log as unknown as { args: Record<string, unknown> }).args,
    );
  const now = async () => (await conn.publicClient.getBlock()).timestamp;

  let counter = 0;
  /** Publish fields for a fresh adapter (each call a new adapter hash). */
  const fields = (overrides: Partial<PublishFields> = {}): PublishFields => ({
    baseModel: hash('base.gguf'),
    adapterHash: hash(`adapter ${++counter}`),
    manifestHash: hash(`manifest ${counter}`),
    metadataHash: hash(`metadata ${counter}`),
    datanets: [
      { datanetId: datanetA, version: 2n },
      { datanetId: datanetB, version: 1n },
    ],
    pricePer1kInput: 10n ** 15n,
    pricePer1kOutput: 2n * 10n ** 15n,
    split: { owner: 6000, stakers: 1000, contributors: 3000 },
    ...overrides,
  });

  const signing = async (
    actor: Address,
    options: { nonce?: bigint; deadline?: bigint } = {},
  ): Promise<ModelSigningContext> => ({
    chainId: conn.chain.id,
    registry,
    nonce: options.nonce ?? ((await read('nonces', [actor])) as bigint),
    deadline: options.deadline ?? (await now()) + 3600n,
  });

  const signPublish = async (
    key: LocalAccount,
    owner: Address,
    f: PublishFields,
    options: { nonce?: bigint; deadline?: bigint } = {},
  ) => {
    const ctx = await signing(owner, options);
    const signature = await key.signTypedData(modelTypedData.publish(ctx, { ...f, owner }));
    return { deadline: ctx.deadline, signature };
  };

  const publishedId = (receipt: TransactionReceipt) =>
    events(receipt, 'ModelPublished')[0]!.modelId as bigint;

  before(async () => {
    env = await startTestChain();
    conn = env.conn;
    datanets = await deploy(DatanetRegistryAbi, DatanetRegistryBytecode);
    registry = await deploy(ModelRegistryAbi, ModelRegistryBytecode, [datanets, PLATFORM_FEE]);
    const create = async () => {
      const receipt = await send(
        deployer,
        'createDatanet',
        [hash('datanet'), 0],
        datanets,
        DatanetRegistryAbi,
      );
      const [log] = parseEventLogs({
        abi: DatanetRegistryAbi,
        logs: receipt.logs,
        eventName: 'DatanetCreated',
      });
      return log!.args.id;
    };
    const commit = (id: bigint) =>
      send(
        deployer,
        'commitVersion',
        [id, hash(`root ${id}`), 3n, hash('manifest')],
        datanets,
        DatanetRegistryAbi,
      );
    datanetA = await create();
    datanetB = await create();
    await commit(datanetA);
    await commit(datanetA);
    await commit(datanetB);
  });
  after(() => env.close());

  it('publishes its EIP-712 domain, type hashes, token name and protocol parameters', async () => {
    const [, name, version, chainId, verifyingContract] = (await read('eip712Domain')) as [
      Hex,
      string,
      string,
      bigint,
      Address,
    ];
    assert.deepEqual(
      [name, version, chainId, verifyingContract],
      ['OpenLedger ModelRegistry', '1', BigInt(conn.chain.id), registry],
    );
    assert.equal(
      await read('DOMAIN_SEPARATOR'),
      domainSeparator({ domain: { name, version, chainId, verifyingContract } }),
    );
    // The type strings, written out here independently of both the contract and the TS types.
    const split = 'Split(uint16 owner,uint16 stakers,uint16 contributors)';
    const expected: Record<string, string> = {
      PUBLISH_TYPEHASH: `Publish(address owner,bytes32 baseModel,bytes32 adapterHash,bytes32 manifestHash,bytes32 metadataHash,DatanetVersion[] datanets,uint256 pricePer1kInput,uint256 pricePer1kOutput,Split split,uint256 nonce,uint256 deadline)DatanetVersion(uint256 datanetId,uint256 version)${split}`,
      SET_PRICE_TYPEHASH:
        'SetPrice(address owner,uint256 modelId,uint256 pricePer1kInput,uint256 pricePer1kOutput,uint256 nonce,uint256 deadline)',
      SET_SPLIT_TYPEHASH: `SetSplit(address owner,uint256 modelId,Split split,uint256 nonce,uint256 deadline)${split}`,
      SET_ACTIVE_TYPEHASH:
        'SetActive(address owner,uint256 modelId,bool active,uint256 nonce,uint256 deadline)',
      CHANNEL_WEIGHTS_TYPEHASH: 'ChannelWeights(uint16 span,uint16 influence,uint16 rag)',
      SET_CHANNEL_WEIGHTS_TYPEHASH:
        'SetChannelWeights(address owner,uint256 modelId,ChannelWeights weights,uint256 nonce,uint256 deadline)ChannelWeights(uint16 span,uint16 influence,uint16 rag)',
    };
    for (const [constant, type] of Object.entries(expected))
      assert.equal(await read(constant), keccak256(toHex(type)), constant);
    assert.equal(await read('name'), 'OpenLedger Model');
    assert.equal(await read('symbol'), 'OLMODEL');
    assert.equal(await read('platformFeeBps'), PLATFORM_FEE);
    assert.equal(await read('datanetRegistry'), datanets);
  });

  it('refuses a deployment without a datanet registry or with a fee over 100%', async () => {
    await expectDeployRevert(
      conn,
      deployer.address,
      { abi: ModelRegistryAbi, bytecode: ModelRegistryBytecode, args: [zeroAddress, 0] },
      'ZeroAddress',
    );
    await expectDeployRevert(
      conn,
      deployer.address,
      { abi: ModelRegistryAbi, bytecode: ModelRegistryBytecode, args: [datanets, 10_001] },
      'InvalidPlatformFee',
    );
  });

  it('publishes a model from a relayed signature: an NFT to the signer, the record, events', async () => {
    const f = fields();
    const before = (await read('modelCount')) as bigint;
    const aliceBalance = await conn.publicClient.getBalance({ address: alice.address });
    const { deadline, signature } = await signPublish(alice, alice.address, f);
    const receipt = await send(relayer, 'publishWithSig', [alice.address, f, deadline, signature]);
    const id = publishedId(receipt);
    assert.equal(id, before + 1n);
    assert.equal(await read('modelCount'), id);
    assert.equal(await read('ownerOf', [id]), alice.address);
    assert.equal(await read('balanceOf', [alice.address]), 1n);
    assert.equal(await conn.publicClient.getBalance({ address: alice.address }), aliceBalance);
    const block = await conn.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    assert.deepEqual(await read('model', [id]), {
      baseModel: f.baseModel,
      adapterHash: f.adapterHash,
      manifestHash: f.manifestHash,
      metadataHash: f.metadataHash,
      pricePer1kInput: f.pricePer1kInput,
      pricePer1kOutput: f.pricePer1kOutput,
      split: f.split,
      active: true,
      publishedAt: block.timestamp,
      publisher: alice.address,
    });
    assert.deepEqual(await read('datanetVersionsOf', [id]), f.datanets);
    assert.equal(await read('modelOfAdapter', [f.adapterHash]), id);
    assert.equal(await read('modelOfAdapter', [hash('never published')]), 0n);
    assert.deepEqual(events(receipt, 'ModelPublished'), [
      {
        modelId: id,
        owner: alice.address,
        adapterHash: f.adapterHash,
        baseModel: f.baseModel,
        manifestHash: f.manifestHash,
        metadataHash: f.metadataHash,
        datanets: f.datanets,
      },
    ]);
    assert.deepEqual(events(receipt, 'PriceSet'), [
      { modelId: id, pricePer1kInput: f.pricePer1kInput, pricePer1kOutput: f.pricePer1kOutput },
    ]);
    assert.deepEqual(events(receipt, 'SplitSet'), [{ modelId: id, ...f.split }]);
    assert.deepEqual(events(receipt, 'Transfer'), [
      { from: zeroAddress, to: alice.address, tokenId: id },
    ]);
  });

  it('publishes directly, too (the caller owns it)', async () => {
    const receipt = await send(carol, 'publish', [fields()]);
    assert.equal(await read('ownerOf', [publishedId(receipt)]), carol.address);
  });

  it('refuses a replayed, altered, foreign, expired or zero-address signature', async () => {
    const f = fields();
    const signed = await signPublish(alice, alice.address, f);
    // another field than the one signed
    await expectRevert(
      send(relayer, 'publishWithSig', [
        alice.address,
        { ...f, pricePer1kOutput: 0n },
        signed.deadline,
        signed.signature,
      ]),
      'InvalidSignature',
    );
    await expectRevert(
      send(relayer, 'publishWithSig', [
        alice.address,
        { ...f, split: { owner: 10_000, stakers: 0, contributors: 0 } },
        signed.deadline,
        signed.signature,
      ]),
      'InvalidSignature',
    );
    await expectRevert(
      send(relayer, 'publishWithSig', [
        alice.address,
        { ...f, datanets: [f.datanets[0]] },
        signed.deadline,
        signed.signature,
      ]),
      'InvalidSignature',
    );
    // someone else's key, claiming alice
    const forged = await signPublish(carol, alice.address, f);
    await expectRevert(
      send(relayer, 'publishWithSig', [alice.address, f, forged.deadline, forged.signature]),
      'InvalidSignature',
    );
    // a later deadline than signed
    await expectRevert(
      send(relayer, 'publishWithSig', [alice.address, f, signed.deadline + 1n, signed.signature]),
      'InvalidSignature',
    );
    // the genuine signature goes through once; replaying it fails (its nonce is used)
    const receipt = await send(relayer, 'publishWithSig', [
      alice.address,
      f,
      signed.deadline,
      signed.signature,
    ]);
    const g = fields();
    const stale = await signPublish(alice, alice.address, g, {
      nonce: ((await read('nonces', [alice.address])) as bigint) - 1n,
    });
    await expectRevert(
      send(relayer, 'publishWithSig', [alice.address, g, stale.deadline, stale.signature]),
      'InvalidSignature',
    );
    assert.ok(publishedId(receipt) > 0n);
    // expired
    const past = (await now()) - 1n;
    const expired = await signPublish(alice, alice.address, g, { deadline: past });
    await expectRevert(
      send(relayer, 'publishWithSig', [alice.address, g, past, expired.signature]),
      'ExpiredSignature',
    );
    const zero = await signPublish(alice, zeroAddress, g);
    await expectRevert(
      send(relayer, 'publishWithSig', [zeroAddress, g, zero.deadline, zero.signature]),
      'ZeroAddress',
    );
  });

  it('registers an adapter once', async () => {
    const f = fields();
    const first = publishedId(await send(alice, 'publish', [f]));
    await expectRevert(send(carol, 'publish', [f]), 'AdapterAlreadyRegistered');
    await expectRevert(
      send(alice, 'publish', [{ ...f, manifestHash: hash('other manifest') }]),
      'AdapterAlreadyRegistered',
    );
    assert.equal(await read('modelOfAdapter', [f.adapterHash]), first);
  });

  it('refuses a bad split, missing hashes, and datanet versions the DatanetRegistry lacks', async () => {
    for (const split of [
      { owner: 6000, stakers: 1000, contributors: 2999 },
      { owner: 6000, stakers: 1000, contributors: 3001 },
      { owner: 65535, stakers: 65535, contributors: 0 },
    ])
      await expectRevert(send(alice, 'publish', [fields({ split })]), 'InvalidSplit');
    for (const key of ['baseModel', 'adapterHash', 'manifestHash'] as const)
      await expectRevert(send(alice, 'publish', [fields({ [key]: zeroHash })]), 'EmptyHash');
    const count = (await conn.publicClient.readContract({
      address: datanets,
      abi: DatanetRegistryAbi,
      functionName: 'datanetCount',
    })) as bigint;
    for (const [datanetId, version] of [
      [datanetA, 3n], // not committed yet
      [datanetB, 0n],
      [0n, 1n],
      [count + 1n, 1n], // no such datanet
    ] as const) {
      await expectRevert(
        send(alice, 'publish', [
          fields({
            datanets: [
              { datanetId: datanetA, version: 1n },
              { datanetId, version },
            ],
          }),
        ]),
        'UnknownDatanetVersion',
      );
    }
    await expectRevert(send(alice, 'publish', [fields({ datanets: [] })]), 'InvalidDatanetCount');
    const many = Array.from({ length: 33 }, () => ({ datanetId: datanetA, version: 1n }));
    await expectRevert(send(alice, 'publish', [fields({ datanets: many })]), 'InvalidDatanetCount');
    // Once the version is committed, the same record is accepted.
    await send(
      deployer,
      'commitVersion',
      [datanetA, hash('root 3'), 4n, hash('manifest 3')],
      datanets,
      DatanetRegistryAbi,
    );
    await send(alice, 'publish', [fields({ datanets: [{ datanetId: datanetA, version: 3n }] })]);
  });

  it('lets only the holder set prices, split and activity, directly or by signature', async () => {
    const id = publishedId(await send(alice, 'publish', [fields()]));
    const priced = await send(alice, 'setPrice', [id, 5n, 7n]);
    assert.deepEqual(events(priced, 'PriceSet'), [
      { modelId: id, pricePer1kInput: 5n, pricePer1kOutput: 7n },
    ]);
    const split = { owner: 5000, stakers: 0, contributors: 5000 };
    const splitSet = await send(alice, 'setSplit', [id, split]);
    assert.deepEqual(events(splitSet, 'SplitSet'), [{ modelId: id, ...split }]);
    await expectRevert(
      send(alice, 'setSplit', [id, { owner: 1, stakers: 1, contributors: 1 }]),
      'InvalidSplit',
    );
    const off = await send(alice, 'setActive', [id, false]);
    assert.deepEqual(events(off, 'ActiveSet'), [{ modelId: id, active: false }]);
    let record = (await read('model', [id])) as Record<string, unknown>;
    assert.deepEqual(
      [record.pricePer1kInput, record.pricePer1kOutput, record.split, record.active],
      [5n, 7n, split, false],
    );

    await expectRevert(send(carol, 'setPrice', [id, 0n, 0n]), 'NotModelOwner');
    await expectRevert(send(carol, 'setSplit', [id, split]), 'NotModelOwner');
    await expectRevert(send(carol, 'setActive', [id, true]), 'NotModelOwner');
    await expectRevert(send(alice, 'setPrice', [999_999n, 0n, 0n]), 'UnknownModel');
    await expectRevert(read('model', [999_999n]), 'UnknownModel');

    // A stranger's own valid signature does not make it the holder.
    const strangerCtx = await signing(carol.address);
    const strangerSig = await carol.signTypedData(
      modelTypedData.setPrice(strangerCtx, {
        owner: carol.address,
        modelId: id,
        pricePer1kInput: 0n,
        pricePer1kOutput: 0n,
      }),
    );
    await expectRevert(
      send(relayer, 'setPriceWithSig', [
        carol.address,
        id,
        0n,
        0n,
        strangerCtx.deadline,
        strangerSig,
      ]),
      'NotModelOwner',
    );

    // Relayed updates by the holder.
    let ctx = await signing(alice.address);
    let sig = await alice.signTypedData(
      modelTypedData.setPrice(ctx, {
        owner: alice.address,
        modelId: id,
        pricePer1kInput: 11n,
        pricePer1kOutput: 13n,
      }),
    );
    await send(relayer, 'setPriceWithSig', [alice.address, id, 11n, 13n, ctx.deadline, sig]);
    await expectRevert(
      send(relayer, 'setPriceWithSig', [alice.address, id, 11n, 13n, ctx.deadline, sig]),
      'InvalidSignature',
    );
    ctx = await signing(alice.address);
    const split2 = { owner: 7000, stakers: 1000, contributors: 2000 };
    sig = await alice.signTypedData(
      modelTypedData.setSplit(ctx, { owner: alice.address, modelId: id, split: split2 }),
    );
    await send(relayer, 'setSplitWithSig', [alice.address, id, split2, ctx.deadline, sig]);
    ctx = await signing(alice.address);
    sig = await alice.signTypedData(
      modelTypedData.setActive(ctx, { owner: alice.address, modelId: id, active: true }),
    );
    await send(relayer, 'setActiveWithSig', [alice.address, id, true, ctx.deadline, sig]);
    record = (await read('model', [id])) as Record<string, unknown>;
    assert.deepEqual(
      [record.pricePer1kInput, record.pricePer1kOutput, record.split, record.active],
      [11n, 13n, split2, true],
    );

    // The token changes hands: the new holder decides, the old one no longer may.
    await send(alice, 'transferFrom', [alice.address, bob.address, id]);
    await expectRevert(send(alice, 'setPrice', [id, 1n, 1n]), 'NotModelOwner');
    await send(bob, 'setPrice', [id, 1n, 1n]);
    record = (await read('model', [id])) as Record<string, unknown>;
    assert.equal(record.publisher, alice.address, 'the publisher stays on record');
  });

  it('gives a model the default channel weights until its holder sets its own, directly or by signature', async () => {
    const id = publishedId(await send(alice, 'publish', [fields()]));
    const defaults = { span: 5000, influence: 3000, rag: 2000 };
    assert.deepEqual(
      [
        await read('DEFAULT_SPAN_BPS'),
        await read('DEFAULT_INFLUENCE_BPS'),
        await read('DEFAULT_RAG_BPS'),
      ],
      [defaults.span, defaults.influence, defaults.rag],
    );
    assert.deepEqual(await read('channelWeightsOf', [id]), defaults);
    await expectRevert(read('channelWeightsOf', [999_999n]), 'UnknownModel');

    const own = { span: 10_000, influence: 0, rag: 0 };
    const set = await send(alice, 'setChannelWeights', [id, own]);
    assert.deepEqual(events(set, 'ChannelWeightsSet'), [{ modelId: id, ...own }]);
    assert.deepEqual(await read('channelWeightsOf', [id]), own);
    for (const bad of [
      { span: 5000, influence: 3000, rag: 1999 },
      { span: 5000, influence: 3000, rag: 2001 },
      { span: 0, influence: 0, rag: 0 },
      { span: 65535, influence: 65535, rag: 0 },
    ])
      await expectRevert(send(alice, 'setChannelWeights', [id, bad]), 'InvalidChannelWeights');
    await expectRevert(send(carol, 'setChannelWeights', [id, defaults]), 'NotModelOwner');
    await expectRevert(send(alice, 'setChannelWeights', [999_999n, defaults]), 'UnknownModel');

    const signWeights = async (
      key: LocalAccount,
      weights: typeof own,
      options: { deadline?: bigint } = {},
    ) => {
      const ctx = await signing(key.address, options);
      const signature = await key.signTypedData(
        modelTypedData.setChannelWeights(ctx, { owner: key.address, modelId: id, weights }),
      );
      return { deadline: ctx.deadline, signature };
    };
    const relayed = { span: 6000, influence: 2500, rag: 1500 };
    const signed = await signWeights(alice, relayed);
    // altered weights, a foreign key claiming alice, and a stranger's own signature all fail
    await expectRevert(
      send(relayer, 'setChannelWeightsWithSig', [
        alice.address,
        id,
        defaults,
        signed.deadline,
        signed.signature,
      ]),
      'InvalidSignature',
    );
    const forged = await signWeights(carol, relayed);
    await expectRevert(
      send(relayer, 'setChannelWeightsWithSig', [
        alice.address,
        id,
        relayed,
        forged.deadline,
        forged.signature,
      ]),
      'InvalidSignature',
    );
    await expectRevert(
      send(relayer, 'setChannelWeightsWithSig', [
        carol.address,
        id,
        relayed,
        forged.deadline,
        forged.signature,
      ]),
      'NotModelOwner',
    );
    const past = (await now()) - 1n;
    const expired = await signWeights(alice, relayed, { deadline: past });
    await expectRevert(
      send(relayer, 'setChannelWeightsWithSig', [
        alice.address,
        id,
        relayed,
        past,
        expired.signature,
      ]),
      'ExpiredSignature',
    );
    const receipt = await send(relayer, 'setChannelWeightsWithSig', [
      alice.address,
      id,
      relayed,
      signed.deadline,
      signed.signature,
    ]);
    assert.deepEqual(events(receipt, 'ChannelWeightsSet'), [{ modelId: id, ...relayed }]);
    assert.deepEqual(await read('channelWeightsOf', [id]), relayed);
    await expectRevert(
      send(relayer, 'setChannelWeightsWithSig', [
        alice.address,
        id,
        relayed,
        signed.deadline,
        signed.signature,
      ]),
      'InvalidSignature',
    );
  });

  it('is deployed with the suite, wired to its DatanetRegistry', async () => {
    const suite = await deployContracts(conn, { signer: deployer });
    const wired = await conn.publicClient.readContract({
      address: suite.contracts.ModelRegistry,
      abi: ModelRegistryAbi,
      functionName: 'datanetRegistry',
    });
    assert.equal(wired, suite.contracts.DatanetRegistry);
    // A record written before the ModelRegistry existed is not live: the suite is redeployed.
    const { ModelRegistry: _, ...older } = suite.contracts;
    await writeDeployment(env.dataDir, { ...suite, contracts: older as typeof suite.contracts });
    const again = await ensureDeployment(conn, { dataDir: env.dataDir, signer: deployer });
    assert.equal(again.deployedNow, true);
    assert.match(again.deployment.contracts.ModelRegistry, /^0x[0-9a-fA-F]{40}$/);
    assert.notEqual(again.deployment.contracts.DatanetRegistry, suite.contracts.DatanetRegistry);
  });
});

describe('model channel weights over the API and the CLI', () => {
  let node: TestNode;
  let modelId: number;
  const base = { span: 5000, influence: 3000, rag: 2000 };

  const chainSend = async (
    account: LocalAccount,
    address: Address,
    abi: unknown,
    functionName: string,
    args: readonly unknown[],
  ) => {
    const { chain } = node.node.context;
    const { request } = await chain.publicClient.simulateContract({
      address,
      abi,
      functionName,
      args,
      account,
    } as never);
    const txHash = await chain.walletFor(account).writeContract(request as never);
    return chain.publicClient.waitForTransactionReceipt({ hash: txHash });
  };
  /** `signer` signs SetChannelWeights for `owner` at `owner`'s nonce, as the node reports it. */
  const sign = async (
    signer: LocalAccount,
    weights: typeof base,
    owner: Address = signer.address,
    id = modelId,
  ) => {
    const info = (await call(node.url, 'GET', `/api/models/signing-info?address=${owner}`)).body;
    const ctx = {
      chainId: info.chainId,
      registry: info.registry,
      nonce: BigInt(info.nonce),
      deadline: BigInt(Math.floor(Date.now() / 1000) + 600),
    };
    const signature = await signer.signTypedData(
      modelTypedData.setChannelWeights(ctx, { owner, modelId: BigInt(id), weights }),
    );
    return { ...weights, authorization: { signature, deadline: ctx.deadline.toString() } };
  };

  before(async () => {
    node = await startTestNode();
    const { context } = node.node;
    const { DatanetRegistry, ModelRegistry } = context.deployment.contracts;
    // A model published straight on-chain (its metadata blob on this node, its job a row here),
    // then restored by the node's reconcile: no training needed to exercise the channel weights.
    await chainSend(carol, DatanetRegistry, DatanetRegistryAbi, 'createDatanet', [
      hash('datanet'),
      0,
    ]);
    await chainSend(carol, DatanetRegistry, DatanetRegistryAbi, 'commitVersion', [
      1n,
      hash('root'),
      3n,
      hash('manifest'),
    ]);
    const [job] = await context.database.db
      .insert(schema.jobs)
      .values({ kind: 'factory.train', owner: alice.address, status: 'succeeded', params: {} })
      .returning();
    const metadata: ModelMetadata = {
      kind: 'openledger.model',
      formatVersion: 1,
      name: 'Weighted',
      description: '',
      jobId: job!.id,
      publisher: alice.address,
      baseModel: { name: 'base', title: 'base', sha256: hash('base').slice(2), bytes: 1 },
      adapter: {
        format: 'gguf-lora',
        sha256: hash('adapter').slice(2),
        rank: 2,
        alpha: 4,
        targets: [],
      },
      template: 'chatml',
      datanets: [{ id: 1, version: 1 }],
      manifestHash: hash('training manifest'),
      manifestBlobId: hash('training manifest').slice(2),
      evaluation: { evalLoss: null, baseEvalLoss: null },
    };
    await context.blobs.put(canonicalJson(metadata));
    await chainSend(alice, ModelRegistry, ModelRegistryAbi, 'publish', [
      {
        baseModel: hash('base'),
        adapterHash: hash('adapter'),
        manifestHash: hash('training manifest'),
        metadataHash: sha256(toBytes(canonicalJson(metadata))),
        datanets: [{ datanetId: 1n, version: 1n }],
        pricePer1kInput: 1n,
        pricePer1kOutput: 2n,
        split: { owner: 6000, stakers: 1000, contributors: 3000 },
      },
    ]);
    assert.deepEqual(await context.publishedModels!.reconcile(), { restored: 1, refreshed: 0 });
    modelId = 1;
  });
  after(() => node?.close());

  it('shows the defaults, sets the holder-signed weights, and refuses everything else', async () => {
    const shown = await call(node.url, 'GET', `/api/models/${modelId}`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.deepEqual(shown.body.channelWeights, base);
    const put = (token: string | undefined, body: unknown, id = modelId) =>
      call(node.url, 'PUT', `/api/models/${id}/channel-weights`, {
        body,
        ...(token ? { token } : {}),
      });
    const aliceToken = await signIn(node.url, alice);
    const bobToken = await signIn(node.url, bob);
    const own = { span: 7000, influence: 2000, rag: 1000 };

    const expectError = async (
      answer: Promise<{ status: number; body: any }>, // eslint-disable-line @typescript-eslint/no-explicit-any
      status: number,
      code: string,
    ) => {
      const { status: got, body } = await answer;
      assert.equal(got, status, JSON.stringify(body));
      assert.equal(body.error.code, code);
    };
    await expectError(put(undefined, await sign(alice, own)), 401, 'UNAUTHENTICATED');
    await expectError(
      put(aliceToken, await sign(alice, { span: 7000, influence: 2000, rag: 999 })),
      400,
      'VALIDATION_FAILED',
    );
    await expectError(
      put(aliceToken, { ...(await sign(alice, own)), span: 6000, rag: 2000 }),
      401,
      'INVALID_SIGNATURE',
    );
    // bob's key for alice's address; then bob, validly signed, is not the holder
    await expectError(
      put(aliceToken, await sign(bob, own, alice.address)),
      401,
      'INVALID_SIGNATURE',
    );
    await expectError(put(bobToken, await sign(bob, own)), 403, 'FORBIDDEN');
    await expectError(
      put(aliceToken, await sign(alice, own, alice.address, 99), 99),
      404,
      'MODEL_NOT_FOUND',
    );
    assert.deepEqual(
      (await call(node.url, 'GET', `/api/models/${modelId}`)).body.channelWeights,
      base,
    );

    const set = await put(aliceToken, await sign(alice, own));
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.channelWeights, own);
    assert.equal(set.body.modelId, modelId);
    assert.match(set.body.txHash, /^0x[0-9a-f]{64}$/);
    assert.deepEqual(
      (await call(node.url, 'GET', `/api/models/${modelId}`)).body.channelWeights,
      own,
    );
  });

  it('sets them from the CLI, signed with the wallet of the holder', async () => {
    const child = spawn(
      process.execPath,
      [
        CLI_ENTRY,
        'models',
        'channel-weights',
        String(modelId),
        '--url',
        node.url,
        '--account',
        '1',
        '--span',
        '10000',
        '--influence',
        '0',
        '--rag',
        '0',
        '--json',
      ],
      { env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr);
    const answer = JSON.parse(stdout);
    assert.deepEqual(answer.channelWeights, { span: 10_000, influence: 0, rag: 0 });
    const onChain = await node.node.context.chain.publicClient.readContract({
      address: node.node.context.deployment.contracts.ModelRegistry,
      abi: ModelRegistryAbi,
      functionName: 'channelWeightsOf',
      args: [BigInt(modelId)],
    });
    assert.deepEqual(onChain, { span: 10_000, influence: 0, rag: 0 });
  });
});
