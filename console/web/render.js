// How the maps are drawn where the browser's WebGL is software: thin clients and VDI desktops
// without a GPU get WebGL from a CPU rasteriser (ANGLE over SwiftShader in Chromium, Mesa's
// llvmpipe, Windows' Basic Render Driver), which fills every pixel of every frame on the CPU and,
// with software compositing, reads each frame back for the compositor. There the command centre's
// map is drawn at a lower resolution (LOW_RES_SCALE of the screen's pixel ratio, scaled up by the
// browser): a quarter of the pixels to fill and read back. It is a setting (the header's 底图
// dialog), on unless switched off, and it has no effect on a GPU. A module of its own so that the shell can
// show the setting without loading MapLibre.

export const LOW_RES_SCALE = 0.5;

const software = /swiftshader|llvmpipe|softpipe|software|basic render/i;

// isSoftware answers whether a WebGL renderer string names a software rasteriser.
export function isSoftware(renderer) {
  return software.test(renderer || '');
}

// rendererOf answers a WebGL context's renderer: the unmasked one where the browser tells it.
export function rendererOf(gl) {
  if (!gl) return '';
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  return String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || '');
}

// lowResOn answers whether the low-resolution map on software rendering is wanted (the default).
export function lowResOn() {
  return localStorage.getItem('mw.lowres') !== 'off';
}

export function setLowRes(on) {
  localStorage.setItem('mw.lowres', on ? 'on' : 'off');
}

// pixelRatio answers the drawing-buffer pixel ratio for a map drawn by renderer on a screen of
// devicePixelRatio dpr: dpr, or LOW_RES_SCALE of it on software rendering with the setting on.
export function pixelRatio(renderer, dpr, lowRes = lowResOn()) {
  return lowRes && isSoftware(renderer) ? dpr * LOW_RES_SCALE : dpr;
}

// The renderer the last map was drawn with, for the settings dialog ('' before any map).
let lastRenderer = '';
export const seenRenderer = () => lastRenderer;
export function sawRenderer(r) {
  lastRenderer = r;
}
