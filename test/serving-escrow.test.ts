import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { parseUnits, sha256, stringToHex, type Address, type LocalAccount } from 'viem';
import {
  DatanetRegistryAbi,
  InferenceEscrowAbi,
  ModelRegistryAbi,
  devAccount,
} from '../src/chain/index.ts';
import { schema } from '../src/db/index.ts';
import { inferenceFee, permitTypedData } from '../src/payments/typed-data.ts';
import { call } from './helpers/http.ts';
import { startServingNode, writeTinyAdapter, type ServingNode } from './helpers/serving.ts';

const caller = devAccount(1); // holds node.callerKey
const publisher = devAccount(2);
const PRICE = { pricePer1kInput: parseUnits('1', 15), pricePer1kOutput: parseUnits('3', 15) };
const hash = (text: string) => sha256(stringToHex(text));

describe('Paying for inference: escrow balance, 402, exact fees, settlement', () => {
  let node: ServingNode;
  let modelId: number;

  const send = async (
    account: LocalAccount,
    address: Address,
    abi: unknown,
    fn: string,
    args: unknown[],
  ) => {
    const conn = node.node.context.chain;
    const { request } = await conn.publicClient.simulateContract({
      address,
      abi,
      functionName: fn,
      args,
      account,
    } as never);
    const tx = await conn.walletFor(account).writeContract(request as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: tx });
    assert.equal(receipt.status, 'success');
  };
  const onChainBalance = () =>
    node.node.context.chain.publicClient.readContract({
      address: node.node.contracts.InferenceEscrow!,
      abi: InferenceEscrowAbi,
      functionName: 'balanceOf',
      args: [caller.address],
    });
  const complete = (maxTokens: number) =>
    call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: {
        model: `model:${modelId}`,
        prompt: 'once upon a time',
        max_tokens: maxTokens,
        temperature: 0,
      },
    });

  before(async () => {
    node = await startServingNode();
    const { contracts } = node.node;
    assert.ok(contracts.InferenceEscrow, 'the deployment has an escrow');
    // A real published model: a datanet version on-chain, then a priced ModelRegistry record.
    await send(publisher, contracts.DatanetRegistry!, DatanetRegistryAbi, 'createDatanet', [
      hash('meta'),
      0,
    ]);
    await send(publisher, contracts.DatanetRegistry!, DatanetRegistryAbi, 'commitVersion', [
      1n,
      hash('root'),
      1n,
      hash('manifest'),
    ]);
    const file = path.join(node.dataDir, 'paid.gguf');
    await writeTinyAdapter(file, 7);
    const { id: blob } = await node.node.context.blobs.put(await readFile(file));
    await send(publisher, contracts.ModelRegistry!, ModelRegistryAbi, 'publish', [
      {
        baseModel: hash('tiny'),
        adapterHash: `0x${blob}`,
        manifestHash: hash('manifest'),
        metadataHash: hash('metadata'),
        datanets: [{ datanetId: 1n, version: 1n }],
        ...PRICE,
        split: { owner: 6000, stakers: 1000, contributors: 3000 },
      },
    ]);
    modelId = Number(
      await node.node.context.chain.publicClient.readContract({
        address: contracts.ModelRegistry!,
        abi: ModelRegistryAbi,
        functionName: 'modelCount',
      }),
    );
    // The node's mirror of the registry (as the publish flow writes it).
    const db = node.node.context.database.db;
    const [job] = await db
      .insert(schema.jobs)
      .values({ kind: 'factory.train', owner: publisher.address, status: 'succeeded', params: {} })
      .returning();
    const zero = '0'.repeat(64);
    await db.insert(schema.models).values({
      id: modelId,
      owner: publisher.address,
      jobId: job!.id,
      name: 'paid',
      description: '',
      baseModelName: 'tiny',
      baseModelSha256: zero,
      adapterBlobId: blob,
      manifestHash: zero,
      manifestBlobId: zero,
      metadataHash: zero,
      datanets: [{ id: 1, version: 1 }],
      pricePer1kInput: PRICE.pricePer1kInput.toString(),
      pricePer1kOutput: PRICE.pricePer1kOutput.toString(),
      split: { owner: 6000, stakers: 1000, contributors: 3000 },
      txHash: `0x${zero}`,
    });
  });
  after(async () => node?.close());

  it('refuses a caller without balance with 402, serves after a deposit, and settles exactly', async () => {
    const refused = await complete(8);
    assert.equal(refused.status, 402);
    assert.equal(refused.body.error.type, 'insufficient_quota');
    assert.equal(refused.body.error.code, 'INSUFFICIENT_BALANCE');
    assert.match(refused.body.error.message, /balance.*deposit/is);
    // The same adapter named by its (public, on-chain) hash or by an operator's name is the
    // published model, and priced as such.
    const [model] = await node.node.context.database.db
      .select()
      .from(schema.models)
      .where(eq(schema.models.id, modelId));
    const named = await call(node.url, 'POST', '/v1/load_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name: 'paid-by-name', lora_path: `sha256:${model!.adapterBlobId}` },
    });
    assert.equal(named.status, 200, JSON.stringify(named.body));
    for (const alias of [`adapter:${model!.adapterBlobId}`, 'paid-by-name']) {
      const bypass = await call(node.url, 'POST', '/v1/completions', {
        token: node.callerKey,
        body: { model: alias, prompt: 'once upon a time', max_tokens: 4 },
      });
      assert.equal(bypass.status, 402, `${alias}: ${JSON.stringify(bypass.body)}`);
      const composed = await call(node.url, 'POST', '/v1/completions', {
        token: node.callerKey,
        body: { model: 'tiny', adapters: [{ id: alias }], prompt: 'hi', max_tokens: 4 },
      });
      assert.equal(composed.status, 402, `tiny + ${alias}: ${JSON.stringify(composed.body)}`);
    }
    // Base models stay free.
    const free = await call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: { model: 'tiny', prompt: 'hello', max_tokens: 2 },
    });
    assert.equal(free.status, 200);

    // Deposit 1 OPEN through the API: faucet OPEN, sign a permit, the node relays it.
    const dripped = await call(node.url, 'POST', '/api/faucet', {
      token: node.callerKey,
      body: {},
    });
    assert.equal(dripped.status, 200, JSON.stringify(dripped.body));
    const before = await call(node.url, 'GET', '/api/escrow', { token: node.callerKey });
    assert.equal(before.status, 200);
    assert.equal(before.body.balance, '0');
    const amount = parseUnits('1', 18);
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
    const signature = await caller.signTypedData(
      permitTypedData({
        chainId: before.body.chainId,
        token: before.body.token,
        escrow: before.body.escrow,
        owner: caller.address,
        value: amount,
        nonce: BigInt(before.body.tokenNonce),
        deadline,
      }),
    );
    const deposited = await call(node.url, 'POST', '/api/escrow/deposit', {
      token: node.callerKey,
      body: {
        owner: caller.address,
        amount: amount.toString(),
        deadline: deadline.toString(),
        signature,
      },
    });
    assert.equal(deposited.status, 200, JSON.stringify(deposited.body));
    assert.equal(await onChainBalance(), amount);

    // Two paid calls; each usage row and receipt holds the exact fee.
    const fees: bigint[] = [];
    for (const maxTokens of [8, 5]) {
      const served = await complete(maxTokens);
      assert.equal(served.status, 200, JSON.stringify(served.body));
      const usage = served.body.usage as { prompt_tokens: number; completion_tokens: number };
      const fee = inferenceFee(PRICE, usage.prompt_tokens, usage.completion_tokens);
      assert.ok(fee > 0n);
      const [row] = await node.node.context.database.db
        .select()
        .from(schema.inferenceUsage)
        .where(eq(schema.inferenceUsage.id, served.headers.get('x-openledger-receipt-id')!));
      assert.equal(row!.feeWei, fee.toString());
      assert.equal((row!.receipt as { fee: string }).fee, fee.toString());
      assert.equal(row!.settlementTx, null);
      fees.push(fee);
    }
    const total = fees[0]! + fees[1]!;
    const pending = await call(node.url, 'GET', '/api/escrow', { token: node.callerKey });
    assert.equal(pending.body.unsettled, total.toString());
    assert.equal(pending.body.available, (amount - total).toString());

    // Only operators trigger settlement; it debits exactly the sum of the fees.
    const forbidden = await call(node.url, 'POST', '/api/escrow/settle', { token: node.callerKey });
    assert.equal(forbidden.status, 403);
    const settled = await call(node.url, 'POST', '/api/escrow/settle', { token: node.operatorKey });
    assert.equal(settled.status, 200, JSON.stringify(settled.body));
    assert.equal(settled.body.batches.length, 1);
    assert.equal(settled.body.batches[0].total, total.toString());
    assert.equal(await onChainBalance(), amount - total);
    const rows = await node.node.context.database.db
      .select()
      .from(schema.inferenceUsage)
      .where(eq(schema.inferenceUsage.caller, caller.address.toLowerCase()));
    for (const row of rows.filter((r) => r.feeWei !== null)) {
      assert.equal(row.settlementTx, settled.body.batches[0].tx);
    }
    const after = await call(node.url, 'GET', '/api/escrow', { token: node.callerKey });
    assert.equal(after.body.unsettled, '0');
    assert.equal(after.body.available, (amount - total).toString());
    // Nothing left to settle: a second run posts nothing (no double charge).
    const again = await call(node.url, 'POST', '/api/escrow/settle', { token: node.operatorKey });
    assert.equal(again.body.batches.length, 0);
    assert.equal(await onChainBalance(), amount - total);
  });
});
