import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Locator } from 'playwright-core';
import { ROOT } from './node.ts';

/** What the browser tests share: where Chromium and the built app are, and polling helpers. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const RESULTS_DIR = path.join(ROOT, 'test-results');
/** OPENLEDGER_WEB_SCREENSHOTS=1 saves a screenshot of every step, not only of failures. */
export const SCREENSHOTS = process.env.OPENLEDGER_WEB_SCREENSHOTS === '1';
export const TIMEOUT = 15_000;

/**
 * Why the browser tests cannot run here, or undefined. CI sets OPENLEDGER_REQUIRE_BROWSER=1:
 * there a missing browser or web build is a failure, not a skip.
 */
export function browserSkipReason(testFile: string): string | undefined {
  let reason: string | undefined;
  if (!existsSync(CHROMIUM_PATH))
    reason = `Chromium not found at ${CHROMIUM_PATH} (set CHROMIUM_PATH)`;
  else if (!existsSync(path.join(ROOT, 'web', 'dist', 'index.html')))
    reason = 'web/dist/index.html is missing (run: npx vite build --config web/vite.config.ts)';
  if (reason && process.env.OPENLEDGER_REQUIRE_BROWSER === '1')
    throw new Error(`browser test cannot run: ${reason}`);
  if (reason) console.log(`${testFile} skipped: ${reason}`);
  return reason;
}

/** Headless Chromium from Debian, with its background network traffic switched off. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Polls fn until it returns a truthy value or the timeout expires. */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T>,
  timeout = TIMEOUT,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : String(last)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function textOf(locator: Locator, timeout = TIMEOUT): Promise<string> {
  await locator.waitFor({ state: 'visible', timeout });
  return ((await locator.textContent()) ?? '').trim();
}

export async function waitForText(
  locator: Locator,
  expected: RegExp | string,
  timeout = TIMEOUT,
): Promise<string> {
  return waitUntil(
    `text ${String(expected)}`,
    async () => {
      const t = ((await locator.textContent({ timeout: 1_000 })) ?? '').trim();
      const ok = typeof expected === 'string' ? t.includes(expected) : expected.test(t);
      return ok ? t : '';
    },
    timeout,
  );
}
