// Bundles the agent into dist/bundle/: one ESM file for the CLI and one per
// worker, so start-up loads a few files instead of hundreds (and a single
// executable can be built from them). Native addons stay external.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const workers = [];
const walk = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (/-worker\.ts$/.test(entry.name)) workers.push(full);
  }
};
walk(path.join(root, 'src'));
const entryPoints = { 'bulwark-agent': path.join(root, 'src/cli/main.ts') };
for (const w of workers) entryPoints[path.basename(w, '.ts')] = w;

// Chunk names carry content hashes: clear the old ones.
fs.rmSync(path.join(root, 'dist/bundle'), { recursive: true, force: true });
await build({
  entryPoints,
  outdir: path.join(root, 'dist/bundle'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  // Shared code in chunks, so commands loaded with import() do not weigh on the others' start-up.
  splitting: true,
  // Flat, beside the worker entry points: code in a chunk finds its workers by a relative URL.
  chunkNames: '[name]-[hash]',
  target: 'node20',
  minifyWhitespace: true,
  sourcemap: 'linked',
  external: ['sodium-native', 'zstd-napi', '@napi-rs/blake-hash', '@node-rs/xxhash', 'bufferutil', 'utf-8-validate', 'systeminformation'],
  // Bundled CommonJS dependencies call require(); give ESM output one.
  banner: { js: "import { createRequire as __bulwarkCreateRequire } from 'node:module'; const require = __bulwarkCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
fs.chmodSync(path.join(root, 'dist/bundle/bulwark-agent.js'), 0o755);
