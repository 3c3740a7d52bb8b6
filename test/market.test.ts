/**
 * The model market (issue #8, item 1): two models trained by the Model Factory on one datanet and
 * published with prices, one of them called and paid for (and its call attributed); the market
 * lists, searches, filters and sorts them with usage, revenue and attribution numbers equal to
 * what the database and the receipts say, and a model's page gives its lineage (contributors as
 * the training manifest has them) and its on-chain record (holder = ModelRegistry ownerOf).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { getAddress, parseUnits, type Address, type LocalAccount } from 'viem';
import { ModelRegistryAbi, devAccount } from '../src/chain/index.ts';
import type { RowContent } from '../src/datanets/ingest/index.ts';
import { schema } from '../src/db/index.ts';
import type { TrainingManifest } from '../src/factory/index.ts';
import { modelTypedData, publishFieldsFromPlan } from '../src/models/index.ts';
import { CLI_ENTRY } from './helpers/cli.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { AIDREAMS_GGUF } from './helpers/models.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';

const THINGS: [string, string][] = [
  ['lantern', 'blue'],
  ['kettle', 'red'],
  ['blanket', 'green'],
  ['teapot', 'yellow'],
  ['ladder', 'brown'],
  ['bucket', 'orange'],
];
const row = ([thing, color]: [string, string]): RowContent => ({
  type: 'instruction',
  instruction: `What color is the ${thing}?`,
  output: `The ${thing} is ${color}.`,
});

describe(
  'the model market: browse, search, a model page with lineage and on-chain record',
  { skip: existsSync(AIDREAMS_GGUF) ? false : `fixture absent: ${AIDREAMS_GGUF}` },
  () => {
    let node: TestNode;
    let owner: DatanetActor;
    let alice: DatanetActor;
    let bob: DatanetActor;
    let caller: DatanetActor;
    let datanetId: number;
    /** `paid` is called and paid for; `cheap` is newer, cheaper and never called. */
    const models: Record<'paid' | 'cheap', number> = { paid: 0, cheap: 0 };
    let base: string;

    const market = (path: string) => call(base, 'GET', path);

    const train = async (seed: number) => {
      const submitted = await owner.call('POST', '/api/factory/jobs', {
        baseModel: 'aidreams260K',
        datanets: [{ id: datanetId, version: 1 }],
        hyperparameters: { steps: 3, rank: 2, batchSize: 2, seed },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      const runner = node.node.context.jobs;
      for (;;) {
        const job = await runner.get(submitted.body.id as string);
        if (['succeeded', 'failed', 'cancelled'].includes(job.status)) {
          assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
          return job.id;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    const publish = async (jobId: string, name: string, priceIn: bigint, priceOut: bigint) => {
      const body = {
        jobId,
        name,
        description: `Answers colour questions (${name}).`,
        pricePer1kInput: priceIn.toString(),
        pricePer1kOutput: priceOut.toString(),
      };
      const plan = await owner.call('POST', '/api/models/plan', body);
      assert.equal(plan.status, 200, JSON.stringify(plan.body));
      const ctx = {
        chainId: plan.body.signing.chainId,
        registry: plan.body.signing.registry as Address,
        nonce: BigInt(plan.body.signing.nonce),
        deadline: BigInt(Math.floor(Date.now() / 1000) + 600),
      };
      const signature = await owner.account.signTypedData(
        modelTypedData.publish(ctx, {
          ...publishFieldsFromPlan(plan.body.publish),
          owner: owner.account.address,
        }),
      );
      const published = await owner.call('POST', '/api/models', {
        ...body,
        authorization: { signature, deadline: ctx.deadline.toString() },
      });
      assert.equal(published.status, 201, JSON.stringify(published.body));
      return published.body.id as number;
    };

    const deposit = async (account: LocalAccount, amount: bigint) => {
      const { faucet, deposit: deposited } = await new DatanetActor(node.url, account).fundEscrow(
        amount,
      );
      assert.equal(faucet.status, 200);
      assert.equal(deposited.status, 200, JSON.stringify(deposited.body));
    };

    /** Runs `openledger <args> --url <node> --json`. */
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI_ENTRY, ...args, '--url', base, '--json']);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      });

    before(async () => {
      node = await startTestNode();
      base = node.url;
      owner = new DatanetActor(node.url, devAccount(0)); // also the node's operator
      alice = new DatanetActor(node.url, devAccount(1));
      bob = new DatanetActor(node.url, devAccount(2));
      caller = new DatanetActor(node.url, devAccount(5));
      const created = await owner.create({
        name: 'Household Colors',
        description: 'Short questions and answers about the colors of household things.',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      datanetId = created.body.id as number;
      const a = await alice.contributeRows(datanetId, THINGS.slice(0, 4).map(row));
      const b = await bob.contributeRows(datanetId, THINGS.slice(4).map(row));
      assert.equal(a.status, 201, JSON.stringify(a.body));
      assert.equal(b.status, 201, JSON.stringify(b.body));
      const approved = await owner.approve(datanetId, [a.body.id, b.body.id]);
      assert.equal(approved.status, 201, JSON.stringify(approved.body));

      models.paid = await publish(
        await train(1),
        'Lantern Oracle',
        parseUnits('1', 18),
        parseUnits('2', 18),
      );
      models.cheap = await publish(
        await train(2),
        'Budget Painter',
        parseUnits('0.001', 18),
        parseUnits('0.002', 18),
      );

      // One paid call to the first model, attributed at once (its caller asks for the receipt).
      await deposit(caller.account, parseUnits('10', 18));
      const answer = await caller.call('POST', '/v1/completions', {
        model: `model:${models.paid}`,
        prompt: 'What color is the lantern?',
        max_tokens: 8,
        temperature: 0,
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const usageId = answer.headers.get('x-openledger-receipt-id')!;
      const receipt = await caller.call('GET', `/api/attribution/receipts/${usageId}`);
      assert.equal(receipt.status, 200, JSON.stringify(receipt.body));
      assert.equal(receipt.body.status, 'attributed');
    });
    after(() => node?.close());

    it('lists the published models with their terms', async () => {
      const list = await market('/api/market/models');
      assert.equal(list.status, 200, JSON.stringify(list.body));
      assert.equal(list.body.total, 2);
      assert.equal(list.body.sort, 'newest');
      assert.deepEqual(
        list.body.models.map((m: { id: number }) => m.id),
        [models.cheap, models.paid],
      );
      const paid = list.body.models[1];
      assert.equal(paid.name, 'Lantern Oracle');
      assert.equal(paid.baseModel.name, 'aidreams260K');
      assert.deepEqual(paid.datanets, [{ id: datanetId, name: 'Household Colors', version: 1 }]);
      assert.deepEqual(paid.price, {
        pricePer1kInput: parseUnits('1', 18).toString(),
        pricePer1kOutput: parseUnits('2', 18).toString(),
      });
      assert.equal(paid.owner, getAddress(owner.account.address));
      assert.equal(paid.active, true);
      assert.ok(Date.parse(paid.publishedAt) > 0);
    });

    it('searches, filters, sorts and pages', async () => {
      const ids = async (query: string) => {
        const answer = await market(`/api/market/models?${query}`);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        return answer.body.models.map((m: { id: number }) => m.id) as number[];
      };
      assert.deepEqual(await ids('q=lantern%20ORACLE'), [models.paid]); // name, any case
      assert.deepEqual(await ids('q=budget'), [models.cheap]);
      assert.deepEqual(await ids('q=household%20colors&sort=price'), [models.cheap, models.paid]); // datanet name
      assert.deepEqual(await ids('q=AIDREAMS&sort=price'), [models.cheap, models.paid]); // base model
      assert.deepEqual(await ids('q=no-such-model-anywhere'), []);
      assert.deepEqual(await ids('q=100%25'), []); // % is literal, not a wildcard
      assert.deepEqual(await ids('base=aidreams260K&sort=price'), [models.cheap, models.paid]);
      assert.deepEqual(await ids('base=tiny'), []);
      assert.deepEqual(await ids(`datanet=${datanetId}&sort=price`), [models.cheap, models.paid]);
      assert.deepEqual(await ids(`datanet=${datanetId + 100}`), []);

      assert.deepEqual(await ids('sort=revenue'), [models.paid, models.cheap]);
      assert.deepEqual(await ids('sort=usage'), [models.paid, models.cheap]);
      assert.deepEqual(await ids('sort=price'), [models.cheap, models.paid]);
      assert.deepEqual(await ids('sort=newest'), [models.cheap, models.paid]);

      const page = await market('/api/market/models?sort=price&limit=1&offset=1');
      assert.equal(page.body.total, 2);
      assert.equal(page.body.limit, 1);
      assert.deepEqual(
        page.body.models.map((m: { id: number }) => m.id),
        [models.paid],
      );
      const past = await market('/api/market/models?offset=10');
      assert.equal(past.status, 200);
      assert.equal(past.body.total, 2);
      assert.deepEqual(past.body.models, []);
    });

    it("gives usage, revenue and attribution numbers equal to the database's and the receipts'", async () => {
      const db = node.node.context.database.db;
      const usage = await db
        .select()
        .from(schema.inferenceUsage)
        .where(eq(schema.inferenceUsage.publishedModelId, models.paid));
      assert.equal(usage.length, 1);
      const [call0] = usage;
      assert.ok(call0!.feeWei && call0!.feeWei !== '0', 'the call was charged');
      const receipts = await db
        .select()
        .from(schema.attributionReceipts)
        .where(
          and(
            eq(schema.attributionReceipts.publishedModelId, models.paid),
            eq(schema.attributionReceipts.status, 'attributed'),
          ),
        );
      assert.equal(receipts.length, 1, 'the call was attributed');
      const payouts = await db
        .select()
        .from(schema.attributionPayouts)
        .where(eq(schema.attributionPayouts.usageId, call0!.id));

      const { body: list } = await market('/api/market/models');
      const paid = list.models.find((m: { id: number }) => m.id === models.paid);
      assert.deepEqual(paid.usage, {
        calls: 1,
        paidCalls: 1,
        promptTokens: call0!.promptTokens,
        completionTokens: call0!.completionTokens,
        lastCallAt: call0!.createdAt.toISOString(),
      });
      const role = (r: string) =>
        payouts.reduce((sum, p) => sum + BigInt(p.detail[r] ?? '0'), 0n).toString();
      assert.equal(paid.revenue.fees, call0!.feeWei);
      assert.equal(paid.revenue.owner, role('owner'));
      assert.equal(paid.revenue.stakers, role('staker'));
      assert.equal(paid.revenue.contributors, role('contributor'));
      assert.equal(paid.revenue.platform, role('platform'));
      assert.equal(
        BigInt(paid.revenue.owner) +
          BigInt(paid.revenue.stakers) +
          BigInt(paid.revenue.contributors) +
          BigInt(paid.revenue.platform),
        BigInt(call0!.feeWei!),
        'the roles add up to the fee',
      );
      // The same numbers as the attribution revenue view.
      const revenue = await call(node.url, 'GET', `/api/attribution/models/${models.paid}/revenue`);
      assert.equal(revenue.status, 200, JSON.stringify(revenue.body));
      assert.equal(paid.revenue.fees, revenue.body.fees);
      assert.equal(paid.revenue.owner, revenue.body.byRole.owner);
      assert.equal(paid.attribution.receipts, revenue.body.inferences);

      assert.equal(
        paid.attribution.contributors,
        payouts.filter((p) => p.detail.contributor !== undefined).length,
      );
      const channels = paid.attribution.channels;
      const receipt = receipts[0]!.receipt as {
        channels: Record<string, { weights: unknown[] } | null>;
      };
      for (const c of ['span', 'influence', 'rag'])
        assert.equal(
          channels[c].receipts,
          (receipt.channels[c]?.weights.length ?? 0) > 0 ? 1 : 0,
          `${c} receipts`,
        );
      if (BigInt(paid.revenue.contributors) > 0n) {
        const total = channels.span.share + channels.influence.share + channels.rag.share;
        assert.ok(Math.abs(total - 1) < 1e-3, `channel shares add up to 1: ${total}`);
      }

      const cheap = list.models.find((m: { id: number }) => m.id === models.cheap);
      assert.deepEqual(cheap.usage, {
        calls: 0,
        paidCalls: 0,
        promptTokens: 0,
        completionTokens: 0,
        lastCallAt: null,
      });
      assert.equal(cheap.revenue.fees, '0');
      assert.deepEqual(cheap.attribution, {
        receipts: 0,
        contributors: 0,
        channels: {
          span: { receipts: 0, share: null },
          influence: { receipts: 0, share: null },
          rag: { receipts: 0, share: null },
        },
      });

      // Evaluation: the one made at the end of training (no evaluation job ran).
      const [model] = await db
        .select()
        .from(schema.models)
        .where(eq(schema.models.id, models.paid));
      const job = await node.node.context.jobs.get(model!.jobId);
      const result = job.result as {
        evalLoss: number | null;
        evaluation: { adapterLoss: number | null } | null;
      };
      const expected = result.evaluation?.adapterLoss ?? result.evalLoss;
      if (expected === null) assert.equal(paid.evaluation, null);
      else {
        assert.equal(paid.evaluation.source, 'training');
        assert.equal(paid.evaluation.jobId, model!.jobId);
        assert.equal(paid.evaluation.adapterLoss, expected);
      }
    });

    it("gives a model's lineage: datanet versions, the manifest's contributors, the on-chain record", async () => {
      const page = await market(`/api/market/models/${models.paid}`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      const m = page.body;
      const db = node.node.context.database.db;
      const [row] = await db.select().from(schema.models).where(eq(schema.models.id, models.paid));
      const manifest = JSON.parse(
        (await node.node.context.blobs.get(row!.manifestBlobId)).toString('utf8'),
      ) as TrainingManifest;

      // The manifest: its hash, job, hyperparameters, rows and contributors.
      const lineage = m.lineage;
      assert.equal(lineage.manifest.hash, row!.manifestHash);
      assert.equal(lineage.manifest.jobId, row!.jobId);
      assert.deepEqual(lineage.manifest.hyperparameters, manifest.hyperparameters);
      assert.deepEqual(lineage.manifest.totals, manifest.totals);
      const fromManifest = Object.entries(manifest.contributors)
        .map(([address, c]) => ({ address, rows: c.rows, tokens: c.tokens }))
        .sort((a, b) => (a.address < b.address ? -1 : 1));
      const sorted = <T extends { address: string }>(list: T[]) =>
        [...list].sort((a, b) => (a.address < b.address ? -1 : 1));
      assert.deepEqual(sorted(lineage.manifest.contributors), fromManifest);
      assert.deepEqual(
        fromManifest.map((c) => c.address.toLowerCase()).sort(),
        [alice.account.address, bob.account.address].map((a) => a.toLowerCase()).sort(),
      );

      // The datanet version as committed, and its contributors (the manifest's, per datanet).
      assert.equal(lineage.datanets.length, 1);
      const d = lineage.datanets[0];
      assert.equal(d.id, datanetId);
      assert.equal(d.name, 'Household Colors');
      assert.equal(d.version, 1);
      const [version] = await db
        .select()
        .from(schema.datanetVersions)
        .where(eq(schema.datanetVersions.datanetId, datanetId));
      assert.equal(d.committed.root, version!.root);
      assert.equal(d.committed.txHash, version!.txHash);
      assert.equal(d.committed.rowCount, version!.rowCount);
      assert.deepEqual(
        sorted<{ address: string; rows: number; tokens: number }>(d.contributors).map((c) => ({
          address: c.address,
          rows: c.rows,
          tokens: c.tokens,
        })),
        fromManifest,
      );
      assert.equal(
        d.contributors.reduce((n: number, c: { heldOutRows: number }) => n + c.heldOutRows, 0),
        manifest.totals.evalRows,
      );
      assert.equal(lineage.training.jobId, row!.jobId);
      assert.equal(lineage.training.status, 'succeeded');

      // The on-chain record: holder = ownerOf, terms and hashes as registered.
      const read = (functionName: string) =>
        node.node.context.chain.publicClient.readContract({
          address: node.node.context.deployment.contracts.ModelRegistry,
          abi: ModelRegistryAbi,
          functionName,
          args: [BigInt(models.paid)],
        } as never) as Promise<unknown>;
      const chain = m.onChain;
      assert.equal(m.onChainError, null);
      assert.equal(chain.owner, getAddress((await read('ownerOf')) as string));
      assert.equal(chain.owner, getAddress(owner.account.address));
      const record = (await read('model')) as { manifestHash: string; pricePer1kOutput: bigint };
      assert.equal(chain.manifestHash, record.manifestHash);
      assert.equal(chain.pricePer1kOutput, record.pricePer1kOutput.toString());
      assert.deepEqual(chain.channelWeights, { span: 5000, influence: 3000, rag: 2000 });
      assert.deepEqual(chain.datanets, [{ id: datanetId, version: 1 }]);
      assert.equal(chain.publishTx, row!.txHash);
      assert.deepEqual(chain.matches, {
        adapterHash: true,
        manifestHash: true,
        metadataHash: true,
        datanets: true,
      });
      // The page carries the listing's statistics too.
      assert.equal(m.usage.paidCalls, 1);
    });

    it('answers 404 for an unknown model and 400 for a bad query', async () => {
      const unknown = await market('/api/market/models/9999');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error.code, 'NOT_FOUND');
      const badSort = await market('/api/market/models?sort=cheapest');
      assert.equal(badSort.status, 400);
      assert.equal(badSort.body.error.code, 'VALIDATION_FAILED');
      const badLimit = await market('/api/market/models?limit=101');
      assert.equal(badLimit.status, 400);
      const badId = await market('/api/market/models/zero');
      assert.equal(badId.status, 400);
    });

    it('lists and shows through the CLI (--json)', async () => {
      const list = await cli(['market', 'list', '--q', 'oracle']);
      assert.equal(list.code, 0, list.stderr);
      const listed = JSON.parse(list.stdout);
      assert.equal(listed.total, 1);
      assert.equal(listed.models[0].id, models.paid);
      const sorted = await cli(['market', 'list', '--sort', 'price', '--limit', '1']);
      assert.equal(sorted.code, 0, sorted.stderr);
      assert.deepEqual(
        JSON.parse(sorted.stdout).models.map((m: { id: number }) => m.id),
        [models.cheap],
      );
      const shown = await cli(['market', 'show', String(models.paid)]);
      assert.equal(shown.code, 0, shown.stderr);
      const page = JSON.parse(shown.stdout);
      assert.equal(page.id, models.paid);
      assert.equal(page.onChain.owner, getAddress(owner.account.address));
      assert.equal(page.lineage.datanets[0].id, datanetId);
      const missing = await cli(['market', 'show', '9999']);
      assert.equal(missing.code, 1);
      assert.equal(JSON.parse(missing.stderr).error.code, 'NOT_FOUND');
    });
    it("shows a model's latest evaluation job over the one made at training", async () => {
      const db = node.node.context.database.db;
      const [row] = await db.select().from(schema.models).where(eq(schema.models.id, models.cheap));
      const rerun = await owner.call('POST', `/api/factory/jobs/${row!.jobId}/evaluation`, {
        samples: 0,
      });
      assert.equal(rerun.status, 202, JSON.stringify(rerun.body));
      let job;
      for (;;) {
        job = await node.node.context.jobs.get(rerun.body.id as string);
        if (['succeeded', 'failed', 'cancelled'].includes(job.status)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      const result = job.result as { adapterLoss: number | null; heldOutRows: number };
      const page = await market(`/api/market/models/${models.cheap}`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.equal(page.body.evaluation.source, 'eval-job');
      assert.equal(page.body.evaluation.jobId, job.id);
      assert.equal(page.body.evaluation.adapterLoss, result.adapterLoss);
      assert.equal(page.body.evaluation.heldOutRows, result.heldOutRows);
      // The other model keeps its training-time evaluation.
      const other = await market(`/api/market/models/${models.paid}`);
      assert.equal(other.body.evaluation.source, 'training');
    });
  },
);
