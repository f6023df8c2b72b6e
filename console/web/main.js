// The console's shell: sign-in, the role's screens, the language switch, and the router
// (#/centre, #/wall, #/squad, #/analyst, #/kpis). Nothing is shown without a token.
import 'maplibre-gl/dist/maplibre-gl.css';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import * as api from './api.js';
import { t, lang, setLang } from './i18n.js';
import { el, setCityZone, mark } from './util.js';
import { baseMap, setBaseMap } from './basemap.js';
import { lowResOn, setLowRes, seenRenderer, isSoftware } from './render.js';

mark('main');

// Each screen is a module of its own, loaded when first shown (MapLibre with the map screens,
// uPlot with the analyst's), while the sign-in and the screen's first data are fetched. The
// command centre takes MapLibre itself once its feed is up; it is started here (code), beside the
// sign-in, so that the megabyte is fetched and compiled while the rest waits on the network.
const screens = {
  centre: { roles: ['supervisor', 'admin'], load: () => import('./centre.js').then((m) => m.centre),
    data: ['/api/v1/fleet', '/api/v1/alerts?limit=1000'], code: () => Promise.all([import('./citymap.js'), import('./fleetlayer.js')]) },
  wall: { roles: ['supervisor', 'admin'], load: () => import('./wall.js').then((m) => m.wall) },
  squad: { roles: ['squad', 'supervisor', 'admin'], load: () => import('./squad.js').then((m) => m.squad) },
  analyst: { roles: ['analyst', 'supervisor', 'admin'], load: () => import('./analyst.js').then((m) => m.analyst) },
  kpis: { roles: ['analyst', 'supervisor', 'admin'], load: () => import('./kpis.js').then((m) => m.kpis) },
};
const home = { supervisor: 'centre', admin: 'centre', squad: 'squad', analyst: 'analyst' };

const session = { me: null, layers: null, stop: null };

async function signIn(tok) {
  api.setToken(tok);
  try {
    [session.me, session.layers] = await Promise.all([api.get('/api/v1/me'), api.get('/api/v1/city/layers')]);
    setCityZone(session.layers.time_zone);
    mark('signed-in');
    return true;
  } catch (e) {
    api.setToken('');
    session.me = null;
    return e;
  }
}

function signInScreen(root, err) {
  document.title = t('title');
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'current-password', placeholder: t('token'), 'aria-label': t('token') });
  const msg = el('p', { class: 'error', id: 'signin-error' }, err ? (err.status === 401 ? t('badToken') : err.message) : '');
  const form = el('form', { class: 'signin', onsubmit: async (e) => {
    e.preventDefault();
    const r = await signIn(input.value.trim());
    if (r === true) go('#/' + home[session.me.role]);
    else signInScreen(root, r);
  } }, el('h1', {}, t('title')), el('p', {}, t('signinHint')), input, el('button', { type: 'submit', class: 'primary' }, t('signin')), msg, langSwitch());
  root.replaceChildren(form);
  input.focus();
}

function langSwitch() {
  return el('button', { class: 'lang', id: 'lang', type: 'button', onclick: () => {
    setLang(lang() === 'zh' ? 'en' : 'zh');
    route();
  } }, lang() === 'zh' ? 'English' : '中文');
}

