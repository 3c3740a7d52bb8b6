// Headless-Chromium test of the Playground (/playground): signed in with the browser wallet, a
// message to a base model with an adapter at a weight is streamed from /v1/chat/completions
// (the session cookie authenticates it), and the answer shows tokens/s and the adapters that
// served it; the training run page's link (?adapter=<sha256>&base=…) preselects an adapter.
//
//   npx vite build --config web/vite.config.ts
//   node --import tsx --test test/web.playground.browser.test.ts
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { eq } from 'drizzle-orm';
import type { Browser, Page } from 'playwright-core';
import { devAccount } from '../src/chain/index.ts';
import { schema } from '../src/db/index.ts';
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
import { call } from './helpers/http.ts';

const skip = browserSkipReason('web.playground.browser.test.ts');

test(
  'web app: chat in the Playground with a base model and an adapter, streamed, with tokens/s',
  { skip, timeout: 120_000 },
  async (t: TestContext) => {
    const { startServingNode, writeTinyAdapter } = await import('./helpers/serving.ts');
    const node = await startServingNode({ maxTokens: 64 });
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
            path: path.join(RESULTS_DIR, `web-playground-${name.replace(/\W+/g, '-')}.png`),
            fullPage: true,
          });
        }
      } catch (err) {
        if (err instanceof Error)
          err.message = `[${name}] ${err.message}${pageErrors.length ? `\npage errors: ${pageErrors.join('\n')}` : ''}`;
        throw err;
      }
    };
    const caller = devAccount(1).address.toLowerCase();

    try {
      let adapterId = '';
      await step('an operator names an adapter', async () => {
        const file = path.join(node.dataDir, 'style-a.gguf');
        await writeTinyAdapter(file, 3, { scale: 0.5 });
        const loaded = await call(node.url, 'POST', '/v1/load_lora_adapter', {
          token: node.operatorKey,
          body: { lora_name: 'style-a', lora_path: file },
        });
        assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
        adapterId = loaded.body.id as string;
      });

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));

      await step('sign in on the Playground', async () => {
        await page!.goto(at('/playground'));
        await waitForText(byId('page-title'), 'Playground');
        await byId('signin-connect').click();
        await byId('dev-account-1').click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        await byId('playground').waitFor();
        assert.equal(await byId('playground-model').inputValue(), 'tiny');
      });

      await step('compose an adapter at a weight and send a message', async () => {
        await byId('playground-adapter-choice').selectOption('style-a');
        await byId('playground-adapter-add').click();
        await byId('playground-adapter-weight').fill('0.5');
        await byId('playground-system').fill('Answer briefly.');
        await byId('playground-max-tokens').fill('24');
        await byId('playground-input').fill('Tell me about the tides.');
        await byId('playground-send').click();
        const answer = byId('playground-answer').last();
        const stats = answer.getByTestId('playground-answer-stats');
        await waitForText(stats.getByTestId('playground-answer-tps'), /^\d+\.\d tokens\/s$/);
        assert.equal(
          await textOf(stats.getByTestId('playground-answer-adapters')),
          'tiny + style-a (×0.5)',
        );
        assert.match(await textOf(stats.getByTestId('playground-answer-tokens')), /^\d+ tokens$/);
        assert.ok((await textOf(answer.getByTestId('playground-text'))).length > 0);
        assert.equal(await answer.getAttribute('data-streaming'), 'false');
      });

      await step('the call was the signed-in wallet’s, metered with a receipt', async () => {
        const hash = (await byId('playground-answer-receipt').getAttribute('title'))!;
        const [row] = await node.node.context.database.db
          .select()
          .from(schema.inferenceUsage)
          .where(eq(schema.inferenceUsage.receiptHash, hash));
        assert.ok(row, 'a usage row holds the receipt shown');
        assert.equal(row.caller.toLowerCase(), caller);
        assert.equal(row.endpoint, 'chat.completions');
      });

      await step('a second turn keeps the conversation', async () => {
        await byId('playground-input').fill('And the moon?');
        await byId('playground-input').press('Enter');
        await waitUntil(
          'two answers with stats',
          async () => (await byId('playground-answer-stats').count()) === 2,
        );
        const rows = await node.node.context.database.db
          .select()
          .from(schema.inferenceUsage)
          .where(eq(schema.inferenceUsage.endpoint, 'chat.completions'));
        assert.equal(rows.length, 2);
        // The second prompt holds the first exchange, so it is longer.
        const [first, second] = rows.sort((a, b) => a.promptTokens - b.promptTokens);
        assert.ok(second!.promptTokens > first!.promptTokens);
      });

      await step('an unknown adapter is an error banner, and the message is kept', async () => {
        await page!.goto(at(`/playground?adapter=${'0'.repeat(64)}&base=tiny`));
        await byId('playground').waitFor();
        await byId('playground-input').fill('Hello?');
        await byId('playground-send').click();
        await waitForText(byId('error-message'), /no adapter/i);
        assert.equal(await byId('playground-input').inputValue(), 'Hello?');
      });

      await step('the training run link preselects its adapter and base', async () => {
        await page!.goto(at(`/playground?adapter=${adapterId}&base=tiny.gguf`));
        await byId('playground').waitFor();
        assert.equal(await byId('playground-model').inputValue(), 'tiny');
        assert.equal(
          await byId('playground-adapter').getAttribute('data-adapter'),
          `adapter:${adapterId}`,
        );
        await byId('playground-input').fill('Hi');
        await byId('playground-send').click();
        await waitUntil('the answer or an error', async () =>
          (await byId('error-message').count()) > 0
            ? `error: ${await byId('error-message').textContent()}`
            : (await byId('playground-answer-adapters').count()) > 0,
        );
        assert.equal(await byId('error-message').count(), 0, await page!.content());
        assert.match(await textOf(byId('playground-answer-adapters')), /^tiny \+ style-a$/);
      });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser?.close().catch(() => {});
      await node.close();
    }
  },
);
