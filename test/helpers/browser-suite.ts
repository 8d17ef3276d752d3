import { describe } from 'vitest';
import { hasChromium, noChromium } from './browser.js';

/** A page waits for several things in turn, each up to 20 s: more than the default 30 s per test. */
const BROWSER_TEST_MS = 90_000;

/** A describe block that runs in Chromium, or is reported as skipped, saying why, where there is none. */
export function describeInChromium(name: string, body: () => void): void {
  describe.skipIf(!hasChromium)(hasChromium ? name : `${name} (skipped: ${noChromium})`, { timeout: BROWSER_TEST_MS }, body);
}
