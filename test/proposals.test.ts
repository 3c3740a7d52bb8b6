/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * Model proposals on a node (issue #8, item 2), through the CLI a user runs: a proposal is created
 * and funded; the node's evaluator scores a published model that meets the bar (submitted
 * on-chain with the report's hash) and one that does not (nothing sent, a clear message); after
 * the challenge window anyone claims, and the model's holder gets exactly what was funded; a
 * proposal whose deadline passes without a winner refunds its funder. (The contract's own cases,
 * challenges included, are in governance-contracts.test.ts.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseUnits, sha256, stringToHex, type Address, type LocalAccount } from 'viem';
import {
  ModelProposalsAbi,
  ModelRegistryAbi,
  OpenTokenAbi,
  devAccount,
} from '../src/chain/index.ts';
import { canonicalJson } from '../src/datanets/ingest/index.ts';
import { schema } from '../src/db/index.ts';
import { runCli } from './helpers/cli.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call, signIn } from './helpers/http.ts';
import {
  publishServingModel,
  startServingNode,
  writeTinyAdapter,
  type ServingNode,
} from './helpers/serving.ts';

const OPEN = (n: string) => parseUnits(n, 18);
const curator = devAccount(0);
const holder = devAccount(2);
const creator = devAccount(3);
const funder = devAccount(4);

const cli = runCli;

/**
 * A model published on-chain by `owner` citing `datanetId` v1, with the real hashes of the tiny
 * base model and the adapter (the evaluator checks both), and the node's mirror rows.
 */
async function publishOn(
  node: ServingNode,
  options: { owner: LocalAccount; adapterBlob: string; datanetId: number; name: string },
): Promise<number> {
  const conn = node.node.context.chain;
  const registry = node.node.contracts.ModelRegistry!;
  const baseSha = createHash('sha256')
    .update(await readFile(path.join(node.dataDir, 'models', 'tiny.gguf')))
    .digest('hex');
  const { request } = await conn.publicClient.simulateContract({
    address: registry,
    abi: ModelRegistryAbi,
    functionName: 'publish',
    args: [
      {
        baseModel: `0x${baseSha}`,
        adapterHash: `0x${options.adapterBlob}`,
        manifestHash: sha256(stringToHex(options.name)),
        metadataHash: sha256(stringToHex(options.name)),
        datanets: [{ datanetId: BigInt(options.datanetId), version: 1n }],
        pricePer1kInput: 0n,
        pricePer1kOutput: 0n,
        split: { owner: 6000, stakers: 1000, contributors: 3000 },
      },
    ],
    account: options.owner,
  });
  const tx = await conn.walletFor(options.owner).writeContract(request as never);
  await conn.publicClient.waitForTransactionReceipt({ hash: tx });
  const id = Number(
    await conn.publicClient.readContract({
      address: registry,
      abi: ModelRegistryAbi,
      functionName: 'modelCount',
    }),
  );
  const db = node.node.context.database.db;
  const [job] = await db
    .insert(schema.jobs)
    .values({
      kind: 'factory.train',
      owner: options.owner.address,
      status: 'succeeded',
      params: { template: 'llama2' },
    })
    .returning();
  const zero = '0'.repeat(64);
  await db.insert(schema.models).values({
    id,
    owner: options.owner.address,
    jobId: job!.id,
    name: options.name,
    description: '',
    baseModelName: 'tiny',
    baseModelSha256: baseSha,
    adapterBlobId: options.adapterBlob,
    manifestHash: zero,
    manifestBlobId: zero,
    metadataHash: zero,
    datanets: [{ id: options.datanetId, version: 1 }],
    pricePer1kInput: '0',
    pricePer1kOutput: '0',
    split: { owner: 6000, stakers: 1000, contributors: 3000 },
    txHash: tx,
  });
  return id;
}

describe('model proposals on a node (CLI and API)', () => {
  let node: ServingNode;
  let datanetId: number;
  let specFile: string;
  let spec: any;
  const models = { meets: 0, misses: 0, elsewhere: 0 };
  const ok = async (args: string[]) => {
    const r = await cli(node.url, args);
    assert.equal(r.code, 0, `openledger ${args.join(' ')}: ${r.stderr}`);
    return r.json;
  };
  const chain = () => node.node.context.chain.publicClient;
  const warp = async (seconds: number) => {
    await chain().request({ method: 'evm_increaseTime' as never, params: [seconds] as never });
    await chain().request({ method: 'evm_mine' as never, params: [] as never });
  };
  const balance = (account: Address) =>
    chain().readContract({
      address: node.node.contracts.OpenToken!,
      abi: OpenTokenAbi,
      functionName: 'balanceOf',
      args: [account],
    });

  before(async () => {
    node = await startServingNode();
    for (const account of [creator, funder]) {
      const session = await signIn(node.url, account);
      const drip = await call(node.url, 'POST', '/api/faucet', { token: session, body: {} });
      assert.equal(drip.status, 200, JSON.stringify(drip.body));
    }
    // The training datanet, which is also the evaluation set: committed version 1.
    const owner = new DatanetActor(node.url, curator);
    const created = await owner.create({
      name: 'Household Colors',
      description: 'Short questions and answers about the colors of household things.',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    datanetId = created.body.id;
    const rows = ['lantern blue', 'kettle red', 'blanket green', 'teapot yellow'].map((t) => {
      const [thing, color] = t.split(' ');
      return {
        type: 'instruction' as const,
        instruction: `What color is the ${thing}?`,
        output: `The ${thing} is ${color}.`,
      };
    });
    const contributed = await owner.contributeRows(datanetId, rows);
    assert.equal(contributed.status, 201, JSON.stringify(contributed.body));
    const approved = await owner.approve(datanetId, [contributed.body.id]);
    assert.equal(approved.status, 201, JSON.stringify(approved.body));

    const adapter = async (seed: number) => {
      const file = path.join(node.dataDir, `adapter-${seed}.gguf`);
      await writeTinyAdapter(file, seed, { scale: 0.3 });
      return (await node.node.context.blobs.put(await readFile(file))).id;
    };
    models.meets = await publishOn(node, {
      owner: holder,
      adapterBlob: await adapter(21),
      datanetId,
      name: 'colors-a',
    });
    models.misses = await publishOn(node, {
      owner: holder,
      adapterBlob: await adapter(22),
      datanetId,
      name: 'colors-b',
    });
    models.elsewhere = await publishServingModel(node, {
      owner: holder,
      adapterBlob: await adapter(23),
      name: 'elsewhere',
    });

    spec = {
      title: 'A household colors model',
      goal: 'Answer what color household things are.',
      datanetId,
      evaluation: { datanetId, version: 1 },
      metric: 'perplexity',
    };
    specFile = path.join(node.dataDir, 'proposal.json');
    await writeFile(specFile, JSON.stringify(spec));
  });
  after(async () => node?.close());

  it('checks specifications', async () => {
    const validate = (body: unknown) => call(node.url, 'POST', '/api/proposals/validate', { body }); // public
    const valid = await validate({ spec });
    assert.equal(valid.status, 200, JSON.stringify(valid.body));
    assert.equal(
      valid.body.specHash,
      createHash('sha256').update(canonicalJson(spec)).digest('hex'),
    );
    assert.equal(valid.body.settings.challengeWindowSeconds, 600);
    const badMetric = await validate({ spec: { ...spec, metric: 'accuracy' } });
    assert.equal(badMetric.status, 400);
    assert.equal(badMetric.body.error.details.field, 'metric');
    const noVersion = await validate({ spec: { ...spec, evaluation: { datanetId, version: 9 } } });
    assert.equal(noVersion.status, 400);
    assert.match(noVersion.body.error.message, /no committed version 9/);
  });

  it('creates and funds a proposal from the CLI', async () => {
    const created = await ok([
      'proposal',
      'create',
      specFile,
      '--bar',
      '100000',
      '--deadline',
      '1h',
      '--fund',
      '50',
      '--account',
      '3',
    ]);
    assert.equal(created.id, 1);
    assert.equal(created.status, 'open');
    assert.equal(created.registered, true);
    assert.equal(created.title, spec.title);
    assert.equal(created.funded, OPEN('50').toString());
    assert.equal(created.bar, (100000n * 1_000_000n).toString());
    assert.equal(created.higherIsBetter, false);
    assert.equal(created.creator, creator.address);

    const funded = await ok(['proposal', 'fund', '1', '25', '--account', '4']);
    assert.equal(funded.funded, OPEN('75').toString());

    // A specification that is not the created one is refused.
    const forged = await call(node.url, 'POST', '/api/proposals', {
      token: node.callerKey,
      body: { id: 1, spec: { ...spec, title: 'Something else' } },
    });
    assert.equal(forged.status, 409);
  });

  it("evaluates a model that meets the bar: the node's evaluator submits it on-chain", async () => {
    // A model not trained on the proposal's datanet is refused before any evaluation.
    const elsewhere = await call(node.url, 'POST', '/api/proposals/1/evaluate', {
      token: node.callerKey,
      body: { modelId: models.elsewhere },
    });
    assert.equal(elsewhere.status, 409);
    assert.match(elsewhere.body.error.message, new RegExp(`not trained on datanet ${datanetId}`));

    const result = await ok([
      'proposal',
      'evaluate',
      '1',
      '--model',
      String(models.meets),
      '--account',
      '2',
    ]);
    assert.equal(result.meetsBar, true, result.message);
    assert.match(result.txHash, /^0x[0-9a-f]{64}$/);
    assert.equal(result.rows, 4);
    assert.ok(result.targets > 0);
    assert.ok(result.value > 1 && result.value < 100000);
    assert.equal(result.score, String(Math.round(result.value * 1_000_000)));
    assert.match(result.message, /submitted/);

    const view = (await call(node.url, 'GET', '/api/proposals/1')).body;
    assert.equal(view.status, 'submitted');
    assert.equal(view.submission.modelId, models.meets);
    assert.equal(view.submission.score, result.score);
    assert.equal(view.submission.reportHash, result.reportHash);
    assert.equal(view.claimable, false);

    // The report is kept, and its canonical JSON hashes to the on-chain reportHash.
    const reports = (await call(node.url, 'GET', '/api/proposals/1/reports')).body.reports;
    assert.equal(reports.length, 1);
    assert.equal(reports[0].reportHash, result.reportHash);
    assert.equal(reports[0].txHash, result.txHash);
    assert.equal(
      `0x${createHash('sha256').update(canonicalJson(reports[0].report)).digest('hex')}`,
      result.reportHash,
    );
    assert.equal(reports[0].report.evaluation.rows, 4);
    assert.equal(reports[0].report.modelId, models.meets);
  });

  it('evaluates a model that does not meet the bar: nothing is sent', async () => {
    // Created by the wallet directly (the CLI path is the test above), funded with 10 OPEN;
    // perplexity is never below 1: this bar cannot be met.
    const proposals = node.node.contracts.ModelProposals!;
    const wallet = node.node.context.chain.walletFor(creator);
    const send = async (address: Address, abi: any, functionName: string, args: unknown[]) => {
      const hash = await wallet.writeContract({ address, abi, functionName, args } as never);
      await chain().waitForTransactionReceipt({ hash });
    };
    await send(node.node.contracts.OpenToken!, OpenTokenAbi, 'approve', [proposals, OPEN('10')]);
    const now = (await chain().getBlock()).timestamp;
    await send(proposals, ModelProposalsAbi, 'create', [
      `0x${createHash('sha256').update(canonicalJson(spec)).digest('hex')}`,
      BigInt(datanetId),
      1_000_000n,
      false,
      now + 3600n,
      0n,
      OPEN('10'),
    ]);
    const registered = await call(node.url, 'POST', '/api/proposals', {
      token: node.callerKey,
      body: { id: 2, spec },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const created = registered.body;
    assert.equal(created.id, 2);
    const evaluator = node.node.context.relayer!.account.address;
    const nonce = await chain().getTransactionCount({ address: evaluator });
    const result = await ok([
      'proposal',
      'evaluate',
      '2',
      '--model',
      String(models.misses),
      '--account',
      '2',
    ]);
    assert.equal(result.meetsBar, false);
    assert.equal(result.txHash, null);
    assert.match(result.message, /does not meet the bar, nothing was submitted/);
    assert.equal(await chain().getTransactionCount({ address: evaluator }), nonce);
    const view = (await call(node.url, 'GET', '/api/proposals/2')).body;
    assert.equal(view.status, 'open');
    assert.equal(view.submission, null);
    const reports = (await call(node.url, 'GET', '/api/proposals/2/reports')).body.reports;
    assert.equal(reports[0].meetsBar, false);
  });

  it("pays the funds to the model's holder after the challenge window", async () => {
    const before = await balance(holder.address);
    await warp(601);
    const listed = (await call(node.url, 'GET', '/api/proposals')).body.proposals;
    assert.deepEqual(
      listed.map((p: any) => [p.id, p.status, p.claimable]),
      [
        [2, 'open', false],
        [1, 'submitted', true],
      ],
    );
    const claimed = await ok(['proposal', 'claim', '1', '--account', '4']); // anyone may claim
    assert.equal(claimed.status, 'paid');
    assert.equal(claimed.amount, OPEN('75').toString());
    assert.equal(claimed.to, holder.address);
    assert.equal((await balance(holder.address)) - before, OPEN('75'));
  });

  it('refunds an expired proposal', async () => {
    await warp(3600);
    const view = (await call(node.url, 'GET', '/api/proposals/2')).body;
    assert.equal(view.refundable, true);
    const late = await call(node.url, 'POST', '/api/proposals/2/evaluate', {
      token: node.callerKey,
      body: { modelId: models.misses },
    });
    assert.equal(late.status, 409);
    const before = await balance(creator.address);
    const refunded = await ok(['proposal', 'refund', '2', '--account', '3']);
    assert.equal(refunded.amount, OPEN('10').toString());
    assert.equal((await balance(creator.address)) - before, OPEN('10'));
    assert.equal(refunded.funded, '0');
  });
});
