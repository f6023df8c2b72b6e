import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWindow, closedAt } from './zones.js';

// 2026-12-07 is a Monday.
const sh = (local) => Date.parse(local + '+08:00');

test('closedAt reads the windows in the city zone', () => {
  const f = (windows, at, want) => assert.equal(closedAt(windows, sh(at), 'Asia/Shanghai'), want, `${windows} at ${at}`);
  f(['mon-fri 07:00-09:00'], '2026-12-07T07:00:00', true);
  f(['mon-fri 07:00-09:00'], '2026-12-07T08:59:59', true);
  f(['mon-fri 07:00-09:00'], '2026-12-07T09:00:00', false); // the end is not covered
  f(['mon-fri 07:00-09:00'], '2026-12-07T06:59:00', false);
  f(['mon-fri 07:00-09:00'], '2026-12-12T08:00:00', false); // Saturday
  f(['mon-fri 07:00-09:00', 'mon-fri 16:30-18:30'], '2026-12-08T17:00:00', true);
  f(['daily 22:00-06:00'], '2026-12-07T23:30:00', true);
  f(['daily 22:00-06:00'], '2026-12-08T05:59:00', true);
  f(['daily 22:00-06:00'], '2026-12-08T06:00:00', false);
  f(['fri 22:00-06:00'], '2026-12-12T05:00:00', true); // Saturday morning, from Friday's window
  f(['fri 22:00-06:00'], '2026-12-13T05:00:00', false); // Sunday morning
  f(['sat,sun 00:00-24:00'], '2026-12-13T23:59:00', true);
  f(['fri-mon 10:00-11:00'], '2026-12-13T10:30:00', true); // a range that wraps the week
  f(['mon,wed-fri 07:30-09:00'], '2026-12-08T08:00:00', false); // Tuesday
  f(['never 07:00-09:00'], '2026-12-07T08:00:00', false);
  f([], '2026-12-07T08:00:00', false);
  f(['someday 07:00-09:00'], '2026-12-07T08:00:00', undefined);
  // the same instant in UTC is 00:00 on Monday: the city's zone decides
  assert.equal(closedAt(['mon-fri 07:00-09:00'], sh('2026-12-07T08:00:00'), 'UTC'), false);
});

test('parseWindow rejects what city.ParseWindow rejects', () => {
  for (const s of ['', 'daily', 'daily 07:00-07:00', 'daily 24:00-01:00', 'mon 07:00-24:01', 'mon 7-9']) assert.equal(parseWindow(s), null, s);
  assert.deepEqual(parseWindow('daily 00:00-24:00').end, 1440);
});
