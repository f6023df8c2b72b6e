// Shared by the journeys: Debian's Chromium driven by playwright-core, sign-in, screenshots and
// a step log. Every journey reads MW_URL and the tokens from the environment (MW_TOKEN_<ROLE>)
// and writes its screenshots under MW_ARTEFACTS (default e2e/artefacts).
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

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

// decodePNG reads the PNG a screenshot is (8-bit RGB or RGBA, not interlaced: what Chromium
// writes) into {width, height, rgb}, three bytes a pixel, row after row.
export function decodePNG(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47 || buf.readUInt32BE(4) !== 0x0d0a1a0a) throw new Error('not a PNG');
  let width = 0, height = 0, depth = 0, type = 0, interlace = 0;
  const idat = [];
  for (let off = 8; off + 8 <= buf.length;) {
    const len = buf.readUInt32BE(off);
    const kind = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (kind === 'IHDR') [width, height, depth, type, interlace] = [data.readUInt32BE(0), data.readUInt32BE(4), data[8], data[9], data[12]];
    else if (kind === 'IDAT') idat.push(data);
    else if (kind === 'IEND') break;
    off += 12 + len; // length, kind, data, CRC
  }
  const ch = { 2: 3, 6: 4 }[type];
  if (depth !== 8 || !ch || interlace) throw new Error(`a PNG of depth ${depth}, colour type ${type}, interlace ${interlace}: only 8-bit RGB(A) without interlace is read`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * ch;
  const rgb = Buffer.alloc(3 * width * height);
  let prev = new Uint8Array(stride), cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1);
    const filter = raw[row];
    for (let i = 0; i < stride; i++) {
      const a = i >= ch ? cur[i - ch] : 0, b = prev[i], c = i >= ch ? prev[i - ch] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`PNG row ${y} has filter ${filter}`);
      cur[i] = (raw[row + 1 + i] + pred) & 255;
    }
    for (let x = 0; x < width; x++) rgb.set(cur.subarray(x * ch, x * ch + 3), 3 * (y * width + x));
    [prev, cur] = [cur, prev];
  }
  return { width, height, rgb };
}

const hexRGB = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
const hexOf = (p) => '#' + p.map((v) => v.toString(16).padStart(2, '0')).join('');

