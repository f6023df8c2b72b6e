// Builds the console into dist/ (embedded in the muckwatch binary by console.go): one bundle of
// the sources in web/ with MapLibre GL and uPlot, minified, no source maps, deterministic.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist');
await esbuild.build({
  entryPoints: { app: 'web/main.js' },
  bundle: true, minify: true, format: 'esm', target: 'es2022', outdir: 'dist',
  legalComments: 'linked', logLevel: 'warning',
});
copyFileSync('web/index.html', 'dist/index.html');
for (const f of ['app.js', 'app.css']) console.log(`dist/${f}: ${(statSync('dist/' + f).size / 1024).toFixed(0)} KiB`);
