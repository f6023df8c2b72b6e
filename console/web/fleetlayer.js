// The live fleet drawn straight into the map's WebGL context: one buffer of points, replaced
// whole at each refresh, drawn as round point sprites coloured by state. A GeoJSON source would
// send 15,000 features through MapLibre's worker and tile index every 10 s and draw them tile by
// tile; on a machine without a GPU that alone took seconds per refresh. Picking (the plate on
// hover) is a linear scan of the same points in mercator units, well under a millisecond.
import maplibregl from 'maplibre-gl';

// states in drawing order: the alerts last, on top
const order = ['no_signal', 'stopped', 'moving', 'alert_info', 'alert_warning', 'alert_severe'];

// A point is solid for at least this many drawing-buffer pixels from its centre. On software
// rendering the map is drawn at half the screen's resolution (render.js) and scaled up: a truck of
// 2.5 CSS pixels would be solid for barely one pixel and blur into its neighbours' colours.
const MIN_SOLID_PX = 1.5;

const vertexSource = `
attribute vec2 a_pos;
attribute float a_state;
uniform mat4 u_matrix;
uniform float u_radius;
uniform vec3 u_colour[6];
varying vec3 v_colour;
varying float v_severe;
void main() {
  gl_Position = u_matrix * vec4(a_pos, 0.0, 1.0);
  v_severe = a_state > 4.5 ? 1.0 : 0.0;
  // a severe alert is drawn larger, with a white ring
  gl_PointSize = 2.0 * u_radius * (1.0 + v_severe) + 2.0;
  int i = int(a_state + 0.5);
  v_colour = u_colour[0];
  for (int k = 1; k < 6; k++) if (k == i) v_colour = u_colour[k];
}`;

const fragmentSource = `
precision highp float;
varying vec3 v_colour;
varying float v_severe;
uniform float u_radius;
uniform float u_px; // drawing-buffer pixels per CSS pixel
void main() {
  // solid to the radius, fading out over the next drawing-buffer pixel
  float r = u_radius * (1.0 + v_severe) + 1.0;
  float d = length(gl_PointCoord - 0.5) * 2.0 * r; // drawing-buffer pixels from the centre
  float a = clamp(r - d, 0.0, 1.0);
  if (a <= 0.0) discard;
  // the severe ring is 2.5 CSS pixels wide whatever the resolution
  vec3 c = v_severe > 0.5 && d > r - 2.5 * u_px ? vec3(1.0) : v_colour;
  gl_FragColor = vec4(c * a, a); // premultiplied, as MapLibre blends
}`;

function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) / 255, ((n >> 8) & 255) / 255, (n & 255) / 255];
}

function compile(gl, type, source) {
  const s = gl.createShader(type);
  gl.shaderSource(s, source);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error('fleet layer: shader: ' + gl.getShaderInfoLog(s));
  return s;
}

export class FleetLayer {
  // colours maps each state to '#rrggbb'; radius(zoom) is a point's radius in CSS pixels.
  constructor(id, colours, radius) {
    this.radiusAt = radius;
    this.id = id;
    this.type = 'custom';
    this.renderingMode = '2d';
    this.colours = new Float32Array(order.flatMap((s) => rgb(colours[s] || '#444444')));
    this.count = 0;
    this.xy = new Float32Array(0); // mercator x, y per point, in drawing order
    this.state = new Float32Array(0);
    this.rows = []; // the vehicle rows behind the points, same order
    this.dirty = false;
    this.matrix = new Float32Array(16);
  }

