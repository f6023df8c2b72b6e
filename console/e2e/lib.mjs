// Shared by the journeys: Debian's Chromium driven by playwright-core, sign-in, screenshots and
// a step log. Every journey reads MW_URL and the tokens from the environment (MW_TOKEN_<ROLE>)
// and writes its screenshots under MW_ARTEFACTS (default e2e/artefacts).
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const base = process.env.MW_URL || fail('MW_URL is not set: the console URL to test');
export const artefacts = process.env.MW_ARTEFACTS || new URL('./artefacts', import.meta.url).pathname;
mkdirSync(artefacts, { recursive: true });

export function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}

export function tokenOf(role) {
  return process.env['MW_TOKEN_' + role.toUpperCase()] || fail(`MW_TOKEN_${role.toUpperCase()} is not set`);
}

export function step(msg) {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${msg}`);
}

// launch starts Debian's Chromium headless, without the background traffic this machine's closed
// network refuses, and without the address bar's popup: headless Chromium is the whole browser,
// and on every navigation it built that popup (a WebUI page of its own, chrome://omnibox-popup,
// about 400 requests and 0.7 s of script in a second renderer) that nobody sees, competing with
// the page for this machine's two cores. Playwright gives every launch a fresh temporary profile
// (--user-data-dir) of its own and removes it on close.
export async function launch() {
  const executablePath = process.env.MW_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) fail(`${executablePath} is missing: run make deps (it installs Debian's chromium)`);
  return chromium.launch({
    executablePath, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      '--disable-features=WebUIOmniboxFullPopup,WebUIOmniboxPopup,WebUIOmniboxAimPopup', ...glFlags[gl]],
  });
}

// glFlags are the ways this machine (no GPU) can give the page WebGL, chosen with MW_GL: swiftshader
// (the default: ANGLE over SwiftShader, Chromium's own software Vulkan), or llvmpipe (ANGLE over
// Mesa's software OpenGL; needs Debian's libgl1-mesa-dri).
const glFlags = {
  swiftshader: ['--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
  'swiftshader-gpu': ['--enable-unsafe-swiftshader', '--use-angle=swiftshader', '--ignore-gpu-blocklist'],
  llvmpipe: ['--use-gl=angle', '--use-angle=gl-egl', '--ignore-gpu-blocklist', '--enable-unsafe-swiftshader'],
};
export const gl = process.env.MW_GL || 'swiftshader';
if (!glFlags[gl]) fail(`MW_GL must be one of ${Object.keys(glFlags).join(', ')}, got ${gl}`);

// page opens a page that fails the journey on any uncaught error of the console.
export async function newPage(browser, opts = {}) {
  const ctx = await browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', ...opts });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => { page.errors.push(e.message); console.error('page error: ' + e.message); });
  page.on('console', (m) => { if (m.type() === 'error') console.error('console error: ' + m.text()); });
  page.setDefaultTimeout(30000);
  return page;
}

export async function signIn(page, role) {
  await page.goto(base + '/');
  await page.fill('#token', tokenOf(role));
  await page.click('form.signin button[type=submit]');
  await page.waitForSelector('#who', { state: 'attached' });
  const who = await page.textContent('#who');
  if (!who.includes(role)) fail(`signed in as ${role} but the header says ${who}`);
  const url = page.url();
  if (url.includes(tokenOf(role))) fail('the token is in the URL: ' + url);
}

export async function shot(page, name) {
  const path = join(artefacts, name + '.png');
  await page.screenshot({ path });
  step('screenshot ' + path);
}

export function expect(cond, msg) {
  if (!cond) fail(msg);
}

// waitLive waits for the alert stream of the page's screen to be live, and says what it shows
// when it is not.
export async function waitLive(page, timeout = 60000) {
  await page.waitForSelector('#stream-state.live', { timeout }).catch(async () => {
    const st = await page.evaluate(() => { const e = document.querySelector('#stream-state'); return e ? `${e.className} "${e.textContent}"` : 'no #stream-state'; });
    fail(`the alert stream is not live after ${timeout / 1000} s: ${st}; page errors: ${page.errors.join('; ')}`);
  });
}
