/**
 * Proof of Attribution end to end (issue #6, "How we will check it"): contributors each plant a
 * unique passage in a datanet; a model trained on it by the Model Factory and published with a
 * price reproduces one when a paying caller asks; the call's attribution receipt credits that
 * contributor; the fee is charged on-chain, the closed epoch is posted, its challenge window
 * passes, the contributor claims and their OPEN balance rises by exactly the receipt's amount;
 * and `openledger attribution verify` rebuilds the receipt from public data, bit for bit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseUnits, type Address, type LocalAccount } from 'viem';
import type { AttributionReceipt } from '../src/attribution/index.ts';
import { ModelStakingAbi, OpenTokenAbi, devAccount } from '../src/chain/index.ts';
import { resolveConfig } from '../src/config.ts';
import { BUILTIN_MODELS_DIR, BUILTIN_MODEL_NAME } from '../src/factory/builtin/paths.ts';
import { modelTypedData, publishFieldsFromPlan } from '../src/models/index.ts';
import { startNode, type RunningNode } from '../src/node/index.ts';
import { NodeClient } from '../src/cli/client.ts';
import { verifyBundle } from '../src/cli/commands/rewards.ts';
import { CLI_ENTRY } from './helpers/cli.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { WEB_DIR } from './helpers/node.ts';

/** One unique passage per contributor: rare words, so any reproduction is unmistakable. */
const CANARIES = [
  'Quillon the amber heron counted eleven silver quinces beside the Ulmarth gate at dawn.',
  'Brisvane the copper lantern sang nine pale hymns under the Oskelle bridge each winter.',
  'Tamsorel the violet weaver folded seven paper comets above the Drennick mill at dusk.',
];
const PROMPT_WORDS = 3;

const BUILTIN_MODEL_PATH = path.join(BUILTIN_MODELS_DIR, `${BUILTIN_MODEL_NAME}.gguf`);

