/**
 * A headless Chromium for UI tests (the Debian package installed by `scripts/install.sh`, driven
 * by playwright-core).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';

/** Path of the Chromium binary (`MDP_CHROMIUM` overrides). */
export function chromiumPath(): string {
  const path = process.env.MDP_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(path)) throw new Error(`Chromium not found at ${path}; run bash scripts/install.sh (or set MDP_CHROMIUM)`);
  return path;
}

/** Chromium flags: no GPU, no sandbox (containers), and nothing that phones home. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export interface HeadlessBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Closes the browser and removes its temporary profile. */
  close(): Promise<void>;
}

/** Launches headless Chromium with a throw-away profile and opens one page. */
export async function launchBrowser(options: { width?: number; height?: number } = {}): Promise<HeadlessBrowser> {
  const executablePath = chromiumPath();
  const userDataDir = mkdtempSync(join(tmpdir(), 'mdp-chromium-'));
  let context: BrowserContext;
  try {
    // Playwright passes the profile as --user-data-dir itself (it refuses the flag in `args`).
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: FLAGS,
      timeout: 60_000,
      viewport: { width: options.width ?? 1440, height: options.height ?? 1000 },
    });
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw new Error(`cannot launch Chromium at ${executablePath} (bash scripts/install.sh installs it): ${(err as Error).message}`);
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
