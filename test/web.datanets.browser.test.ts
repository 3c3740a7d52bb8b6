// Headless-Chromium test of the Datanets pages of the web app (web/dist) against a full node:
// create, contribute (with a duplicate), curate into a version, and permissioned access.
//
//   npx vite build --config web/vite.config.ts
//   node --import tsx --test test/web.datanets.browser.test.ts
//
// Skips when Chromium (CHROMIUM_PATH, default /usr/bin/chromium) or web/dist/index.html
// is missing, unless OPENLEDGER_REQUIRE_BROWSER=1 (as in CI), where that fails.
// OPENLEDGER_WEB_TEST_URL=http://host:port runs it against an already running local-chain node
// (a fresh one: the test expects the datanets it creates to get the first versions).
// OPENLEDGER_WEB_SCREENSHOTS=1 also saves SCREENSHOTS of the pages it visits to test-results/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { mnemonicToAccount } from 'viem/accounts';
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

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const externalUrl = process.env.OPENLEDGER_WEB_TEST_URL;

const DEV_MNEMONIC = 'test test test test test test test test test test test junk';
const DEV = [0, 1, 2, 3].map((i) => mnemonicToAccount(DEV_MNEMONIC, { addressIndex: i }).address);
/** Relayed chain transactions and file validation take longer than a page render. */
const CHAIN_TIMEOUT = 30_000;

const DESCRIPTION = [
  'Clinical cardiology notes for training a heart health assistant.',
  'Contributions describe heart disease, blood pressure, arrhythmia, cardiac rhythm,',
  'echocardiography findings, treatment of hypertension and recovery after cardiac surgery.',
].join(' ');

// A small text file whose paragraphs are on the datanet's topic, so validation accepts them.
const NOTES = [
  'Hypertension raises the workload of the heart. Lowering blood pressure with diet, exercise and medication reduces the risk of heart disease and stroke.',
  'Atrial fibrillation is the most common arrhythmia. An irregular cardiac rhythm is confirmed on an electrocardiogram and often treated with rate control and anticoagulation.',
  'Echocardiography shows how the heart muscle and valves move. A reduced ejection fraction after a heart attack guides treatment and cardiac rehabilitation.',
].join('\n\n');

const skip = browserSkipReason('web.datanets.browser.test.ts');

async function startNode(): Promise<{ url: string; close(): Promise<void> }> {
  if (externalUrl) return { url: externalUrl, close: async () => {} };
  const { startTestNode } = await import('./helpers/node.ts');
  return startTestNode();
}

