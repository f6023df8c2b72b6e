// Measures the command centre with a large live fleet (console/perfserve, by `make console-perf`):
// the open time on loopback (navigation to the map drawn with every truck and the alert feed
// live), the frame times over 40 s of panning while the fleet refreshes every 10 s, and the
// page's JavaScript heap. Prints one JSON line of figures.
import { launch, newPage, step, expect, base, tokenOf } from './lib.mjs';

const trucks = Number(process.env.MW_TRUCKS || 15000);
const browser = await launch();
try {
  const page = await newPage(browser, { viewport: { width: 1440, height: 900 } });
  // sign in once, then measure a fresh open with the token in the browser's storage
  await page.goto(base + '/');
  await page.evaluate((tok) => localStorage.setItem('mw.token', tok), tokenOf('supervisor'));
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    await page.goto(base + '/#/centre');
    await page.waitForFunction((n) => Number(document.querySelector('#screen')?.dataset.fleet || 0) >= n, trucks, { timeout: 60000, polling: 50 });
    await page.waitForSelector('#stream-state.live');
    await page.evaluate(() => new Promise((r) => window.mwMap.once('idle', r)));
    runs.push(Date.now() - t0);
  }
  step(`open times (ms): ${runs.join(', ')}`);
  const frames = await page.evaluate(() => new Promise((resolve) => {
    const deltas = [];
    let last = performance.now();
    const end = last + 40000;
    let dir = 1;
    const pan = setInterval(() => { window.mwMap.panBy([dir * 120, 0], { duration: 400 }); dir = -dir; }, 500);
    const tick = (now) => {
      deltas.push(now - last);
      last = now;
      if (now < end) requestAnimationFrame(tick);
      else { clearInterval(pan); resolve(deltas); }
    };
    requestAnimationFrame(tick);
  }));
  frames.sort((a, b) => a - b);
  const q = (p) => frames[Math.min(frames.length - 1, Math.floor(p * frames.length))];
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  const fleet = Number(await page.evaluate(() => document.querySelector('#screen').dataset.fleet));
  expect(fleet >= trucks, `the map shows ${fleet} trucks, want ${trucks}`);
  const out = {
    trucks: fleet, open_ms: runs, frames: frames.length, frame_ms_median: +q(0.5).toFixed(1), frame_ms_p95: +q(0.95).toFixed(1),
    frame_ms_max: +frames[frames.length - 1].toFixed(1), frames_over_50ms: frames.filter((d) => d > 50).length,
    js_heap_used_mb: +(m.JSHeapUsedSize / 1048576).toFixed(1), js_heap_total_mb: +(m.JSHeapTotalSize / 1048576).toFixed(1),
    dom_nodes: m.Nodes,
  };
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
