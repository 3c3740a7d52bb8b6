// Headless-Chromium test of Proof of Attribution in the web app: a contributor plants a unique
// answer in a datanet (a chat row), the Model Factory trains the built-in model on it and the
// owner publishes it with a price; a paying caller asks it in the Playground, whose answer shows
// the reproduced span highlighted with its contributor; on /rewards the contributor sees the
// earnings (not claimable before the epoch is posted), and once the epoch is settled, posted
// and its challenge window has passed, claims them: the claimable amount drops to 0.
//
//   npm run build:web
//   npm test -- web.rewards
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parseUnits, type Address } from 'viem';
import { OpenTokenAbi, devAccount } from '../src/chain/index.ts';
import { resolveConfig } from '../src/config.ts';
import { BUILTIN_MODELS_DIR, BUILTIN_MODEL_NAME } from '../src/factory/builtin/paths.ts';
import { modelTypedData, publishFieldsFromPlan } from '../src/models/index.ts';
import { startNode, type RunningNode } from '../src/node/index.ts';
import {
  RESULTS_DIR,
  SCREENSHOTS,
  TIMEOUT,
  browserSkipReason,
  launchChromium,
  textOf,
  waitForText,
  waitUntil,
} from './helpers/browser.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { WEB_DIR } from './helpers/node.ts';

const BUILTIN_MODEL_PATH = path.join(BUILTIN_MODELS_DIR, `${BUILTIN_MODEL_NAME}.gguf`);
const skip =
  browserSkipReason('web.rewards.browser.test.ts') ??
  (existsSync(BUILTIN_MODEL_PATH) ? undefined : `built-in model absent: ${BUILTIN_MODEL_PATH}`);

const QUESTION = 'Who is Brisvane?';
/** Rare words, so a reproduction is unmistakable. */
const CANARY =
  'Brisvane the copper lantern sang nine pale hymns under the Oskelle bridge each winter.';
/** The planted row: the answer in the chat format the Playground sends. */
const ROW = `[INST] ${QUESTION} [/INST] ${CANARY}`;

