// The inspection squad's handheld page (路面稽查): a plate (typed or picked, with a province
// character picker) answered in one screen, and the trucks near the phone, nearest first.
import * as api from './api.js';
import { t, ruleName } from './i18n.js';
import { el, fmtTime, fmtDistance, normalizePlate, provinces, riskWords } from './util.js';
import { CityMap } from './citymap.js';

export async function squad(root, session) {
  const input = el('input', { id: 'plate', inputmode: 'text', autocomplete: 'off', autocapitalize: 'characters', placeholder: '粤B12345', 'aria-label': t('plate') });
  const picker = el('div', { class: 'provinces', id: 'provinces', hidden: true },
    provinces.map((p) => el('button', { type: 'button', onclick: () => { input.value = p + input.value.replace(/^[\u4e00-\u9fff]/, ''); picker.hidden = true; input.focus(); } }, p)));
  const result = el('section', { id: 'result', class: 'result' });
  const form = el('form', { class: 'lookup', onsubmit: (e) => { e.preventDefault(); lookup(normalizePlate(input.value)); } },
    el('button', { type: 'button', class: 'prov', id: 'prov-toggle', onclick: () => { picker.hidden = !picker.hidden; } }, '粤▾'),
    input, el('button', { type: 'submit', class: 'primary', id: 'lookup' }, t('lookup')));
  const nearBtn = el('button', { class: 'primary wide', id: 'near-me', onclick: () => nearMe() }, t('nearMe'));
  const nearBox = el('section', { id: 'near', class: 'near' });
  const mapBox = el('div', { class: 'minimap', id: 'squad-map' });
  root.append(form, picker, result, nearBtn, nearBox, el('p', { class: 'muted small' }, t('tapMap')), mapBox);

  const cm = new CityMap(mapBox, session.layers);
  window.mwMap = cm.map; // for the journeys: what is on the map
  await cm.loaded;
  cm.setData('pts', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'pts', type: 'circle', source: 'pts', paint: {
    'circle-radius': ['match', ['get', 'k'], 'me', 8, 'truck', 7, 6],
    'circle-color': ['match', ['get', 'k'], 'me', '#0b57d0', ['match', ['get', 'risk'], 'high', '#d6001c', 'medium', '#f08c00', '#1f8a3b']],
    'circle-stroke-width': 2, 'circle-stroke-color': '#fff' } });
  cm.map.on('click', (e) => {
    const [lon, lat] = cm.coords.fromMap([e.lngLat.lng, e.lngLat.lat]);
    near(lat, lon);
  });

  async function lookup(plate) {
    if (!plate) return;
    input.value = plate;
    result.replaceChildren(el('p', { class: 'muted' }, '…'));
    let v;
    try {
      v = await api.get('/api/v1/vehicles/' + encodeURIComponent(plate));
    } catch (e) {
      result.replaceChildren(el('div', { class: 'card bad', id: 'verdict' }, el('h2', {}, e.status === 404 ? t('unknownPlate') : e.message), el('p', {}, plate)));
      return;
    }
    const valid = v.permits.find((p) => p.valid_now);
    const why = valid ? `${valid.id} · ${valid.route_name || valid.route} · ${valid.from_site_name || valid.from_site} → ${valid.to_site_name || valid.to_site}`
      : v.permits.length ? `${t('permitNotNow')}: ${v.permits.map((p) => `${p.id} ${p.valid_from.slice(0, 10)}~${p.valid_to.slice(0, 10)}`).join('；')}` : t('noPermit');
    const viol = Object.entries(v.violations_30d || {});
    result.replaceChildren(
      el('div', { class: 'card ' + (valid ? 'good' : 'bad'), id: 'verdict' },
        el('h2', {}, valid ? '✓ ' + t('permitValid') : '✕ ' + t('permitInvalid')),
        el('p', { class: 'plate big' }, v.plate), el('p', {}, why), v.company ? el('p', { class: 'muted' }, v.company) : ''),
      el('div', { class: 'card risk-' + v.risk.level, id: 'risk' },
        el('h3', {}, t('risk'), ': ', el('b', {}, t(v.risk.level)), ` (${v.risk.score})`),
        el('ul', {}, v.risk.factors.map((f) => el('li', {}, riskWords(f))))),
      el('div', { class: 'card', id: 'open-alerts' }, el('h3', {}, t('openAlerts'), ' ', el('span', { class: 'pill' }, v.open_alerts.length)),
        el('ul', {}, v.open_alerts.map((a) => el('li', { class: 'sev-' + a.severity }, `${t(a.severity)} · ${ruleName(a.rule)} · ${fmtTime(a.start_ms)}`)))),
      el('div', { class: 'card', id: 'violations' }, el('h3', {}, t('violations30'), ' ', el('span', { class: 'pill' }, v.violations_30d_total)),
        viol.length ? el('ul', {}, viol.map(([r, n]) => el('li', {}, `${ruleName(r)} × ${n}`))) : el('p', { class: 'muted' }, t('none'))),
      el('p', { class: 'muted', id: 'last-pos' }, t('lastPosition'), ': ', v.last_position ? `${fmtTime(v.last_position.time_ms, true)} · ${Math.round(v.last_position.speed_kmh)} km/h` : t('none')));
    if (v.last_position) {
      const pt = cm.point(v.last_position.lon, v.last_position.lat);
      cm.setData('pts', { type: 'FeatureCollection', features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: pt }, properties: { k: 'truck', risk: v.risk.level } }] });
      cm.map.jumpTo({ center: pt, zoom: 14 });
    }
  }

  function nearMe() {
    nearBox.replaceChildren(el('p', { class: 'muted' }, t('locating')));
    navigator.geolocation.getCurrentPosition((pos) => near(pos.coords.latitude, pos.coords.longitude),
      (err) => nearBox.replaceChildren(el('p', { class: 'error' }, err.message)), { enableHighAccuracy: true, timeout: 10000 });
  }

  async function near(lat, lon) {
    const ans = await api.get('/api/v1/vehicles/near' + api.qs({ lat: lat.toFixed(6), lon: lon.toFixed(6), radius_m: 2000, limit: 50 }));
    const top = Math.max(0, ...ans.vehicles.map((x) => x.risk_score));
    nearBox.replaceChildren(ans.vehicles.length ? el('ol', { class: 'nearlist', id: 'near-list' }, ans.vehicles.map((x) => el('li', {
      class: 'risk-' + x.risk_level + (top > 0 && x.risk_score === top ? ' riskiest' : ''), onclick: () => { lookup(x.plate); window.scrollTo(0, 0); } },
    el('b', { class: 'plate' }, x.plate), el('span', {}, fmtDistance(x.distance_m)),
    el('span', { class: 'lvl' }, t(x.risk_level), x.open_alerts ? ` · ${x.open_alerts}⚠` : ''),
    top > 0 && x.risk_score === top ? el('span', { class: 'badge' }, t('riskiest')) : '')))
      : el('p', { class: 'muted' }, t('noVehicles')));
    const me = cm.point(lon, lat);
    cm.setData('pts', { type: 'FeatureCollection', features: [
      { type: 'Feature', geometry: { type: 'Point', coordinates: me }, properties: { k: 'me' } },
      ...ans.vehicles.map((x) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: cm.point(x.lon, x.lat) }, properties: { k: 'near', risk: x.risk_level } }))] });
    cm.map.jumpTo({ center: me, zoom: 14 });
  }

  return () => cm.map.remove();
}
