// Builds the console into dist/ (embedded in the muckwatch binary by console.go): one bundle of
// the sources in web/ with MapLibre GL and uPlot, minified, no source maps, deterministic.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist');
await esbuild.build({
  entryPoints: { app: 'web/main.js' },
  // split: the shell first, each screen (and MapLibre, uPlot) in chunks loaded when needed
  bundle: true, splitting: true, chunkNames: '[name]-[hash]', minify: true, format: 'esm', target: 'es2022', outdir: 'dist',
  legalComments: 'linked', logLevel: 'warning',
});
copyFileSync('web/index.html', 'dist/index.html');
for (const f of readdirSync('dist').filter((f) => /\.(js|css)$/.test(f)).sort()) console.log(`dist/${f}: ${(statSync('dist/' + f).size / 1024).toFixed(0)} KiB`);