function settingsDialog() {
  const b = baseMap() || { url: '', crs: 'wgs84' };
  const url = el('input', { id: 'tile-url', value: b.url, placeholder: 'http://tiles.city.local/{z}/{x}/{y}.png' });
  const crs = el('select', { id: 'tile-crs' }, el('option', { value: 'wgs84' }, 'WGS-84'), el('option', { value: 'gcj02' }, 'GCJ-02'));
  crs.value = b.crs;
  // the map's resolution where WebGL is software (render.js); the renderer once a map was drawn
  const lowRes = el('input', { type: 'checkbox', id: 'low-res', checked: lowResOn() });
  const r = seenRenderer();
  const dlg = el('dialog', { class: 'settings' },
    el('h3', {}, t('settings')), el('p', { class: 'muted' }, t('noBase')),
    el('label', {}, t('tileUrl'), url), el('label', {}, t('tileCrs'), crs),
    el('label', { class: 'check' }, lowRes, t('lowRes')),
    r ? el('p', { class: 'muted', id: 'renderer' }, `${t('renderer')}: ${r}${isSoftware(r) ? ` (${t('softwareGL')})` : ''}`) : '',
    el('div', { class: 'row' },
      el('button', { class: 'primary', onclick: () => {
        setBaseMap({ url: url.value.trim(), crs: crs.value });
        setLowRes(lowRes.checked);
        dlg.close();
        route();
      } }, t('save')),
      el('button', { onclick: () => dlg.close() }, t('cancel'))));
  document.body.append(dlg);
  dlg.showModal();
}

function header(current) {
  const nav = el('nav', {});
  for (const [name, s] of Object.entries(screens)) {
    if (!s.roles.includes(session.me.role)) continue;
    nav.append(el('a', { href: '#/' + name, class: name === current ? 'active' : '', id: 'nav-' + name }, t(name)));
  }
  return el('header', { class: 'top' },
    el('span', { class: 'brand' }, t('title'), el('small', {}, session.layers.city)), nav,
    el('span', { class: 'who', id: 'who' }, session.me.name + ' · ' + session.me.role),
    el('button', { type: 'button', onclick: settingsDialog, title: t('settings'), id: 'settings' }, t('settings')),
    langSwitch(),
    el('button', { type: 'button', id: 'signout', onclick: () => { api.setToken(''); session.me = null; go(''); } }, t('signout')));
}

// go shows the screen of hash: a changed hash routes through hashchange, an unchanged one here.
// Both at once would start the screen twice, the first one in a box already replaced.
function go(hash) {
  if (location.hash.replace(/^#$/, '') !== hash) location.hash = hash;
  else route();
}

// route shows the screen the hash names. Only the latest call shows one: an earlier call still
// loading gives up, and a screen it started anyway is stopped at once.
let routing = 0;
async function route() {
  const gen = ++routing;
  const root = document.getElementById('app');
  session.stop?.();
  session.stop = null;
  document.documentElement.lang = lang() === 'zh' ? 'zh-CN' : 'en';
  const wanted = screens[location.hash.replace(/^#\/?/, '').split('?')[0]];
  if (wanted && api.token()) {
    // start the screen's code and first data now, beside the sign-in, not after it
    wanted.loading ||= wanted.load();
    wanted.loading.catch(() => { wanted.loading = null; });
    if (!session.me) for (const path of wanted.data || []) api.prefetch(path);
    wanted.code?.().catch(() => {}); // the screen imports it again and sees any failure
  }
  if (!session.me && api.token()) {
    const r = await signIn(api.token());
    if (gen !== routing) return;
    if (r !== true) return signInScreen(root, r);
  }
  if (!session.me) return signInScreen(root);
  let name = location.hash.replace(/^#\/?/, '').split('?')[0];
  if (!screens[name] || !screens[name].roles.includes(session.me.role)) name = home[session.me.role];
  document.title = t(name) + ' · ' + t('title');
  const body = el('main', { id: 'screen', class: 'screen-' + name });
  root.replaceChildren(name === 'wall' ? '' : header(name), body);
  document.body.className = name === 'wall' ? 'wall' : name === 'squad' ? 'handheld' : '';
  const s = screens[name];
  s.loading ||= s.load();
  let show;
  try {
    show = await s.loading;
  } catch (e) {
    s.loading = null; // the network failed, or a new console was installed meanwhile: the next visit retries
    body.append(el('p', { class: 'error' }, e.message));
    return;
  }
  if (gen !== routing) return;
  mark('screen-loaded');
  const stop = await show(body, session);
  if (gen !== routing) stop?.();
  else session.stop = stop;
}

window.addEventListener('hashchange', route);
route();