// seeFleet waits until the screen shows what the map's fleet layer holds: every truck whose
// place (its lon/lat through the map's own project(), not through the layer) is on the visible
// map is drawn there in its state's colour, and no dot of a state's colour is drawn where no
// truck is. It reads the pixels of a screenshot, so a layer that draws the trucks anywhere else
// (off the screen, shifted, at the wrong zoom) fails it. Trucks under another truck or a circle
// of the map (an alert's ring, an officer) are not judged. The page's map is window.mwMap and
// its fleet layer has the id "fleet"; want is {state: the least number of trucks of that state
// seen drawn}. The screenshot is saved as name.png; the answer says what was seen.
export async function seeFleet(page, name, colours, { want = {}, least = 10, timeout = 15000 } = {}) {
  const tol = 8; // per channel: the software GL's rounding
  const rgbOf = Object.fromEntries(Object.entries(colours).map(([k, v]) => [k, hexRGB(v)]));
  const near = (p, q) => Math.abs(p[0] - q[0]) <= tol && Math.abs(p[1] - q[1]) <= tol && Math.abs(p[2] - q[2]) <= tol;
  // the restricted zones' outlines are alert_severe's red: a stray red is no evidence
  const strayStates = Object.keys(colours).filter((k) => k !== 'alert_severe');
  const t0 = Date.now(), deadline = t0 + timeout;
  let why = '', buf = null, shots = 0;
  for (;;) {
    const seen = await page.evaluate(() => {
      const m = window.mwMap;
      const layer = m?.getLayer('fleet')?.implementation;
      if (!layer) return { err: m ? 'the map has no fleet layer' : 'the page has no window.mwMap' };
      if (localStorage.getItem('mw.tiles')) return { err: 'a base map is configured: the check places trucks in WGS-84' };
      const c = m.getCanvas();
      if (!document.contains(c)) return { err: 'the map on window.mwMap is not on the page' };
      const r = c.getBoundingClientRect();
      const at = ([lon, lat]) => { const p = m.project([lon, lat]); return [r.left + p.x, r.top + p.y]; };
      const inside = (x, y) => x > r.left && x < r.right && y > r.top && y < r.bottom;
      // what lies over a point of the map instead of its canvas, if anything
      const over = (x, y) => { const e = document.elementFromPoint(x, y); return e === c ? '' : e ? e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') : 'nothing'; };
      const trucks = layer.rows.map((row) => {
        const [x, y] = at([row[1], row[2]]);
        const off = !inside(x, y), under = off ? '' : over(x, y);
        return { plate: row[0], state: row[5], x, y, shown: !off && !under, off, under };
      });
      const ctr = m.getCenter();
      const view = `zoom ${m.getZoom().toFixed(2)} at ${ctr.lng.toFixed(4)},${ctr.lat.toFixed(4)}, canvas ${Math.round(r.width)}x${Math.round(r.height)} at ${Math.round(r.left)},${Math.round(r.top)}`;
      const circles = ['alerts', 'all-officers', 'officers'].filter((s) => m.getSource(s)).flatMap((s) => m.querySourceFeatures(s))
        .filter((f) => f.geometry.type === 'Point').map((f) => at(f.geometry.coordinates));
      return { rect: [r.left, r.top, r.right, r.bottom], trucks, circles, radius: layer.radius(m.getZoom()), view };
    });
    if (seen.err) fail(seen.err);
    buf = await page.screenshot();
    shots++;
    const img = decodePNG(buf);
    const dpr = img.width / page.viewportSize().width;
    const px = (x, y) => { const i = 3 * (y * img.width + x); return [img.rgb[i], img.rgb[i + 1], img.rgb[i + 2]]; };
    const R = seen.radius * 2 + 3; // a severe truck is drawn twice as large
    const covered = (t) => seen.circles.some(([x, y]) => Math.hypot(x - t.x, y - t.y) < 14 + R) ||
      seen.trucks.some((o) => o !== t && Math.hypot(o.x - t.x, o.y - t.y) < 2 * R);
    const judged = seen.trucks.filter((t) => t.shown && !covered(t));
    const missing = [], drawn = {};
    for (const t of judged) {
      // the centre pixel, or one beside it (the point's centre falls between pixels)
      const cx = Math.round(t.x * dpr), cy = Math.round(t.y * dpr);
      let ok = false;
      for (let dy = -1; dy <= 1 && !ok; dy++) for (let dx = -1; dx <= 1 && !ok; dx++) ok = near(px(cx + dx, cy + dy), rgbOf[t.state] || [0, 0, 0]);
      if (ok) drawn[t.state] = (drawn[t.state] || 0) + 1;
      else missing.push(`${t.plate} (${t.state}) at ${Math.round(t.x)},${Math.round(t.y)} shows ${hexOf(px(cx, cy))}, want ${colours[t.state]}`);
    }
    // a stray: a solid 3x3 patch of a state's colour far from every truck and circle
    const strays = [];
    const [l, tp, rt, bt] = seen.rect.map((v) => Math.round(v * dpr));
    const far = (x, y) => seen.trucks.every((t) => Math.hypot(t.x - x, t.y - y) > 2 * R) && seen.circles.every(([cx, cy]) => Math.hypot(cx - x, cy - y) > 14 + R);
    for (let y = tp + 1; y < bt - 1 && strays.length < 50; y += 2) {
      for (let x = l + 1; x < rt - 1; x += 2) {
        const k = strayStates.find((s) => near(px(x, y), rgbOf[s]));
        if (!k) continue;
        let solid = true;
        for (let dy = -1; dy <= 1 && solid; dy++) for (let dx = -1; dx <= 1 && solid; dx++) solid = near(px(x + dx, y + dy), rgbOf[k]);
        if (solid && far(x / dpr, y / dpr) && !strays.some((s) => Math.hypot(s.x - x / dpr, s.y - y / dpr) < 8)) strays.push({ x: x / dpr, y: y / dpr, state: k });
      }
    }
    // what lies over the map (the legend's swatches, the panel) is not the map's
    const onMap = strays.length ? await page.evaluate((pts) => pts.map(([x, y]) => document.elementFromPoint(x, y) === window.mwMap.getCanvas()), strays.map((s) => [s.x, s.y])) : [];
    const stray = strays.filter((s, i) => onMap[i]).map((s) => `${s.state} at ${Math.round(s.x)},${Math.round(s.y)}`);
    const short = Object.entries(want).filter(([k, n]) => (drawn[k] || 0) < n).map(([k, n]) => `${drawn[k] || 0} ${k} (want ${n})`);
    why = [
      missing.length ? `${missing.length} of the ${judged.length} trucks on the screen are not drawn at their place: ${missing.slice(0, 4).join('; ')}` : '',
      judged.length < least ? `only ${judged.length} of the layer's ${seen.trucks.length} trucks are on the visible map, want ${least} ` +
        `(${unseen(seen, covered)}; the map: ${seen.view})` : '',
      short.length ? 'seen drawn: ' + short.join(', ') : '',
      stray.length ? `a truck's colour where no truck is: ${stray.slice(0, 4).join('; ')}` : '',
    ].filter(Boolean).join('. ');
    if (!why) {
      writeFileSync(join(artefacts, name + '.png'), buf);
      step(`screenshot ${name}.png: ${judged.length} trucks seen drawn at their place (${Object.entries(drawn).map(([k, n]) => `${n} ${k}`).join(', ')}) ` +
        `in ${Date.now() - t0} ms, ${shots} screenshot${shots > 1 ? 's' : ''}`);
      return { judged: judged.length, drawn };
    }
    if (Date.now() > deadline) break;
  }
  writeFileSync(join(artefacts, name + '.png'), buf);
  fail(`the map of ${name}.png does not show the fleet after ${Date.now() - t0} ms (${shots} screenshots): ${why}`);
}

// unseen says why the trucks not judged were not: off the map, under another element (which), or
// covered by another truck or a circle.
function unseen(seen, covered) {
  const off = seen.trucks.filter((t) => t.off).length;
  const under = seen.trucks.filter((t) => t.under);
  const hid = seen.trucks.filter((t) => t.shown && covered(t)).length;
  const by = [...new Set(under.map((t) => t.under))].slice(0, 3).join(', ');
  return `${off} off the map, ${under.length} under another element${by ? ' (' + by + ')' : ''}, ${hid} covered by a truck or circle`;
}

// seeMarks waits until each mark {lon, lat, colour: '#rrggbb', what} is drawn on the page's map
// (window.mwMap) at its place: its colour within `within` CSS pixels of where the map's own
// project() puts its WGS-84 lon/lat, on the visible part of the map. The screenshot is saved as
// name.png.
export async function seeMarks(page, name, marks, { within = 2, timeout = 15000 } = {}) {
  const tol = 8;
  const t0 = Date.now(), deadline = t0 + timeout;
  let why = '', buf = null, shots = 0;
  for (;;) {
    const at = await page.evaluate((pts) => {
      const m = window.mwMap;
      if (!m) return 'the page has no window.mwMap';
      if (localStorage.getItem('mw.tiles')) return 'a base map is configured: the check places marks in WGS-84';
      const c = m.getCanvas();
      const r = c.getBoundingClientRect();
      return pts.map(([lon, lat]) => {
        const p = m.project([lon, lat]);
        const x = r.left + p.x, y = r.top + p.y;
        return { x, y, shown: x > r.left && x < r.right && y > r.top && y < r.bottom && document.elementFromPoint(x, y) === c };
      });
    }, marks.map((k) => [k.lon, k.lat]));
    if (typeof at === 'string') fail(at);
    buf = await page.screenshot();
    shots++;
    const img = decodePNG(buf);
    const dpr = img.width / page.viewportSize().width;
    const bad = [];
    marks.forEach((k, i) => {
      const { x, y, shown } = at[i];
      if (!shown) return bad.push(`${k.what} at ${Math.round(x)},${Math.round(y)} is not on the visible map`);
      const want = hexRGB(k.colour);
      if (pixelNear(img, x * dpr, y * dpr, within * dpr, (p) => [0, 1, 2].every((c) => Math.abs(p[c] - want[c]) <= tol))) return;
      const cx = Math.round(x * dpr), cy = Math.round(y * dpr);
      const j = 3 * (cy * img.width + cx);
      bad.push(`${k.what} at ${Math.round(x)},${Math.round(y)} shows ${hexOf([img.rgb[j], img.rgb[j + 1], img.rgb[j + 2]])}, want ${k.colour}`);
    });
    why = bad.join('; ');
    if (!why) {
      writeFileSync(join(artefacts, name + '.png'), buf);
      step(`screenshot ${name}.png: ${marks.map((k) => k.what).join(', ')} drawn at ${marks.length > 1 ? 'their places' : 'its place'} in ${Date.now() - t0} ms, ${shots} screenshot${shots > 1 ? 's' : ''}`);
      return;
    }
    if (Date.now() > deadline) break;
  }
  writeFileSync(join(artefacts, name + '.png'), buf);
  fail(`the map of ${name}.png does not show what it should after ${Date.now() - t0} ms (${shots} screenshots): ${why}`);
}

// pixelNear says whether a pixel of the screenshot img within `within` pixels of (x, y), in the
// screenshot's pixels, is([r, g, b]).
function pixelNear(img, x, y, within, is) {
  const cx = Math.round(x), cy = Math.round(y), w = Math.ceil(within);
  for (let dy = -w; dy <= w; dy++) {
    for (let dx = -w; dx <= w; dx++) {
      const j = 3 * ((cy + dy) * img.width + cx + dx);
      if (is([img.rgb[j], img.rgb[j + 1], img.rgb[j + 2]])) return true;
    }
  }
  return false;
}

// seeCity waits until the city's approved routes are painted on the page's map (window.mwMap):
// every 40 CSS pixels along each route on the visible map, away from every truck and circle, a
// pixel of the route's green within two CSS pixels. Trucks on a blank background are not the
// command centre: the city's layers are what the supervisor reads the trucks against.
export async function seeCity(page, { least = 10, share = 0.9, timeout = 15000 } = {}) {
  // the route's green (#2f9e44), which a thin line on software GL at half resolution blends with
  // what lies under it (#6cbb7c, #8dc998 seen): green well above red and blue, which nothing
  // else under a route has (the plain background, districts' grey, zones' red and purple)
  const green = (r, g, b) => g >= r + 35 && g >= b + 25;
  const t0 = Date.now(), deadline = t0 + timeout;
  let why = '';
  for (;;) {
    const pts = await page.evaluate(() => {
      const m = window.mwMap;
      if (!m) return 'the page has no window.mwMap';
      if (localStorage.getItem('mw.tiles')) return 'a base map is configured: the check places the routes in WGS-84';
      const c = m.getCanvas();
      const r = c.getBoundingClientRect();
      const at = ([lon, lat]) => { const p = m.project([lon, lat]); return [r.left + p.x, r.top + p.y]; };
      const busy = [];
      const fleet = m.getLayer('fleet')?.implementation;
      if (fleet) for (const row of fleet.rows) busy.push(at([row[1], row[2]]));
      for (const s of ['alerts', 'all-officers', 'officers', 'track']) {
        if (!m.getSource(s)) continue;
        for (const f of m.querySourceFeatures(s)) if (f.geometry.type === 'Point') busy.push(at(f.geometry.coordinates));
      }
      const out = [];
      const layers = window.mwCityLayers;
      if (!layers) return 'the page has no window.mwCityLayers';
      // a point every 40 CSS pixels along each route, wherever it is on the visible map
      for (const f of layers.features) {
        if (f.properties.layer !== 'route') continue;
        const lines = f.geometry.type === 'LineString' ? [f.geometry.coordinates] : f.geometry.type === 'MultiLineString' ? f.geometry.coordinates : [];
        for (const cs of lines) {
          let carry = 20;
          for (let i = 1; i < cs.length; i++) {
            const [x0, y0] = at(cs[i - 1]), [x1, y1] = at(cs[i]);
            const len = Math.hypot(x1 - x0, y1 - y0);
            for (; carry < len; carry += 40) {
              const x = x0 + ((x1 - x0) * carry) / len, y = y0 + ((y1 - y0) * carry) / len;
              if (!(x > r.left + 3 && x < r.right - 3 && y > r.top + 3 && y < r.bottom - 3)) continue;
              if (document.elementFromPoint(x, y) !== c) continue;
              if (busy.some(([bx, by]) => Math.hypot(bx - x, by - y) < 20)) continue;
              out.push({ x, y, what: `route ${f.properties.name || f.properties.id}` });
            }
            carry -= len;
          }
        }
      }
      return out;
    });
    if (typeof pts === 'string') fail(pts);
    if (pts.length < least) fail(`only ${pts.length} points of the routes are on the visible map away from trucks, want ${least}: the view does not show the city`);
    const buf = await page.screenshot();
    const img = decodePNG(buf);
    const dpr = img.width / page.viewportSize().width;
    const missing = pts.filter(({ x, y }) => !pixelNear(img, x * dpr, y * dpr, 2 * dpr, ([r, g, b]) => green(r, g, b)));
    const drawn = pts.length - missing.length;
    if (drawn >= share * pts.length) {
      step(`the city's routes are painted: ${drawn} of ${pts.length} points along the routes seen painted green in ${Date.now() - t0} ms`);
      return;
    }
    why = `${drawn} of ${pts.length} points along the routes on the visible map are painted green, want ${Math.ceil(share * pts.length)}: ` +
      missing.slice(0, 4).map((p) => {
        const j = 3 * (Math.round(p.y * dpr) * img.width + Math.round(p.x * dpr));
        return `${p.what} at ${Math.round(p.x)},${Math.round(p.y)} shows ${hexOf([img.rgb[j], img.rgb[j + 1], img.rgb[j + 2]])}`;
      }).join('; ');
    if (Date.now() > deadline) {
      writeFileSync(join(artefacts, 'city.png'), buf);
      break;
    }
  }
  fail(`the map does not show the city (city.png): ${why}`);
}
