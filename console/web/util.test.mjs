import { test } from 'node:test';
import assert from 'node:assert/strict';

// the console keeps its language in localStorage; node has none
const stored = new Map();
globalThis.localStorage = { getItem: (k) => stored.get(k) ?? null, setItem: (k, v) => stored.set(k, v) };
const { riskWords } = await import('./util.js');
const { setLang } = await import('./i18n.js');

// 2026-12-07 01:24:32 in Shenzhen (UTC+8) is 2026-12-06T17:24:32Z
const since = Date.UTC(2026, 11, 6, 17, 24, 32);
const sameDay = Date.UTC(2026, 11, 6, 20, 0, 0);
const nextDay = Date.UTC(2026, 11, 7, 20, 0, 0);

test('riskWords words every factor in Chinese, an alert in the city time of day', () => {
  setLang('zh');
  const alert = { kind: 'open_alert', rule: 'route_deviation', severity: 'severe', since_ms: since };
  assert.equal(riskWords(alert, sameDay), '未结报警：严重 · 偏离路线，始于 01:24:32');
  assert.match(riskWords(alert, nextDay), /^未结报警：严重 · 偏离路线，始于 2026\/12\/07 01:24:32$/);
  assert.equal(riskWords({ kind: 'violations', count: 2 }), '近30天违规 2 次');
  assert.equal(riskWords({ kind: 'violations', count: 1 }), '近30天违规 1 次');
  assert.equal(riskWords({ kind: 'unregistered' }), '未登记的渣土车');
  assert.equal(riskWords({ kind: 'no_permit' }), '当前无有效准运证');
  assert.equal(riskWords({ kind: 'a_new_kind' }), 'a_new_kind');
});

test('riskWords words every factor in English', () => {
  setLang('en');
  assert.equal(riskWords({ kind: 'open_alert', rule: 'speeding', severity: 'warning', since_ms: since }, sameDay), 'Open alert: Warning, Speeding, since 01:24:32');
  assert.equal(riskWords({ kind: 'violations', count: 3 }), '3 violations in the last 30 days');
  assert.equal(riskWords({ kind: 'violations', count: 1 }), '1 violation in the last 30 days');
  assert.equal(riskWords({ kind: 'no_permit' }), 'No permit valid now');
  setLang('zh');
});
