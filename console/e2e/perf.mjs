// Measures the command centre with a large live fleet (console/perfserve, by `make console-perf`):
// the open time on loopback (navigation until the console's mw:open mark: the first frame on the
// screen with the city's layers, every truck and the alert rings drawn, the feed listed and live)
// with where it goes (the console's mw:* performance marks), the frame times over 40 s of
// panning while the fleet refreshes every 10 s, and the page's JavaScript heap. Prints the
// figures as one JSON line.
//
//   MW_RUNS   opens to measure, each cold (a fresh browser context: empty cache) and warm (a
//             reload: the bundle revalidated, its compiled code cached); default 5
//   MW_GL     how the page gets WebGL without a GPU (lib.mjs); default swiftshader
//   MW_PAN_S  seconds of panning; default 40
//   MW_LOWRES off switches the low-resolution map on software rendering off (render.js), as
//             the settings dialog does
//   MW_OPEN   the mark that says open (default open); fleet-drawn (MapLibre's idle) measures a
//             console from before mw:open existed the same way
import { launch, newPage, step, expect, fail, base, tokenOf, gl } from './lib.mjs';

const trucks = Number(process.env.MW_TRUCKS || 15000);
const runs = Number(process.env.MW_RUNS || 5);
const panS = Number(process.env.MW_PAN_S || 40);
const openMark = 'mw:' + (process.env.MW_OPEN || 'open');
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

// open navigates to the command centre and waits until it is open (mw:open, set by centre.js);
// it answers the wall-clock time and the page's own timeline, in ms from navigation.
async function open(page, reload) {
  const t0 = Date.now();
  if (reload) await page.reload();
  else await page.goto(base + '/#/centre');
  await page.waitForFunction((m) => performance.getEntriesByName(m).length > 0, openMark, { timeout: 90000, polling: 20 });
  const wall = Date.now() - t0;
  const shown = await page.evaluate(() => ({ fleet: Number(document.querySelector('#screen').dataset.fleet || 0),
    live: !!document.querySelector('#stream-state.live'), feed: document.querySelectorAll('#feed li.alert').length }));
  expect(shown.fleet >= trucks && shown.live && shown.feed > 0, `open but not all there: ${JSON.stringify(shown)}`);
  // the map settled too (every source loaded, nothing moving): MapLibre's idle, for comparison
  await page.waitForFunction(() => performance.getEntriesByName('mw:fleet-drawn').length > 0, null, { timeout: 90000, polling: 50 });
  const tl = await page.evaluate(() => {
    const out = {};
    const nav = performance.getEntriesByType('navigation')[0];
    out['html'] = nav.responseEnd;
    for (const r of performance.getEntriesByType('resource')) {
      const name = new URL(r.name).pathname.replace(/^\/(api\/v1\/)?/, '');
      const key = (name.startsWith('alerts?') ? 'alerts' : name) + ' fetched';
      if (key in out) continue; // the first request only, not the 10-s refreshes
      if (['app.js', 'app.css', 'me', 'city/layers', 'fleet'].includes(name) || name.startsWith('alerts?')) {
        out[key] = r.responseEnd;
        if (name === 'app.js') out['app.js bytes'] = r.transferSize;
      }
    }
    for (const m of performance.getEntriesByType('mark')) if (m.name.startsWith('mw:')) out[m.name.slice(3)] = m.startTime;
    return out;
  });
  for (const k of Object.keys(tl)) if (!k.endsWith('bytes')) tl[k] = Math.round(tl[k]);
  return { wall, tl };
}

const browser = await launch();
try {
  const renderer = await (async () => {
    const p = await browser.newPage();
    const r = await p.evaluate(() => {
      const c = document.createElement('canvas').getContext('webgl2');
      if (!c) return 'no WebGL2';
      const d = c.getExtension('WEBGL_debug_renderer_info');
      return d ? c.getParameter(d.UNMASKED_RENDERER_WEBGL) : c.getParameter(c.RENDERER);
    });
    await p.close();
    return r;
  })();
  step(`WebGL (MW_GL=${gl}): ${renderer}`);
  const cold = [], warm = [];
  let page;
  for (let i = 0; i < runs; i++) {
    page = await newPage(browser, { viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => fail('the command centre threw: ' + e.message));
    await page.addInitScript((tok) => localStorage.setItem('mw.token', tok), tokenOf('supervisor'));
    if (process.env.MW_LOWRES) await page.addInitScript((v) => localStorage.setItem('mw.lowres', v), process.env.MW_LOWRES);
    cold.push(await open(page, false));
    warm.push(await open(page, true));
    step(`open ${i + 1}: cold ${cold[i].wall} ms ${JSON.stringify(cold[i].tl)}; warm ${warm[i].wall} ms ${JSON.stringify(warm[i].tl)}`);
    if (i < runs - 1) await page.context().close();
  }
  // the median of every step of the timeline, over the cold and over the warm opens
  const steps = (xs) => Object.fromEntries(Object.keys(xs[0].tl).map((k) => [k, median(xs.map((x) => x.tl[k] ?? NaN))]).sort((a, b) => a[1] - b[1]));
  const frames = await page.evaluate((ms) => new Promise((resolve) => {
    const deltas = [];
    let last = performance.now();
    const end = last + ms;
    let dir = 1;
    const pan = setInterval(() => { window.mwMap.panBy([dir * 120, 0], { duration: 400 }); dir = -dir; }, 500);
    const tick = (now) => {
      deltas.push(now - last);
      last = now;
      if (now < end) requestAnimationFrame(tick);
      else { clearInterval(pan); resolve(deltas); }
    };
    requestAnimationFrame(tick);
  }), panS * 1000);
  frames.sort((a, b) => a - b);
  const q = (p) => frames[Math.min(frames.length - 1, Math.floor(p * frames.length))];
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  const fleet = Number(await page.evaluate(() => document.querySelector('#screen').dataset.fleet));
  expect(fleet >= trucks, `the map shows ${fleet} trucks, want ${trucks}`);
  expect(page.errors.length === 0, `the page had errors: ${page.errors.join('; ')}`);
  const out = {
    trucks: fleet, gl, renderer, pixel_ratio: Number(await page.evaluate(() => window.mwMap.getPixelRatio())),
    open_cold_ms: cold.map((x) => x.wall), open_cold_median_ms: median(cold.map((x) => x.wall)),
    open_warm_ms: warm.map((x) => x.wall), open_warm_median_ms: median(warm.map((x) => x.wall)),
    cold_steps_median_ms: steps(cold), warm_steps_median_ms: steps(warm),
    frames: frames.length, frame_ms_median: +q(0.5).toFixed(1), frame_ms_p95: +q(0.95).toFixed(1),
    frame_ms_max: +frames[frames.length - 1].toFixed(1), frames_over_50ms: frames.filter((d) => d > 50).length,
    js_heap_used_mb: +(m.JSHeapUsedSize / 1048576).toFixed(1), js_heap_total_mb: +(m.JSHeapTotalSize / 1048576).toFixed(1),
    dom_nodes: m.Nodes,
  };
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
