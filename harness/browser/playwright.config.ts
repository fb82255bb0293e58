// Playwright configuration of the k_client portal regression: the system
// Chromium (no browser download), one worker, no retries, headless.
import { defineConfig } from '@playwright/test';

const ms = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

// A card operation waits for a human touch on a real card (the runbook's
// manual confirmation); under run.sh the virtual card answers at once.
const CARD_REGISTRATION_TIMEOUT_MS = ms('CARD_REGISTRATION_TIMEOUT_MS', 60000);
const CARD_LOGIN_TIMEOUT_MS = ms('CARD_LOGIN_TIMEOUT_MS', 60000);

export default defineConfig({
  testDir: './tests',
  // the longest test waits for one registration or two logins
  timeout: CARD_REGISTRATION_TIMEOUT_MS + 2 * CARD_LOGIN_TIMEOUT_MS + 10000,
  expect: { timeout: 5000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  reporter: [
    ['list'],
    ['json', { outputFile: process.env.PW_JSON_REPORT || '../../build/browser/results.json' }],
  ],
  outputDir: process.env.PW_OUTPUT_DIR || '../../build/browser/artifacts',
  use: {
    baseURL: process.env.PORTAL_BASE_URL || 'http://127.0.0.1:8766',
    headless: true,
    trace: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    },
  },
});
