// The supervisor's second journey, run after the others: a severe alert arrives with the sound
// and the desktop notification switched on, and both switches survive a reload; an alert is
// dismissed with a reason; the restricted zones' shading follows the clock with the page open;
// the wall screen refreshes itself and shows an alert resolved meanwhile by someone else.
// Protocol with the Go test: it prints READY when the centre is live, and the test then makes
// MW_PLATE2 speed near the two officers of the first journey.
import { launch, newPage, signIn, step, expect, fail, base, tokenOf, waitLive } from './lib.mjs';

const plate2 = process.env.MW_PLATE2 || fail('MW_PLATE2 is not set');
const browser = await launch();
try {
  const page = await newPage(browser, { viewport: { width: 1440, height: 900 } });
  await page.context().grantPermissions(['notifications'], { origin: base });
  // count the beeps and the desktop notifications the page makes
  await page.addInitScript(() => {
    window.mwHeard = { beeps: 0, notes: [] };
    const Real = window.AudioContext;
    window.AudioContext = class extends Real {
      createOscillator() {
        const o = super.createOscillator();
        const start = o.start.bind(o);
        o.start = (...a) => { window.mwHeard.beeps++; return start(...a); };
        return o;
      }
    };
    const RealN = window.Notification;
    window.Notification = class extends RealN {
      constructor(title, opts) {
        super(title, opts);
        window.mwHeard.notes.push(title + ' | ' + (opts?.body || ''));
      }
    };
  });
  await signIn(page, 'supervisor');
  await waitLive(page);
  expect(await page.isChecked('#sound'), 'the sound is off by default');
  expect(!(await page.isChecked('#notify')), 'desktop notifications are on before anyone asked for them');
  await page.check('#notify');
  await page.waitForFunction(() => localStorage.getItem('mw.notify') === 'on');

  console.log('READY');
  const sel = `li.alert.sev-severe[data-plate="${plate2}"]`;
  await page.waitForSelector(sel, { timeout: 60000 });
  const heard = await page.evaluate(() => window.mwHeard);
  expect(heard.beeps >= 1, 'a new severe alert arrived without a sound');
  expect(heard.notes.some((n) => n.includes(plate2)), `no desktop notification names ${plate2}: ${JSON.stringify(heard.notes)}`);
  step(`severe alert of ${plate2}: ${heard.beeps} beep(s), notification "${heard.notes.find((n) => n.includes(plate2))}"`);

  // the switches are kept across a reload
  await page.uncheck('#sound');
  await page.reload();
  await waitLive(page);
  expect(!(await page.isChecked('#sound')) && await page.isChecked('#notify'), 'the sound and notification switches did not survive a reload');
  step('sound off and notifications on, kept across a reload');

  // the journeys' WebGL is software: the centre's map is drawn at half the screen's resolution,
  // and the base-map dialog's setting switches that off (kept across a reload, checked below)
  const drawnAt = () => page.evaluate(() => ({ ratio: window.mwMap.getPixelRatio(), dpr: window.devicePixelRatio, renderer: document.querySelector('#map').dataset.renderer }));
  const low = await drawnAt();
  expect(/swiftshader|llvmpipe/i.test(low.renderer), `the journeys run on software WebGL, the map says it is drawn by "${low.renderer}"`);
  expect(low.ratio === low.dpr / 2, `on ${low.renderer} the centre's map is drawn at pixel ratio ${low.ratio}, want ${low.dpr / 2}`);
  await page.click('#settings');
  expect(await page.isChecked('dialog.settings[open] #low-res'), 'the low-resolution map on software rendering is off by default');
  const said = await page.textContent('dialog.settings[open] #renderer');
  expect(said.includes(low.renderer) && said.includes('软件渲染'), `the dialog does not name the software renderer: "${said}"`);
  await page.uncheck('dialog.settings[open] #low-res');
  await page.click('dialog.settings[open] button.primary');
  await waitLive(page);
  await page.waitForFunction(() => window.mwMap?.getPixelRatio() === window.devicePixelRatio && document.body.contains(window.mwMap.getCanvas()), null, { timeout: 15000 })
    .catch(async () => fail(`with the setting off the centre's map is drawn at ${JSON.stringify(await drawnAt())}`));
  step(`the centre's map at pixel ratio ${low.ratio} on ${low.renderer}; ${low.dpr} with the setting off`);

  // a dismissal needs a reason and then is recorded with it
  const id2 = await page.getAttribute(sel, 'data-id');
  await page.click(`li.alert[data-id="${id2}"]`);
  await page.waitForSelector('#alert-panel:not([hidden]) #panel-plate');
  await page.click('#act-dismiss');
  await page.fill('#dismiss-reason', 'test drive of the city fleet');
  await page.click('#dismiss-confirm');
  await page.waitForFunction(() => document.querySelector('#history')?.textContent.includes('test drive of the city fleet'));
  expect((await page.textContent('#panel-state')).includes('已作废'), 'the panel does not show the alert dismissed');
  await page.waitForSelector(`li.alert[data-id="${id2}"]`, { state: 'detached', timeout: 5000 })
    .catch(() => fail('the dismissed alert is still in the feed'));
  step(`dismissed ${id2} with a reason; it left the feed`);
  console.log('DISMISSED ' + id2);

  // the restricted zones follow the clock: a Monday 07:30 in the city, then 09:30
  const layers = await page.evaluate(async (tok) => (await fetch('/api/v1/city/layers', { headers: { Authorization: 'Bearer ' + tok } })).json(), tokenOf('supervisor'));
  expect(layers.time_zone === 'Asia/Shanghai', `the journey's times are written for Asia/Shanghai, the city is in ${layers.time_zone}`);
  const zone = layers.features.find((f) => f.properties.layer === 'restricted' && f.properties.closed_hours.includes('mon-fri 07:00-09:00'));
  expect(zone, 'the city has no restricted zone closed mon-fri 07:00-09:00');
  const zoneId = zone.properties.id;
  const closedNow = () => page.evaluate((id) => {
    const shown = document.querySelector('#map').dataset.closedZones.split(',').includes(id);
    const drawn = window.mwMap.querySourceFeatures('city').filter((f) => f.properties.id === id).map((f) => f.properties.closed_now);
    return { shown, drawn };
  }, zoneId);
  await page.clock.setFixedTime(new Date('2026-12-07T07:30:00+08:00'));
  await page.reload();
  await waitLive(page);
  await page.evaluate(() => new Promise((r) => window.mwMap.once('idle', r)));
  expect(await page.evaluate(() => window.mwMap.getPixelRatio() === window.devicePixelRatio), 'the low-resolution setting did not survive a reload');
  let z = await closedNow();
  expect(z.shown && z.drawn.length > 0 && z.drawn.every((c) => c === true), `${zoneId} is not shaded closed on Monday 07:30: ${JSON.stringify(z)}`);
  await page.clock.setFixedTime(new Date('2026-12-07T09:30:00+08:00'));
  await page.waitForFunction((id) => !document.querySelector('#map').dataset.closedZones.split(',').includes(id), zoneId, { timeout: 30000 })
    .catch(() => fail(`${zoneId} is still shaded closed at 09:30 with the page open`));
  await page.evaluate(() => new Promise((r) => window.mwMap.once('idle', r)));
  z = await closedNow();
  expect(!z.shown && z.drawn.length > 0 && z.drawn.every((c) => c === false), `${zoneId} is still drawn closed at 09:30: ${JSON.stringify(z)}`);
  step(`${zoneId} shaded closed at 07:30 and open at 09:30 without a reload`);

  // the wall screen refreshes by itself: an alert resolved elsewhere leaves its count
  const wall = await newPage(browser, { viewport: { width: 1920, height: 1080 } });
  await wall.addInitScript((tok) => localStorage.setItem('mw.token', tok), tokenOf('supervisor'));
  await wall.goto(base + '/#/wall');
  await wall.waitForFunction(() => Number(document.querySelector('#kpi-severe')?.textContent) > 0);
  const severe = Number(await wall.textContent('#kpi-severe'));
  const rows = await wall.locator('#severe-list li').count();
  const first = Number(await wall.getAttribute('#screen', 'data-refreshed'));
  const open = await page.evaluate(async (tok) => (await fetch('/api/v1/alerts?severity=severe', { headers: { Authorization: 'Bearer ' + tok } })).json(), tokenOf('supervisor'));
  const id1 = open.alerts[0]?.alert_id || fail('no open severe alert to resolve');
  const resp = await wall.request.post(`${base}/api/v1/alerts/${encodeURIComponent(id1)}/actions`,
    { headers: { Authorization: 'Bearer ' + tokenOf('supervisor') }, data: { action: 'resolve' } });
  expect(resp.ok(), `resolving ${id1}: ${resp.status()} ${await resp.text()}`);
  await wall.waitForFunction((n) => Number(document.querySelector('#kpi-severe').textContent) === n - 1, severe, { timeout: 40000 })
    .catch(() => fail(`the wall still counts ${severe} open severe alerts 40 s after one was resolved`));
  expect(await wall.locator('#severe-list li').count() === rows - 1, `the wall lists ${await wall.locator('#severe-list li').count()} severe alerts, want ${rows - 1}`);
  const second = Number(await wall.getAttribute('#screen', 'data-refreshed'));
  expect(second > first, 'the wall did not refresh itself');
  step(`the wall refreshed by itself: ${severe} → ${severe - 1} open severe alerts`);
  console.log('RESOLVED ' + id1);
  expect(page.errors.length === 0 && wall.errors.length === 0, 'the page threw: ' + [...page.errors, ...wall.errors].join('; '));
  step('handling journey passed');
} finally {
  await browser.close();
}
