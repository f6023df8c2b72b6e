// Profiles one cold open of the command centre (console/perfserve, MW_URL and the supervisor's
// token as for perf.mjs) with Chromium's tracing, and prints where the time goes: per thread
// (the page's main thread, MapLibre's worker, the GPU process), the busiest kinds of task, in
// ms, and the console's mw:* marks. MW_TRACE=file also keeps the trace (open it in
// chrome://tracing or Perfetto).
import { writeFileSync } from 'node:fs';
import { launch, newPage, step, base, tokenOf, gl } from './lib.mjs';

const trucks = Number(process.env.MW_TRUCKS || 15000);
const browser = await launch();
try {
  const page = await newPage(browser, { viewport: { width: 1440, height: 900 } });
  await page.addInitScript((tok) => localStorage.setItem('mw.token', tok), tokenOf('supervisor'));
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'v8.execute', 'gpu', 'toplevel', 'blink.user_timing', 'loading', 'netlog'] });
  const t0 = Date.now();
  await page.goto(base + '/#/centre');
  await page.waitForFunction((n) => Number(document.querySelector('#screen')?.dataset.fleet || 0) >= n, trucks, { timeout: 90000, polling: 50 });
  await page.waitForSelector('#stream-state.live');
  await page.waitForFunction(() => performance.getEntriesByName('mw:open').length > 0 || performance.getEntriesByName('mw:fleet-drawn').length > 0, null, { timeout: 90000, polling: 50 });
  const wall = Date.now() - t0;
  const marks = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('mark').filter((m) => m.name.startsWith('mw:')).map((m) => [m.name.slice(3), Math.round(m.startTime)])));
  const buf = await browser.stopTracing();
  if (process.env.MW_TRACE) writeFileSync(process.env.MW_TRACE, buf);
  const events = JSON.parse(buf.toString()).traceEvents;
  // the threads' names, and the navigation's start as the trace's zero
  const names = {};
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') names[`${e.pid}:${e.tid}`] = e.args.name;
  const nav = events.find((e) => e.name === 'navigationStart' || e.name === 'NavigationTiming') ?? events.find((e) => e.name === 'TracingStartedInBrowser');
  const zero = nav.ts;
  // time in complete events at the top of each thread's stack (nested ones are not double counted)
  const per = {};
  const stacks = {};
  for (const e of events.filter((e) => e.ph === 'X' && e.dur).sort((a, b) => a.ts - b.ts)) {
    const th = `${e.pid}:${e.tid}`;
    const st = (stacks[th] ||= []);
    while (st.length && st[st.length - 1] <= e.ts) st.pop();
    const top = st.length === 0;
    st.push(e.ts + e.dur);
    const name = names[th] || th;
    const p = (per[name] ||= { total: 0, kinds: {}, inner: {} });
    if (top) {
      p.total += e.dur / 1000;
      p.kinds[e.name] = (p.kinds[e.name] || 0) + e.dur / 1000;
    } else if (/compile|Compile|parse|Parse|GC|V8\.|Layout|Paint|Shader/.test(e.name)) {
      p.inner[e.name] = (p.inner[e.name] || 0) + e.dur / 1000;
    }
  }
  const round = (o) => Object.fromEntries(Object.entries(o).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => [k, Math.round(v)]));
  step(`cold open ${wall} ms (MW_GL=${gl}); marks ${JSON.stringify(marks)}`);
  for (const [th, p] of Object.entries(per).sort((a, b) => b[1].total - a[1].total).slice(0, 8)) {
    step(`${th}: busy ${Math.round(p.total)} ms; top ${JSON.stringify(round(p.kinds))}; inside ${JSON.stringify(round(p.inner))}`);
  }
  // the main thread's long tasks on the timeline
  const main = Object.keys(names).find((k) => names[k] === 'CrRendererMain');
  const long = events.filter((e) => e.ph === 'X' && `${e.pid}:${e.tid}` === main && e.name === 'RunTask' && e.dur > 30000)
    .map((e) => `${Math.round((e.ts - zero) / 1000)}+${Math.round(e.dur / 1000)}`);
  step(`main-thread tasks over 30 ms (start+duration, ms from navigation): ${long.join(' ')}`);
} finally {
  await browser.close();
}
