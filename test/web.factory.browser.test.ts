// Headless-Chromium test of the Model Factory pages of the web app (web/dist) against a full node:
// the wizard (base model, datanet, chatml template with its mask preview, hyperparameters,
// launch), the live job page through to the result, cancelling a run, and the list of runs.
//
//   npx vite build --config web/vite.config.ts
//   node --import tsx --test test/web.factory.browser.test.ts
//
// Skips when Chromium (CHROMIUM_PATH, default /usr/bin/chromium) or web/dist/index.html is
// missing, unless OPENLEDGER_REQUIRE_BROWSER=1 (as in CI), where that fails. Skips (always) when
// the fixture base model ../shared/fixtures/models/aidreams260K.gguf is absent.
// OPENLEDGER_WEB_SCREENSHOTS=1 also saves SCREENSHOTS of the pages it visits to test-results/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { devAccount } from '../src/chain/index.ts';
import type { RowContent } from '../src/datanets/ingest/index.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { AIDREAMS_GGUF } from './helpers/models.ts';
import {
  RESULTS_DIR,
  SCREENSHOTS,
  TIMEOUT,
  browserSkipReason,
  launchChromium,
  textOf,
  waitUntil,
} from './helpers/browser.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Training 20 steps of the fixture model takes seconds, more on a busy machine. */
const TRAIN_TIMEOUT = 60_000;
const MODEL = 'aidreams260K';
const UUID = /^\/factory\/jobs\/([0-9a-f-]{36})$/;

const owner = devAccount(0);
const trainer = devAccount(1);
const contributors = [devAccount(2), devAccount(3)];

const THINGS: [string, string][] = [
  ['lantern', 'blue'],
  ['kettle', 'red'],
  ['blanket', 'green'],
  ['teapot', 'yellow'],
  ['ladder', 'brown'],
  ['bucket', 'orange'],
  ['pillow', 'white'],
  ['basket', 'purple'],
  ['curtain', 'pink'],
  ['bicycle', 'black'],
];
const row = ([thing, color]: [string, string]): RowContent => ({
  type: 'instruction',
  instruction: `What color is the ${thing} in the little house?`,
  output: `The ${thing} is ${color}. The ${thing} is ${color}.`,
});

// The fixture model lives beside the repository; without it the test skips everywhere.
const browserSkip = browserSkipReason('web.factory.browser.test.ts');
const skip =
  browserSkip ?? (existsSync(AIDREAMS_GGUF) ? undefined : `fixture model absent: ${AIDREAMS_GGUF}`);
if (skip && !browserSkip) console.log(`web.factory.browser.test.ts skipped: ${skip}`);