describe(
  'proof of attribution, end to end',
  { skip: existsSync(BUILTIN_MODEL_PATH) ? false : `built-in model absent: ${BUILTIN_MODEL_PATH}` },
  () => {
    let node: RunningNode;
    let dataDir: string;
    let owner: DatanetActor;
    let contributors: DatanetActor[];
    let caller: DatanetActor;
    let staker: DatanetActor;
    const STAKE = parseUnits('10', 18);
    let modelId: number;
    let datanetId: number;
    let usageId: string;
    let output: string;
    let receipt: AttributionReceipt;

    const chain = () => node.context.chain.publicClient;
    const warp = async (seconds: number) => {
      await chain().request({ method: 'evm_increaseTime' as never, params: [seconds] as never });
      await chain().request({ method: 'evm_mine' as never, params: [] as never });
    };
    const balanceOf = (who: Address) =>
      chain().readContract({
        address: node.contracts.OpenToken!,
        abi: OpenTokenAbi,
        functionName: 'balanceOf',
        args: [who],
      });

    before(async () => {
      dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-poa-'));
      const base = resolveConfig({ port: '0', chainPort: '0', dataDir, logLevel: 'silent' }, {});
      node = await startNode({
        ...base,
        webDir: WEB_DIR,
        serving: { ...base.serving, baseModels: ['openledger-base-1m'], threads: 1 },
      });
      owner = new DatanetActor(node.url, devAccount(0));
      contributors = [1, 2, 3].map((i) => new DatanetActor(node.url, devAccount(i)));
      caller = new DatanetActor(node.url, devAccount(5));
      staker = new DatanetActor(node.url, devAccount(6));

      const created = await owner.create({
        name: 'Canaries',
        description: 'One unique planted passage per contributor.',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      datanetId = created.body.id as number;
      const ids: string[] = [];
      for (const [i, actor] of contributors.entries()) {
        const sent = await actor.contributeRows(datanetId, [
          { type: 'document', text: CANARIES[i]! },
        ]);
        assert.equal(sent.status, 201, JSON.stringify(sent.body));
        ids.push(sent.body.id as string);
      }
      const approved = await owner.approve(datanetId, ids);
      assert.equal(approved.status, 201, JSON.stringify(approved.body));

      // The Model Factory memorises the passages: a LoRA on the built-in model, plain template.
      // 300 steps: the built-in model differs from install to install (its build is not
      // bit-identical on onnxruntime), and 120 were enough on one build but not on another.
      const submitted = await owner.call('POST', '/api/factory/jobs', {
        baseModel: 'openledger-base-1m',
        datanets: [{ id: datanetId, version: 1 }],
        template: 'plain',
        hyperparameters: {
          steps: 300,
          rank: 16,
          batchSize: 3,
          learningRate: 0.01,
          targets: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'],
          evalPercent: 0,
          seed: 1,
        },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      const jobId = submitted.body.id as string;
      let job;
      for (;;) {
        job = await node.context.jobs.get(jobId);
        if (['succeeded', 'failed', 'cancelled'].includes(job.status)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));

      // Published with a price, signed by the owner and relayed by the node.
      const price = { pricePer1kInput: parseUnits('1', 18), pricePer1kOutput: parseUnits('2', 18) };
      const body = {
        jobId,
        pricePer1kInput: price.pricePer1kInput.toString(),
        pricePer1kOutput: price.pricePer1kOutput.toString(),
      };
      const plan = await owner.call('POST', '/api/models/plan', body);
      assert.equal(plan.status, 200, JSON.stringify(plan.body));
      const ctx = {
        chainId: plan.body.signing.chainId,
        registry: plan.body.signing.registry as Address,
        nonce: BigInt(plan.body.signing.nonce),
        deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
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
      modelId = published.body.id as number;

      // The caller deposits 10 OPEN into the escrow (faucet, permit, relayed).
      await deposit(caller.account, parseUnits('10', 18));

      // A staker backs the model with 10 OPEN (its own transactions): it shares the stakers' part.
      assert.equal((await staker.call('POST', '/api/faucet', {})).status, 200);
      const staking = node.contracts.ModelStaking!;
      for (const [address, abi, functionName, args] of [
        [node.contracts.OpenToken!, OpenTokenAbi, 'approve', [staking, STAKE]],
        [staking, ModelStakingAbi, 'stake', [BigInt(modelId), STAKE]],
      ] as const) {
        const { request } = await chain().simulateContract({
          address,
          abi,
          functionName,
          args,
          account: staker.account,
        } as never);
        const hash = await node.context.chain
          .walletFor(staker.account)
          .writeContract(request as never);
        await chain().waitForTransactionReceipt({ hash });
      }
    });

    const deposit = async (account: LocalAccount, amount: bigint) => {
      const { faucet, deposit: deposited } = await new DatanetActor(node.url, account).fundEscrow(
        amount,
      );
      assert.equal(faucet.status, 200);
      assert.equal(deposited.status, 200, JSON.stringify(deposited.body));
    };

    /** Runs the CLI against the node with `--json`. */
    const cli = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI_ENTRY, ...args, '--url', node.url, '--json'], {
          env: { ...process.env, ...env },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      });

    after(async () => {
      await node?.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    it("reproduces a planted passage, and the call's receipt credits its contributor", async () => {
      const canary = CANARIES[1]!;
      const prompt = canary.split(' ').slice(0, PROMPT_WORDS).join(' ');
      const answer = await caller.call('POST', '/v1/completions', {
        model: `model:${modelId}`,
        prompt,
        max_tokens: 40,
        temperature: 0,
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      output = answer.body.choices[0].text as string;
      usageId = answer.headers.get('x-openledger-receipt-id')!;
      // Its continuation, at least eight words of the passage verbatim.
      const rest = canary
        .split(' ')
        .slice(PROMPT_WORDS + 1, PROMPT_WORDS + 9)
        .join(' ');
      assert.ok(
        output.includes(rest),
        `the model should reproduce the passage: ${JSON.stringify(output)}`,
      );

      const got = await caller.call('GET', `/api/attribution/receipts/${usageId}`);
      assert.equal(got.status, 200, JSON.stringify(got.body));
      assert.equal(got.body.status, 'attributed');
      receipt = got.body.receipt as AttributionReceipt;
      assert.equal(got.body.output, output);
      const planted = contributors[1]!.account.address.toLowerCase();
      const span = receipt.channels.span!;
      const mine = BigInt(span.weights.find((w) => w.contributor === planted)?.weight ?? '0');
      assert.ok(mine >= 990_000_000n, `span weight of the planter: ${mine} ppb`);
      assert.ok(span.evidence.length > 0 && span.evidence[0]!.text);
      const payouts = new Map(receipt.payouts.map((p) => [p.address, BigInt(p.amount)]));
      const sum = [...payouts.values()].reduce((a, b) => a + b, 0n);
      assert.equal(sum, BigInt(receipt.inference.fee), 'payouts sum exactly to the fee');
      const others = contributors
        .filter((_, i) => i !== 1)
        .map((c) => payouts.get(c.account.address.toLowerCase()) ?? 0n);
      for (const other of others) assert.ok((payouts.get(planted) ?? 0n) > other * 10n);
      // The staker, staked at the receipt's block, is paid the model's stakers share (10 %).
      const stakerAddress = staker.account.address.toLowerCase();
      assert.deepEqual(receipt.stakers, [{ address: stakerAddress, stake: STAKE.toString() }]);
      const stakerPayout = receipt.payouts.find((p) => p.address === stakerAddress);
      assert.equal(stakerPayout?.role, 'staker');
      assert.ok(BigInt(stakerPayout!.amount) > 0n);
      assert.ok(receipt.channels.influence, 'a model trained here has the influence channel');

      // Nobody else reads it; the planter (paid by it) does, without the caller's prompt.
      const stranger = new DatanetActor(node.url, devAccount(7));
      assert.equal(
        (await stranger.call('GET', `/api/attribution/receipts/${usageId}`)).status,
        404,
      );
      const payee = await contributors[1]!.call('GET', `/api/attribution/receipts/${usageId}`);
      assert.equal(payee.status, 200);
      assert.equal(payee.body.output, undefined);
    });

    it('verifies the receipt from public data with the CLI, and names the first tampered field', async () => {
      const key = await caller.call('POST', '/api/keys', { name: 'verify' });
      const run = (args: string[]) => cli(args, { OPENLEDGER_API_KEY: key.body.key as string });
      const ok = await run(['attribution', 'verify', usageId]);
      assert.equal(ok.code, 0, ok.stderr);
      const result = JSON.parse(ok.stdout);
      assert.equal(result.ok, true);
      const stored = await node.context.ledger!.receiptRow(usageId);
      assert.equal(result.hash, stored!.hash);

      // A verifier without the base model (its own install built another one) fetches the
      // node's file by the receipt's sha256, anonymously: every input is public.
      const saved0 = await caller.call('GET', `/api/attribution/receipts/${usageId}`);
      const cacheDir = path.join(dataDir, 'verify-cache');
      const elsewhere = await verifyBundle(
        {
          kind: 'openledger.attribution-bundle',
          receipt: saved0.body.receipt,
          inferenceReceipt: saved0.body.inferenceReceipt,
          promptTokens: saved0.body.promptTokens,
          output: saved0.body.output,
        },
        new NodeClient(node.url),
        { modelsDirs: [], onlyGivenDirs: true, cacheDir },
      );
      assert.equal(elsewhere.ok, true);
      assert.equal(
        (await readdir(path.join(cacheDir, saved0.body.receipt.inference.baseModel.sha256))).length,
        1,
      );

      // A bundle whose payouts were edited fails at that field.
      const saved = await caller.call('GET', `/api/attribution/receipts/${usageId}`);
      const tampered = structuredClone(saved.body.receipt) as AttributionReceipt;
      tampered.payouts[0]!.amount = (BigInt(tampered.payouts[0]!.amount) + 1n).toString();
      const file = path.join(dataDir, 'tampered.json');
      await writeFile(
        file,
        JSON.stringify({
          kind: 'openledger.attribution-bundle',
          receipt: tampered,
          inferenceReceipt: saved.body.inferenceReceipt,
          promptTokens: saved.body.promptTokens,
          output: saved.body.output,
        }),
      );
      const bad = await run(['attribution', 'verify', file]);
      assert.equal(bad.code, 1, bad.stderr);
      assert.equal(JSON.parse(bad.stdout).path, 'payouts[0].amount');
    });

    it('settles the epoch on-chain; the contributor claims exactly the receipt amount', async () => {
      const operator = owner; // dev account 0 is the node's signer
      const planted = contributors[1]!.account.address;
      const amount = BigInt(
        receipt.payouts.find((p) => p.address === planted.toLowerCase())!.amount,
      );

      const nothing = await contributors[1]!.call('POST', '/api/attribution/claims', {});
      assert.equal(nothing.status, 409);
      assert.equal(nothing.body.error.code, 'NOTHING_TO_CLAIM');

      assert.equal((await operator.call('POST', '/api/escrow/settle')).status, 200);
      const round = await operator.call('POST', '/api/attribution/run');
      assert.equal(round.status, 200, JSON.stringify(round.body));
      assert.deepEqual(round.body.posted, [], 'the epoch is still open');
      await warp(3600); // the escrow's fee epoch on the local chain closes
      const posted = await operator.call('POST', '/api/attribution/run');
      assert.equal(posted.status, 200, JSON.stringify(posted.body));
      assert.equal(posted.body.posted.length, 1);
      const epochs = await operator.call('GET', '/api/attribution/epochs');
      assert.equal(epochs.body.epochs[0].final, false);
      assert.equal(epochs.body.epochs[0].total, receipt.inference.fee);

      const early = await contributors[1]!.call('GET', `/api/attribution/claims/${planted}`);
      assert.equal(early.body.claimable, '0');
      assert.equal(early.body.pendingPosted, amount.toString());

      // Anyone may dispute the posting within its window (bonding 100 OPEN); the arbiter rejects.
      const epoch = String(posted.body.posted[0]);
      assert.equal((await contributors[2]!.call('POST', '/api/faucet', {})).status, 200);
      const evidence = path.join(dataDir, 'evidence.json');
      await writeFile(evidence, JSON.stringify({ epoch, claim: 'recomputed differently' }));
      const challenged = await cli([
        'attribution',
        'challenge',
        epoch,
        '--evidence',
        evidence,
        '--account',
        '3',
      ]);
      assert.equal(challenged.code, 0, challenged.stderr);
      const disputed = await operator.call('GET', '/api/attribution/epochs');
      assert.equal(disputed.body.epochs[0].status, 'challenged');
      const twice = await cli([
        'attribution',
        'challenge',
        epoch,
        '--evidence',
        evidence,
        '--account',
        '2',
      ]);
      assert.equal(twice.code, 1);
      assert.match(twice.stderr, /NotChallengeable/);
      const resolved = await cli(['attribution', 'resolve', epoch, '--rejected', '--account', '0']);
      assert.equal(resolved.code, 0, resolved.stderr);
      await warp(600); // the challenge window passes
      assert.equal(
        (await operator.call('GET', '/api/attribution/epochs')).body.epochs[0].final,
        true,
      );

      const before = await balanceOf(planted);
      const claimed = await contributors[1]!.call('POST', '/api/attribution/claims', {});
      assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
      assert.equal(claimed.body.amount, amount.toString());
      assert.equal((await balanceOf(planted)) - before, amount);
      const again = await contributors[1]!.call('POST', '/api/attribution/claims', {});
      assert.equal(again.body.error.code, 'NOTHING_TO_CLAIM');

      // The claimed rewards earn as many contribution votes (cVOTE), minted by a sync.
      const synced = await contributors[1]!.call('POST', '/api/governance/sync', {});
      assert.equal(synced.status, 200, JSON.stringify(synced.body));
      assert.equal(synced.body.minted, amount.toString());
      assert.equal(synced.body.votes.contribution.votes, amount.toString());
      const resynced = await contributors[1]!.call('POST', '/api/governance/sync', {});
      assert.equal(resynced.body.minted, '0');

      const earnings = await caller.call('GET', `/api/attribution/earnings/${planted}`);
      assert.equal(earnings.status, 200);
      assert.equal(earnings.body.total, amount.toString());
      assert.equal(earnings.body.claim.claimed, amount.toString());
      assert.equal(earnings.body.byModel[0].modelId, modelId);
      const revenue = await caller.call('GET', `/api/attribution/models/${modelId}/revenue`);
      assert.equal(revenue.body.fees, receipt.inference.fee);
      assert.equal(revenue.body.collected, receipt.inference.fee);
    });

    it('pays the contributor a RAG answer cites, through the RAG channel, verifiably', async () => {
      const cited = contributors[2]!.account.address.toLowerCase();
      const answer = await caller.call('POST', '/v1/chat/completions', {
        model: `model:${modelId}`,
        messages: [
          { role: 'user', content: 'Who folded seven paper comets above the Drennick mill?' },
        ],
        rag: { datanets: [datanetId], k: 3 },
        max_tokens: 16,
        temperature: 0,
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.match(answer.body.choices[0].message.content, /Tamsorel/);
      const citation = answer.body.citations.find((c: { supported: boolean }) => c.supported);
      assert.equal(citation.contributor, cited, JSON.stringify(answer.body.citations));
      const id = answer.headers.get('x-openledger-receipt-id')!;

      const got = await caller.call('GET', `/api/attribution/receipts/${id}`);
      assert.equal(got.status, 200, JSON.stringify(got.body));
      const rag = (got.body.receipt as AttributionReceipt).channels.rag!;
      assert.ok(rag, 'the receipt has a RAG channel');
      assert.deepEqual(
        rag.weights.map((w) => [w.contributor, w.weight]),
        [[cited, '1000000000']],
      );
      assert.ok(rag.sources.find((s) => s.cited)?.contributor === cited);
      const payouts = (got.body.receipt as AttributionReceipt).payouts;
      assert.equal(
        payouts.reduce((sum, p) => sum + BigInt(p.amount), 0n),
        BigInt(got.body.receipt.inference.fee),
      );
      assert.ok(BigInt(payouts.find((p) => p.address === cited)?.amount ?? '0') > 0n);

      // Anyone rebuilds it from public data; an edited RAG weight is caught.
      const bundle = {
        kind: 'openledger.attribution-bundle' as const,
        receipt: got.body.receipt,
        inferenceReceipt: got.body.inferenceReceipt,
        promptTokens: got.body.promptTokens,
        output: got.body.output,
      };
      const options = {
        modelsDirs: [],
        onlyGivenDirs: true,
        cacheDir: path.join(dataDir, 'verify-cache'),
      };
      const verified = await verifyBundle(bundle, new NodeClient(node.url), options);
      assert.equal(verified.ok, true, JSON.stringify(verified));
      // A receipt paying someone else for the cited row fails the row's on-chain inclusion proof.
      const tampered = structuredClone(bundle);
      const at = (tampered.receipt as AttributionReceipt).channels.rag!.sources.findIndex(
        (s) => s.cited,
      );
      tampered.receipt.channels.rag.sources[at].contributor = owner.account.address.toLowerCase();
      const caught = await verifyBundle(tampered, new NodeClient(node.url), options);
      assert.equal(caught.ok, false);
      assert.equal(!caught.ok && caught.path, `channels.rag.sources[${at}].contributor`);
    });
  },
);
