// The city's map: its own layers on a plain background (no tile service is needed), an optional
// raster base map from the city's tile server, and helpers to put data on it in the map's datum.
import maplibregl from 'maplibre-gl';
import { mapCoords, mapGeometry } from './coord.js';
import { baseMap } from './basemap.js';
import { closedAt } from './zones.js';
import { rendererOf, pixelRatio, sawRenderer } from './render.js';

export { baseMap, setBaseMap } from './basemap.js';

const ZONE_CHECK_MS = 10000;

// MapLibre cuts GeoJSON into tiles in a web worker, which must first compile MapLibre's worker
// code (most of the megabyte) before it does anything: start it when this module is evaluated,
// while the screen still waits on its data, not when the first map is made.
maplibregl.prewarm();

export { stateColours } from './colours.js';

// The city's layers are two map layers over one source: every polygon filled by one fill layer
// and every outline, route and corridor drawn by one line layer, each feature carrying its own
// colour, opacity and width (cityStyle) and its drawing order. Without a GPU the browser's
// software WebGL compiles a pipeline for each distinct layer program before drawing it, a tenth
// of a second or more each; ten layers of four kinds with their own constant or data-driven
// paints made a dozen programs, two layers with the same data-driven paints make two. (A dashed
// line is a program of its own too: the districts' borders are drawn plain.)
const looks = {
  light: { district: ['#ffffff', 0.8, '#8796a8'], speed: ['#7b61ff', 0.12, '#7b61ff'], restricted: ['#d6001c', 0.06, '#d6001c'],
    site: ['#e8a33d', 0.55, '#7a4a1c'], route: '#2f9e44' },
  dark: { district: ['#132638', 0.8, '#3d5a78'], speed: ['#7b61ff', 0.12, '#7b61ff'], restricted: ['#d6001c', 0.06, '#d6001c'],
    site: ['#e8a33d', 0.55, '#7a4a1c'], route: '#2f9e44' },
};
const drawOrder = { district: 0, speed: 1, restricted: 2, corridor: 3, route: 4, site: 5 };

// lineWidth draws ['get', '_w0'] px at zoom 0 growing to ['get', '_w24'] at zoom 24 exponentially
// (base 2): a constant width when they are equal, a width in metres when they are that width in
// pixels at those zooms. Every line layer of the console uses the same data-driven paints
// (lineStyle), so they share one program.
const lineWidth = (px) => ['interpolate', ['exponential', 2], ['zoom'], 0, ['coalesce', ['get', '_w0'], px], 24, ['coalesce', ['get', '_w24'], px]];
export function lineStyle(colour, width, opacity = 1) {
  return { 'line-color': ['coalesce', ['get', '_lc'], colour], 'line-opacity': ['coalesce', ['get', '_lo'], opacity], 'line-width': lineWidth(width) };
}

// circleStyle is the circle paint every circle layer of the command centre shares (one program):
// a fixed or zoom-driven radius and stroke width, the colours from the features or the defaults.
export function circleStyle(radius, colour, strokeWidth, strokeColour) {
  return { 'circle-radius': radius, 'circle-color': ['coalesce', ['get', '_c'], colour], 'circle-stroke-width': strokeWidth,
    'circle-stroke-color': ['coalesce', ['get', '_sc'], strokeColour] };
}

