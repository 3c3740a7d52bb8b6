// Headless-Chromium test of the inference escrow (/escrow, and its card on the Playground):
// signed in with a dev account, the wallet gets test OPEN, deposits 5 OPEN with a permit signed
// in the browser, requests a withdrawal (pending, with its countdown by the chain's clock), and
// once the chain's clock has passed the unlock time pays it out to the wallet.
//
//   npx vite build --config web/vite.config.ts
//   node --import tsx --test test/web.escrow.browser.test.ts
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parseUnits } from 'viem';
import { InferenceEscrowAbi, devAccount } from '../src/chain/index.ts';
import {
  RESULTS_DIR,
  SCREENSHOTS,
  TIMEOUT,
  browserSkipReason,
  launchChromium,
  waitForText,
  waitUntil,
} from './helpers/browser.ts';
import { startTestNode } from './helpers/node.ts';

const skip = browserSkipReason('web.escrow.browser.test.ts');
const OPEN = (n: string) => parseUnits(n, 18).toString();

test(
  'web app: deposit into the inference escrow, request a withdrawal and pay it out',
  { skip, timeout: 120_000 },
  async (t: TestContext) => {
    const node = await startTestNode();
    const caller = devAccount(1).address;
    let browser: Browser | undefined;
    let page: Page | undefined;
    const pageErrors: string[] = [];
    const at = (p: string) => new URL(p, node.url).toString();
    const byId = (id: string) => page!.getByTestId(id);
    const valueOf = (id: string) => byId(id).getAttribute('data-value');
    const waitForValue = (id: string, wei: string) =>
      waitUntil(`${id} = ${wei}`, async () => (await valueOf(id)) === wei);
    const onChain = () =>
      node.node.context.chain.publicClient.readContract({
        address: node.node.contracts.InferenceEscrow!,
        abi: InferenceEscrowAbi,
        functionName: 'balanceOf',
        args: [caller],
      });
    const step = async (name: string, fn: () => Promise<void>) => {
      t.diagnostic(`step: ${name}`);
      try {
        await fn();
        if (SCREENSHOTS && page) {
          mkdirSync(RESULTS_DIR, { recursive: true });
          await page.screenshot({
            path: path.join(RESULTS_DIR, `web-escrow-${name.replace(/\W+/g, '-')}.png`),
            fullPage: true,
          });
        }
      } catch (err) {
        if (err instanceof Error)
          err.message = `[${name}] ${err.message}${pageErrors.length ? `\npage errors: ${pageErrors.join('\n')}` : ''}`;
        throw err;
      }
    };

    try {
      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));

      await step('sign in on the Escrow page and get test OPEN', async () => {
        await page!.goto(at('/'));
        await byId('nav-escrow').click();
        await waitForText(byId('page-title'), 'Escrow');
        await byId('signin-connect').click();
        await byId('dev-account-1').click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        await waitForValue('escrow-balance', '0');
        await byId('escrow-faucet').click();
        await waitForValue('escrow-wallet', OPEN('1000'));
      });

      await step('deposit 5 OPEN with a signed permit', async () => {
        await byId('escrow-deposit-amount').fill('5');
        await byId('escrow-deposit').click();
        await waitForValue('escrow-balance', OPEN('5'));
        assert.equal(await valueOf('escrow-available'), OPEN('5'));
        assert.equal(await valueOf('escrow-wallet'), OPEN('995'));
        await waitForText(byId('escrow-done'), 'Deposited 5 OPEN');
        assert.equal((await onChain()).toString(), OPEN('5'), 'the deposit is on-chain');
      });

      await step('more than the escrow holds is refused with a clear error', async () => {
        await byId('escrow-withdraw-amount').fill('6');
        await byId('escrow-withdraw').click();
        await waitForText(byId('escrow-error').getByTestId('error-message'), /at most 5 OPEN/);
        assert.equal(await byId('escrow-error').getAttribute('data-code'), 'INSUFFICIENT_BALANCE');
      });

      await step('request a withdrawal of 2 OPEN: pending, locked by the chain clock', async () => {
        await byId('escrow-withdraw-amount').fill('2');
        await byId('escrow-withdraw').click();
        await waitForValue('escrow-withdrawal', OPEN('2'));
        assert.equal(await valueOf('escrow-available'), OPEN('3'));
        assert.equal(await byId('escrow-error').count(), 0);
        await waitForText(byId('escrow-unlock'), /^unlocks in (9m|10m)/);
        assert.equal(await byId('escrow-complete').isDisabled(), true);
      });

      await step('the Playground shows the escrow card', async () => {
        await byId('nav-playground').click();
        await waitForValue('escrow-balance', OPEN('5'));
        assert.equal(await valueOf('escrow-withdrawal'), OPEN('2'));
      });

      await step('once the chain clock passes the unlock time, pay it out', async () => {
        // The chain's clock only: this machine's stays ten minutes behind.
        await node.node.context.chain.publicClient.request({
          method: 'evm_increaseTime' as never,
          params: [601] as never,
        });
        await byId('nav-escrow').click();
        await waitForText(byId('escrow-unlock'), 'unlocked');
        await byId('escrow-complete').click();
        await waitForValue('escrow-withdrawal', '0');
        await waitForValue('escrow-balance', OPEN('3'));
        assert.equal(await valueOf('escrow-wallet'), OPEN('997'));
        await waitForText(byId('escrow-done'), 'Withdrew 2 OPEN');
      });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser?.close().catch(() => {});
      await node.close();
    }
  },
);
