// Headless-Chromium test of the Publish step on a training run's page and of /models: the owner
// prices the adapter, sets the split, signs Publish with the browser wallet (dev account), and
// the model appears on-chain and in the list.
//
//   npx vite build --config web/vite.config.ts
//   node --import tsx --test test/web.publish.browser.test.ts
//
// Skips as test/web.factory.browser.test.ts does (Chromium, web/dist, the fixture base model).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parseUnits } from 'viem';
import { ModelRegistryAbi, devAccount } from '../src/chain/index.ts';
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
  waitForText,
} from './helpers/browser.ts';

const browserSkip = browserSkipReason('web.publish.browser.test.ts');
const skip =
  browserSkip ?? (existsSync(AIDREAMS_GGUF) ? undefined : `fixture model absent: ${AIDREAMS_GGUF}`);
if (skip && !browserSkip) console.log(`web.publish.browser.test.ts skipped: ${skip}`);

const row = ([thing, color]: [string, string]): RowContent => ({
  type: 'instruction',
  instruction: `What color is the ${thing}?`,
  output: `The ${thing} is ${color}.`,
});

test(
  'web app: publish a training run as a model, then find it under Models',
  { skip, timeout: 180_000 },
  async (t: TestContext) => {
    const { startTestNode } = await import('./helpers/node.ts');
    const node = await startTestNode();
    let browser: Browser | undefined;
    let page: Page | undefined;
    const pageErrors: string[] = [];
    const at = (p: string) => new URL(p, node.url).toString();
    const byId = (id: string) => page!.getByTestId(id);
    const step = async (name: string, fn: () => Promise<void>) => {
      t.diagnostic(`step: ${name}`);
      try {
        await fn();
        if (SCREENSHOTS && page) {
          mkdirSync(RESULTS_DIR, { recursive: true });
          await page.screenshot({
            path: path.join(RESULTS_DIR, `web-publish-${name.replace(/\W+/g, '-')}.png`),
            fullPage: true,
          });
        }
      } catch (err) {
        if (err instanceof Error) err.message = `[${name}] ${err.message}`;
        throw err;
      }
    };
    const trainer = new DatanetActor(node.url, devAccount(1));
    let jobId = '';

    try {
      await step('a datanet version and a succeeded training run', async () => {
        const owner = new DatanetActor(node.url, devAccount(0));
        const created = await owner.create({
          name: 'Colors',
          description: 'Short questions and answers about the colors of household things.',
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const id = created.body.id as number;
        const c = await new DatanetActor(node.url, devAccount(2)).contributeRows(
          id,
          (
            [
              ['lantern', 'blue'],
              ['kettle', 'red'],
              ['blanket', 'green'],
              ['teapot', 'yellow'],
            ] as [string, string][]
          ).map(row),
        );
        assert.equal(c.status, 201, JSON.stringify(c.body));
        assert.equal((await owner.approve(id, [c.body.id])).status, 201);
        const job = await trainer.call('POST', '/api/factory/jobs', {
          baseModel: 'aidreams260K',
          datanets: [{ id, version: 1 }],
          hyperparameters: { steps: 2, rank: 2, batchSize: 2 },
        });
        assert.equal(job.status, 202, JSON.stringify(job.body));
        jobId = job.body.id;
        for (;;) {
          const status = (await node.node.context.jobs.get(jobId)).status;
          if (status === 'succeeded') break;
          assert.ok(!['failed', 'cancelled'].includes(status), status);
          await new Promise((r) => setTimeout(r, 100));
        }
      });

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));

      await step('the models list starts empty', async () => {
        await page!.goto(at('/models'));
        await waitForText(byId('page-title'), 'Models');
        await byId('models-empty').waitFor();
      });

      await step('sign in and open the run', async () => {
        await page!.goto(at(`/factory/jobs/${jobId}`));
        await byId('signin-connect').click();
        await byId('dev-account-1').click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        await byId('publish-form').waitFor();
      });

      await step('a split that does not add up is refused before signing', async () => {
        await byId('publish-split-owner').fill('70');
        await byId('publish-submit').click();
        await waitForText(byId('error-message'), /add up to 110%/);
        assert.deepEqual(await node.node.context.publishedModels!.list(), []);
      });

      await step('sign and publish', async () => {
        await byId('publish-name').fill('House colors');
        await byId('publish-price-in').fill('0.5');
        await byId('publish-price-out').fill('1.5');
        await byId('publish-split-owner').fill('50');
        await byId('publish-split-stakers').fill('10');
        await byId('publish-split-contributors').fill('40');
        await byId('publish-submit').click();
        await byId('publish-done').waitFor({ timeout: 30_000 });
        assert.equal(await textOf(byId('publish-model-id')), '1');
        assert.equal(await textOf(byId('publish-model-name')), 'House colors');
        const record = (await node.node.context.chain.publicClient.readContract({
          address: node.node.context.deployment.contracts.ModelRegistry,
          abi: ModelRegistryAbi,
          functionName: 'model',
          args: [1n],
        })) as { pricePer1kInput: bigint; pricePer1kOutput: bigint; split: unknown };
        assert.equal(record.pricePer1kInput, parseUnits('0.5', 18));
        assert.equal(record.pricePer1kOutput, parseUnits('1.5', 18));
        assert.deepEqual(record.split, { owner: 5000, stakers: 1000, contributors: 4000 });
        // Reloaded, the run says it is published rather than offering the form again.
        await page!.reload();
        await byId('publish-done').waitFor();
      });

      await step('the model is listed under Models', async () => {
        await byId('nav-models').click();
        await byId('models-table').waitFor();
        const rowLocator = page!.locator('[data-testid="model-row"][data-model-id="1"]');
        assert.equal(await textOf(rowLocator.getByTestId('model-name')), 'House colors');
        assert.equal(await textOf(rowLocator.getByTestId('model-base')), 'aidreams260K');
        assert.match(await textOf(rowLocator.getByTestId('model-price-in')), /^0\.5 OPEN$/);
      });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser?.close().catch(() => {});
      await node.close();
    }
  },
);
