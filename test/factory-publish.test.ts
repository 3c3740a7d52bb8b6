import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { parseUnits, sha256, type Address, type Hex, type LocalAccount } from 'viem';
import { ModelRegistryAbi, devAccount } from '../src/chain/index.ts';
import type { RowContent } from '../src/datanets/ingest/index.ts';
import { schema } from '../src/db/index.ts';
import { modelTypedData, publishFieldsFromPlan } from '../src/models/index.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call, type Answer } from './helpers/http.ts';
import { AIDREAMS_GGUF } from './helpers/models.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

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

const PRICE_IN = parseUnits('0.01', 18);
const PRICE_OUT = parseUnits('0.02', 18);

describe(
  'publishing a trained adapter as a model',
  { skip: existsSync(AIDREAMS_GGUF) ? false : `fixture absent: ${AIDREAMS_GGUF}` },
  () => {
    let node: TestNode;
    let owner: DatanetActor;
    let alice: DatanetActor;
    let bob: DatanetActor;
    let datanetId: number;
    const jobs: Record<string, string> = {};

    /** Trains a tiny LoRA for `actor` over the API and waits for it to end. */
    const train = async (actor: DatanetActor, seed: number) => {
      const submitted = await actor.call('POST', '/api/factory/jobs', {
        baseModel: 'aidreams260K',
        datanets: [{ id: datanetId, version: 1 }],
        hyperparameters: { steps: 3, rank: 2, batchSize: 2, seed },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      return waitFor(submitted.body.id as string);
    };
    const waitFor = async (id: string) => {
      const runner = node.node.context.jobs;
      for (;;) {
        const job = await runner.get(id);
        if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    const body = (jobId: string, extra: Record<string, unknown> = {}) => ({
      jobId,
      pricePer1kInput: PRICE_IN.toString(),
      pricePer1kOutput: PRICE_OUT.toString(),
      ...extra,
    });

    /** Plans, signs with `signer` (the actor's own key unless told), and publishes. */
    const publish = async (
      actor: DatanetActor,
      jobId: string,
      options: { extra?: Record<string, unknown>; signer?: LocalAccount; tamper?: boolean } = {},
    ): Promise<Answer> => {
      const plan = await actor.call('POST', '/api/models/plan', body(jobId, options.extra));
      if (plan.status !== 200) return plan;
      if (plan.body.existing) return actor.call('POST', '/api/models', signedBody(jobId, '0x00'));
      const signer = options.signer ?? actor.account;
      const ctx = {
        chainId: plan.body.signing.chainId,
        registry: plan.body.signing.registry as Address,
        nonce: BigInt(plan.body.signing.nonce),
        deadline: BigInt(Math.floor(Date.now() / 1000) + 600),
      };
      const fields = publishFieldsFromPlan(plan.body.publish);
      if (options.tamper) fields.pricePer1kOutput = 1n;
      const signature = await signer.signTypedData(
        modelTypedData.publish(ctx, { ...fields, owner: actor.account.address }),
      );
      return actor.call('POST', '/api/models', {
        ...body(jobId, options.extra),
        authorization: { signature, deadline: ctx.deadline.toString() },
      });
    };
    const signedBody = (jobId: string, signature: Hex) => ({
      ...body(jobId),
      authorization: { signature, deadline: '1' },
    });

    const readChain = (functionName: string, args: readonly unknown[] = []) =>
      node.node.context.chain.publicClient.readContract({
        address: node.node.context.deployment.contracts.ModelRegistry,
        abi: ModelRegistryAbi,
        functionName,
        args,
      } as never) as Promise<unknown>;

    before(async () => {
      node = await startTestNode();
      owner = new DatanetActor(node.url, devAccount(0));
      alice = new DatanetActor(node.url, devAccount(1));
      bob = new DatanetActor(node.url, devAccount(2));
      const created = await owner.create({
        name: 'Colors',
        description: 'Short questions and answers about the colors of household things.',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      datanetId = created.body.id;
      const a = await alice.contributeRows(datanetId, THINGS.slice(0, 3).map(row));
      const b = await bob.contributeRows(datanetId, THINGS.slice(3).map(row));
      assert.equal(a.status, 201, JSON.stringify(a.body));
      assert.equal(b.status, 201, JSON.stringify(b.body));
      const approved = await owner.approve(datanetId, [a.body.id, b.body.id]);
      assert.equal(approved.status, 201, JSON.stringify(approved.body));

      for (const [name, seed] of [
        ['first', 1],
        ['twin', 1], // the same data, parameters and seed: the very same adapter bytes
        ['cli', 2],
      ] as const) {
        const job = await train(alice, seed);
        assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
        jobs[name] = job.id;
      }
    });
    after(() => node?.close());

    it('refuses other wallets, unfinished jobs, bad splits and signatures that do not match', async () => {
      const forbidden = await bob.call('POST', '/api/models/plan', body(jobs.first!));
      assert.equal(forbidden.status, 403, JSON.stringify(forbidden.body));
      assert.equal(forbidden.body.error.code, 'FORBIDDEN');
      // Bob's own valid signature over the job's fields does not make it his.
      const asBob = await bob.call('POST', '/api/models', signedBody(jobs.first!, '0x1234'));
      assert.equal(asBob.status, 403);
      const anonymous = await call(node.url, 'POST', '/api/models', {
        body: signedBody(jobs.first!, '0x1234'),
      });
      assert.equal(anonymous.status, 401);

      const runner = node.node.context.jobs;
      const long = await runner.submit('factory.train', alice.account.address, {
        baseModel: 'aidreams260K',
        datanets: [{ id: datanetId, version: 1 }],
        hyperparameters: { steps: 100_000 },
      });
      await runner.cancel(long.id);
      assert.equal((await waitFor(long.id)).status, 'cancelled');
      const unfinished = await publish(alice, long.id);
      assert.equal(unfinished.status, 409, JSON.stringify(unfinished.body));
      assert.equal(unfinished.body.error.code, 'JOB_NOT_SUCCEEDED');
      assert.equal(unfinished.body.error.details.status, 'cancelled');
      const unknown = await publish(alice, '00000000-0000-4000-8000-000000000000');
      assert.equal(unknown.status, 404);

      const badSplit = await publish(alice, jobs.first!, {
        extra: { split: { owner: 5000, stakers: 1000, contributors: 1000 } },
      });
      assert.equal(badSplit.status, 400, JSON.stringify(badSplit.body));
      assert.equal(badSplit.body.error.code, 'VALIDATION_FAILED');

      const tampered = await publish(alice, jobs.first!, { tamper: true });
      assert.equal(tampered.status, 401, JSON.stringify(tampered.body));
      assert.equal(tampered.body.error.code, 'INVALID_SIGNATURE');
      const foreign = await publish(alice, jobs.first!, { signer: bob.account });
      assert.equal(foreign.status, 401);
      assert.equal(await readChain('modelCount'), 0n, 'nothing was registered');
      assert.deepEqual((await call(node.url, 'GET', '/api/models')).body.models, []);
    });

    it('registers the job on-chain as an ERC-721 model and lists it where serving finds it', async () => {
      const job = await node.node.context.jobs.get(jobs.first!);
      const result = job.result as { adapterBlobId: string; manifestHash: Hex };
      const published = await publish(alice, jobs.first!, {
        extra: { name: 'House colors', description: 'Knows what color things are.' },
      });
      assert.equal(published.status, 201, JSON.stringify(published.body));
      const model = published.body;
      assert.equal(model.created, true);
      assert.equal(model.id, 1);
      assert.equal(model.owner, alice.account.address);
      assert.equal(model.jobId, jobs.first);
      assert.equal(model.baseModelName, 'aidreams260K');
      assert.equal(model.adapterBlobId, result.adapterBlobId);
      assert.deepEqual(model.datanets, [{ id: datanetId, version: 1 }]);
      assert.deepEqual(model.split, { owner: 6000, stakers: 1000, contributors: 3000 });

      // on-chain: the token, the record, the datanet versions
      const base = sha256(await readFile(AIDREAMS_GGUF));
      assert.equal(model.baseModelSha256, base.slice(2));
      assert.equal(await readChain('ownerOf', [1n]), alice.account.address);
      const record = (await readChain('model', [1n])) as Record<string, unknown>;
      assert.equal(record.baseModel, base);
      assert.equal(record.adapterHash, `0x${result.adapterBlobId}`);
      assert.equal(record.manifestHash, result.manifestHash);
      assert.equal(record.pricePer1kInput, PRICE_IN);
      assert.equal(record.pricePer1kOutput, PRICE_OUT);
      assert.deepEqual(record.split, model.split);
      assert.equal(record.active, true);
      assert.deepEqual(await readChain('datanetVersionsOf', [1n]), [
        { datanetId: BigInt(datanetId), version: 1n },
      ]);
      // the metadata hashed on-chain is kept, and names the job and the base model
      const metadata = await node.node.context.blobs.get((record.metadataHash as Hex).slice(2));
      assert.equal(sha256(metadata), record.metadataHash);
      const parsed = JSON.parse(metadata.toString('utf8'));
      assert.equal(parsed.name, 'House colors');
      assert.equal(parsed.jobId, jobs.first);
      assert.equal(parsed.baseModel.name, 'aidreams260K');
      assert.equal(parsed.baseModel.sha256, base.slice(2));
      const receipt = await node.node.context.chain.publicClient.getTransactionReceipt({
        hash: model.txHash,
      });
      assert.equal(receipt.status, 'success');

      const list = await call(node.url, 'GET', '/api/models');
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.models.map((m: Record<string, unknown>) => [
          m.id,
          m.baseModelName,
          m.adapterBlobId,
        ]),
        [[1, 'aidreams260K', result.adapterBlobId]],
      );
      const detail = await call(node.url, 'GET', '/api/models/1');
      assert.equal(detail.status, 200);
      assert.equal(detail.body.holder, alice.account.address);
      assert.equal(detail.body.adapterHash, `0x${result.adapterBlobId}`);
      assert.equal(
        (await call(node.url, 'GET', '/api/models/99')).body.error.code,
        'MODEL_NOT_FOUND',
      );
      const mine = await call(node.url, 'GET', `/api/models?owner=${bob.account.address}`);
      assert.deepEqual(mine.body.models, []);
    });

    it('answers the same model when the job is published again, and refuses the same adapter from another job', async () => {
      const again = await publish(alice, jobs.first!, { extra: { name: 'Another name' } });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.created, false);
      assert.equal(again.body.id, 1);
      assert.equal(again.body.name, 'House colors');
      const plan = await alice.call('POST', '/api/models/plan', body(jobs.first!));
      assert.equal(plan.body.existing.id, 1);
      assert.equal(await readChain('modelCount'), 1n);

      const first = (await node.node.context.jobs.get(jobs.first!)).result as {
        adapterBlobId: string;
      };
      const twin = (await node.node.context.jobs.get(jobs.twin!)).result as {
        adapterBlobId: string;
      };
      assert.equal(twin.adapterBlobId, first.adapterBlobId, 'training is deterministic');
      const conflict = await publish(alice, jobs.twin!);
      assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
      assert.equal(conflict.body.error.code, 'ALREADY_PUBLISHED');
      assert.equal(conflict.body.error.details.modelId, 1);
    });

    it('restores a model the database lost after the chain took it, and follows changes made on-chain', async () => {
      const ctx = node.node.context;
      const [before] = await ctx.database.db
        .select()
        .from(schema.models)
        .where(eq(schema.models.id, 1));
      await ctx.database.db.delete(schema.models).where(eq(schema.models.id, 1));
      assert.deepEqual(await ctx.publishedModels!.reconcile(), { restored: 1, refreshed: 0 });
      const [restored] = await ctx.database.db
        .select()
        .from(schema.models)
        .where(eq(schema.models.id, 1));
      assert.deepEqual({ ...restored, createdAt: null }, { ...before, createdAt: null });

      // The holder deactivates the model and changes its price directly on the chain.
      const wallet = ctx.chain.walletFor(alice.account);
      for (const [functionName, args] of [
        ['setPrice', [1n, 3n, 4n]],
        ['setActive', [1n, false]],
      ] as const) {
        const hash = await wallet.writeContract({
          address: ctx.deployment.contracts.ModelRegistry,
          abi: ModelRegistryAbi,
          functionName,
          args,
        } as never);
        await ctx.chain.publicClient.waitForTransactionReceipt({ hash });
      }
      const detail = await call(node.url, 'GET', '/api/models/1');
      assert.deepEqual(
        [detail.body.pricePer1kInput, detail.body.pricePer1kOutput, detail.body.active],
        ['3', '4', false],
      );
      assert.deepEqual((await call(node.url, 'GET', '/api/models')).body.models, []);
      assert.equal((await call(node.url, 'GET', '/api/models?all=true')).body.models.length, 1);
    });

    it('publishes from the CLI, idempotently, with --json', async () => {
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(
            process.execPath,
            [CLI_ENTRY, 'publish', '--url', node.url, '--account', '1', ...args],
            { env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' } },
          );
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          child.on('exit', (code) => resolve({ code, stdout, stderr }));
        });
      const args = [
        jobs.cli!,
        '--price-in',
        '0.5',
        '--price-out',
        '1.25',
        '--split',
        'owner=50%,stakers=10%,contributors=40%',
        '--name',
        'Colors from the CLI',
      ];
      const json = await run([...args, '--json']);
      assert.equal(json.code, 0, json.stderr);
      const model = JSON.parse(json.stdout);
      assert.equal(model.created, true);
      assert.equal(model.name, 'Colors from the CLI');
      assert.equal(model.pricePer1kInput, parseUnits('0.5', 18).toString());
      assert.equal(model.pricePer1kOutput, parseUnits('1.25', 18).toString());
      assert.deepEqual(model.split, { owner: 5000, stakers: 1000, contributors: 4000 });
      assert.equal(await readChain('ownerOf', [BigInt(model.id)]), alice.account.address);

      const human = await run(args);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, new RegExp(`already published: model ${model.id} "Colors`));
      assert.match(human.stdout, /0\.5 OPEN per 1k input tokens, 1\.25 per 1k output tokens/);

      const bad = await run([jobs.cli!, '--price-in', 'cheap', '--price-out', '1', '--json']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /BAD_REQUEST/);
      const notMine = await new Promise<number | null>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            CLI_ENTRY,
            'publish',
            jobs.cli!,
            '--url',
            node.url,
            '--account',
            '2',
            '--price-in',
            '1',
            '--price-out',
            '1',
            '--json',
          ],
          { env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' } },
        );
        child.on('exit', resolve);
      });
      assert.equal(notMine, 1);
    });
  },
);
