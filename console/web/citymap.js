// The city's map: its own layers on a plain background (no tile service is needed), an optional
// raster base map from the city's tile server, and helpers to put data on it in the map's datum.
import maplibregl from 'maplibre-gl';
import { mapCoords, mapGeometry } from './coord.js';
import { baseMap } from './basemap.js';
import { closedAt } from './zones.js';

export { baseMap, setBaseMap } from './basemap.js';

const ZONE_CHECK_MS = 10000;

export const stateColours = {
  moving: '#1f8a3b', stopped: '#5f6b7a', no_signal: '#b7bcc4',
  alert_info: '#2f6fd6', alert_warning: '#f08c00', alert_severe: '#d6001c',
};

function style(dark) {
  const s = {
    version: 8,
    sources: {},
    layers: [{ id: 'background', type: 'background', paint: { 'background-color': dark ? '#0b1622' : '#eef1f4' } }],
  };
  const b = baseMap();
  if (b) {
    s.sources.base = { type: 'raster', tiles: [b.url], tileSize: 256 };
    s.layers.push({ id: 'base', type: 'raster', source: 'base' });
  }
  return s;
}

// metresToPixels is a line-width expression drawing a width of m metres (a feature property
// expression) at every zoom: web-mercator tiles of 512 px have 78271.5·cos(lat)/2^z m per pixel.
function metresToPixels(m, lat) {
  const mpp0 = 78271.517 * Math.cos((lat * Math.PI) / 180);
  return ['interpolate', ['exponential', 2], ['zoom'], 0, ['/', m, mpp0], 24, ['/', ['*', m, 2 ** 24], mpp0]];
}

export class CityMap {
  constructor(container, layers, { dark = false, interactive = true } = {}) {
    const b = baseMap();
    this.coords = mapCoords(b ? b.crs : 'wgs84');
    this.layers = layers;
    const bounds = this.bounds(layers);
    this.map = new maplibregl.Map({
      container, style: style(dark), bounds, fitBoundsOptions: { padding: 20 }, interactive,
      attributionControl: false, dragRotate: false, pitchWithRotate: false, maxPitch: 0,
    });
    if (interactive) this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
    this.loaded = new Promise((resolve) => this.map.on('load', resolve));
    this.loaded.then(() => this.drawCity(dark));
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

  drawCity(dark) {
    const m = this.map;
    m.addSource('city', { type: 'geojson', data: this.geo(this.layers) });
    const lat = this.layers.origin ? this.layers.origin[1] : 22.5;
    const is = (layer) => ['==', ['get', 'layer'], layer];
    m.addLayer({ id: 'district-fill', type: 'fill', source: 'city', filter: is('district'), paint: { 'fill-color': dark ? '#132638' : '#ffffff', 'fill-opacity': 0.8 } });
    m.addLayer({ id: 'district-line', type: 'line', source: 'city', filter: is('district'), paint: { 'line-color': dark ? '#3d5a78' : '#8796a8', 'line-width': 1.2, 'line-dasharray': [4, 2] } });
    m.addLayer({ id: 'speed-fill', type: 'fill', source: 'city', filter: is('speed'), paint: { 'fill-color': '#7b61ff', 'fill-opacity': 0.12 } });
    m.addLayer({ id: 'speed-line', type: 'line', source: 'city', filter: is('speed'), paint: { 'line-color': '#7b61ff', 'line-width': 1 } });
    m.addLayer({ id: 'restricted-fill', type: 'fill', source: 'city', filter: is('restricted'),
      paint: { 'fill-color': '#d6001c', 'fill-opacity': ['case', ['get', 'closed_now'], 0.28, 0.06] } });
    m.addLayer({ id: 'restricted-line', type: 'line', source: 'city', filter: is('restricted'), paint: { 'line-color': '#d6001c', 'line-width': 1.2 } });
    m.addLayer({ id: 'corridor', type: 'line', source: 'city', filter: is('route'),
      layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: { 'line-color': '#2f9e44', 'line-opacity': 0.18, 'line-width': metresToPixels(['*', 2, ['get', 'corridor_m']], lat) } });
    m.addLayer({ id: 'route', type: 'line', source: 'city', filter: is('route'), paint: { 'line-color': '#2f9e44', 'line-width': 2 } });
    m.addLayer({ id: 'site-fill', type: 'fill', source: 'city', filter: is('site'),
      paint: { 'fill-color': ['match', ['get', 'kind'], 'disposal', '#8d5a2b', '#e8a33d'], 'fill-opacity': 0.55 } });
    m.addLayer({ id: 'site-line', type: 'line', source: 'city', filter: is('site'), paint: { 'line-color': '#7a4a1c', 'line-width': 1 } });
    this.hover(['site-fill', 'restricted-fill', 'speed-fill', 'route'], (p) => p.name || p.id);
  }

  // followZones recomputes every restricted zone's closed_now from its closing hours at the
  // browser's time in the city's zone, and redraws the city's layers when one changed. The
  // closed zones' ids are kept in the map container's data-closed-zones.
  followZones() {
    const zone = this.layers.time_zone || 'Asia/Shanghai';
    let changed = false;
    for (const f of this.layers.features) {
      if (f.properties.layer !== 'restricted') continue;
      const closed = closedAt(f.properties.closed_hours, Date.now(), zone);
      if (closed === undefined || closed === f.properties.closed_now) continue;
      f.properties.closed_now = closed;
      changed = true;
    }
    this.map.getContainer().dataset.closedZones = this.layers.features
      .filter((f) => f.properties.layer === 'restricted' && f.properties.closed_now).map((f) => f.properties.id).join(',');
    if (changed && this.map.getSource('city')) this.map.getSource('city').setData(this.geo(this.layers));
  }

  // hover shows label(properties) beside the pointer over the given layers.
  hover(layerIds, label) {
    for (const id of layerIds) {
      this.map.on('mousemove', id, (e) => {
        this.map.getCanvas().style.cursor = 'pointer';
        const text = label(e.features[0].properties);
        if (text) this.popup.setLngLat(e.lngLat).setText(text).addTo(this.map);
      });
      this.map.on('mouseleave', id, () => {
        this.map.getCanvas().style.cursor = '';
        this.popup.remove();
      });
    }
  }

  // setData replaces (or adds) a GeoJSON source; data is in the map's datum already.
  setData(id, data) {
    const src = this.map.getSource(id);
    if (src) src.setData(data);
    else this.map.addSource(id, { type: 'geojson', data });
  }
}
