// The browser regression of the k_client portal (the runbook's
// k_client_portal.py flow): register, login through the card, counter
// reuse, logout, a login the card denies, unregister. With VCARD_CTL set
// (run.sh), the virtual card's presence is driven through vcard-ctl; without
// it, a person approves or refuses on the real card when the page asks.
import { test, expect, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';

const ms = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const CARD_REGISTRATION_TIMEOUT_MS = ms('CARD_REGISTRATION_TIMEOUT_MS', 60000);
const CARD_LOGIN_TIMEOUT_MS = ms('CARD_LOGIN_TIMEOUT_MS', 60000);

const PENDING = 'Touch the card to approve…';
const DENIED = 'Login denied on the card — k_server was not called.';
const user = `pw${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

// vcard-ctl --control $VCARD_CTL presence MODE; false without a virtual card.
function presence(mode: string): boolean {
  const sock = process.env.VCARD_CTL;
  if (!sock) return false;
  const bin = process.env.VCARD_CTL_BIN || 'vcard-ctl';
  execFileSync(bin, ['--control', sock, 'presence', mode], { stdio: 'pipe', timeout: 10000 });
  return true;
}

test.describe.configure({ mode: 'serial' });

let page: Page;
// Console messages about the Content-Security-Policy: the page must run
// whole under the portal's strict policy (no inline script or style).
const cspViolations: string[] = [];

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  const answer = await page.goto('/');
  const csp = answer?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("default-src 'self'");
  expect(answer?.headers()['x-frame-options']).toBe('DENY');
  await expect(page.getByTestId('status')).toHaveText('Ready.');
});

test.afterAll(async () => {
  await page?.close();
});

async function idle(p: Page) {
  await expect(p.locator('body')).toHaveAttribute('data-busy', 'false', {
    timeout: CARD_REGISTRATION_TIMEOUT_MS + CARD_LOGIN_TIMEOUT_MS,
  });
}

test('register a fresh user: it appears in the list', async () => {
  presence('yes');
  await page.getByTestId('username').fill(user);
  await expect(page.locator(`#users li[data-username="${user}"]`)).toHaveCount(0);
  await page.getByTestId('register').click();
  await expect(page.getByTestId('status')).toHaveText(`Registered ${user}.`, {
    timeout: CARD_REGISTRATION_TIMEOUT_MS,
  });
  await expect(page.locator(`#users li[data-username="${user}"]`)).toHaveText(user);
});

test('login through the card, counter twice, logout refuses the counter', async () => {
  const status = page.getByTestId('status');
  const value = page.getByTestId('counter-value');
  // a slow touch: the page must say what it waits for
  const driven = presence('delay:1500');
  await page.getByTestId('login').click();
  if (driven) await expect(status).toHaveText(PENDING);
  await expect(status).toHaveText(`Logged in as ${user}: the card approved.`, {
    timeout: CARD_LOGIN_TIMEOUT_MS,
  });
  presence('yes');
  await idle(page);
  await expect(page.getByTestId('session')).toContainText(`Logged in as ${user}`);

  await page.getByTestId('counter').click();
  await expect(status).toHaveText(/^Counter: \d+$/);
  await idle(page);
  const first = Number(await value.textContent());
  expect(Number.isInteger(first)).toBe(true);

  await page.getByTestId('counter').click();
  await expect(value).not.toHaveText(String(first));
  await idle(page);
  const second = Number(await value.textContent());
  expect(second).toBeGreaterThan(first);

  await page.getByTestId('logout').click();
  await expect(status).toHaveText(`Logged out ${user}.`);
  await idle(page);
  await expect(page.getByTestId('session')).toHaveText('Not logged in.');

  await page.getByTestId('counter').click();
  await expect(status).toHaveText(/^Counter failed: .*\(not_logged_in\)$/);
  await idle(page);
  await expect(value).toHaveText(String(second));
});

test('a login the card denies says k_server was not called', async () => {
  presence('no');
  try {
    await page.getByTestId('login').click();
    await expect(page.getByTestId('status')).toHaveText(DENIED, {
      timeout: CARD_LOGIN_TIMEOUT_MS,
    });
    await idle(page);
    await expect(page.getByTestId('session')).toHaveText('Not logged in.');
  } finally {
    presence('yes');
  }
});

test('unregister removes the user from the list', async () => {
  await page.getByTestId('unregister').click();
  await expect(page.getByTestId('status')).toHaveText(`Unregistered ${user}.`);
  await expect(page.locator(`#users li[data-username="${user}"]`)).toHaveCount(0);
});

test('the page runs under its Content-Security-Policy and cannot be framed', async ({ browser }) => {
  expect(cspViolations).toEqual([]);
  // another page framing the portal: the frame stays empty
  const other = await browser.newPage();
  const url = new URL('/', page.url()).toString();
  const refused = other.waitForEvent('console', {
    predicate: (m) => /frame-ancestors/.test(m.text()),
    timeout: 10000,
  });
  await other.setContent(`<iframe id="f" src="${url}"></iframe>`);
  await refused; // Chromium says it refused to frame the portal
  const framed = other.frames().find((f) => f.url() === url);
  const testids = framed ? await framed.locator('[data-testid="status"]').count() : 0;
  expect(testids).toBe(0);
  await other.close();
});
