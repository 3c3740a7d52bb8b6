// Headless-Chromium test of the market, staking, agents and governance pages (issue #8): on a
// serving node with two published adapters, a wallet signed in with a dev account finds both
// models in the market and a model's on-chain owner on its page, stakes on it and sees itself
// listed, creates a model proposal on model 1's datanet from the form and funds it with 5 OPEN
// from its page (the evaluation is left out: that datanet's version has no rows), launches an agent mixing the two adapters (approve + AgentStaking.launch from the
// browser) and sees it active, then deposits OPEN for votes, proposes a new default split, votes
// for it, queues and executes it, and the parameters panel shows the new split. The test warps
// the local chain's clock past the voting period and the Timelock delay.
//
//   npm run build:web
//   node --import tsx --test test/web.governance.browser.test.ts
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parseUnits } from 'viem';
import { devAccount } from '../src/chain/index.ts';
import { normalizeMetadata } from '../src/datanets/metadata.ts';
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
import { call, signIn } from './helpers/http.ts';
import { ROOT } from './helpers/node.ts';

const skip = browserSkipReason('web.governance.browser.test.ts');
const OPEN = (n: string) => parseUnits(n, 18).toString();

test(
  'web app: market, model staking, a model proposal, agent launch and a governance proposal from propose to execute',
  { skip, timeout: 120_000 },
  async (t: TestContext) => {
    const { publishServingModel, startServingNode, writeTinyAdapter } =
      await import('./helpers/serving.ts');
    const node = await startServingNode();
    let browser: Browser | undefined;
    let page: Page | undefined;
    const pageErrors: string[] = [];
    const publisher = devAccount(2);
    const wallet = devAccount(3);
    const at = (p: string) => new URL(p, node.url).toString();
    const byId = (id: string) => page!.getByTestId(id);
    const pathname = () => new URL(page!.url()).pathname;
    const step = async (name: string, fn: () => Promise<void>) => {
      t.diagnostic(`step: ${name}`);
      const shot = async () => {
        mkdirSync(RESULTS_DIR, { recursive: true });
        const file = path.join(RESULTS_DIR, `web-governance-${name.replace(/\W+/g, '-')}.png`);
        await page!.screenshot({ path: file, fullPage: true }).catch(() => {});
        return file;
      };
      try {
        await fn();
        if (SCREENSHOTS && page) await shot();
      } catch (err) {
        if (page) t.diagnostic(`screenshot: ${path.relative(ROOT, await shot())}`);
        if (err instanceof Error) {
          const banner = page
            ? await byId('error-message')
                .first()
                .textContent({ timeout: 500 })
                .catch(() => null)
            : null;
          err.message = `[${name}] ${err.message}${banner ? `\nerror banner: ${banner}` : ''}${pageErrors.length ? `\npage errors: ${pageErrors.join('\n')}` : ''}`;
        }
        throw err;
      }
    };
    const warp = async (seconds: number) => {
      const chain = node.node.context.chain.publicClient;
      await chain.request({ method: 'evm_increaseTime' as never, params: [seconds] as never });
      await chain.request({ method: 'evm_mine' as never, params: [] as never });
    };
    /** The proposal card's state after a refresh (the page reads the chain's clock on load). */
    const proposalState = async (state: string) => {
      await byId('gov-refresh').click();
      await page!.locator(`[data-testid="gov-proposal"][data-state="${state}"]`).waitFor();
    };

    try {
      await step('two published adapters; the wallet gets test OPEN', async () => {
        for (const seed of [11, 12]) {
          const file = path.join(node.dataDir, `adapter-${seed}.gguf`);
          await writeTinyAdapter(file, seed, { scale: 0.3 });
          const { id } = await node.node.context.blobs.put(await readFile(file));
          await publishServingModel(node, { owner: publisher, adapterBlob: id, name: `m${seed}` });
        }
        const session = await signIn(node.url, wallet);
        const drip = await call(node.url, 'POST', '/api/faucet', { token: session, body: {} });
        assert.equal(drip.status, 200, JSON.stringify(drip.body));
      });

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));

      await step(
        'the market lists both models; a model page shows its on-chain owner',
        async () => {
          await page!.goto(at('/'));
          await byId('nav-market').click();
          await waitForText(byId('page-title'), 'Model market');
          await byId('connect-wallet').click();
          await byId('dev-account-3').click();
          await byId('connect-dialog').waitFor({ state: 'detached' });
          await waitUntil('two models', async () => (await byId('market-row').count()) === 2);
          assert.deepEqual(
            await byId('market-base-name').allTextContents(),
            ['tiny', 'tiny'],
            'both on the tiny base',
          );
          await byId('market-search').fill('m12');
          await waitUntil('one match', async () => (await byId('market-row').count()) === 1);
          assert.equal(await byId('market-row').getAttribute('data-model-id'), '2');
          await byId('market-search').fill('');
          await waitUntil('two models again', async () => (await byId('market-row').count()) === 2);
          await page!.locator('[data-testid="market-row"][data-model-id="1"] a').first().click();
          await waitUntil('model page', async () => pathname() === '/market/models/1');
          await waitForText(byId('page-title'), 'm11');
          assert.equal(await byId('onchain-owner').getAttribute('data-value'), publisher.address);
        },
      );

      await step('stake 2 OPEN on model 1 and be listed', async () => {
        await byId('stake-amount').fill('2');
        await byId('stake-submit').click();
        await waitForText(byId('staking-done'), 'Staked 2 OPEN on model 1');
        const row = page!.locator(
          `[data-testid="staker-row"][data-address="${wallet.address}"] td[data-value]`,
        );
        await waitUntil('listed', async () => (await row.getAttribute('data-value')) === OPEN('2'));
        assert.equal(await byId('staking-total').getAttribute('data-value'), OPEN('2'));
      });

      await step('create a proposal for model 1 datanet and fund it with 5 OPEN', async () => {
        // publishServingModel registers model 1's datanet (id 1, version 1: a made-up root, no
        // rows) on-chain only; the node checks a proposal's datanets in its own mirror, so the
        // test mirrors them as the datanet service does after a commit.
        const db = node.node.context.database.db;
        const zero = `0x${'0'.repeat(64)}`;
        await db.insert(schema.datanets).values({
          id: 1,
          ...normalizeMetadata({ name: 'm11 data' }),
          owner: publisher.address,
          metadataHash: zero,
          txHash: zero,
        });
        await db.insert(schema.datanetVersions).values({
          datanetId: 1,
          version: 1,
          root: zero,
          rowCount: 1,
          manifestId: '0'.repeat(64),
          committedBy: publisher.address,
          txHash: zero,
          addedRows: 1,
        });
        await byId('nav-proposals').click();
        await byId('proposals-empty').waitFor();
        await byId('proposal-title').fill('A colours model');
        await byId('proposal-goal').fill('Answer what colour household things are.');
        await byId('proposal-datanet').selectOption('1');
        await byId('proposal-eval-datanet').selectOption('1');
        assert.equal(await byId('proposal-eval-version').inputValue(), '1');
        await byId('proposal-bar').fill('12.5');
        await byId('proposal-min-funding').fill('5');
        await byId('proposal-create').click();
        await waitUntil('the proposal page', async () => pathname() === '/proposals/1', 30_000);
        await waitForText(byId('page-title'), 'A colours model');
        assert.equal(await byId('proposal-status').getAttribute('data-status'), 'open');
        assert.equal(await textOf(byId('proposal-bar-value')), 'perplexity ≤ 12.5');
        assert.equal(await byId('proposal-bar-value').getAttribute('data-value'), '12500000');
        assert.equal(await byId('proposal-funded').getAttribute('data-value'), '0');
        assert.equal(await byId('proposal-refund').isDisabled(), true, 'nothing to refund');
        await byId('proposal-fund-amount').fill('5');
        await byId('proposal-fund').click();
        await waitForText(byId('proposal-done'), 'Funded proposal 1 with 5 OPEN');
        assert.equal(await byId('proposal-funded').getAttribute('data-value'), OPEN('5'));
        assert.equal(await byId('proposal-my-funding').getAttribute('data-value'), OPEN('5'));
        assert.equal(await byId('proposal-status').getAttribute('data-status'), 'open');
        await page!.getByRole('link', { name: '← Proposals' }).click();
        const row = page!.locator('[data-testid="proposal-row"][data-id="1"]');
        await waitUntil('listed', async () => (await row.getAttribute('data-status')) === 'open');
        assert.equal(
          await row.getByTestId('proposal-funded').getAttribute('data-value'),
          OPEN('5'),
        );
      });

      await step('launch an agent mixing the two adapters with 150 OPEN', async () => {
        await byId('nav-agents').click();
        await byId('agents-empty').waitFor();
        await byId('agent-name').fill('two-adapter-agent');
        await byId('agent-description').fill('Two published adapters mixed.');
        await byId('agent-system').fill('Answer briefly.');
        await byId('agent-step-0-model').selectOption('tiny');
        for (const id of ['model:1', 'model:2']) {
          await byId('agent-step-0-adapter-choice').selectOption(id);
          await byId('agent-step-0-adapter-add').click();
        }
        await byId('agent-step-0-adapter-weight').nth(0).fill('0.6');
        await byId('agent-step-0-adapter-weight').nth(1).fill('0.4');
        await byId('agent-step-0-max-tokens').fill('4');
        await byId('agent-stake').fill('150');
        await byId('agent-launch').click();
        await waitUntil(
          'the agent page',
          async () => pathname() === '/agents/two-adapter-agent',
          30_000,
        );
        await waitForText(byId('page-title'), 'agent:two-adapter-agent');
        assert.equal(await byId('agent-state').getAttribute('data-state'), 'active');
        assert.equal(await byId('agent-stake-value').getAttribute('data-value'), OPEN('150'));
        assert.equal(await textOf(byId('agent-owner')), wallet.address);
        assert.equal(
          await textOf(byId('agent-step')),
          'tiny + model:1×0.6 + model:2×0.4 · at most 4 tokens',
        );
        assert.equal(
          await byId('agent-try').getAttribute('href'),
          '/playground?model=agent%3Atwo-adapter-agent',
        );
      });

      await step('deposit 50 OPEN for votes and propose a 50/20/30 default split', async () => {
        await byId('nav-governance').click();
        await waitForText(byId('gov-param-split'), '60% / 10% / 30%');
        await byId('gov-no-proposals').waitFor();
        await byId('gov-deposit-amount').fill('50');
        await byId('gov-deposit').click();
        await waitForText(byId('gov-power-done'), 'Deposited 50 OPEN');
        await waitUntil('50 votes', async () =>
          (await byId('gov-votes').getAttribute('data-value')) === OPEN('50') ? true : undefined,
        );
        // The Governor counts the proposer's votes one second back (a timestamp clock).
        await warp(2);
        await byId('gov-propose-description').fill(
          'Pay stakers more\n\nRaise the default stakers share to 20 %.',
        );
        await byId('gov-split-owner').fill('50');
        await byId('gov-split-stakers').fill('20');
        await byId('gov-split-contributors').fill('30');
        await byId('gov-propose').click();
        await waitForText(byId('gov-propose-done'), 'Proposed');
        await byId('gov-proposal').waitFor();
        assert.match(
          await textOf(byId('gov-proposal-call')),
          /ProtocolParameters\.setDefaultSplit\(\{owner: 5000, stakers: 2000, contributors: 3000\}\)/,
        );
      });

      await step('vote for, queue after the vote, execute after the Timelock', async () => {
        await warp(2); // the voting delay
        await proposalState('active');
        await waitForText(byId('gov-proposal-timing'), /Vote ends .* \(in \d+m/);
        await byId('gov-vote-for').click();
        await waitForText(byId('gov-proposal-votes'), /^For 50 OPEN/);
        await warp(301);
        await proposalState('succeeded');
        await byId('gov-queue').click();
        await page!.locator('[data-testid="gov-proposal"][data-state="queued"]').waitFor();
        await waitForText(byId('gov-proposal-timing'), /Executable from .* \(in \d+m/);
        assert.equal(await byId('gov-execute').isDisabled(), true, 'not before the Timelock delay');
        await warp(121);
        await proposalState('queued');
        await byId('gov-execute').click();
        await page!.locator('[data-testid="gov-proposal"][data-state="executed"]').waitFor();
        await waitForText(byId('gov-param-split'), '50% / 20% / 30%');
        assert.equal(await byId('gov-param-split').getAttribute('data-value'), '5000/2000/3000');
      });

      assert.deepEqual(pageErrors, []);
    } finally {
      await browser?.close().catch(() => {});
      await node.close();
    }
  },
);