// cityStyle answers the city's features (WGS-84, as /api/v1/city/layers gives them) with their
// looks as properties, in drawing order: each route twice, its corridor (its width in metres)
// first and its line on top. _hover is the name shown on hover, where the feature has one worth
// showing.
function cityStyle(layers, dark) {
  const look = looks[dark ? 'dark' : 'light'];
  const lat = layers.origin ? layers.origin[1] : 22.5;
  const mpp0 = 78271.517 * Math.cos((lat * Math.PI) / 180); // metres per pixel at zoom 0, 512-px tiles
  const out = [];
  for (const f of layers.features) {
    const p = f.properties;
    if (p.layer === 'route') {
      const m = 2 * (p.corridor_m || 0);
      out.push({ ...f, properties: { ...p, _z: drawOrder.corridor, _lc: look.route, _lo: 0.18, _w0: m / mpp0, _w24: (m * 2 ** 24) / mpp0 } });
      out.push({ ...f, properties: { ...p, _z: drawOrder.route, _lc: look.route, _lo: 1, _w0: 2, _w24: 2, _hover: p.name || p.id } });
      continue;
    }
    const l = look[p.layer];
    if (!l) continue;
    let [fc, fo, lc] = l;
    if (p.layer === 'site' && p.kind === 'disposal') fc = '#8d5a2b';
    if (p.layer === 'restricted' && p.closed_now) fo = 0.28;
    const w = p.layer === 'district' ? 1.2 : 1;
    out.push({ ...f, properties: { ...p, _z: drawOrder[p.layer], _fc: fc, _fo: fo, _lc: lc, _lo: 1, _w0: w, _w24: w,
      _hover: p.layer === 'district' ? '' : p.name || p.id } });
  }
  out.sort((a, b) => a.properties._z - b.properties._z);
  return { type: 'FeatureCollection', features: out };
}

// style is the map's whole first style: the base map if one is configured and the city's layers,
// so that MapLibre's worker starts cutting the city into tiles as soon as the map is made rather
// than after a first frame. The plain background is the container's CSS colour behind a
// transparent canvas, not a background layer: one GL program fewer to compile (CityMap).
function style(dark, city) {
  const s = {
    version: 8,
    sources: { city: { type: 'geojson', data: city } },
    layers: [],
  };
  const b = baseMap();
  if (b) {
    s.sources.base = { type: 'raster', tiles: [b.url], tileSize: 256 };
    s.layers.push({ id: 'base', type: 'raster', source: 'base' });
  }
  s.layers.push(
    { id: 'city-fill', type: 'fill', source: 'city', filter: ['has', '_fc'], layout: { 'fill-sort-key': ['get', '_z'] },
      paint: { 'fill-color': ['get', '_fc'], 'fill-opacity': ['get', '_fo'], 'fill-antialias': false } },
    { id: 'city-line', type: 'line', source: 'city', layout: { 'line-cap': 'round', 'line-join': 'round', 'line-sort-key': ['get', '_z'] },
      paint: lineStyle('#8796a8', 1) });
  return s;
}

