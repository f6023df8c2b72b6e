// The same known pairs as geo/coord_test.go: the console must shift exactly as the server does.
import test from 'node:test';
import assert from 'node:assert/strict';
import { wgs84ToGcj02, gcj02ToWgs84, mapGeometry } from './coord.js';

const cases = [
  [[116.404, 39.915], [116.41024449916938, 39.91640428150164]],
  [[114.0579, 22.5431], [114.06301399856547, 22.54038281422246]],
];

test('WGS-84 to GCJ-02 matches the server', () => {
  for (const [w, g] of cases) {
    const got = wgs84ToGcj02(w);
    assert.ok(Math.abs(got[0] - g[0]) < 1e-9 && Math.abs(got[1] - g[1]) < 1e-9, `${w} -> ${got}, want ${g}`);
  }
});

test('GCJ-02 back to WGS-84 within a millimetre', () => {
  for (const [w, g] of cases) {
    const back = gcj02ToWgs84(g);
    assert.ok(Math.abs(back[0] - w[0]) < 1e-8 && Math.abs(back[1] - w[1]) < 1e-8, `${g} -> ${back}, want ${w}`);
  }
});

test('outside China nothing moves', () => {
  assert.deepEqual(wgs84ToGcj02([2.35, 48.85]), [2.35, 48.85]);
});

test('mapGeometry reaches every position', () => {
  const g = { type: 'MultiPolygon', coordinates: [[[[1, 2], [3, 4], [1, 2]]]] };
  const out = mapGeometry(g, ([x, y]) => [x + 1, y]);
  assert.deepEqual(out.coordinates, [[[[2, 2], [4, 4], [2, 2]]]]);
  assert.deepEqual(g.coordinates[0][0][0], [1, 2], 'the input is not changed');
});
