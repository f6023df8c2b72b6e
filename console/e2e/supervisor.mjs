// The supervisor's journey: sign in to the command centre, see a severe alert arrive on the map
// and in the feed, lose the network and get every item once, open the alert, dispatch the
// nearest officer and see it in the handling history; then the wall screen.
// Protocol with the Go test that runs it: it prints READY when the centre is live, and the test
// then makes MW_PLATE speed near two officers (officer-near and officer-far).
import { launch, newPage, signIn, step, expect, fail, base, seeFleet, seeCity } from './lib.mjs';
import { stateColours } from '../web/colours.js';

const plate = process.env.MW_PLATE || fail('MW_PLATE is not set');
const browser = await launch();
try {
  const page = await newPage(browser, { viewport: { width: 1440, height: 900 } });
  const t0 = Date.now();
  await signIn(page, 'supervisor');
  await page.waitForSelector('#stream-state.live');
  await page.waitForFunction(() => Number(document.querySelector('#screen').dataset.fleet || 0) > 0);
  step(`command centre live with trucks on the map in ${Date.now() - t0} ms`);
  expect(await page.isVisible('#map canvas'), 'the map has no canvas');
  // one sign-in starts one command centre: a second one would run beside it, unseen
  const started = await page.evaluate(() => performance.getEntriesByName('mw:map-created').length);
  expect(started === 1, `signing in started the command centre ${started} times, want once`);

  console.log('READY');
  const sel = `li.alert.sev-severe[data-plate="${plate}"][data-rule="speeding"]`;
  await page.waitForSelector(sel, { timeout: 60000 });
  step('the severe speeding alert is in the feed');
  const id = await page.getAttribute(sel, 'data-id');
  // on the map: the alert's ring, and the truck coloured severe at the next fleet refresh
  await page.waitForFunction((id) => window.mwMap?.querySourceFeatures('alerts').some((f) => f.properties.id === id), id, { timeout: 15000 })
    .catch(() => fail('the alert is not on the map'));
  await page.waitForFunction(() => Number(document.querySelector('#count-alert_severe').textContent) > 0, null, { timeout: 15000 })
    .catch(() => fail('no truck is coloured severe on the map'));
  // every officer is on the map, the two near the speeding truck among them
  await page.waitForFunction(() => Number(document.querySelector('#count-officers').textContent) >= 2, null, { timeout: 15000 })
    .catch(() => fail('the officers are not counted on the map'));
  const officersOnMap = () => window.mwMap.querySourceFeatures('all-officers').map((f) => f.properties.id);
  await page.waitForFunction(() => ['officer-near', 'officer-far'].every((o) => window.mwMap.querySourceFeatures('all-officers').some((f) => f.properties.id === o)),
    null, { timeout: 15000 })
    .catch(async () => fail(`the officers' layer has ${(await page.evaluate(officersOnMap)).join(', ')}, want officer-near and officer-far`));
  // what a person sees: every truck drawn at its place in its state's colour, the speeding one red
  await seeFleet(page, 'centre', stateColours, { want: { alert_severe: 1, moving: 5, stopped: 5 }, least: 40 });
  // and the city they drive in: its approved routes painted under them
  await seeCity(page);

  // a network drop: the stream resumes after the last item it delivered, nothing doubled
  const before = await page.evaluate(() => window.mwStream.delivered);
  await page.evaluate(() => window.mwStream.drop());
  await page.waitForSelector('#stream-state.reconnecting', { timeout: 5000 }).catch(() => {});
  await page.waitForSelector('#stream-state.live');
  expect(await page.locator(`li.alert[data-id="${id}"]`).count() === 1, 'the alert is listed more than once after the reconnection');
  step(`stream resumed (delivered ${before} before the drop)`);

  await page.click(`li.alert[data-id="${id}"]`);
  await page.waitForSelector('#alert-panel:not([hidden]) #panel-plate');
  expect((await page.textContent('#panel-plate')).trim() === plate, 'the panel shows another plate');
  await page.waitForSelector('#officers li');
  const firstOfficer = await page.textContent('#officers li:first-child span:first-child');
  expect(firstOfficer === 'officer-near', `the nearest officer listed first is ${firstOfficer}, want officer-near`);
  await page.waitForFunction(() => !document.querySelector('#panel-risk').textContent.includes('…'));
  const risk = await page.textContent('#panel-risk');
  expect(risk.includes('未结报警：严重 · 超速') && !/alert since|speeding/.test(risk), `the panel's risk is not in the supervisor's language: ${risk}`);
  await page.click('#officers button[data-officer="officer-near"]');
  await page.waitForFunction(() => document.querySelector('#history')?.textContent.includes('officer-near'));
  const state = await page.textContent('#panel-state');
  expect(state.includes('已派遣'), `the panel's state is ${state}, want 已派遣 (dispatched)`);
  step('dispatched officer-near; the handling history shows it');
  // zoomed in on the alert, the trucks drawn larger; the panel may cover the speeding truck, which
  // has driven on since the alert's start, where the map is centred
  await seeFleet(page, 'centre-alert', stateColours, { least: 5 });

  // dismissing asks for a reason
  await page.click('#act-dismiss');
  await page.waitForSelector('#dismiss-reason');
  await page.click('#dismiss-confirm');
  expect(await page.locator('#history li').count() === 1, 'dismiss without a reason was sent');

  await page.goto(base + '/#/wall');
  await page.waitForFunction(() => Number(document.querySelector('#kpi-severe')?.textContent) > 0);
  await page.waitForFunction(() => document.querySelectorAll('#by-rule li').length > 0);
  await seeFleet(page, 'wall', stateColours, { want: { alert_severe: 1, moving: 5, stopped: 5 }, least: 40 });
  expect(page.errors.length === 0, 'the page threw: ' + page.errors.join('; '));
  step('supervisor journey passed');
} finally {
  await browser.close();
}

