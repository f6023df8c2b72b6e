import{a as A}from"./chunk-VPA7RRBY.js";import{b as x}from"./chunk-SQE76S5B.js";var c=x(A(),1),d=["no_signal","stopped","moving","alert_info","alert_warning","alert_severe"],l=1.5,v=`
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
}`,y=`
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
}`;function b(s){let t=parseInt(s.slice(1),16);return[(t>>16)/255,(t>>8&255)/255,(t&255)/255]}function p(s,t,r){let e=s.createShader(t);if(s.shaderSource(e,r),s.compileShader(e),!s.getShaderParameter(e,s.COMPILE_STATUS))throw new Error("fleet layer: shader: "+s.getShaderInfoLog(e));return e}var _=class{constructor(t,r,e){this.radiusAt=e,this.id=t,this.type="custom",this.renderingMode="2d",this.colours=new Float32Array(d.flatMap(o=>b(r[o]||"#444444"))),this.count=0,this.xy=new Float32Array(0),this.state=new Float32Array(0),this.rows=[],this.dirty=!1,this.matrix=new Float32Array(16)}set(t,r){let e=Object.fromEntries(d.map((i,a)=>[i,a])),o=t.filter(i=>Number.isFinite(i[1])&&Number.isFinite(i[2])).sort((i,a)=>(e[i[5]]??0)-(e[a[5]]??0)),n=o.length;this.xy=new Float32Array(2*n),this.state=new Float32Array(n);for(let i=0;i<n;i++){let a=c.default.MercatorCoordinate.fromLngLat(r([o[i][1],o[i][2]]));this.xy[2*i]=a.x,this.xy[2*i+1]=a.y,this.state[i]=e[o[i][5]]??0}this.rows=o,this.count=n,this.dirty=!0,this.map?.triggerRepaint()}onAdd(t,r){this.map=t;let e=r.createProgram();if(r.attachShader(e,p(r,r.VERTEX_SHADER,v)),r.attachShader(e,p(r,r.FRAGMENT_SHADER,y)),r.linkProgram(e),!r.getProgramParameter(e,r.LINK_STATUS))throw new Error("fleet layer: program: "+r.getProgramInfoLog(e));this.program=e,this.loc={pos:r.getAttribLocation(e,"a_pos"),state:r.getAttribLocation(e,"a_state"),matrix:r.getUniformLocation(e,"u_matrix"),radius:r.getUniformLocation(e,"u_radius"),colour:r.getUniformLocation(e,"u_colour"),px:r.getUniformLocation(e,"u_px")},this.posBuf=r.createBuffer(),this.stateBuf=r.createBuffer(),this.dirty=!0}onRemove(t,r){r.deleteBuffer(this.posBuf),r.deleteBuffer(this.stateBuf),r.deleteProgram(this.program),this.map=null}render(t,r){if(!this.count)return;this.dirty&&(t.bindBuffer(t.ARRAY_BUFFER,this.posBuf),t.bufferData(t.ARRAY_BUFFER,this.xy,t.DYNAMIC_DRAW),t.bindBuffer(t.ARRAY_BUFFER,this.stateBuf),t.bufferData(t.ARRAY_BUFFER,this.state,t.DYNAMIC_DRAW),this.dirty=!1);let e=this.map.getPixelRatio();t.useProgram(this.program),this.matrix.set(r.defaultProjectionData.mainMatrix),t.uniformMatrix4fv(this.loc.matrix,!1,this.matrix),t.uniform1f(this.loc.radius,this.radius(this.map.getZoom())*e),t.uniform1f(this.loc.px,e),t.uniform3fv(this.loc.colour,this.colours),t.bindBuffer(t.ARRAY_BUFFER,this.posBuf),t.enableVertexAttribArray(this.loc.pos),t.vertexAttribPointer(this.loc.pos,2,t.FLOAT,!1,0,0),t.bindBuffer(t.ARRAY_BUFFER,this.stateBuf),t.enableVertexAttribArray(this.loc.state),t.vertexAttribPointer(this.loc.state,1,t.FLOAT,!1,0,0),t.enable(t.BLEND),t.blendFunc(t.ONE,t.ONE_MINUS_SRC_ALPHA),t.drawArrays(t.POINTS,0,this.count),t.disableVertexAttribArray(this.loc.pos),t.disableVertexAttribArray(this.loc.state)}radius(t){let r=this.map?this.map.getPixelRatio():1;return Math.max(this.radiusAt(t),l/r)}at(t){if(!this.map||!this.count)return null;let r=this.radius(this.map.getZoom())+3,e=c.default.MercatorCoordinate.fromLngLat(this.map.unproject([t.x-r,t.y-r])),o=c.default.MercatorCoordinate.fromLngLat(this.map.unproject([t.x+r,t.y+r])),n=c.default.MercatorCoordinate.fromLngLat(this.map.unproject([t.x,t.y])),i=-1,a=1/0;for(let u=0;u<this.count;u++){let f=this.xy[2*u],h=this.xy[2*u+1];if(f<e.x||f>o.x||h<e.y||h>o.y)continue;let m=(f-n.x)**2+(h-n.y)**2;(m<a||m===a&&u>i)&&(i=u,a=m)}return i<0?null:this.rows[i]}};export{_ as a};
