// The configured raster base map, kept apart from the map module so that the shell (main.js) can
// show and change it without loading MapLibre.

// baseMap is the configured raster base map: {url, crs} or null (kept in localStorage; a tile
// URL is not a secret).
export function baseMap() {
  try {
    const b = JSON.parse(localStorage.getItem('mw.tiles') || 'null');
    return b && b.url ? b : null;
  } catch {
    return null;
  }
}

export function setBaseMap(b) {
  if (b && b.url) localStorage.setItem('mw.tiles', JSON.stringify({ url: b.url, crs: b.crs === 'gcj02' ? 'gcj02' : 'wgs84' }));
  else localStorage.removeItem('mw.tiles');
}