  // set replaces the fleet: rows are /api/v1/fleet rows [plate, lon, lat, kmh, time, state],
  // toMap converts a WGS-84 [lon, lat] to the map's datum.
  set(rows, toMap) {
    const rank = Object.fromEntries(order.map((s, i) => [s, i]));
    const sorted = rows.filter((r) => Number.isFinite(r[1]) && Number.isFinite(r[2]))
      .sort((a, b) => (rank[a[5]] ?? 0) - (rank[b[5]] ?? 0));
    const n = sorted.length;
    this.xy = new Float32Array(2 * n);
    this.state = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const c = maplibregl.MercatorCoordinate.fromLngLat(toMap([sorted[i][1], sorted[i][2]]));
      this.xy[2 * i] = c.x;
      this.xy[2 * i + 1] = c.y;
      this.state[i] = rank[sorted[i][5]] ?? 0;
    }
    this.rows = sorted;
    this.count = n;
    this.dirty = true;
    this.map?.triggerRepaint();
  }

  onAdd(map, gl) {
    this.map = map;
    const p = gl.createProgram();
    gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, vertexSource));
    gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, fragmentSource));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error('fleet layer: program: ' + gl.getProgramInfoLog(p));
    this.program = p;
    this.loc = {
      pos: gl.getAttribLocation(p, 'a_pos'), state: gl.getAttribLocation(p, 'a_state'),
      matrix: gl.getUniformLocation(p, 'u_matrix'), radius: gl.getUniformLocation(p, 'u_radius'), colour: gl.getUniformLocation(p, 'u_colour'),
      px: gl.getUniformLocation(p, 'u_px'),
    };
    this.posBuf = gl.createBuffer();
    this.stateBuf = gl.createBuffer();
    this.dirty = true;
  }

  onRemove(map, gl) {
    gl.deleteBuffer(this.posBuf);
    gl.deleteBuffer(this.stateBuf);
    gl.deleteProgram(this.program);
    this.map = null;
  }

  render(gl, args) {
    if (!this.count) return;
    if (this.dirty) {
      gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuf);
      gl.bufferData(gl.ARRAY_BUFFER, this.xy, gl.DYNAMIC_DRAW);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.stateBuf);
      gl.bufferData(gl.ARRAY_BUFFER, this.state, gl.DYNAMIC_DRAW);
      this.dirty = false;
    }
    // the drawing buffer's pixels per CSS pixel: below the screen's on software rendering (render.js)
    const dpr = this.map.getPixelRatio();
    gl.useProgram(this.program);
    // MapLibre 5 gives custom layers args: defaultProjectionData.mainMatrix takes mercator
    // coordinates (0..1) to clip space; modelViewProjectionMatrix takes world pixels, and with it
    // every truck landed in one corner of the world, off the screen.
    this.matrix.set(args.defaultProjectionData.mainMatrix);
    gl.uniformMatrix4fv(this.loc.matrix, false, this.matrix);
    gl.uniform1f(this.loc.radius, this.radius(this.map.getZoom()) * dpr);
    gl.uniform1f(this.loc.px, dpr);
    gl.uniform3fv(this.loc.colour, this.colours);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuf);
    gl.enableVertexAttribArray(this.loc.pos);
    gl.vertexAttribPointer(this.loc.pos, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.stateBuf);
    gl.enableVertexAttribArray(this.loc.state);
    gl.vertexAttribPointer(this.loc.state, 1, gl.FLOAT, false, 0, 0);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.drawArrays(gl.POINTS, 0, this.count);
    gl.disableVertexAttribArray(this.loc.pos);
    gl.disableVertexAttribArray(this.loc.state);
  }

  // radius answers the radius a truck is drawn with at zoom, in CSS pixels: radiusAt(zoom), or
  // more where the drawing buffer's resolution is low (MIN_SOLID_PX).
  radius(zoom) {
    const px = this.map ? this.map.getPixelRatio() : 1;
    return Math.max(this.radiusAt(zoom), MIN_SOLID_PX / px);
  }

  // at answers the row of the truck drawn under the screen point {x, y}, the topmost, or null.
  at(point) {
    if (!this.map || !this.count) return null;
    const r = this.radius(this.map.getZoom()) + 3;
    const a = maplibregl.MercatorCoordinate.fromLngLat(this.map.unproject([point.x - r, point.y - r]));
    const b = maplibregl.MercatorCoordinate.fromLngLat(this.map.unproject([point.x + r, point.y + r]));
    const c = maplibregl.MercatorCoordinate.fromLngLat(this.map.unproject([point.x, point.y]));
    let best = -1, bestD = Infinity;
    for (let i = 0; i < this.count; i++) {
      const x = this.xy[2 * i], y = this.xy[2 * i + 1];
      if (x < a.x || x > b.x || y < a.y || y > b.y) continue;
      const d = (x - c.x) ** 2 + (y - c.y) ** 2;
      if (d < bestD || (d === bestD && i > best)) { best = i; bestD = d; }
    }
    return best < 0 ? null : this.rows[best];
  }
}
