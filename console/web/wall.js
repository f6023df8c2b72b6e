// The wall screen (大屏) for the centre's big display: today's counts by district and rule, the
// open severe alerts and the trucks on the road, refreshing by itself.
import * as api from './api.js';
import { t, ruleName } from './i18n.js';
import { el, fmtTime, cityMidnight } from './util.js';
import { CityMap, stateColours } from './citymap.js';
import { FleetLayer } from './fleetlayer.js';

const EVERY_MS = 15000;

function bars(rows, label) {
  const max = Math.max(1, ...rows.map((r) => r.violations));
  return el('ul', { class: 'bars' }, rows.map((r) => el('li', {}, el('span', { class: 'k' }, label(r)),
    el('span', { class: 'bar' }, el('i', { style: `width:${(100 * r.violations) / max}%` })), el('b', {}, r.violations))));
}

export async function wall(root, session) {
  const names = Object.fromEntries(session.layers.features.filter((f) => f.properties.layer === 'district').map((f) => [f.properties.id, f.properties.name]));
  const clock = el('span', { class: 'clock', id: 'wall-clock' });
  const kpis = el('div', { class: 'kpis', id: 'kpis' });
  const byDistrict = el('div', { id: 'by-district' });
  const byRule = el('div', { id: 'by-rule' });
  const severe = el('ol', { class: 'severe', id: 'severe-list' });
  const mapBox = el('div', { class: 'map', id: 'wall-map' });
  root.append(el('div', { class: 'wallgrid' },
    el('header', {}, el('h1', {}, session.layers.city, ' · ', t('title')), clock, el('a', { href: '#/centre', class: 'exit' }, '×')),
    kpis,
    el('section', { class: 'panel-l' }, el('h2', {}, t('today'), ' · ', t('byDistrict')), byDistrict, el('h2', {}, t('today'), ' · ', t('byRule')), byRule),
    el('section', { class: 'panel-c' }, mapBox),
    el('section', { class: 'panel-r' }, el('h2', {}, t('severeOpen')), severe)));
  const cm = new CityMap(mapBox, session.layers, { dark: true, interactive: false });
  window.mwMap = cm.map; // for the journeys: what is on the map
  await cm.loaded;
  const fleet = new FleetLayer('fleet', stateColours, () => 2);
  cm.map.addLayer(fleet);

  async function refresh() {
    const now = Date.now();
    const q = api.qs({ from: cityMidnight(now), to: now + 60000 });
    const [d, r, s, f] = await Promise.all([
      api.get('/api/v1/violations' + q + '&group_by=district').catch(() => ({ rows: [] })),
      api.get('/api/v1/violations' + q + '&group_by=rule').catch(() => ({ rows: [] })),
      api.get('/api/v1/alerts?severity=severe&limit=50').catch(() => ({ alerts: [], total: 0 })),
      api.get('/api/v1/fleet').catch(() => ({ vehicles: [] })),
    ]);
    const total = r.rows.reduce((a, x) => a + x.violations, 0);
    const moving = f.vehicles.filter((v) => v[5] !== 'no_signal' && v[3] >= 5).length;
    kpis.replaceChildren(
      el('div', {}, el('small', {}, t('onRoad')), el('b', { id: 'kpi-road' }, moving), el('small', {}, ' / ', f.vehicles.length)),
      el('div', {}, el('small', {}, t('today'), ' · ', t('total')), el('b', { id: 'kpi-today' }, total)),
      el('div', { class: 'hot' }, el('small', {}, t('severeOpen')), el('b', { id: 'kpi-severe' }, s.total)));
    byDistrict.replaceChildren(bars(d.rows.sort((a, b) => b.violations - a.violations), (x) => names[x.district] || x.district || '—'));
    byRule.replaceChildren(bars(r.rows.sort((a, b) => b.violations - a.violations), (x) => ruleName(x.rule)));
    severe.replaceChildren(...s.alerts.map((a) => el('li', { class: a.overdue ? 'overdue' : '' },
      el('b', {}, a.vehicle_id), ' ', ruleName(a.rule), el('small', {}, fmtTime(a.start_ms), ' · ', names[a.district] || a.district, a.overdue ? ' · ' + t('overdue') : ''))));
    fleet.set(f.vehicles, (c) => cm.coords.toMap(c));
    clock.textContent = t('updated') + ' ' + fmtTime(now);
    root.dataset.refreshed = String(now);
  }
  await refresh();
  const timer = setInterval(refresh, EVERY_MS);
  return () => { clearInterval(timer); cm.map.remove(); };
}
