// The command centre (实时监控 / 报警处置): the city map with every truck coloured by its state,
// the live alert feed beside it, and an alert's panel with its track, vehicle, nearest officers
// and the handling buttons.
import * as api from './api.js';
import { t, ruleName, ruleIds } from './i18n.js';
import { el, fmtTime, fmtDistance, fmtDuration, mark } from './util.js';
import { CityMap, stateColours } from './citymap.js';
import { FleetLayer } from './fleetlayer.js';

// every officer on the map: available, dispatched to an alert, or neither (unavailable or a stale
// position)
const officerColours = { free: '#0b57d0', busy: '#8e24aa', stale: '#9aa5b1' };

const sevRank = { severe: 3, warning: 2, info: 1 };
const FLEET_EVERY_MS = 10000;
const RENDER_AFTER_MS = 100; // a burst of feed items redraws the feed once
const FEED_MAX = 200; // items listed; the rest are counted (the filters narrow the list)

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
    Object.entries(stateColours).map(([k, c]) => el('span', { 'data-state': k }, el('i', { style: `background:${c}` }), t(k), ' ', el('b', { id: 'count-' + k }, '0'))),
    el('span', { 'data-state': 'officers' }, el('i', { class: 'officer', style: `background:${officerColours.free}` }), t('allOfficers'), ' ', el('b', { id: 'count-officers' }, '0')));
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
  mark('centre');
  const firstFleet = api.fetched('/api/v1/fleet').then((f) => { mark('fleet-fetched'); return f; }, () => null);
  const firstAlerts = api.fetched('/api/v1/alerts?limit=1000').then((a) => { mark('alerts-fetched'); return a; });
  const cm = new CityMap(mapBox, session.layers);
  mark('map-created');
  cm.map.once('render', () => mark('first-render'));
  window.mwMap = cm.map; // for the journeys: what is on the map
  const alerts = new Map(); // id → alert view, open ones
  let selected = null;
  let stopped = false;
  const districtName = (id) => session.layers.features.find((f) => f.properties.layer === 'district' && f.properties.id === id)?.properties.name || id || '—';

  // --- the fleet on the map, drawn by a WebGL layer of its own (fleetlayer.js)
  const fleet = new FleetLayer('fleet', stateColours, (z) => (z <= 9 ? 2.5 : z >= 14 ? 6 : 2.5 + (z - 9) * 0.7));
  await cm.loaded;
  mark('style-loaded');
  cm.map.addLayer(fleet);
  cm.setData('alerts', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'alert-rings', type: 'circle', source: 'alerts', paint: {
    'circle-radius': 11, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-width': 2.5,
    'circle-stroke-color': ['match', ['get', 'severity'], 'severe', stateColours.alert_severe, 'warning', stateColours.alert_warning, stateColours.alert_info],
  } });
  cm.setData('track', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'track', type: 'line', source: 'track', paint: { 'line-color': '#0b57d0', 'line-width': 3 } });
  cm.setData('all-officers', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'all-officers', type: 'circle', source: 'all-officers', paint: {
    'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 3.5, 14, 7], 'circle-color': ['match', ['get', 'st'], 'busy', officerColours.busy, 'free', officerColours.free, officerColours.stale],
    'circle-stroke-width': 1.5, 'circle-stroke-color': '#fff',
  } });
  cm.hover(['all-officers'], (pr) => `${pr.id} · ${t({ free: 'officerFree', busy: 'officerBusy', stale: 'officerStale', off: 'officerOff' }[pr.st])}${pr.to ? ' · ' + pr.to : ''}`);
  cm.setData('officers', { type: 'FeatureCollection', features: [] });
  cm.map.addLayer({ id: 'officers', type: 'circle', source: 'officers', paint: { 'circle-radius': 6, 'circle-color': '#0b57d0', 'circle-stroke-width': 2, 'circle-stroke-color': '#fff' } });
  cm.hover(['alert-rings'], (pr) => `${pr.plate} · ${ruleName(pr.rule)}`);
  cm.map.on('click', 'alert-rings', (e) => open(e.features[0].properties.id));
  // a truck's plate on hover: picked from the fleet layer's points, at most once a frame
  let hovered = false, pointer = null;
  cm.map.on('mousemove', (e) => {
    if (!pointer) requestAnimationFrame(() => {
      const at = pointer;
      pointer = null;
      const r = fleet.at(at);
      if (r) cm.popup.setLngLat(cm.map.unproject([at.x, at.y])).setText(`${r[0]} · ${t(r[5])} · ${Math.round(r[3])} km/h`).addTo(cm.map);
      else if (hovered) cm.popup.remove();
      hovered = !!r;
      cm.map.getCanvas().style.cursor = r ? 'pointer' : '';
    });
    pointer = e.point;
  });

  async function refreshFleet(pending) {
    try {
      const ans = (await pending) || await api.get('/api/v1/fleet');
      const counts = Object.fromEntries(Object.keys(stateColours).map((k) => [k, 0]));
      for (const r of ans.vehicles) counts[r[5]] = (counts[r[5]] || 0) + 1;
      fleet.set(ans.vehicles, (c) => cm.coords.toMap(c));
      for (const k of Object.keys(stateColours)) document.getElementById('count-' + k).textContent = counts[k];
      root.dataset.fleet = String(ans.vehicles.length);
    } catch {
      // the next round tries again
    }
  }
  async function refreshOfficers() {
    try {
      const ans = await api.get('/api/v1/officers');
      cm.setData('all-officers', { type: 'FeatureCollection', features: ans.officers.map((o) => ({
        type: 'Feature', geometry: { type: 'Point', coordinates: cm.point(o.lon, o.lat) },
        properties: { id: o.officer_id, st: o.dispatched_to ? 'busy' : o.stale ? 'stale' : o.available ? 'free' : 'off', to: o.dispatched_to || '' },
      })) });
      document.getElementById('count-officers').textContent = ans.officers.length;
    } catch {
      // the next round tries again
    }
  }
  refreshOfficers();
  await refreshFleet(firstFleet);
  mark('fleet-set');
  cm.map.once('render', () => mark('fleet-frame')); // the first frame with every truck
  cm.map.once('idle', () => mark('fleet-drawn')); // and with every layer of the city loaded
  const fleetTimer = setInterval(() => { refreshFleet(null); refreshOfficers(); }, FLEET_EVERY_MS);

  // --- the feed
  const filterOK = (a) => (!districtSel.value || a.district === districtSel.value) && (!ruleSel.value || a.rule === ruleSel.value) && (!sevSel.value || a.severity === sevSel.value);
  // render redraws the feed and the alert rings once, soon, however many items arrived meanwhile
  let renderQueued = 0;
  function render() {
    renderQueued ||= setTimeout(draw, RENDER_AFTER_MS);
  }
  function draw() {
    renderQueued = 0;
    const items = [...alerts.values()].filter(filterOK)
      .sort((a, b) => (sevRank[b.severity] - sevRank[a.severity]) || (b.received_ms - a.received_ms));
    const shown = items.slice(0, FEED_MAX);
    list.replaceChildren(...shown.map((a) => el('li', {
      class: `alert sev-${a.severity}${a.overdue ? ' overdue' : ''}${a._fresh ? ' fresh' : ''}${selected === a.alert_id ? ' selected' : ''}`,
      'data-id': a.alert_id, 'data-plate': a.vehicle_id, 'data-rule': a.rule, onclick: () => open(a.alert_id),
    },
    el('div', { class: 'l1' }, el('b', { class: 'sev' }, t(a.severity)), el('span', { class: 'rule' }, ruleName(a.rule)), el('span', { class: 'plate' }, a.vehicle_id)),
    el('div', { class: 'l2' }, districtName(a.district), ' · ', fmtTime(a.start_ms), ' · ', el('span', { class: 'hstate' }, t(a.handling?.state || 'new')),
      a.overdue ? el('span', { class: 'badge overdue-badge' }, t('overdue')) : ''))),
    items.length > shown.length ? el('li', { class: 'more muted' }, t('moreAlerts').replace('%d', items.length - shown.length)) : '');
    document.getElementById('open-count').textContent = String(items.length);
    cm.setData('alerts', { type: 'FeatureCollection', features: items.map((a) => ({
      type: 'Feature', geometry: { type: 'Point', coordinates: cm.point(a.lon, a.lat) }, properties: { id: a.alert_id, plate: a.vehicle_id, rule: a.rule, severity: a.severity },
    })) });
  }
  for (const s of [districtSel, ruleSel, sevSel]) s.addEventListener('change', render);

  const first = await firstAlerts;
  for (const a of first.alerts) alerts.set(a.alert_id, a);
  draw();
  mark('feed-rendered');

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
    if (st === 'live') mark('stream-live');
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
    clearTimeout(renderQueued);
    stream.stop();
    cm.map.remove();
    void stopped;
  };
}