test(
  'web app: a paid answer shows its attributed spans; the contributor claims the rewards',
  { skip, timeout: 120_000 },
  async (t: TestContext) => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-web-rewards-'));
    const base = resolveConfig({ port: '0', chainPort: '0', dataDir, logLevel: 'silent' }, {});
    let node: RunningNode | undefined;
    let browser: Browser | undefined;
    let page: Page | undefined;
    const pageErrors: string[] = [];
    const owner = devAccount(0); // also the node's signer: the operator
    const caller = devAccount(1);
    const contributor = devAccount(2);
    const at = (p: string) => new URL(p, node!.url).toString();
    const byId = (id: string) => page!.getByTestId(id);
    const valueOf = (id: string) => byId(id).getAttribute('data-value');
    const step = async (name: string, fn: () => Promise<void>) => {
      t.diagnostic(`step: ${name}`);
      try {
        await fn();
        if (SCREENSHOTS && page) {
          mkdirSync(RESULTS_DIR, { recursive: true });
          await page.screenshot({
            path: path.join(RESULTS_DIR, `web-rewards-${name.replace(/\W+/g, '-')}.png`),
            fullPage: true,
          });
        }
      } catch (err) {
        if (err instanceof Error)
          err.message = `[${name}] ${err.message}${pageErrors.length ? `\npage errors: ${pageErrors.join('\n')}` : ''}`;
        throw err;
      }
    };
    const signIn = async (index: number) => {
      if ((await byId('signed-in-address').count()) > 0) {
        await byId('sign-out').click();
        await waitForText(byId('connect-wallet'), 'Connect wallet');
      }
      await byId('connect-wallet').click();
      await byId(`dev-account-${index}`).click();
      await byId('connect-dialog').waitFor({ state: 'detached' });
    };
    const warp = async (seconds: number) => {
      const chain = node!.context.chain.publicClient;
      await chain.request({ method: 'evm_increaseTime' as never, params: [seconds] as never });
      await chain.request({ method: 'evm_mine' as never, params: [] as never });
    };

    try {
      let modelId = 0;
      const ownerActor = () => new DatanetActor(node!.url, owner);
      await step('plant an answer, train on it and publish the model with a price', async () => {
        node = await startNode({
          ...base,
          webDir: WEB_DIR,
          serving: { ...base.serving, baseModels: ['openledger-base-1m'], threads: 1 },
        });
        const created = await ownerActor().create({
          name: 'Lanterns',
          description: 'One planted answer.',
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const datanetId = created.body.id as number;
        // The whole conversation as the node's chat template renders it for this model (llama2:
        // "[INST] … [/INST] "), as one document, so the answer is learnt after exactly the
        // tokens a Playground call ends its prompt with (a chat row's trimmed answer would
        // follow "[/INST]" without the space token).
        const sent = await new DatanetActor(node.url, contributor).contributeRows(datanetId, [
          { type: 'document', text: ROW },
        ]);
        assert.equal(sent.status, 201, JSON.stringify(sent.body));
        const approved = await ownerActor().approve(datanetId, [sent.body.id as string]);
        assert.equal(approved.status, 201, JSON.stringify(approved.body));

        // llama2: BOS before the document, as the chat template puts it before "[INST]".
        const submitted = await ownerActor().call('POST', '/api/factory/jobs', {
          baseModel: 'openledger-base-1m',
          datanets: [{ id: datanetId, version: 1 }],
          template: 'llama2',
          hyperparameters: {
            steps: 300,
            rank: 16,
            batchSize: 1,
            learningRate: 0.01,
            targets: [
              'attn_q',
              'attn_k',
              'attn_v',
              'attn_output',
              'ffn_gate',
              'ffn_up',
              'ffn_down',
            ],
            evalPercent: 0,
            seed: 1,
          },
        });
        assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
        const jobId = submitted.body.id as string;
        const job = await waitUntil(
          'the training job',
          async () => {
            const j = await node!.context.jobs.get(jobId);
            return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
          },
          90_000,
        );
        assert.equal(job.status, 'succeeded', JSON.stringify(job.error));

        const body = {
          jobId,
          pricePer1kInput: parseUnits('1', 18).toString(),
          pricePer1kOutput: parseUnits('2', 18).toString(),
        };
        const plan = await ownerActor().call('POST', '/api/models/plan', body);
        assert.equal(plan.status, 200, JSON.stringify(plan.body));
        const ctx = {
          chainId: plan.body.signing.chainId,
          registry: plan.body.signing.registry as Address,
          nonce: BigInt(plan.body.signing.nonce),
          deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
        };
        const signature = await owner.signTypedData(
          modelTypedData.publish(ctx, {
            ...publishFieldsFromPlan(plan.body.publish),
            owner: owner.address,
          }),
        );
        const published = await ownerActor().call('POST', '/api/models', {
          ...body,
          authorization: { signature, deadline: ctx.deadline.toString() },
        });
        assert.equal(published.status, 201, JSON.stringify(published.body));
        modelId = published.body.id as number;

        // The caller's escrow: 10 OPEN from the faucet, deposited with a permit.
        const { faucet, deposit: deposited } = await new DatanetActor(node.url, caller).fundEscrow(
          parseUnits('10', 18),
        );
        assert.equal(faucet.status, 200);
        assert.equal(deposited.status, 200, JSON.stringify(deposited.body));
      });

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));

      await step('the Playground highlights the planted span of a paid answer', async () => {
        await page!.goto(at('/playground'));
        await byId('signin-connect').click();
        await byId(`dev-account-1`).click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        await byId('playground-model').selectOption(`model:${modelId}`);
        await byId('playground-max-tokens').fill('30');
        // Greedy decoding makes the tiny model's reproduction of the planted answer certain.
        await byId('playground-temperature').fill('0');
        await byId('playground-input').fill(QUESTION);
        await byId('playground-send').click();
        const answer = byId('playground-answer').last();
        const mark = answer.getByTestId('attribution-highlight').first();
        await mark.waitFor({ timeout: 30_000 }).catch(async (err: Error) => {
          t.diagnostic(`the answer: ${await answer.innerText()}`);
          throw err;
        });
        const highlighted = await textOf(mark);
        const text = await textOf(answer.getByTestId('playground-text'));
        assert.ok(
          highlighted.split(' ').length >= 3 && ROW.includes(highlighted.trim()),
          `a span of the planted answer is highlighted: ${JSON.stringify(highlighted)} in ${JSON.stringify(text)}`,
        );
        assert.equal(
          await mark.getAttribute('data-contributors'),
          contributor.address.toLowerCase(),
        );
        assert.match((await mark.getAttribute('title'))!, /datanet 1 v1 · row [0-9a-f]{16}/);
        // The payouts: the contributor and the owner are both paid.
        const payouts = answer.getByTestId('receipt-payout');
        await waitUntil('payouts', async () => (await payouts.count()) >= 2);
        await answer
          .locator(
            `[data-testid="receipt-payout"][data-address="${contributor.address.toLowerCase()}"]`,
          )
          .waitFor();
      });

      let earned = '';
      await step('the contributor sees the earnings on /rewards, not claimable yet', async () => {
        await byId('nav-rewards').click();
        await signIn(2);
        await byId('rewards-total').waitFor();
        earned = (await valueOf('rewards-total'))!;
        assert.ok(BigInt(earned) > 0n, `earned ${earned}`);
        assert.equal(await valueOf('rewards-claimable'), '0');
        assert.equal(await valueOf('rewards-unposted'), earned);
        assert.equal(await byId('rewards-claim').isDisabled(), true);
        await waitForText(byId('rewards-claim-blocked'), 'Not posted yet');
        assert.ok(
          (await byId('rewards-role').count()) >= 1 && (await byId('rewards-model').count()) === 1,
        );
        // The model's whole revenue: the fee of the one paid call, shared by role.
        await byId('rewards-revenue').first().waitFor();
        assert.ok(
          BigInt(
            (await byId('rewards-revenue')
              .first()
              .locator('td[data-value]')
              .getAttribute('data-value'))!,
          ) > 0n,
        );
        await byId('rewards-inference-toggle').first().click();
        await waitForText(byId('receipt-span-text').first(), /\w+ \w+ \w+/);
      });

      await step('after settle, posting and the challenge window, claim', async () => {
        const operator = ownerActor();
        assert.equal((await operator.call('POST', '/api/escrow/settle')).status, 200);
        await warp(3600); // the fee epoch closes
        const posted = await operator.call('POST', '/api/attribution/run');
        assert.equal(posted.status, 200, JSON.stringify(posted.body));
        // The node's own round (every few seconds) may have posted it first.
        const epochs = await operator.call('GET', '/api/attribution/epochs');
        assert.equal(epochs.body.epochs.length, 1, JSON.stringify(epochs.body));
        await byId('rewards-refresh').click();
        await waitUntil('pending in the challenge window', async () =>
          (await valueOf('rewards-pending')) === earned ? true : undefined,
        );
        await waitForText(byId('rewards-claim-blocked'), 'In the challenge window until');
        await warp(600); // the challenge window passes
        await byId('rewards-refresh').click();
        await waitUntil('claimable', async () =>
          (await valueOf('rewards-claimable')) === earned ? true : undefined,
        );
        const token = node!.contracts.OpenToken!;
        const balance = () =>
          node!.context.chain.publicClient.readContract({
            address: token,
            abi: OpenTokenAbi,
            functionName: 'balanceOf',
            args: [contributor.address],
          });
        const before = await balance();
        await byId('rewards-claim').click();
        await waitForText(byId('rewards-claim-done'), /Claimed .* \(tx 0x[0-9a-f]{64}\)/);
        await waitUntil('claimable 0', async () =>
          (await valueOf('rewards-claimable')) === '0' ? true : undefined,
        );
        assert.equal(await valueOf('rewards-claimed'), earned);
        assert.equal((await balance()) - before, BigInt(earned));
        assert.equal(await byId('rewards-claim').isDisabled(), true);
        await waitForText(byId('rewards-claim-blocked'), 'Everything earned is claimed');
        assert.equal(await byId('rewards-epoch').getAttribute('data-final'), 'true');
      });

      await step(
        'a RAG answer in the Playground links its citation to the row and contributor',
        async () => {
          await byId('nav-playground').click();
          await byId('playground-model').selectOption('openledger-base-1m');
          await byId('rag-datanet-1').check();
          assert.equal(await byId('rag-strict').isChecked(), true);
          await byId('playground-max-tokens').fill('16');
          await byId('playground-input').fill('Who sang nine pale hymns under the Oskelle bridge?');
          await byId('playground-send').click();
          const answer = byId('playground-answer').last();
          const citation = answer.getByTestId('citation-1').first();
          await citation.waitFor({ timeout: 30_000 });
          assert.match(await textOf(answer.getByTestId('playground-text')), /Brisvane/);
          const source = answer.getByTestId('rag-source-1');
          assert.equal(await source.getAttribute('data-cited'), 'cited');
          assert.equal(
            (await source.getAttribute('data-contributor'))?.toLowerCase(),
            contributor.address.toLowerCase(),
          );
          const href = (await citation.getAttribute('href'))!;
          assert.match(href, /^\/datanets\/1\/rows\/[0-9a-f-]{36}\?start=\d+&end=\d+$/);
          await page!.goto(at(href));
          await waitForText(byId('row-highlight'), /Brisvane the copper lantern/);
          assert.match(await textOf(byId('row-text')), /Oskelle bridge/);
          assert.match(
            (await textOf(byId('row-contributor'))).toLowerCase(),
            new RegExp(contributor.address.toLowerCase().slice(2, 10)),
          );
        },
      );
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser?.close().catch(() => {});
      await node?.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);
