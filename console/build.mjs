// Builds the console into dist/ (embedded in the muckwatch binary by console.go): one bundle of
// the sources in web/ with MapLibre GL and uPlot, minified, no source maps, deterministic.
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist');
const built = await esbuild.build({
  entryPoints: { app: 'web/main.js' },
  // split: the shell first, each screen (and MapLibre, uPlot) in chunks loaded when needed
  bundle: true, splitting: true, chunkNames: '[name]-[hash]', minify: true, format: 'esm', target: 'es2022', outdir: 'dist',
  legalComments: 'linked', logLevel: 'warning', metafile: true,
});

// index.html asks for the command centre's code (its chunk, MapLibre's, and what they import) with
// <link rel=modulepreload> while the page is still parsed: the browser fetches and compiles the
// megabyte beside app.js and the sign-in instead of after them. The other screens need MapLibre
// too (squad, analyst, wall); only the centre's own small chunk is wasted on them.
const preloadFrom = ['web/centre.js', 'web/citymap.js', 'web/fleetlayer.js'];
const outputs = built.metafile.outputs;
const preload = new Set();
const visit = (out) => {
  if (preload.has(out)) return;
  preload.add(out);
  for (const i of outputs[out].imports) if (i.kind === 'import-statement') visit(i.path);
};
for (const [out, o] of Object.entries(outputs)) if (preloadFrom.includes(o.entryPoint)) visit(out);
if (preload.size < preloadFrom.length) throw new Error('build: the centre\'s chunks were not found in the build');
const links = [...preload].sort().map((out) => `<link rel="modulepreload" href="${out.replace(/^dist\//, '')}">`).join('\n');
const html = readFileSync('web/index.html', 'utf8');
if (!html.includes('<!-- modulepreload -->')) throw new Error('build: web/index.html has no <!-- modulepreload --> line');
writeFileSync('dist/index.html', html.replace('<!-- modulepreload -->', links));
for (const f of readdirSync('dist').filter((f) => /\.(js|css)$/.test(f)).sort()) console.log(`dist/${f}: ${(statSync('dist/' + f).size / 1024).toFixed(0)} KiB`);