test(
  'web app: model factory — wizard, live training run, result, cancel',
  { skip, timeout: 180_000 },
  async (t: TestContext) => {
    const { startTestNode } = await import('./helpers/node.ts');
    const node = await startTestNode();
    let browser: Browser | undefined;
    const pageErrors: string[] = [];
    let page: Page | undefined;

    const at = (p: string) => new URL(p, node.url).toString();
    const pathname = () => new URL(page!.url()).pathname;
    const byId = (id: string) => page!.getByTestId(id);
    const shot = async (name: string) => {
      mkdirSync(RESULTS_DIR, { recursive: true });
      const file = path.join(RESULTS_DIR, `web-factory-${name}.png`);
      await page!.screenshot({ path: file, fullPage: true }).catch(() => {});
      return file;
    };
    const step = async (name: string, fn: () => Promise<void>) => {
      t.diagnostic(`step: ${name}`);
      const slug = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
      try {
        await fn();
        if (SCREENSHOTS && page) await shot(slug);
      } catch (err) {
        if (page) t.diagnostic(`screenshot: ${path.relative(root, await shot(slug))}`);
        if (err instanceof Error) err.message = `[${name}] ${err.message}`;
        throw err;
      }
    };

    const me = new DatanetActor(node.url, trainer);
    let creator: DatanetActor;
    let datanetId = 0;
    let privateId = 0;
    let contextLength = 0;
    let jobId = '';

    try {
      await step('an open datanet with rows from two contributors, version 1', async () => {
        creator = new DatanetActor(node.url, owner);
        const created = await creator.create({
          name: 'House colors',
          summary: 'Colors of things in the little house.',
          description:
            'Short questions and answers about the colors of things in the little house: lanterns, kettles, blankets, teapots, ladders, buckets, pillows, baskets, curtains, bicycles.',
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        datanetId = created.body.id;
        const ids: string[] = [];
        for (const [i, account] of contributors.entries()) {
          const rows = THINGS.slice(i * 5, i * 5 + 5).map(row);
          const c = await new DatanetActor(node.url, account).contributeRows(datanetId, rows);
          assert.equal(c.status, 201, JSON.stringify(c.body));
          assert.equal(c.body.acceptedRowCount, 5, JSON.stringify(c.body));
          ids.push(c.body.id);
        }
        const version = await creator.approve(datanetId, ids);
        assert.equal(version.status, 201, JSON.stringify(version.body));
        assert.equal(version.body.version, 1);
        // A permissioned datanet (with a version) that dev account 1 may not read yet.
        const closed = await creator.create({
          name: 'Private colors',
          description:
            'Short questions and answers about the colors of things in the little house: lanterns, kettles, blankets, teapots, ladders, buckets, pillows, baskets, curtains, bicycles.',
          policy: 'permissioned',
        });
        assert.equal(closed.status, 201, JSON.stringify(closed.body));
        privateId = closed.body.id;
        const own = await creator.contributeRows(privateId, THINGS.slice(0, 3).map(row));
        assert.equal(own.status, 201, JSON.stringify(own.body));
        const privateVersion = await creator.approve(privateId, [own.body.id]);
        assert.equal(privateVersion.status, 201, JSON.stringify(privateVersion.body));
        const models = await me.call('GET', '/api/factory/models');
        const model = models.body.models.find((m: { name: string }) => m.name === MODEL);
        assert.ok(model, `the node offers ${MODEL}`);
        contextLength = model.contextLength;
      });

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));

      await step('sign in as dev account 1 on the factory page', async () => {
        await page!.goto(at('/factory'));
        await byId('page-factory').waitFor();
        await byId('signin-required').waitFor();
        await byId('signin-connect').click();
        await byId('connect-dialog').waitFor();
        await byId('dev-account-1').click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        assert.equal(await byId('signed-in-address').getAttribute('data-address'), trainer.address);
        await byId('factory-jobs-empty').waitFor();
      });

      await step('wizard: base model', async () => {
        await byId('new-training-run').click();
        await waitUntil('path /factory/new', async () => pathname() === '/factory/new');
        await byId('wizard-panel-model').waitFor();
        const option = page!.locator(`[data-testid="model-option"][data-name="${MODEL}"]`);
        assert.match(await textOf(option), /llama/);
        assert.match(await textOf(option), new RegExp(`context ${contextLength} tokens`));
        await option.click();
        await byId('wizard-next').click();
      });

      await step('wizard: datanet and version', async () => {
        await byId('wizard-panel-datanets').waitFor();
        const option = page!.locator(
          `[data-testid="datanet-option"][data-datanet-id="${datanetId}"][data-can-read="true"]`,
        );
        await option.waitFor();
        assert.equal(await option.getAttribute('data-selectable'), 'true');
        assert.equal(await byId('wizard-next').isDisabled(), true, 'a datanet is required');
        await option.getByTestId('datanet-select').check();
        assert.equal(await option.getByTestId('datanet-version').inputValue(), '1');
        assert.equal(await textOf(option.getByTestId('datanet-rows')), '10');
        if (SCREENSHOTS) await shot('datanets');
        await byId('wizard-next').click();
      });

      await step('wizard: a permissioned datanet needs a grant first', async () => {
        await byId('wizard-back').click();
        await byId('wizard-panel-datanets').waitFor();
        const closed = page!.locator(
          `[data-testid="datanet-option"][data-datanet-id="${privateId}"]`,
        );
        await page!
          .locator(`[data-testid="datanet-option"][data-datanet-id="${privateId}"][data-can-read]`)
          .waitFor();
        assert.equal(await closed.getAttribute('data-can-read'), 'false');
        assert.equal(await closed.getAttribute('data-selectable'), 'false');
        assert.equal(await closed.getByTestId('datanet-select').isDisabled(), true);
        await closed.getByTestId('datanet-request-access').click();
        const inline = page!.locator(
          `[data-testid="inline-access"][data-datanet-id="${privateId}"]`,
        );
        await inline.getByTestId('request-access-purpose').fill('Fine-tuning a colors assistant.');
        await inline.getByTestId('request-access-submit').click();
        await inline
          .locator('[data-testid="inline-access-status"][data-status="pending"]')
          .waitFor({ timeout: 30_000 });
        if (SCREENSHOTS) await shot('request-access');
        // Still not selectable; the owner grants, and a re-check makes it selectable.
        assert.equal(await closed.getAttribute('data-selectable'), 'false');
        const granted = await creator.decideAccess(privateId, trainer.address, 'grant');
        assert.equal(granted.status, 200, JSON.stringify(granted.body));
        await inline.getByTestId('inline-access-recheck').click();
        await page!
          .locator(
            `[data-testid="datanet-option"][data-datanet-id="${privateId}"][data-selectable="true"]`,
          )
          .waitFor();
        assert.equal(await closed.getAttribute('data-can-read'), 'true');
        assert.equal(await closed.getByTestId('datanet-select').isChecked(), false);
        await byId('wizard-next').click();
      });

      await step('wizard: chatml template and its mask preview', async () => {
        await byId('wizard-panel-template').waitFor();
        await byId('template-chatml').click();
        const preview = byId('template-preview');
        await preview.waitFor();
        assert.match(await textOf(byId('preview-source')), /first row of House colors v1/);
        // The chatml markup and the question are masked; the answer is trained.
        const masked = await page!
          .locator('[data-testid="preview-piece"][data-masked="true"]')
          .allTextContents();
        const trained = await page!
          .locator('[data-testid="preview-piece"][data-masked="false"]')
          .allTextContents();
        assert.ok(masked.length > 0 && trained.length > 0, 'masked and trained pieces');
        assert.match(masked.join(''), /<\|im_start\|>user/);
        assert.match(masked.join(''), /What color is the \w+ in the little house\?/);
        assert.match(trained.join(''), /The \w+ is \w+\./);
        assert.doesNotMatch(trained.join(''), /user|What color/);
        assert.equal(
          Number(await textOf(byId('preview-trained-count'))),
          trained.length,
          'the trained count is the highlighted pieces',
        );
        if (SCREENSHOTS) await shot('template-preview');
        await byId('wizard-next').click();
      });

      await step('wizard: hyperparameters', async () => {
        await byId('wizard-panel-hyperparameters').waitFor();
        assert.equal(await byId('hp-rank').inputValue(), '8');
        assert.equal(await byId('hp-alpha').inputValue(), '16');
        assert.equal(await byId('hp-dropout').inputValue(), '0.05');
        assert.equal(await byId('hp-learning-rate').inputValue(), '1e-3');
        assert.equal(await byId('hp-max-tokens').inputValue(), '256');
        assert.equal(await byId('hp-target-attn_q').isChecked(), true);
        assert.equal(await byId('hp-target-attn_v').isChecked(), true);
        assert.equal(await byId('hp-target-ffn_up').isChecked(), false);
        await byId('hp-steps').fill('0');
        await byId('hp-steps-error').waitFor();
        assert.equal(await byId('wizard-next').isDisabled(), true, 'an invalid field blocks');
        await byId('hp-steps').fill('20');
        await byId('hp-batch-size').fill('4');
        const tokens = 20 * 4 * Math.min(256, contextLength);
        assert.equal((await textOf(byId('hp-estimate-tokens'))).replace(/,/g, ''), String(tokens));
        await byId('wizard-next').click();
      });

      await step('wizard: review and launch', async () => {
        await byId('wizard-panel-review').waitFor();
        assert.equal(await textOf(byId('review-model')), MODEL);
        assert.equal(await textOf(byId('review-template')), 'chatml');
        assert.match(await textOf(byId('review-datanets')), /House colors v1/);
        assert.match(await textOf(byId('review-training')), /20 steps × batch 4/);
        await byId('wizard-launch').click();
        const match = await waitUntil('the job page', async () => UUID.exec(pathname()));
        jobId = match[1]!;
        await page!.locator(`[data-testid="job-view"][data-job-id="${jobId}"]`).waitFor();
      });

      await step('job page: live progress to "succeeded"', async () => {
        await page!
          .locator('[data-testid="job-view"][data-status="succeeded"]')
          .waitFor({ timeout: TRAIN_TIMEOUT });
        assert.match(await textOf(byId('job-step')), /Step 20 of 20/);
        const chart = byId('loss-chart');
        assert.ok(Number(await chart.getAttribute('data-points')) >= 2, 'the chart has points');
        assert.ok(Number(await chart.getAttribute('data-eval-points')) >= 1, 'eval points');
        await byId('loss-line').waitFor();
        assert.ok(Number(await textOf(byId('job-checkpoints'))) > 0, 'checkpoints counted');
        assert.match(await textOf(byId('job-tokens-per-second')), /^[\d,]+$/);
        const statuses = await page!
          .locator('[data-testid="job-timeline-event"]')
          .evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
        assert.deepEqual(statuses, ['queued', 'validating', 'running', 'succeeded']);
        assert.equal(await byId('job-cancel').count(), 0, 'no cancel once it is over');
        assert.equal(await byId('job-connection').count(), 0, 'the stream is closed');
      });

      await step('job page: the result', async () => {
        await byId('job-result').waitFor();
        const job = (await me.call('GET', `/api/jobs/${jobId}`)).body;
        assert.equal(job.status, 'succeeded');
        const r = job.result;
        assert.equal(await textOf(byId('result-train-loss')), r.trainLoss.toFixed(3));
        assert.equal(await textOf(byId('result-eval-loss')), r.evalLoss.toFixed(3));
        assert.equal(await textOf(byId('result-base-eval-loss')), r.baseEvalLoss.toFixed(3));
        const gain = ((r.baseEvalLoss - r.evalLoss) / r.baseEvalLoss) * 100;
        assert.equal(await textOf(byId('result-improvement')), `${gain.toFixed(1)}%`);
        assert.equal((await textOf(byId('result-tokens'))).replace(/,/g, ''), String(r.tokens));
        assert.equal(await byId('result-adapter-blob').getAttribute('data-value'), r.adapterBlobId);
        assert.equal(await byId('result-manifest-hash').getAttribute('data-value'), r.manifestHash);
        // Both contributors' rows were trained on, each linked to their profile.
        const rows = page!.locator('[data-testid="result-contributor"]');
        assert.equal(await rows.count(), 2);
        let sum = 0;
        for (const account of contributors) {
          const tr = page!.locator(
            `[data-testid="result-contributor"][data-address="${account.address}"]`,
          );
          const tokens = Number(
            (await textOf(tr.getByTestId('result-contributor-tokens'))).replace(/,/g, ''),
          );
          assert.equal(tokens, r.contributors[account.address]);
          assert.ok(tokens > 0);
          sum += tokens;
          assert.equal(
            await tr.getByTestId('contributor-link').getAttribute('href'),
            `/contributors/${account.address}`,
          );
        }
        assert.equal(sum, r.tokens, 'per-contributor tokens add up to the tokens trained');
        assert.equal(
          await byId('job-chat-link').getAttribute('href'),
          `/playground?${new URLSearchParams({ adapter: r.adapterBlobId, base: job.params.baseModel })}`,
        );
        await shot('job');
      });

      await step('a second run, cancelled from its job page', async () => {
        const started = await me.call('POST', '/api/factory/jobs', {
          baseModel: MODEL,
          datanets: [{ id: datanetId }],
          template: 'llama2',
          hyperparameters: { steps: 100_000, batchSize: 8 },
        });
        assert.equal(started.status, 202, JSON.stringify(started.body));
        await page!.goto(at(`/factory/jobs/${started.body.id}`));
        await page!.locator(`[data-testid="job-view"][data-job-id="${started.body.id}"]`).waitFor();
        await byId('job-cancel').click();
        await page!.locator('[data-testid="job-view"][data-status="cancelled"]').waitFor();
        await byId('job-cancelled').waitFor();
        await page!
          .locator('[data-testid="job-timeline-event"][data-status="cancelled"]')
          .waitFor();
        assert.equal(await byId('job-cancel').count(), 0);
        assert.equal(await byId('job-result').count(), 0);
        assert.equal(
          (await me.call('GET', `/api/jobs/${started.body.id}`)).body.status,
          'cancelled',
        );
      });

      await step('the list of runs', async () => {
        await byId('back-to-factory').click();
        await waitUntil('path /factory', async () => pathname() === '/factory');
        const rows = page!.locator('[data-testid="factory-job-row"]');
        await waitUntil('two runs', async () => (await rows.count()) === 2);
        const done = page!.locator(`[data-testid="factory-job-row"][data-job-id="${jobId}"]`);
        assert.equal(
          await done.locator('[data-testid="job-status"]').getAttribute('data-status'),
          'succeeded',
        );
        assert.match(await textOf(done.getByTestId('job-progress')), /step 20\/20 · loss \d/);
        assert.match(await textOf(done), /House colors v1/);
        assert.match(await textOf(done), new RegExp(MODEL));
        const statuses = await page!
          .locator('[data-testid="factory-job-row"] [data-testid="job-status"]')
          .evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
        assert.deepEqual(statuses, ['cancelled', 'succeeded'], 'newest first');
        if (SCREENSHOTS) await shot('list');
        await done.getByTestId('factory-job-link').click();
        await waitUntil('the job page again', async () => pathname() === `/factory/jobs/${jobId}`);
        await byId('job-result').waitFor();
      });

      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    } finally {
      await browser?.close().catch(() => {});
      await node.close();
    }
  },
);
