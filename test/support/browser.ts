import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

/** Debian's chromium, installed by .ci/run: puppeteer-core downloads no browser of its own. */
const CHROMIUM = '/usr/bin/chromium';

export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Headless Chromium with a fresh profile and nothing that calls home, so the
 * only traffic is the test's own to loopback.
 */
export async function startBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'smtp-bridge-chromium-'));
  const browser = await puppeteer
    .launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      protocolTimeout: 60_000,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
      ],
    })
    .catch(async (err: unknown) => {
      await rm(profile, { recursive: true, force: true });
      throw err;
    });
  return {
    browser,
    async close() {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
