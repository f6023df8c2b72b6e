// The analysts' desk (统计报表 / 轨迹回放): violations over time by rule, district, company or
// site as a chart and the table behind it, CSV export, a heatmap, and a truck's track replayed
// with a time slider.
import uPlot from 'uplot';
import * as api from './api.js';
import { t, ruleName, ruleIds } from './i18n.js';
import { el, fmtTime, cityDay, cityMidnight } from './util.js';
import { CityMap } from './citymap.js';

const palette = ['#d6001c', '#0b57d0', '#1f8a3b', '#f08c00', '#7b61ff', '#00838f', '#8d5a2b', '#c2185b', '#5f6b7a', '#2e7d32', '#ef6c00'];

function dayInput(id, ms) {
  return el('input', { type: 'date', id, value: cityDay(ms) });
}

export async function analyst(root, session) {
  const now = Date.now();
  const from = dayInput('a-from', now - 6 * 86400000);
  const to = dayInput('a-to', now);
  const bucket = el('select', { id: 'a-bucket' }, el('option', { value: 'day' }, t('byDay')), el('option', { value: 'hour' }, t('byHour')));
  const split = el('select', { id: 'a-split' }, ['rule', 'district', 'company', 'site', 'severity'].map((k) => el('option', { value: k }, t(k === 'severity' ? 'state' : k))));
  const rule = el('select', { id: 'a-rule' }, el('option', { value: '' }, t('allRules')), ruleIds.map((r) => el('option', { value: r }, ruleName(r))));
  const district = el('select', { id: 'a-district' }, el('option', { value: '' }, t('allDistricts')),
    session.layers.features.filter((f) => f.properties.layer === 'district').map((f) => el('option', { value: f.properties.id }, f.properties.name)));
  const chartBox = el('div', { class: 'chart', id: 'chart' });
  const table = el('table', { id: 'table', class: 'data' });
  const csvLink = el('a', { id: 'csv-link', hidden: true }, 'violations.csv');
  const msg = el('p', { class: 'muted', id: 'a-msg' });
  const mapBox = el('div', { class: 'map analyst-map', id: 'analyst-map' });
  const plate = el('input', { id: 'r-plate', placeholder: t('plate') });
  const slider = el('input', { type: 'range', id: 'r-slider', min: 0, max: 0, value: 0, disabled: true });
  const readout = el('span', { id: 'r-readout', class: 'readout' }, '—');
  const playBtn = el('button', { id: 'r-play', disabled: true }, t('play'));

  root.append(el('div', { class: 'analyst' },
    el('section', { class: 'card' },
      el('div', { class: 'filters' }, el('label', {}, t('from'), from), el('label', {}, t('to'), to), bucket, el('label', {}, t('splitBy'), split), rule, district,
        el('button', { class: 'primary', id: 'a-query', onclick: () => query() }, t('query')),
        el('button', { id: 'a-csv', onclick: () => exportCSV() }, t('exportCsv')), csvLink),
      msg, chartBox, el('details', { open: true }, el('summary', {}, t('table')), el('div', { class: 'tablewrap' }, table))),
    el('section', { class: 'card mapcard' },
      el('div', { class: 'filters' }, el('b', {}, t('heatmap'), ' / ', t('replay')), plate,
        el('button', { class: 'primary', id: 'r-load', onclick: () => replay() }, t('replay')), playBtn),
      mapBox, el('div', { class: 'replay' }, slider, readout))));

  const cm = new CityMap(mapBox, session.layers);
  window.mwMap = cm.map; // for the journeys: what is on the map
  const params = (extra) => api.qs({
    from: cityMidnight(Date.parse(from.value + 'T12:00:00Z')), to: cityMidnight(Date.parse(to.value + 'T12:00:00Z')) + 86400000,
    rule: rule.value, district: district.value, ...extra });

  let plot = null;
  async function query() {
    msg.textContent = '…';
    let ans;
    try {
      ans = await api.get('/api/v1/violations' + params({ group_by: `${bucket.value},${split.value}` }));
    } catch (e) {
      msg.textContent = e.message;
      return;
    }
    const keys = [...new Set(ans.rows.map((r) => r[split.value]))].sort();
    const times = [...new Set(ans.rows.map((r) => r[bucket.value]))].sort();
    const xs = times.map((k) => (bucket.value === 'day' ? cityMidnight(Date.parse(k + 'T12:00:00Z')) : Date.parse(k)) / 1000);
    const series = keys.map((k) => times.map((tm) => ans.rows.find((r) => r[split.value] === k && r[bucket.value] === tm)?.violations ?? 0));
    const label = (k) => (split.value === 'rule' ? ruleName(k) : k || '—');
    const total = ans.rows.reduce((s, r) => s + r.violations, 0);
    msg.textContent = `${t('total')}: ${total}`;
    root.dataset.total = String(total);
    plot?.destroy();
    chartBox.replaceChildren();
    if (!times.length) {
      chartBox.append(el('p', { class: 'muted' }, t('noData')));
    } else {
      chartBox.append(el('div', { class: 'axis-caption' }, t('count'))); // level, as in kpis.js
      plot = new uPlot({
        width: chartBox.clientWidth || 700, height: 260, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), session.layers.time_zone),
        scales: { x: { time: true, range: () => {
          const [a, b] = [Number(new URLSearchParams(params({})).get('from')), Number(new URLSearchParams(params({})).get('to'))];
          return [a / 1000 - (bucket.value === 'day' ? 43200 : 1800), b / 1000 - (bucket.value === 'day' ? 43200 : 1800)];
        } } },
        series: [{}, ...keys.map((k, i) => ({ label: label(k), stroke: palette[i % palette.length], width: 2, points: { size: 6 },
          paths: uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6 / Math.max(1, keys.length), 40], align: 0 }) : undefined,
          fill: palette[i % palette.length] + '55' }))],
        axes: [{}, {}],
      }, [xs, ...series], chartBox);
    }
    table.replaceChildren(el('thead', {}, el('tr', {}, el('th', {}, t(bucket.value === 'day' ? 'byDay' : 'byHour')), keys.map((k) => el('th', {}, label(k))), el('th', {}, t('total')))),
      el('tbody', {}, times.map((tm, i) => el('tr', {}, el('td', {}, bucket.value === 'hour' ? fmtTime(Date.parse(tm), true) : tm),
        series.map((s) => el('td', {}, s[i])), el('td', {}, series.reduce((a, s) => a + s[i], 0))))));
    heatmap();
  }

  async function exportCSV() {
    const text = await api.getText('/api/v1/violations' + params({ group_by: `${bucket.value},${split.value}`, format: 'csv' }));
    const url = URL.createObjectURL(new Blob(['\ufeff' + text], { type: 'text/csv;charset=utf-8' }));
    csvLink.href = url;
    csvLink.download = `violations-${from.value}-${to.value}.csv`;
    csvLink.hidden = false;
    csvLink.click();
  }

  async function heatmap() {
    await cm.loaded;
    const fc = await api.get('/api/v1/heatmap' + params({ cell_m: 1000 })).catch(() => ({ type: 'FeatureCollection', features: [] }));
    const max = Math.max(1, ...fc.features.map((f) => f.properties.violations));
    cm.setData('heat', cm.geo(fc));
    if (!cm.map.getLayer('heat')) {
      cm.map.addLayer({ id: 'heat', type: 'fill', source: 'heat', paint: {
        'fill-color': ['interpolate', ['linear'], ['/', ['get', 'violations'], max], 0, '#fff3b0', 0.5, '#f08c00', 1, '#b00020'], 'fill-opacity': 0.7 } });
      cm.hover(['heat'], (p) => `${p.violations}`);
    }
  }

  let timer = null;
  async function replay() {
    await cm.loaded;
    clearInterval(timer);
    const period = new URLSearchParams(params({})); // a track takes its period only: the API refuses other parameters
    const fc = await api.get(`/api/v1/vehicles/${encodeURIComponent(plate.value.trim())}/track` + api.qs({ from: period.get('from'), to: period.get('to') })).catch((e) => { readout.textContent = e.message; return null; });
    if (!fc) return;
    const line = fc.features.find((f) => f.geometry.type === 'LineString');
    const pts = line ? line.geometry.coordinates : [];
    const times = line ? line.properties.times_ms : [];
    cm.setData('rtrack', cm.geo({ type: 'FeatureCollection', features: line ? [line] : [] }));
    cm.setData('ralerts', cm.geo({ type: 'FeatureCollection', features: fc.features.filter((f) => f.geometry.type === 'Point') }));
    cm.setData('rnow', { type: 'FeatureCollection', features: [] });
    if (!cm.map.getLayer('rtrack')) {
      cm.map.addLayer({ id: 'rtrack', type: 'line', source: 'rtrack', paint: { 'line-color': '#0b57d0', 'line-width': 3 } });
      cm.map.addLayer({ id: 'ralerts', type: 'circle', source: 'ralerts', paint: { 'circle-radius': 7, 'circle-color': '#d6001c', 'circle-stroke-width': 2, 'circle-stroke-color': '#fff' } });
      cm.map.addLayer({ id: 'rnow', type: 'circle', source: 'rnow', paint: { 'circle-radius': 8, 'circle-color': '#111', 'circle-stroke-width': 3, 'circle-stroke-color': '#ffd400' } });
      cm.hover(['ralerts'], (p) => `${ruleName(p.rule)} · ${p.evidence || ''}`);
    }
    root.dataset.trackPoints = String(pts.length);
    root.dataset.trackAlerts = String(fc.features.length - (line ? 1 : 0));
    slider.max = Math.max(0, pts.length - 1);
    slider.value = 0;
    slider.disabled = pts.length === 0;
    playBtn.disabled = pts.length === 0;
    const speedAt = (i) => {
      if (i === 0 || !times[i] || times[i] === times[i - 1]) return 0;
      const [a, b] = [pts[i - 1], pts[i]];
      const dx = (b[0] - a[0]) * 111320 * Math.cos((a[1] * Math.PI) / 180), dy = (b[1] - a[1]) * 110540;
      return (Math.hypot(dx, dy) / ((times[i] - times[i - 1]) / 1000)) * 3.6;
    };
    const show = () => {
      const i = Number(slider.value);
      if (!pts.length) { readout.textContent = t('noData'); return; }
      cm.setData('rnow', { type: 'FeatureCollection', features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: cm.point(pts[i][0], pts[i][1]) }, properties: {} }] });
      readout.textContent = `${fmtTime(times[i], true)} · ${t('speed')} ${Math.round(speedAt(i))} km/h · ${i + 1}/${pts.length}`;
    };
    slider.oninput = show;
    playBtn.onclick = () => {
      if (timer) { clearInterval(timer); timer = null; playBtn.textContent = t('play'); return; }
      playBtn.textContent = t('pause');
      timer = setInterval(() => {
        if (Number(slider.value) >= pts.length - 1) { clearInterval(timer); timer = null; playBtn.textContent = t('play'); return; }
        slider.value = Number(slider.value) + 1;
        show();
      }, 200);
    };
    show();
    if (pts.length) {
      const b = pts.reduce((acc, p) => [[Math.min(acc[0][0], p[0]), Math.min(acc[0][1], p[1])], [Math.max(acc[1][0], p[0]), Math.max(acc[1][1], p[1])]], [[180, 90], [-180, -90]]);
      cm.map.fitBounds([cm.point(...b[0]), cm.point(...b[1])], { padding: 60, maxZoom: 14, duration: 0 });
    }
  }

  await query();
  return () => { clearInterval(timer); plot?.destroy(); cm.map.remove(); };
}
