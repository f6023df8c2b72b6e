// The analyst's journey: filter the violations by rule, read the chart and the table, export
// the CSV, see the heatmap, replay a truck's track with the slider, read the handling KPIs and
// the districts' ranking; then switch to English.
import { readFileSync } from 'node:fs';
import { launch, newPage, signIn, shot, step, expect, fail, seeMarks, base, tokenOf } from './lib.mjs';

const plate = process.env.MW_PLATE || fail('MW_PLATE is not set');
const browser = await launch();
try {
  const page = await newPage(browser, { viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  await signIn(page, 'analyst');
  await page.waitForFunction(() => Number(document.querySelector('#screen').dataset.total || 0) > 0);
  await page.selectOption('#a-rule', 'speeding');
  await page.selectOption('#a-split', 'rule');
  await page.click('#a-query');
  await page.waitForFunction(() => document.querySelectorAll('#table thead th').length === 3 && document.querySelector('#table thead').textContent.includes('超速'))
    .catch(async () => fail(`no table of speeding by day after the query; the screen says "${await page.textContent('#a-msg')}"; page errors: ${page.errors.join('; ')}`));
  expect(await page.locator('#chart canvas').count() > 0, 'no chart drawn');
  // the axis is named level above it: a rotated CJK label squashed its glyphs on their side
  const caption = await page.locator('#chart .axis-caption').allTextContents();
  expect(caption.length === 1 && caption[0] === '数量', `the chart's axis caption is ${JSON.stringify(caption)}, want 数量`);
  const heads = await page.locator('#table thead th').allTextContents();
  expect(heads.length === 3 && heads[1] === '超速', `the table's columns are ${heads}, want the day, 超速 and the total`);
  step('filtered by rule: ' + (await page.textContent('#a-msg')));

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#a-csv')]);
  const csv = readFileSync(await download.path(), 'utf8').replace(/^\ufeff/, '');
  const lines = csv.trim().split(/\r?\n/);
  expect(lines[0] === 'day,rule,violations', `the CSV's header is ${lines[0]}`);
  expect(lines.length > 1 && lines.slice(1).every((l) => l.split(',')[1] === 'speeding'), 'the CSV is not filtered by rule: ' + csv);
  step(`CSV ${download.suggestedFilename()}: ${lines.length - 1} rows`);

  await page.waitForFunction(() => window.mwMap?.querySourceFeatures('heat').length > 0, null, { timeout: 15000 })
    .catch(() => fail('the heatmap has no cell'));

  await page.fill('#r-plate', plate);
  await page.click('#r-load');
  await page.waitForFunction(() => Number(document.querySelector('#screen').dataset.trackPoints || 0) >= 6);
  expect(Number(await page.evaluate(() => document.querySelector('#screen').dataset.trackAlerts)) >= 1, 'no alert on the track');
  const max = await page.getAttribute('#r-slider', 'max');
  await page.fill('#r-slider', String(Math.floor(Number(max) / 2)));
  const readout = await page.textContent('#r-readout');
  const kmh = Number(/(\d+) km\/h/.exec(readout)?.[1]);
  expect(kmh > 60, `the replay's speed in the middle of the track is ${readout}, want the truck's 90 km/h or so`);
  step('replay: ' + readout);
  // on the map: the track's line, and the replay's marker at the slider's point; the track as the
  // API gives it
  const period = await page.evaluate(() => [document.querySelector('#a-from').value, document.querySelector('#a-to').value]);
  const res = await fetch(`${base}/api/v1/vehicles/${encodeURIComponent(plate)}/track?from=${Date.parse(period[0] + 'T00:00:00+08:00')}&to=${Date.parse(period[1] + 'T00:00:00+08:00') + 86400000}`,
    { headers: { Authorization: 'Bearer ' + tokenOf('analyst') } });
  expect(res.ok, `the track of ${plate}: HTTP ${res.status}`);
  const line = (await res.json()).features.find((f) => f.geometry.type === 'LineString');
  expect(line, `the API gives no track line of ${plate}`);
  const pts = line.geometry.coordinates;
  const i = Number(await page.inputValue('#r-slider'));
  const mid = (a, b) => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const last = pts.length - 1;
  await seeMarks(page, 'analyst', [
    { lon: pts[i][0], lat: pts[i][1], colour: '#111111', what: `the replay's marker (point ${i + 1})` },
    ...[mid(pts[last - 1], pts[last])].map(([lon, lat]) => ({ lon, lat, colour: '#0b57d0', what: 'the track between its last two points' })),
  ]);

  // the assessment desk: the handling KPIs of the last week include the speeding alert, and the
  // districts are ranked for this month
  await page.click('#nav-kpis');
  await page.waitForFunction(() => Number(document.querySelector('#screen').dataset.kpiRaised || 0) >= 1 && document.querySelector('#screen').dataset.rankings !== undefined,
    null, { timeout: 15000 }).catch(() => fail('the handling KPIs show no alert raised'));
  expect(await page.locator('#k-chart canvas').count() > 0, 'no KPI chart drawn');
  const kpiCaption = await page.locator('#k-chart .axis-caption').allTextContents();
  expect(kpiCaption.length === 1 && kpiCaption[0] === '报警数', `the KPI chart's axis caption is ${JSON.stringify(kpiCaption)}, want 报警数`);
  const kpiHead = await page.locator('#kpi-table thead th').allTextContents();
  expect(kpiHead[0] === '周期' && kpiHead[2] === '报警数', `the KPI table's columns are ${kpiHead}`);
  const ranked = await page.locator('#ranking-table tbody tr').allTextContents();
  expect(Number(await page.evaluate(() => document.querySelector('#screen').dataset.rankings)) >= 1 && /^1\b/.test(ranked[0]),
    `the ranking of the districts is ${ranked}, want at least the district of the speeding alert ranked 1`);
  step(`KPIs: ${await page.textContent('#k-msg')}; ranking: ${ranked[0]}`);
  await shot(page, 'kpis');

  await page.click('#lang');
  await page.waitForSelector('#nav-analyst:text-is("Analysis")');
  step('switched to English');
  await shot(page, 'analyst-en');
  expect(page.errors.length === 0, 'the page threw: ' + page.errors.join('; '));
  step('analyst journey passed');
} finally {
  await browser.close();
}
