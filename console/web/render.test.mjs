import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSoftware, pixelRatio, LOW_RES_SCALE } from './render.js';

test('isSoftware knows the software rasterisers by their renderer strings', () => {
  const f = (renderer, want) => assert.equal(isSoftware(renderer), want, renderer);
  f('ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)', true);
  f('Google SwiftShader', true);
  f('ANGLE (Mesa, llvmpipe (LLVM 15.0.6, 256 bits), OpenGL 4.5)', true);
  f('llvmpipe (LLVM 19.1.7, 256 bits)', true);
  f('softpipe', true);
  f('ANGLE (Microsoft, Microsoft Basic Render Driver Direct3D11 vs_5_0 ps_5_0, D3D11)', true);
  f('Software Rasterizer', true);
  f('ANGLE (Intel, Intel(R) UHD Graphics 620 Direct3D11 vs_5_0 ps_5_0, D3D11)', false);
  f('ANGLE (NVIDIA, NVIDIA GeForce GTX 1650 (0x00001F82) Direct3D11 vs_5_0 ps_5_0, D3D11)', false);
  f('Mali-G78', false);
  f('Apple GPU', false);
  f('', false);
  f(undefined, false);
});

test('pixelRatio lowers the resolution on software rendering only, and only when wanted', () => {
  const sw = 'ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)';
  const gpu = 'ANGLE (Intel, Intel(R) UHD Graphics 620 Direct3D11 vs_5_0 ps_5_0, D3D11)';
  const f = (renderer, dpr, lowRes, want) => assert.equal(pixelRatio(renderer, dpr, lowRes), want, `${renderer} ${dpr} ${lowRes}`);
  f(sw, 1, true, LOW_RES_SCALE);
  f(sw, 2, true, 2 * LOW_RES_SCALE);
  f(sw, 1, false, 1);
  f(gpu, 1, true, 1);
  f(gpu, 2, true, 2);
  f('', 1.5, true, 1.5);
});
