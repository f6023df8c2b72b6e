// The command centre (实时监控 / 报警处置): the city map with every truck coloured by its state,
// the live alert feed beside it, and an alert's panel with its track, vehicle, nearest officers
// and the handling buttons.
import * as api from './api.js';
import { t, ruleName, ruleIds } from './i18n.js';
import { el, fmtTime, fmtDistance, fmtDuration, mark, riskWords } from './util.js';
import { stateColours } from './colours.js';
import { mapCoords, mapGeometry } from './coord.js';
import { baseMap } from './basemap.js';

// every officer on the map: available, dispatched to an alert, or neither (unavailable or a stale
// position)
const officerColours = { free: '#0b57d0', busy: '#8e24aa', stale: '#9aa5b1' };

const sevRank = { severe: 3, warning: 2, info: 1 };
const sourceOrder = ['alerts', 'track', 'all-officers', 'officers']; // their layers, bottom to top
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
  // MapLibre's chunk (a megabyte) is the last to arrive and the slowest to start: the feed and the
  // counts are filled from the first data without it, and the map follows
  const mapCode = Promise.all([import('./citymap.js'), import('./fleetlayer.js')]);
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

  // the first fleet and the open alerts were asked for beside the sign-in (main.js)
  mark('centre');
  const firstFleet = api.fetched('/api/v1/fleet').then((f) => { mark('fleet-fetched'); return f; }, () => null);
  const firstAlerts = api.fetched('/api/v1/alerts?limit=1000').then((a) => { mark('alerts-fetched'); return a; });
  const alerts = new Map(); // id → alert view, open ones
  let selected = null;
  const districtName = (id) => session.layers.features.find((f) => f.properties.layer === 'district' && f.properties.id === id)?.properties.name || id || '—';

  // Everything put on the map is in the map's datum; until the map is ready, the last data of each
  // of its sources waits in pending.
  const coords = mapCoords(baseMap()?.crs || 'wgs84');
  const point = (lon, lat) => coords.toMap([lon, lat]);
  const geo = (fc) => ({ ...fc, features: fc.features.map((f) => ({ ...f, geometry: mapGeometry(f.geometry, coords.toMap) })) });
  let cm = null; // the CityMap, once its layers are added
  let made = null; // the CityMap, from its making
  const pending = new Map();
  // A source (with its layers) is added only once it has something to draw: an empty GeoJSON
  // source still costs the worker a task per tile and the software GL a frame per answer.
  const layersOf = {}; // source → its layers, set with the map
  const put = (id, data) => {
    if (!cm) return pending.set(id, data);
    if (!cm.map.getSource(id) && !data.features.length) return;
    cm.setData(id, data);
    for (const l of layersOf[id] || []) {
      if (cm.map.getLayer(l.id)) continue;
      const above = sourceOrder.slice(sourceOrder.indexOf(id) + 1).flatMap((s) => layersOf[s] || []).find((x) => cm.map.getLayer(x.id));
      cm.map.addLayer(l, above?.id);
    }
  };

  // "open" (mw:open) is the first frame shown with the city's layers, every truck and the alert
  // rings drawn, with the feed listed and live.
  const opening = { feed: false, live: false, drawn: false, done: false };
  const opened = () => {
    if (opening.feed && opening.live && opening.drawn && !opening.done) {
      opening.done = true;
      mark('open');
    }
  };

  // --- the counts (before the map: the first fleet is counted as soon as it arrives)
  function count(ans) {
    const counts = Object.fromEntries(Object.keys(stateColours).map((k) => [k, 0]));
    for (const r of ans.vehicles) counts[r[5]] = (counts[r[5]] || 0) + 1;
    for (const k of Object.keys(stateColours)) document.getElementById('count-' + k).textContent = counts[k];
  }
  let fleet = null; // the FleetLayer, once the map is ready
  async function refreshFleet(pendingAnswer) {
    try {
      const ans = (await pendingAnswer) || await api.get('/api/v1/fleet');
      count(ans);
      if (!fleet) return ans;
      fleet.set(ans.vehicles, (c) => coords.toMap(c));
      root.dataset.fleet = String(ans.vehicles.length); // every truck handed to the map
      return ans;
    } catch {
      return null; // the next round tries again
    }
  }
  async function refreshOfficers() {
    try {
      const ans = await api.get('/api/v1/officers');
      put('all-officers', { type: 'FeatureCollection', features: ans.officers.map((o) => {
        const st = o.dispatched_to ? 'busy' : o.stale ? 'stale' : o.available ? 'free' : 'off';
        return { type: 'Feature', geometry: { type: 'Point', coordinates: point(o.lon, o.lat) },
          properties: { id: o.officer_id, st, to: o.dispatched_to || '', _c: officerColours[st] || officerColours.stale } };
      }) });
      document.getElementById('count-officers').textContent = ans.officers.length;
    } catch {
      // the next round tries again
    }
  }
  const counted = refreshFleet(firstFleet);
  refreshOfficers();

  // --- the feed
  const filterOK = (a) => (!districtSel.value || a.district === districtSel.value) && (!ruleSel.value || a.rule === ruleSel.value) && (!sevSel.value || a.severity === sevSel.value);
  // render redraws the feed and the alert rings once, soon, however many items arrived meanwhile
  let renderQueued = 0;
  function render() {
    renderQueued ||= setTimeout(draw, RENDER_AFTER_MS);
  }
  const ringColour = { severe: stateColours.alert_severe, warning: stateColours.alert_warning };
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
    put('alerts', { type: 'FeatureCollection', features: items.map((a) => ({
      type: 'Feature', geometry: { type: 'Point', coordinates: point(a.lon, a.lat) },
      properties: { id: a.alert_id, plate: a.vehicle_id, rule: a.rule, severity: a.severity, _sc: ringColour[a.severity] || stateColours.alert_info },
    })) });
  }
  for (const s of [districtSel, ruleSel, sevSel]) s.addEventListener('change', render);

  // --- the map: the city's layers, the fleet drawn by a WebGL layer of its own (fleetlayer.js),
  // the alert rings, the officers, an alert's track
  async function startMap() {
    const [{ CityMap, circleStyle, lineStyle }, { FleetLayer }] = await mapCode;
    mark('map-code');
    made = new CityMap(mapBox, session.layers, { lowRes: true });
    const m = made.map;
    mark('map-created');
    m.once('render', () => mark('first-render'));
    window.mwMap = m; // for the journeys: what is on the map
    window.mwCityLayers = session.layers; // and what the city's layers are
    const newFleet = new FleetLayer('fleet', stateColours, (z) => (z <= 9 ? 2.5 : z >= 14 ? 6 : 2.5 + (z - 9) * 0.7));
    await made.styled; // not loaded: that waits for a complete frame of the city, the fleet need not
    mark('style-loaded');
    m.addLayer(newFleet);
    // the circle layers share one paint shape (circleStyle), hence one program for the software GL
    layersOf.alerts = [{ id: 'alert-rings', type: 'circle', source: 'alerts', paint: circleStyle(11, 'rgba(0,0,0,0)', 2.5, stateColours.alert_info) }];
    layersOf.track = [{ id: 'track', type: 'line', source: 'track', paint: lineStyle('#0b57d0', 3) }];
    layersOf['all-officers'] = [{ id: 'all-officers', type: 'circle', source: 'all-officers',
      paint: circleStyle(['interpolate', ['linear'], ['zoom'], 9, 3.5, 14, 7], officerColours.stale, 1.5, '#ffffff') }];
    layersOf.officers = [{ id: 'officers', type: 'circle', source: 'officers', paint: circleStyle(6, '#0b57d0', 2, '#ffffff') }];
    cm = made;
    for (const [id, data] of pending) put(id, data);
    pending.clear();
    made.hover(['all-officers'], (pr) => `${pr.id} · ${t({ free: 'officerFree', busy: 'officerBusy', stale: 'officerStale', off: 'officerOff' }[pr.st])}${pr.to ? ' · ' + pr.to : ''}`);
    made.hover(['alert-rings'], (pr) => `${pr.plate} · ${ruleName(pr.rule)}`);
    m.on('click', 'alert-rings', (e) => open(e.features[0].properties.id));
    // a truck's plate on hover: picked from the fleet layer's points, at most once a frame
    let hovered = false, pointer = null;
    m.on('mousemove', (e) => {
      if (!pointer) requestAnimationFrame(() => {
        const at = pointer;
        pointer = null;
        const r = newFleet.at(at);
        if (r) made.popup.setLngLat(m.unproject([at.x, at.y])).setText(`${r[0]} · ${t(r[5])} · ${Math.round(r[3])} km/h`).addTo(m);
        else if (hovered) made.popup.remove();
        hovered = !!r;
        m.getCanvas().style.cursor = r ? 'pointer' : '';
      });
      pointer = e.point;
    });
    fleet = newFleet;
    // the first fleet (already counted) goes on the map; the next rounds every 10 s
    const firstAnswer = await counted;
    if (firstAnswer) {
      fleet.set(firstAnswer.vehicles, (c) => coords.toMap(c));
      root.dataset.fleet = String(firstAnswer.vehicles.length);
    } else await refreshFleet(null);
    mark('fleet-set');
    m.once('render', () => mark('fleet-frame')); // the first frame with every truck
    m.once('idle', () => mark('fleet-drawn')); // and with every source loaded and nothing moving
    const drawn = () => {
      if (!opening.feed || root.dataset.fleet === undefined || !m.isSourceLoaded('city') || (m.getSource('alerts') && !m.isSourceLoaded('alerts'))) return;
      m.off('render', drawn);
      // the frame is on the screen once the browser has composited it: the next animation frame
      requestAnimationFrame(() => {
        opening.drawn = true;
        opened();
      });
    };
    m.on('render', drawn);
    m.triggerRepaint();
  }
  const mapReady = startMap();

  const first = await firstAlerts;
  for (const a of first.alerts) alerts.set(a.alert_id, a);
  draw();
  mark('feed-rendered');
  opening.feed = true;

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
    if (st === 'live') {
      mark('stream-live');
      opening.live = true;
      opened();
    }
  }).start();
  window.mwStream = stream; // for the journeys: drop the connection as a network failure would

  await mapReady;
  const fleetTimer = setInterval(() => { refreshFleet(null); refreshOfficers(); }, FLEET_EVERY_MS);

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
    cm?.map.easeTo({ center: point(a.lon, a.lat), zoom: Math.max(cm.map.getZoom(), 13) });
    const [veh, track] = await Promise.all([
      api.get('/api/v1/vehicles/' + encodeURIComponent(a.vehicle_id)).catch(() => null),
      api.get(`/api/v1/vehicles/${encodeURIComponent(a.vehicle_id)}/track${api.qs({ from: a.start_ms - 60000, to: Date.now() + 60000 })}`).catch(() => null),
    ]);
    if (selected !== id) return;
    put('track', track ? geo({ type: 'FeatureCollection', features: track.features.filter((f) => f.geometry.type === 'LineString') }) : { type: 'FeatureCollection', features: [] });
    panel.vehicle = veh;
    showPanel(alerts.get(id) || a);
  }

  function showPanel(a) {
    panel.hidden = false;
    const veh = panel.vehicle && panel.vehicle.plate === a.vehicle_id ? panel.vehicle : null;
    const offered = a.dispatch?.officers || [];
    put('officers', { type: 'FeatureCollection', features: offered.map((o) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: point(o.lon, o.lat) }, properties: { id: o.officer_id } })) });
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
      el('button', { class: 'close', onclick: () => { panel.hidden = true; selected = null; put('track', { type: 'FeatureCollection', features: [] }); render(); } }, '×'),
      el('h2', { class: 'sev-' + a.severity }, t(a.severity), ' · ', ruleName(a.rule)),
      el('p', { class: 'big plate', id: 'panel-plate' }, a.vehicle_id),
      el('dl', {},
        el('dt', {}, t('since')), el('dd', {}, fmtTime(a.start_ms, true)),
        el('dt', {}, t('where')), el('dd', {}, districtName(a.district), a.place ? ' · ' + a.place : '', ` (${a.lat.toFixed(5)}, ${a.lon.toFixed(5)})`),
        el('dt', {}, t('value')), el('dd', { id: 'panel-value' }, `${Math.round(a.value * 10) / 10} / ${t('limit')} ${a.limit}`),
        el('dt', {}, t('evidence')), el('dd', {}, a.evidence),
        el('dt', {}, t('company')), el('dd', {}, a.company || veh?.company || '—'),
        el('dt', {}, t('permit')), el('dd', {}, permit ? `${permit.id} · ${permit.valid_now ? '✓' : '✕'} · ${permit.route_name || permit.route}` : t('noPermit')),
        el('dt', {}, t('risk')), el('dd', { id: 'panel-risk' }, veh ? `${t(veh.risk.level)} (${veh.risk.score}) · ${veh.risk.factors.map((f) => riskWords(f)).join('；')}` : '…'),
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
    clearInterval(fleetTimer);
    clearTimeout(renderQueued);
    stream.stop();
    made?.map.remove();
  };
}
