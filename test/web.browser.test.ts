// Headless-Chromium test of the web app (web/dist) against a full node.
//
//   npx vite build --config web/vite.config.ts
//   node --import tsx --test test/web.browser.test.ts
//
// Skips when Chromium (CHROMIUM_PATH, default /usr/bin/chromium) or web/dist/index.html
// is missing, unless OPENLEDGER_REQUIRE_BROWSER=1 (as in CI), where that fails. OPENLEDGER_WEB_TEST_URL=http://host:port runs it against an already
// running local-chain node instead of starting one with test/helpers/node.ts.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import {
  RESULTS_DIR,
  TIMEOUT,
  browserSkipReason,
  launchChromium,
  textOf,
  waitForText,
  waitUntil,
} from './helpers/browser.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const externalUrl = process.env.OPENLEDGER_WEB_TEST_URL;

// anvil account #1 of the dev mnemonic
const DEV_MNEMONIC = 'test test test test test test test test test test test junk';
const DEV_ACCOUNT_1 = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

const skip = browserSkipReason('web.browser.test.ts');

async function startNode(): Promise<{ url: string; close(): Promise<void> }> {
  if (externalUrl) return { url: externalUrl, close: async () => {} };
  const { startTestNode } = await import('./helpers/node.ts');
  return startTestNode();
}