export class CityMap {
  // lowRes: drawn at a lower resolution on software WebGL when the setting is on (render.js); for
  // the command centre's map, panned over the whole live fleet. The other maps are small or still
  // and show thin lines (a replayed track) that half the resolution blurs.
  constructor(container, layers, { dark = false, interactive = true, lowRes = false } = {}) {
    const b = baseMap();
    this.coords = mapCoords(b ? b.crs : 'wgs84');
    this.layers = layers;
    this.dark = dark;
    const bounds = this.bounds(layers);
    this.closeZones(); // closed_now as of the browser's clock, before the first draw
    container.style.background = dark ? '#0b1622' : '#eef1f4';
    this.map = new maplibregl.Map({
      container, style: style(dark, this.geo(cityStyle(layers, dark))), bounds, fitBoundsOptions: { padding: 20 }, interactive,
      attributionControl: false, dragRotate: false, pitchWithRotate: false, maxPitch: 0,
    });
    // Software WebGL draws every pixel on the CPU: there a lowRes map is drawn at a lower
    // resolution (render.js), set before its first frame. The renderer is known only from a WebGL
    // context; the map's own is asked rather than a second one made.
    const canvas = this.map.getCanvas();
    this.renderer = rendererOf(canvas.getContext('webgl2') || canvas.getContext('webgl'));
    sawRenderer(this.renderer);
    const dpr = window.devicePixelRatio || 1;
    const ratio = lowRes ? pixelRatio(this.renderer, dpr) : dpr;
    if (ratio !== dpr) this.map.setPixelRatio(ratio);
    container.dataset.renderer = this.renderer;
    container.dataset.pixelRatio = String(this.map.getPixelRatio());
    if (interactive) this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
    // styled: the style is read and layers may be added (the city's tiles may still be cut);
    // loaded: MapLibre's load, after the first complete frame
    this.styled = new Promise((resolve) => this.map.once('style.load', resolve));
    this.loaded = new Promise((resolve) => this.map.on('load', resolve));
    this.hover(['city-fill', 'city-line'], (p) => p._hover);
    // the restricted zones open and close by the clock: their shading follows it
    this.followZones();
    const zoneTimer = setInterval(() => this.followZones(), ZONE_CHECK_MS);
    this.map.on('remove', () => clearInterval(zoneTimer));
    this.popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: 'mw-popup' });
  }

  bounds(layers) {
    let w = 180, s = 90, e = -180, n = -90;
    const visit = (c) => {
      if (typeof c[0] === 'number') {
        const [x, y] = this.coords.toMap(c);
        w = Math.min(w, x); e = Math.max(e, x); s = Math.min(s, y); n = Math.max(n, y);
      } else c.forEach(visit);
    };
    for (const f of layers.features) if (f.properties.layer === 'district') visit(f.geometry.coordinates);
    if (w > e) for (const f of layers.features) visit(f.geometry.coordinates);
    return w > e ? [[113.7, 22.4], [114.4, 22.8]] : [[w, s], [e, n]];
  }

  // geo converts a WGS-84 GeoJSON object (Feature, FeatureCollection or geometry) to the map's datum.
  geo(obj) {
    if (obj.type === 'FeatureCollection') return { ...obj, features: obj.features.map((f) => this.geo(f)) };
    if (obj.type === 'Feature') return { ...obj, geometry: mapGeometry(obj.geometry, this.coords.toMap) };
    return mapGeometry(obj, this.coords.toMap);
  }

  point(lon, lat) {
    return this.coords.toMap([lon, lat]);
  }

  // closeZones recomputes every restricted zone's closed_now from its closing hours at the
  // browser's time in the city's zone; it answers whether one changed.
  closeZones() {
    const zone = this.layers.time_zone || 'Asia/Shanghai';
    let changed = false;
    for (const f of this.layers.features) {
      if (f.properties.layer !== 'restricted') continue;
      const closed = closedAt(f.properties.closed_hours, Date.now(), zone);
      if (closed === undefined || closed === f.properties.closed_now) continue;
      f.properties.closed_now = closed;
      changed = true;
    }
    return changed;
  }

  // followZones redraws the city's layers when a zone opened or closed. The closed zones' ids are
  // kept in the map container's data-closed-zones.
  followZones() {
    const changed = this.closeZones();
    this.map.getContainer().dataset.closedZones = this.layers.features
      .filter((f) => f.properties.layer === 'restricted' && f.properties.closed_now).map((f) => f.properties.id).join(',');
    if (changed && this.map.getSource('city')) this.map.getSource('city').setData(this.geo(cityStyle(this.layers, this.dark)));
  }

  // hover shows label(properties) beside the pointer over the given layers: the topmost feature
  // under it with a label (a corridor has none: the site under it, or its route's line, speaks).
  hover(layerIds, label) {
    this.map.on('mousemove', layerIds, (e) => {
      const f = e.features.find((x) => label(x.properties));
      this.map.getCanvas().style.cursor = f ? 'pointer' : '';
      if (f) this.popup.setLngLat(e.lngLat).setText(label(f.properties)).addTo(this.map);
      else this.popup.remove();
    });
    this.map.on('mouseleave', layerIds, () => {
      this.map.getCanvas().style.cursor = '';
      this.popup.remove();
    });
  }

  // setData replaces (or adds) a GeoJSON source; data is in the map's datum already.
  setData(id, data) {
    const src = this.map.getSource(id);
    if (src) src.setData(data);
    else this.map.addSource(id, { type: 'geojson', data });
  }
}
