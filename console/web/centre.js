// The command centre (实时监控 / 报警处置): the city map with every truck coloured by its state,
// the live alert feed beside it, and an alert's panel with its track, vehicle, nearest officers
// and the handling buttons.
import * as api from './api.js';
import { t, ruleName, ruleIds } from './i18n.js';
import { el, fmtTime, fmtDistance, fmtDuration } from './util.js';
import { CityMap, stateColours } from './citymap.js';

const sevRank = { severe: 3, warning: 2, info: 1 };
const FLEET_EVERY_MS = 10000;

function prefs() {
  return { sound: localStorage.getItem('mw.sound') !== 'off', notify: localStorage.getItem('mw.notify') === 'on' };
}

// beep plays a short two-tone alarm made on the spot (no audio file to fetch).
function beep() {
  try {
    const ctx = new AudioContext();
    const o = ctx.createOscillator(), g = ctx.createGain();
    o.connect(g); g.connect(ctx.destination);
    g.gain.value = 0.15;
    o.frequency.setValueAtTime(880, ctx.currentTime);
    o.frequency.setValueAtTime(660, ctx.currentTime + 0.18);
    o.start(); o.stop(ctx.currentTime + 0.36);
  } catch {
    // no audio device: the flash on the screen remains
  }
}

export async function centre(root, session) {
  const mapBox = el('div', { class: 'map', id: 'map' });
  const legend = el('div', { class: 'legend', id: 'legend' },
    Object.entries(stateColours).map(([k, c]) => el('span', { 'data-state': k }, el('i', { style: `background:${c}` }), t(k), ' ', el('b', { id: 'count-' + k }, '0'))));
  const panel = el('aside', { class: 'panel', id: 'alert-panel', hidden: true });
  const districtSel = el('select', { id: 'f-district' }, el('option', { value: '' }, t('allDistricts')),
    session.layers.features.filter((f) => f.properties.layer === 'district').map((f) => el('option', { value: f.properties.id }, f.properties.name)));
  const ruleSel = el('select', { id: 'f-rule' }, el('option', { value: '' }, t('allRules')), ruleIds.map((r) => el('option', { value: r }, ruleName(r))));
  const sevSel = el('select', { id: 'f-severity' }, el('option', { value: '' }, t('allSeverities')), ['severe', 'warning', 'info'].map((s) => el('option', { value: s }, t(s))));
  const p = prefs();
  const soundBox = el('input', { type: 'checkbox', id: 'sound', checked: p.sound, onchange: (e) => localStorage.setItem('mw.sound', e.target.checked ? 'on' : 'off') });
  const notifyBox = el('input', { type: 'checkbox', id: 'notify', checked: p.notify, onchange: async (e) => {
    if (e.target.checked && 'Notification' in window && Notification.permission === 'default') await Notification.requestPermission();
    localStorage.setItem('mw.notify', e.target.checked ? 'on' : 'off');
  } });
  const status = el('span', { class: 'stream-state', id: 'stream-state' }, '…');
  const list = el('ol', { class: 'feed', id: 'feed' });
  const feedBox = el('section', { class: 'feedbox' },
    el('div', { class: 'feedhead' }, el('h2', {}, t('feed'), ' ', el('span', { id: 'open-count', class: 'pill' }, '0')), status),
    el('div', { class: 'filters' }, districtSel, ruleSel, sevSel),
    el('div', { class: 'toggles' }, el('label', {}, soundBox, t('sound')), el('label', {}, notifyBox, t('notify'))),
    list);
  root.append(el('div', { class: 'centre' }, el('div', { class: 'mapwrap' }, mapBox, legend, panel), feedBox));

  // the first fleet and the open alerts are fetched while the map loads
  const firstFleet = api.get('/api/v1/fleet').catch(() => null);
  const firstAlerts = api.get('/api/v1/alerts?limit=1000');
  const cm = new CityMap(mapBox, session.layers);
  window.mwMap = cm.map; // for the journeys: what is on the map
  const alerts = new Map(); // id → alert view, open ones
  let selected = null;
  let stopped = false;
  const districtName = (id) => session.layers.features.find((f) => f.properties.layer === 'district' && f.properties.id === id)?.properties.name || id || '—';

  // --- the fleet on the map
  const fleetPoints = { type: 'FeatureCollection', features: [] };
  await cm.loaded;
  cm.setData('fleet', fleetPoints);
  cm.map.addLayer({ id: 'fleet', type: 'circle', source: 'fleet', paint: {
    'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, ['match', ['get', 's'], 'alert_severe', 5, 2.5], 14, ['match', ['get', 's'], 'alert_severe', 9, 6]],
    'circle-color': ['match', ['get', 's'], ...Object.entries(stateColours).flat(), '#444'],
    'circle-stroke-width': ['match', ['get', 's'], 'alert_severe', 2, 0], 'circle-stroke-color': '#fff',
  } });
  cm.setData('alerts', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'alert-rings', type: 'circle', source: 'alerts', paint: {
    'circle-radius': 11, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-width': 2.5,
    'circle-stroke-color': ['match', ['get', 'severity'], 'severe', stateColours.alert_severe, 'warning', stateColours.alert_warning, stateColours.alert_info],
  } });
  cm.setData('track', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'track', type: 'line', source: 'track', paint: { 'line-color': '#0b57d0', 'line-width': 3 } });
  cm.setData('officers', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'officers', type: 'circle', source: 'officers', paint: { 'circle-radius': 6, 'circle-color': '#0b57d0', 'circle-stroke-width': 2, 'circle-stroke-color': '#fff' } });
  cm.hover(['fleet'], (pr) => `${pr.plate} · ${t(pr.s)} · ${Math.round(pr.v)} km/h`);
  cm.hover(['alert-rings'], (pr) => `${pr.plate} · ${ruleName(pr.rule)}`);
  cm.map.on('click', 'alert-rings', (e) => open(e.features[0].properties.id));

  const counts = {};
  async function refreshFleet(pending) {
    try {
      const ans = (await pending) || await api.get('/api/v1/fleet');
      for (const k of Object.keys(stateColours)) counts[k] = 0;
      fleetPoints.features = ans.vehicles.map((r) => {
        counts[r[5]] = (counts[r[5]] || 0) + 1;
        return { type: 'Feature', geometry: { type: 'Point', coordinates: cm.point(r[1], r[2]) }, properties: { plate: r[0], v: r[3], s: r[5] } };
      });
      cm.setData('fleet', fleetPoints);
      for (const k of Object.keys(stateColours)) document.getElementById('count-' + k).textContent = counts[k] || 0;
      root.dataset.fleet = String(ans.vehicles.length);
    } catch {
      // the next round tries again
    }
  }
  await refreshFleet(firstFleet);
  const fleetTimer = setInterval(() => refreshFleet(null), FLEET_EVERY_MS);

  // --- the feed
  const filterOK = (a) => (!districtSel.value || a.district === districtSel.value) && (!ruleSel.value || a.rule === ruleSel.value) && (!sevSel.value || a.severity === sevSel.value);
  function render() {
    const items = [...alerts.values()].filter(filterOK)
      .sort((a, b) => (sevRank[b.severity] - sevRank[a.severity]) || (b.received_ms - a.received_ms));
    list.replaceChildren(...items.map((a) => el('li', {
      class: `alert sev-${a.severity}${a.overdue ? ' overdue' : ''}${a._fresh ? ' fresh' : ''}${selected === a.alert_id ? ' selected' : ''}`,
      'data-id': a.alert_id, 'data-plate': a.vehicle_id, 'data-rule': a.rule, onclick: () => open(a.alert_id),
    },
    el('div', { class: 'l1' }, el('b', { class: 'sev' }, t(a.severity)), el('span', { class: 'rule' }, ruleName(a.rule)), el('span', { class: 'plate' }, a.vehicle_id)),
    el('div', { class: 'l2' }, districtName(a.district), ' · ', fmtTime(a.start_ms), ' · ', el('span', { class: 'hstate' }, t(a.handling?.state || 'new')),
      a.overdue ? el('span', { class: 'badge overdue-badge' }, t('overdue')) : ''))));
    document.getElementById('open-count').textContent = String(items.length);
    cm.setData('alerts', { type: 'FeatureCollection', features: [...alerts.values()].filter(filterOK).map((a) => ({
      type: 'Feature', geometry: { type: 'Point', coordinates: cm.point(a.lon, a.lat) }, properties: { id: a.alert_id, plate: a.vehicle_id, rule: a.rule, severity: a.severity },
    })) });
  }
  for (const s of [districtSel, ruleSel, sevSel]) s.addEventListener('change', render);

  const first = await firstAlerts;
  for (const a of first.alerts) alerts.set(a.alert_id, a);
  render();

  const terminal = (a) => a.status === 'resolved' && a.severity !== 'severe' || ['resolved', 'dismissed'].includes(a.handling?.state);
  const stream = new api.AlertStream('', (event, item) => {
    const a = item.alert;
    const had = alerts.has(a.alert_id);
    if (terminal(a)) alerts.delete(a.alert_id);
    else alerts.set(a.alert_id, a);
    if (!had && event === 'opened' && a.severity === 'severe') {
      a._fresh = true;
      setTimeout(() => { a._fresh = false; render(); }, 8000);
      const pr = prefs();
      if (pr.sound) beep();
      if (pr.notify && 'Notification' in window && Notification.permission === 'granted') {
        new Notification(`${t('severe')} · ${ruleName(a.rule)}`, { body: `${a.vehicle_id} · ${a.evidence}`, tag: a.alert_id });
      }
    }
    render();
    if (selected === a.alert_id) showPanel(a);
  }, (st) => {
    status.textContent = st === 'live' ? '● ' + t('live') : st === 'denied' ? '✕' : '○ ' + t('reconnecting');
    status.className = 'stream-state ' + st;
  }).start();
  window.mwStream = stream; // for the journeys: drop the connection as a network failure would

  // --- an alert's panel
  async function open(id) {
    selected = id;
    render();
    let a = alerts.get(id);
    try {
      a = await api.get('/api/v1/alerts/' + encodeURIComponent(id));
    } catch {
      // ended meanwhile: show what the feed had
    }
    if (!a) return;
    showPanel(a);
    cm.map.easeTo({ center: cm.point(a.lon, a.lat), zoom: Math.max(cm.map.getZoom(), 13) });
    const [veh, track] = await Promise.all([
      api.get('/api/v1/vehicles/' + encodeURIComponent(a.vehicle_id)).catch(() => null),
      api.get(`/api/v1/vehicles/${encodeURIComponent(a.vehicle_id)}/track${api.qs({ from: a.start_ms - 60000, to: Date.now() + 60000 })}`).catch(() => null),
    ]);
    if (selected !== id) return;
    cm.setData('track', track ? cm.geo({ type: 'FeatureCollection', features: track.features.filter((f) => f.geometry.type === 'LineString') }) : { type: 'FeatureCollection', features: [] });
    panel.vehicle = veh;
    showPanel(alerts.get(id) || a);
  }

  function showPanel(a) {
    panel.hidden = false;
    const veh = panel.vehicle && panel.vehicle.plate === a.vehicle_id ? panel.vehicle : null;
    const offered = a.dispatch?.officers || [];
    cm.setData('officers', { type: 'FeatureCollection', features: offered.map((o) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: cm.point(o.lon, o.lat) }, properties: { id: o.officer_id } })) });
    const state = a.handling?.state || 'new';
    const act = async (action, extra = {}) => {
      try {
        const v = await api.post(`/api/v1/alerts/${encodeURIComponent(a.alert_id)}/actions`, { action, ...extra });
        if (['resolved', 'dismissed'].includes(v.handling.state)) alerts.delete(v.alert_id);
        else alerts.set(v.alert_id, v);
        render();
        showPanel(v);
      } catch (e) {
        panel.querySelector('.error').textContent = e.message;
      }
    };
    const reason = el('input', { id: 'dismiss-reason', placeholder: t('dismissReason') });
    const dismissBox = el('div', { class: 'dismiss', hidden: true }, reason,
      el('button', { id: 'dismiss-confirm', onclick: () => reason.value.trim() ? act('dismiss', { reason: reason.value.trim() }) : reason.focus() }, t('confirm')));
    const permit = veh?.permits?.find((x) => x.valid_now) || veh?.permits?.[0];
    panel.replaceChildren(
      el('button', { class: 'close', onclick: () => { panel.hidden = true; selected = null; cm.setData('track', { type: 'FeatureCollection', features: [] }); render(); } }, '×'),
      el('h2', { class: 'sev-' + a.severity }, t(a.severity), ' · ', ruleName(a.rule)),
      el('p', { class: 'big plate', id: 'panel-plate' }, a.vehicle_id),
      el('dl', {},
        el('dt', {}, t('since')), el('dd', {}, fmtTime(a.start_ms, true)),
        el('dt', {}, t('where')), el('dd', {}, districtName(a.district), a.place ? ' · ' + a.place : '', ` (${a.lat.toFixed(5)}, ${a.lon.toFixed(5)})`),
        el('dt', {}, t('value')), el('dd', { id: 'panel-value' }, `${Math.round(a.value * 10) / 10} / ${t('limit')} ${a.limit}`),
        el('dt', {}, t('evidence')), el('dd', {}, a.evidence),
        el('dt', {}, t('company')), el('dd', {}, a.company || veh?.company || '—'),
        el('dt', {}, t('permit')), el('dd', {}, permit ? `${permit.id} · ${permit.valid_now ? '✓' : '✕'} · ${permit.route_name || permit.route}` : t('noPermit')),
        el('dt', {}, t('risk')), el('dd', { id: 'panel-risk' }, veh ? `${t(veh.risk.level)} (${veh.risk.score}) · ${veh.risk.reasons.join('；')}` : '…'),
        el('dt', {}, t('state')), el('dd', { id: 'panel-state' }, t(state), a.overdue ? el('span', { class: 'badge overdue-badge' }, t('overdue')) : '',
          a.escalation_level ? el('span', { class: 'badge overdue-badge', id: 'panel-level' }, `${t('level')} ${a.escalation_level}`) : '')),
      el('h3', {}, t('officers')),
      offered.length ? el('ol', { class: 'officers', id: 'officers' }, offered.map((o) => el('li', {},
        el('span', {}, o.officer_id), el('span', {}, fmtDistance(o.distance_m)), el('span', {}, t('eta'), ' ', fmtDuration(o.eta_s)),
        el('button', { class: 'primary', 'data-officer': o.officer_id, onclick: () => act('dispatch', { officer_id: o.officer_id }) }, t('dispatch')))))
        : el('p', { class: 'muted' }, `${t('gridStaff')}: ${a.dispatch?.grid_staff || '—'}`, a.dispatch?.note ? ' · ' + a.dispatch.note : ''),
      el('div', { class: 'actions' },
        offered.length ? '' : el('button', { id: 'act-dispatch', onclick: () => act('dispatch') }, t('dispatch')),
        el('button', { id: 'act-acknowledge', onclick: () => act('acknowledge') }, t('acknowledge')),
        el('button', { id: 'act-resolve', onclick: () => act('resolve') }, t('resolve')),
        el('button', { id: 'act-dismiss', onclick: () => { dismissBox.hidden = false; reason.focus(); } }, t('dismiss'))),
      dismissBox,
      el('p', { class: 'error' }),
      el('h3', {}, t('history')),
      el('ol', { class: 'history', id: 'history' }, [
        ...(a.handling?.actions || []).map((x) => [x.at_ms, el('li', {},
          fmtTime(x.at_ms), ' ', el('b', {}, t(x.action)), ' ', x.officer_id || '', x.reason ? ` “${x.reason}”` : '', el('small', {}, ' — ', x.actor))]),
        // the escalation steps of an overdue alert, among the actions by time
        ...(a.escalation || []).map((x) => [x.at_ms, el('li', { class: 'escalation' },
          fmtTime(x.at_ms), ' ', el('b', {}, t('level'), ' ', x.level, ' · ', x.name), ' ', (x.channels || []).join(', '))]),
      ].sort((x, y) => x[0] - y[0]).map((x) => x[1])));
  }

  return () => {
    stopped = true;
    clearInterval(fleetTimer);
    stream.stop();
    cm.map.remove();
    void stopped;
  };
}