test(
  'web app: dashboard, navigation, sign-in, faucet, API keys, sign-out',
  { skip, timeout: 180_000 },
  async (t: TestContext) => {
    const node = await startNode();
    let browser: Browser | undefined;
    const pageErrors: string[] = [];
    const consoleErrors: string[] = [];
    let page: Page | undefined;

    const at = (p: string) => new URL(p, node.url).toString();
    const pathname = () => new URL(page!.url()).pathname;
    const byId = (id: string) => page!.getByTestId(id);

    const step = async (name: string, fn: () => Promise<void>) => {
      t.diagnostic(`step: ${name}`);
      try {
        await fn();
      } catch (err) {
        if (page) {
          mkdirSync(RESULTS_DIR, { recursive: true });
          const file = path.join(
            RESULTS_DIR,
            `web-browser-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`,
          );
          await page.screenshot({ path: file, fullPage: true }).catch(() => {});
          t.diagnostic(`screenshot: ${path.relative(root, file)}`);
        }
        if (err instanceof Error) err.message = `[${name}] ${err.message}`;
        throw err;
      }
    };

    try {
      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));
      page.on('console', (msg) => {
        if (msg.type() === 'error') consoleErrors.push(msg.text());
      });

      await step('dashboard', async () => {
        await page!.goto(at('/'));
        assert.equal(await textOf(page!.locator('.brand-name')), 'OpenLedger');
        await waitForText(byId('status-chain-id'), /^31337$/);
        assert.equal(await byId('status-local').getAttribute('data-local'), 'true');
        assert.match(await textOf(byId('status-rpc-url')), /^https?:\/\//);
        assert.match(await textOf(byId('contract-OpenToken')), /^0x[0-9a-fA-F]{40}$/);
        assert.match(await textOf(byId('contract-DevFaucet')), /^0x[0-9a-fA-F]{40}$/);
        await page!.locator('[data-testid="health-database"][data-ok="true"]').waitFor();
        assert.match(await textOf(byId('health-database')), /ok/i);
        await byId('health-chain').waitFor();
        await byId('health-engine').waitFor();
      });

      await step('navigation', async () => {
        const sections: [string, string, string][] = [
          ['datanets', '/datanets', 'Datanets'],
          ['factory', '/factory', 'Model Factory'],
          ['models', '/models', 'Models'],
          ['playground', '/playground', 'Playground'],
          ['rewards', '/rewards', 'Rewards'],
          ['market', '/market', 'Model market'],
          ['agents', '/agents', 'Agents'],
          ['governance', '/governance', 'Governance'],
        ];
        for (const [id, route, title] of sections) {
          await byId(`nav-${id}`).click();
          await waitUntil(`path ${route}`, async () => pathname() === route);
          await waitForText(byId('page-title'), title);
          assert.equal(await byId(`nav-${id}`).getAttribute('aria-current'), 'page');
          // Each page's own test covers it (test/web.datanets.browser.test.ts,
          // test/web.factory.browser.test.ts, test/web.governance.browser.test.ts, …); here, its
          // first state on a fresh node.
          if (id === 'datanets') {
            await byId('datanets-card').waitFor();
            continue;
          }
          if (id === 'factory') {
            await byId('page-factory').locator('[data-testid="signin-required"]').waitFor();
            continue;
          }
          if (id === 'models') {
            await byId('models-empty').waitFor();
            continue;
          }
          if (id === 'market') {
            await byId('market-empty').waitFor();
            continue;
          }
          if (id === 'agents') {
            await byId('agents-empty').waitFor();
            continue;
          }
          if (id === 'governance') await byId('gov-parameters').waitFor();
          // playground, rewards, governance: their wallet parts ask to sign in.
          await byId(`page-${id}`).locator('[data-testid="signin-required"]').waitFor();
        }
        await byId('nav-keys').click();
        await waitUntil('path /keys', async () => pathname() === '/keys');
        await waitForText(byId('page-title'), 'API keys');
        await byId('keys-signin-required').waitFor();

        // History API: back goes to the previous section, then forward again.
        await page!.goBack();
        await waitUntil('back to /governance', async () => pathname() === '/governance');
        await waitForText(byId('page-title'), 'Governance');
        await page!.goForward();
        await waitUntil('forward to /keys', async () => pathname() === '/keys');

        // Deep link served by the SPA fallback.
        await page!.goto(at('/models'));
        await waitForText(byId('page-title'), 'Models');

        await byId('nav-dashboard').click();
        await waitUntil('path /', async () => pathname() === '/');
        await waitForText(byId('status-chain-id'), '31337');
      });

      await step('sign in with dev account 1', async () => {
        await byId('connect-wallet').click();
        await byId('connect-dialog').waitFor();
        const account = byId('dev-account-1');
        assert.equal(await account.getAttribute('data-address'), DEV_ACCOUNT_1);
        await account.click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        const addr = byId('signed-in-address');
        assert.equal(await addr.getAttribute('data-address'), DEV_ACCOUNT_1);
        assert.equal(await textOf(addr), '0x7099…79C8');
      });

      await step('faucet', async () => {
        const balance = byId('balance-open');
        await balance.waitFor();
        const before = BigInt((await balance.getAttribute('data-wei')) ?? '0');
        await byId('faucet-button').click();
        await byId('faucet-result').waitFor({ timeout: 30_000 });
        const after = await waitUntil('OPEN balance to increase', async () => {
          const wei = BigInt((await balance.getAttribute('data-wei')) ?? '0');
          return wei > before ? wei : 0n;
        });
        assert.ok(after > 0n);
        assert.notEqual(await textOf(balance), '0');
      });

      await step('api keys: empty name is rejected', async () => {
        await byId('nav-keys').click();
        await waitForText(byId('page-title'), 'API keys');
        await byId('keys-card').waitFor();
        await byId('key-name-input').fill('');
        await byId('create-key').click();
        const banner = byId('error-banner');
        await banner.waitFor();
        assert.ok((await textOf(byId('error-message'))).length > 0, 'error banner shows a message');
        assert.doesNotMatch(
          (await banner.textContent()) ?? '',
          /\bat .+:\d+:\d+/,
          'no stack trace in the banner',
        );
        assert.equal(await byId('new-key-secret').count(), 0);
      });

      let secret = '';
      let keyRow = '';
      await step('api keys: create', async () => {
        await byId('key-name-input').fill('browser-test');
        await byId('create-key').click();
        secret = await textOf(byId('new-key-secret'));
        assert.match(secret, /^olk_\S{16,}$/);
        const id = await byId('new-key-panel').getAttribute('data-key-id');
        assert.ok(id, 'the new key panel carries the key id');
        keyRow = `[data-testid="key-row"][data-key-id="${id}"]`;
        await byId('error-banner').waitFor({ state: 'detached' });
        const row = page!.locator(keyRow);
        await row.waitFor();
        assert.equal(await row.getAttribute('data-key-name'), 'browser-test');
        assert.equal(await row.getAttribute('data-state'), 'active');
        const prefix = ((await row.locator('code').textContent()) ?? '').replace(/…$/, '');
        assert.ok(
          prefix.length >= 4 && secret.startsWith(prefix),
          `secret starts with the listed prefix ${prefix}`,
        );
        // The secret is shown once: it is gone after leaving the page.
        await byId('nav-dashboard').click();
        await byId('nav-keys').click();
        await row.waitFor();
        assert.equal(await byId('new-key-secret').count(), 0);
        assert.ok(!(await page!.content()).includes(secret), 'secret no longer in the page');
      });

      await step('api keys: revoke', async () => {
        const row = page!.locator(keyRow);
        await row.getByTestId('revoke-key').click();
        await byId('revoke-dialog').waitFor();
        await byId('confirm-revoke').click();
        await byId('revoke-dialog').waitFor({ state: 'detached' });
        await page!.locator(`${keyRow}[data-state="revoked"]`).waitFor();
        assert.match(await textOf(row.getByTestId('key-status')), /revoked/i);
        assert.equal(await row.getByTestId('revoke-key').count(), 0);
      });

      await step('reload keeps the session', async () => {
        await page!.reload();
        const addr = byId('signed-in-address');
        await addr.waitFor();
        assert.equal(await addr.getAttribute('data-address'), DEV_ACCOUNT_1);
        await page!.locator(`${keyRow}[data-state="revoked"]`).waitFor();
      });

      await step('sign out', async () => {
        await byId('sign-out').click();
        await waitForText(byId('connect-wallet'), 'Connect wallet');
        await byId('keys-signin-required').waitFor();
        await page!.reload();
        await waitForText(byId('connect-wallet'), 'Connect wallet');
        assert.equal(await byId('signed-in-address').count(), 0);
      });

      await step('sign in with an injected EIP-1193 wallet', async () => {
        // A stand-in for a wallet extension: window.ethereum in the page, keys in Node.
        const { mnemonicToAccount } = await import('viem/accounts');
        const account = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: 2 });
        const context = await browser!.newContext({ viewport: { width: 1280, height: 860 } });
        const signed: string[] = [];
        await context.exposeFunction(
          '__openledgerTestSign',
          async (data: `0x${string}`, from: string) => {
            assert.equal(from.toLowerCase(), account.address.toLowerCase());
            signed.push(data);
            return account.signMessage({ message: { raw: data } });
          },
        );
        await context.addInitScript({
          content: `window.ethereum = {
          async request({ method, params }) {
            if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [${JSON.stringify(account.address)}];
            if (method === 'personal_sign') return window.__openledgerTestSign(params[0], params[1]);
            throw Object.assign(new Error('Unsupported method ' + method), { code: 4200 });
          },
        };`,
        });
        page = await context.newPage();
        page.setDefaultTimeout(TIMEOUT);
        page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));
        await page.goto(at('/'));
        await waitForText(byId('connect-wallet'), 'Connect wallet');
        await byId('connect-wallet').click();
        await byId('injected-wallet').click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        assert.equal(await byId('signed-in-address').getAttribute('data-address'), account.address);
        assert.equal(signed.length, 1, 'the wallet was asked for one personal_sign');
        await byId('sign-out').click();
        await waitForText(byId('connect-wallet'), 'Connect wallet');
        await context.close();
      });

      // 4xx answers (session check while signed out, the rejected key name) are logged by Chromium.
      for (const line of consoleErrors) t.diagnostic(`browser console: ${line}`);
      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    } finally {
      await browser?.close().catch(() => {});
      await node.close();
    }
  },
);