test(
  'web app: datanets — create, contribute, duplicate, curate, permissioned access',
  { skip, timeout: 300_000 },
  async (t: TestContext) => {
    const node = await startNode();
    let browser: Browser | undefined;
    const pageErrors: string[] = [];
    let page: Page | undefined;

    const at = (p: string) => new URL(p, node.url).toString();
    const pathname = () => new URL(page!.url()).pathname;
    const byId = (id: string) => page!.getByTestId(id);
    const shot = async (name: string) => {
      mkdirSync(RESULTS_DIR, { recursive: true });
      const file = path.join(RESULTS_DIR, `web-datanets-${name}.png`);
      await page!.screenshot({ path: file, fullPage: true }).catch(() => {});
      return file;
    };

    const step = async (name: string, fn: () => Promise<void>) => {
      t.diagnostic(`step: ${name}`);
      try {
        await fn();
        if (SCREENSHOTS && page) await shot(name.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
      } catch (err) {
        if (page) {
          const file = await shot(name.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
          t.diagnostic(`screenshot: ${path.relative(root, file)}`);
        }
        if (err instanceof Error) err.message = `[${name}] ${err.message}`;
        throw err;
      }
    };

    const signOut = async () => {
      if ((await byId('signed-in-address').count()) === 0) return;
      await byId('sign-out').click();
      await waitForText(byId('connect-wallet'), 'Connect wallet');
    };

    const signIn = async (index: number) => {
      await signOut();
      await waitForText(byId('connect-wallet'), 'Connect wallet');
      await byId('connect-wallet').click();
      await byId('connect-dialog').waitFor();
      const account = byId(`dev-account-${index}`);
      assert.equal(await account.getAttribute('data-address'), DEV[index]);
      await account.click();
      await byId('connect-dialog').waitFor({ state: 'detached' });
      assert.equal(await byId('signed-in-address').getAttribute('data-address'), DEV[index]);
    };

    const openDatanet = async (id: number, tab?: string) => {
      await page!.goto(at(`/datanets/${id}`));
      await page!.locator(`[data-testid="page-datanet"][data-datanet-id="${id}"]`).waitFor();
      await byId('page-title').waitFor();
      if (tab) {
        await byId(`tab-${tab}`).click();
        await byId(`panel-${tab}`).waitFor();
      }
    };

    const canRead = async () => {
      const chip = byId('can-read');
      await chip.waitFor();
      return chip.getAttribute('data-can-read');
    };

    const createDatanet = async (
      name: string,
      policy: 'open' | 'permissioned',
    ): Promise<number> => {
      await page!.goto(at('/datanets'));
      await byId('create-datanet-link').click();
      await waitUntil('path /datanets/new', async () => pathname() === '/datanets/new');
      await byId('datanet-name-input').fill(name);
      await byId('datanet-summary-input').fill('Heart health notes written by clinicians.');
      await byId('datanet-description-input').fill(DESCRIPTION);
      await byId('datanet-tags-input').fill('Cardiology, medical');
      await byId(`datanet-policy-${policy}`).check();
      if (SCREENSHOTS) await shot(`create-${policy}`);
      await byId('create-datanet-submit').click();
      await waitUntil(
        'the new datanet page',
        async () => /^\/datanets\/\d+$/.test(pathname()),
        CHAIN_TIMEOUT,
      );
      const id = Number(pathname().split('/').pop());
      await waitForText(byId('page-title'), name);
      const pageEl = page!.locator(`[data-testid="page-datanet"][data-datanet-id="${id}"]`);
      assert.equal(await pageEl.getAttribute('data-policy'), policy);
      assert.match(await textOf(byId('policy-badge')), policy === 'open' ? /open/i : /permission/i);
      assert.equal(await byId('role').textContent(), 'Owner');
      return id;
    };

    /** Uploads the notes file on the Contribute tab and returns the validation panel. */
    const contributeNotes = async (id: number) => {
      await openDatanet(id, 'contribute');
      await byId('contribute-file-input').setInputFiles({
        name: 'cardiology-notes.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from(NOTES, 'utf8'),
      });
      await waitForText(byId('contribute-file-info'), 'cardiology-notes.txt');
      assert.equal(await byId('contribute-submit').isDisabled(), true, 'consent is required');
      await byId('contribute-consent').check();
      await byId('contribute-submit').click();
      const status = byId('result-status');
      await status.waitFor({ timeout: CHAIN_TIMEOUT });
      assert.equal(await byId('upload-progress').getAttribute('data-progress'), '100');
      return status;
    };

    try {
      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));

      await step('signed out: list and sign-in prompts', async () => {
        await page!.goto(at('/datanets'));
        await waitForText(byId('page-title'), 'Datanets');
        await byId('datanets-card').waitFor();
        await waitForText(byId('connect-wallet'), 'Connect wallet');
        await byId('create-datanet-link').click();
        await byId('signin-required').waitFor();
      });

      let openId = 0;
      await step('account 0 creates an open datanet', async () => {
        await signIn(0);
        // The node's validation error is shown in the page's error banner.
        await page!.goto(at('/datanets/new'));
        await byId('datanet-name-input').fill('ab');
        await byId('create-datanet-submit').click();
        await byId('error-banner').waitFor();
        assert.match(await textOf(byId('error-message')), /name/);
        assert.equal(await byId('error-banner').getAttribute('data-code'), 'VALIDATION_FAILED');
        assert.equal(pathname(), '/datanets/new');

        openId = await createDatanet('Cardiology notes', 'open');
        assert.equal(await canRead(), 'true');
        assert.match(await textOf(byId('datanet-description')), /arrhythmia/);
        assert.equal(await byId('datanet-owner').getAttribute('data-value'), DEV[0]);
        assert.match(
          (await byId('datanet-tx').getAttribute('data-value')) ?? '',
          /^0x[0-9a-f]{64}$/,
        );
        assert.deepEqual(await byId('datanet-tags').locator('li').allTextContents(), [
          'cardiology',
          'medical',
        ]);

        // The list shows it, and the search finds it.
        await byId('back-to-datanets').click();
        const row = page!.locator(`[data-testid="datanet-row"][data-datanet-id="${openId}"]`);
        await row.waitFor();
        assert.equal(await row.getAttribute('data-name'), 'Cardiology notes');
        assert.match(await textOf(row.getByTestId('policy-badge')), /open/i);
        await byId('datanets-search').fill('no such datanet');
        await byId('datanets-empty').waitFor();
        await byId('datanets-search').fill('cardio');
        await row.waitFor();
        if (SCREENSHOTS) await shot('list');
        await row.getByTestId('datanet-link').click();
        await waitUntil('the datanet page', async () => pathname() === `/datanets/${openId}`);
      });

      let contributionId = '';
      await step('account 1 contributes a file and it is accepted', async () => {
        await signIn(1);
        const status = await contributeNotes(openId);
        assert.equal(await status.getAttribute('data-status'), 'pending');
        const [accepted, total] = (await textOf(byId('result-rows'))).split('/').map(Number);
        assert.ok(total! >= 1 && accepted === total, `all rows accepted (${accepted}/${total})`);
        const score = Number(await byId('result-score').getAttribute('data-score'));
        assert.ok(score > 0 && score <= 1, `a score in (0, 1]: ${score}`);
        assert.match(await textOf(byId('result-score')), /^\d\.\d\d$/);
        contributionId = await textOf(byId('result-id'));
        await waitForText(byId('stat-pending'), '1');
        if (SCREENSHOTS) await shot('detail-contribute');

        await byId('tab-contributions').click();
        const row = page!.locator(
          `[data-testid="contribution-row"][data-contribution-id="${contributionId}"]`,
        );
        await row.waitFor();
        assert.equal(await row.getAttribute('data-status'), 'pending');
        assert.equal(await byId('tab-review').count(), 0, 'contributors do not review');
      });

      await step('account 2 uploads the same file and it is rejected as a duplicate', async () => {
        await signIn(2);
        const status = await contributeNotes(openId);
        assert.equal(await status.getAttribute('data-status'), 'rejected');
        assert.match(await textOf(byId('result-rows')), /^0 \/ \d+$/);
        assert.match(await textOf(byId('result-reasons')), /duplicate/i);
        await waitForText(byId('stat-rejected'), '1');
      });

      let root = '';
      await step('account 0 approves the pending contribution into version 1', async () => {
        await signIn(0);
        await openDatanet(openId, 'review');
        const table = byId('pending-table');
        await table.waitFor();
        const rows = table.getByTestId('contribution-row');
        await waitUntil('one pending contribution', async () => (await rows.count()) === 1);
        assert.equal(await rows.first().getAttribute('data-contribution-id'), contributionId);
        assert.equal(await rows.first().getAttribute('data-contributor'), DEV[1]);
        await rows.first().getByTestId('select-contribution').check();
        await byId('approve-commit').click();
        const result = byId('commit-result');
        await result.waitFor({ timeout: CHAIN_TIMEOUT });
        assert.equal(await result.getAttribute('data-version'), '1');
        root = (await byId('commit-root').getAttribute('data-value')) ?? '';
        assert.match(root, /^0x[0-9a-f]{64}$/);
        assert.match(
          (await byId('commit-tx').getAttribute('data-value')) ?? '',
          /^0x[0-9a-f]{64}$/,
        );
        await byId('review-empty').waitFor();
        await waitForText(byId('stat-version'), 'v1');
        if (SCREENSHOTS) await shot('detail-review');

        await byId('tab-versions').click();
        const version = page!.locator('[data-testid="version-row"][data-version="1"]');
        await version.waitFor();
        assert.equal(await version.getByTestId('version-root').getAttribute('data-value'), root);
        assert.match(
          (await version.getByTestId('version-tx').getAttribute('data-value')) ?? '',
          /^0x[0-9a-f]{64}$/,
        );
        assert.match(await textOf(version.getByTestId('version-added')), /^\+\d+$/);
        const added = Number((await textOf(version.getByTestId('version-added'))).slice(1));
        await version.getByTestId('version-diff-toggle').click();
        const diff = page!.locator('[data-testid="version-diff"][data-version="1"]');
        await diff.waitFor();
        assert.equal(await diff.getByTestId('diff-previous-root').getAttribute('data-value'), '');
        assert.equal(await diff.getByTestId('diff-root').getAttribute('data-value'), root);
        const adder = diff.locator(
          `[data-testid="diff-contributor-row"][data-contributor="${DEV[1]}"]`,
        );
        assert.equal(Number(await textOf(adder.getByTestId('diff-contributor-count'))), added);
        assert.equal(await diff.getByTestId('diff-row-hash').count(), Math.min(added, 50));
        const href = await version.getByTestId('version-export').getAttribute('href');
        assert.equal(href, `/api/datanets/${openId}/versions/1/export`);
        const exported = await page!.request.get(at(href!));
        assert.equal(exported.status(), 200);
        assert.equal(exported.headers()['x-openledger-root'], root);
        const lines = (await exported.text()).split('\n').filter(Boolean);
        assert.equal(lines.length, Number(await textOf(version.getByTestId('version-rows'))));
        if (SCREENSHOTS) await shot('detail-versions');

        await byId('tab-leaderboard').click();
        const leader = page!.locator(
          `[data-testid="leaderboard-row"][data-contributor="${DEV[1]}"]`,
        );
        await leader.waitFor();
        assert.ok(Number(await textOf(leader.getByTestId('leaderboard-approved'))) >= 1);

        if (SCREENSHOTS) await shot('detail-leaderboard');

        await byId('tab-access').click();
        await byId('access-open').waitFor();

        // The leaderboard links to the contributor's profile.
        await byId('tab-leaderboard').click();
        await leader.getByTestId('contributor-link').click();
        await waitUntil('the profile page', async () => pathname() === `/contributors/${DEV[1]}`);
        await byId('contributor-stats').waitFor();
        assert.equal(await textOf(byId('profile-approved')), '1');
        assert.equal(await textOf(byId('profile-contributions')), '1');
        assert.equal(await textOf(byId('profile-acceptance')), '100%');
        const entry = page!.locator(
          `[data-testid="contributor-datanet-row"][data-datanet-id="${openId}"]`,
        );
        assert.equal(await textOf(entry.getByTestId('contributor-datanet-approved')), '1');
        if (SCREENSHOTS) await shot('contributor-profile');
      });

      let closedId = 0;
      await step('account 0 creates a permissioned datanet', async () => {
        closedId = await createDatanet('Cardiology notes (restricted)', 'permissioned');
        assert.equal(await canRead(), 'true', 'the owner may read it');
      });

      await step('account 0 appoints and removes a curator', async () => {
        const owner = page!;
        const curator = DEV[2]!;
        await owner.getByTestId('curator-address-input').fill(curator);
        await owner.getByTestId('add-curator').click();
        await waitForText(owner.getByTestId('datanet-curators'), curator.slice(0, 6));
        await owner.getByTestId('remove-curator').click();
        await waitUntil(
          'the curator to be removed',
          async () => (await owner.getByTestId('remove-curator').count()) === 0,
        );
      });

      // Account 3 uses a stand-in for a wallet extension: window.ethereum in the page, keys in
      // Node. Its typed data arrives as eth_signTypedData_v4 JSON, as a real wallet gets it.
      const ownerPage = page;
      const typedRequests: { primaryType: string; json: string }[] = [];
      let walletPage: Page | undefined;
      await step('account 3 (browser wallet) may not read it and requests access', async () => {
        const account = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: 3 });
        const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
        await context.exposeFunction('__openledgerSignMessage', (data: `0x${string}`) =>
          account.signMessage({ message: { raw: data } }),
        );
        await context.exposeFunction(
          '__openledgerSignTypedData',
          async (from: string, json: string) => {
            assert.equal(from, account.address);
            const typed = JSON.parse(json) as {
              domain: Record<string, unknown>;
              types: Record<string, { name: string; type: string }[]>;
              primaryType: string;
              message: Record<string, unknown>;
            };
            typedRequests.push({ primaryType: typed.primaryType, json });
            const { EIP712Domain: _, ...types } = typed.types;
            // A wallet reads integers given as decimal strings; viem wants bigints.
            const message = Object.fromEntries(
              Object.entries(typed.message).map(([k, v]) => {
                const field = types[typed.primaryType]?.find((f) => f.name === k);
                return [k, field && /^u?int/.test(field.type) ? BigInt(v as string) : v];
              }),
            );
            return account.signTypedData({ ...typed, types, message } as never);
          },
        );
        await context.addInitScript({
          content: `window.ethereum = {
            async request({ method, params }) {
              if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [${JSON.stringify(account.address)}];
              if (method === 'personal_sign') return window.__openledgerSignMessage(params[0]);
              if (method === 'eth_signTypedData_v4') return window.__openledgerSignTypedData(params[0], params[1]);
              throw Object.assign(new Error('Unsupported method ' + method), { code: 4200 });
            },
          };`,
        });
        walletPage = await context.newPage();
        walletPage.setDefaultTimeout(TIMEOUT);
        walletPage.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));
        page = walletPage;
        await page.goto(at('/'));
        await waitForText(byId('connect-wallet'), 'Connect wallet');
        await byId('connect-wallet').click();
        await byId('injected-wallet').click();
        await byId('connect-dialog').waitFor({ state: 'detached' });
        assert.equal(await byId('signed-in-address').getAttribute('data-address'), DEV[3]);

        await openDatanet(closedId);
        assert.equal(await canRead(), 'false');
        assert.equal(await byId('overview-can-read').getAttribute('data-can-read'), 'false');
        await byId('tab-versions').click();
        await byId('versions-empty').waitFor();
        await byId('tab-access').click();
        assert.equal(await byId('my-access').getAttribute('data-can-read'), 'false');
        assert.equal(await byId('access-requests-card').count(), 0);
        await byId('request-access-purpose').fill(
          '  Fine-tuning a triage assistant for a study.  ',
        );
        await byId('request-access-submit').click();
        const result = byId('my-access-request');
        await result.waitFor({ timeout: CHAIN_TIMEOUT });
        assert.equal(await result.getAttribute('data-status'), 'pending');
        assert.equal(await byId('request-access-form').count(), 0);

        assert.equal(typedRequests.length, 1, 'the wallet was asked for one typed signature');
        const sent = JSON.parse(typedRequests[0]!.json) as {
          types: Record<string, unknown>;
          message: { nonce: unknown; deadline: unknown };
        };
        assert.equal(typedRequests[0]!.primaryType, 'RequestAccess');
        assert.ok(sent.types.EIP712Domain, 'the domain type is listed');
        assert.match(String(sent.message.nonce), /^\d+$/);
        assert.equal(typeof sent.message.deadline, 'string', 'bigints as decimal strings');

        // After a reload the pending request is shown instead of the form.
        await page.reload();
        await byId('tab-access').click();
        const mine = byId('my-access-request');
        await mine.waitFor();
        assert.equal(await mine.getAttribute('data-status'), 'pending');
        assert.match(await textOf(mine), /pending/);
        assert.match(await textOf(byId('my-access-purpose')), /^Fine-tuning a triage assistant/);
        assert.equal(await byId('request-access-form').count(), 0);
      });

      await step('account 0 grants access', async () => {
        page = ownerPage;
        assert.equal(await byId('signed-in-address').getAttribute('data-address'), DEV[0]);
        await openDatanet(closedId, 'access');
        const row = page!.locator(`[data-testid="access-request-row"][data-requester="${DEV[3]}"]`);
        await row.waitFor();
        assert.equal(await row.getAttribute('data-status'), 'pending');
        assert.match(await textOf(row), /Fine-tuning a triage assistant for a study\./);
        await row.getByTestId('grant-access').click();
        await byId('access-decision-dialog').waitFor();
        if (SCREENSHOTS) await shot('detail-access-grant');
        await byId('confirm-access-decision').click();
        await byId('access-decision-dialog').waitFor({ state: 'detached', timeout: CHAIN_TIMEOUT });
        await page!
          .locator(
            `[data-testid="access-request-row"][data-requester="${DEV[3]}"][data-status="granted"]`,
          )
          .waitFor();
        assert.equal(await byId('access-decision-result').getAttribute('data-status'), 'granted');
      });

      await step('account 3 may read it now', async () => {
        page = walletPage;
        await openDatanet(closedId);
        assert.equal(await canRead(), 'true');
        await byId('tab-access').click();
        assert.equal(await byId('my-access').getAttribute('data-can-read'), 'true');
      });

      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    } finally {
      await browser?.close().catch(() => {});
      await node.close();
    }
  },
);
