// WGS-84 ⇄ GCJ-02 (the "Mars" datum of Chinese tile servers). muckwatch keeps everything in
// WGS-84; when a base map's tiles are drawn in GCJ-02, what is put on the map is shifted into
// GCJ-02 and what is picked on it is shifted back, so that layers and tiles line up.
const A = 6378245.0;
const EE = 0.00669342162296594323;

function outOfChina(lon, lat) {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

function offset(lon, lat) {
  const x = lon - 105.0, y = lat - 35.0;
  let dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
  dLat += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
  dLat += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
  let dLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLon += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
  dLon += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
  dLon += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
  const radLat = lat / 180.0 * Math.PI;
  let magic = Math.sin(radLat);
  magic = 1 - EE * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * Math.PI);
  dLon = (dLon * 180.0) / (A / sqrtMagic * Math.cos(radLat) * Math.PI);
  return [dLon, dLat];
}

export function wgs84ToGcj02([lon, lat]) {
  if (outOfChina(lon, lat)) return [lon, lat];
  const [dLon, dLat] = offset(lon, lat);
  return [lon + dLon, lat + dLat];
}

// gcj02ToWgs84 inverts wgs84ToGcj02 by fixed-point iteration (well under a centimetre).
export function gcj02ToWgs84([lon, lat]) {
  if (outOfChina(lon, lat)) return [lon, lat];
  let w = [lon, lat];
  for (let i = 0; i < 8; i++) {
    const g = wgs84ToGcj02(w);
    w = [w[0] - (g[0] - lon), w[1] - (g[1] - lat)];
  }
  return w;
}

// mapCoords returns the functions that take WGS-84 to the map's datum and back.
export function mapCoords(crs) {
  if (crs === 'gcj02') return { toMap: wgs84ToGcj02, fromMap: gcj02ToWgs84 };
  return { toMap: (p) => p, fromMap: (p) => p };
}

// mapGeometry applies f to every position of a GeoJSON geometry, returning a new one.
export function mapGeometry(g, f) {
  if (!g) return g;
  const deep = (c, depth) => (depth === 0 ? f(c) : c.map((x) => deep(x, depth - 1)));
  const depth = { Point: 0, MultiPoint: 1, LineString: 1, MultiLineString: 2, Polygon: 2, MultiPolygon: 3 }[g.type];
  if (g.type === 'GeometryCollection') return { ...g, geometries: g.geometries.map((x) => mapGeometry(x, f)) };
  return { ...g, coordinates: deep(g.coordinates, depth) };
}
