// Small helpers shared by the screens: elements, times in the city's zone, numbers.
import { lang, t, ruleName } from './i18n.js';

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

// mark records a step of the page's opening in the browser's performance timeline (mw:name), for
// console/e2e/perf.mjs and for anyone who opens the browser's performance panel.
export function mark(name) {
  performance.mark('mw:' + name);
}

// cityZone is the city's IANA time zone (from the city's layers), Asia/Shanghai until known.
let zone = 'Asia/Shanghai';
export function setCityZone(z) {
  if (z) zone = z;
}
export function cityZone() {
  return zone;
}

const timeFormats = new Map(); // language, zone, with date → Intl.DateTimeFormat

export function fmtTime(ms, withDate = false) {
  if (!ms) return '—';
  const key = `${lang()} ${zone} ${withDate}`;
  let f = timeFormats.get(key);
  if (!f) {
    // making a formatter costs far more than using one: a feed of hundreds of alerts reuses it
    const opts = { timeZone: zone, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
    if (withDate) Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit' });
    f = new Intl.DateTimeFormat(lang() === 'en' ? 'en-GB' : 'zh-CN', opts);
    timeFormats.set(key, f);
  }
  return f.format(new Date(ms));
}

// riskWords words one factor of a vehicle's risk (the API's risk.factors) in the chosen language;
// an alert open since another day than today shows its date.
export function riskWords(f, now = Date.now()) {
  const fill = (s, ...args) => args.reduce((out, a) => out.replace(/%[sd]/, a), s);
  switch (f.kind) {
    case 'open_alert':
      return fill(t('riskOpenAlert'), t(f.severity), ruleName(f.rule), fmtTime(f.since_ms, cityDay(f.since_ms) !== cityDay(now)));
    case 'violations':
      return f.count === 1 ? t('riskViolation') : fill(t('riskViolations'), f.count);
    case 'unregistered':
      return t('riskUnregistered');
    case 'no_permit':
      return t('riskNoPermit');
  }
  return f.kind;
}

// cityDay is the city's calendar date of ms, YYYY-MM-DD.
export function cityDay(ms) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

// cityMidnight is the Unix ms of 00:00 in the city on the day of ms.
export function cityMidnight(ms) {
  const day = cityDay(ms);
  const guess = Date.parse(day + 'T00:00:00Z');
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(guess));
  const [h, m] = parts.split(':').map(Number);
  const offsetMin = (h >= 12 ? h - 24 : h) * 60 + m; // the city's offset from UTC at that instant
  return guess - offsetMin * 60000;
}

export function fmtDistance(m) {
  return m >= 1000 ? (m / 1000).toFixed(1) + ' km' : Math.round(m) + ' m';
}

export function fmtDuration(s) {
  if (s < 60) return Math.round(s) + ' s';
  return Math.round(s / 60) + ' min';
}

export function normalizePlate(s) {
  return s.replace(/[\s·•\-]/g, '').toUpperCase();
}

export const provinces = '京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼'.split('');
