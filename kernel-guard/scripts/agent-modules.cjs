'use strict';
// Prints the package directories the agent bundle (agent/dist/bundle) needs
// at run time: its esbuild externals (native addons, systeminformation) and
// their dependency closure, each as a path relative to the repository root
// (node_modules/...). mkinitramfs.sh copies them into the guest.
const fs = require('node:fs');
const path = require('node:path');
const root = path.resolve(__dirname, '../..');
const externals = ['sodium-native', 'zstd-napi', '@napi-rs/blake-hash', '@node-rs/xxhash', 'bufferutil', 'utf-8-validate', 'systeminformation'];
const seen = new Set();
function add(name, fromDir) {
  // node's lookup by hand (require.resolve of NAME/package.json fails for
  // packages whose "exports" hide it)
  let pj = null;
  for (let d = fromDir; ; d = path.dirname(d)) {
    const f = path.join(d, 'node_modules', name, 'package.json');
    if (fs.existsSync(f)) { pj = f; break; }
    if (d === path.dirname(d)) return; // optional, not installed
  }
  const dir = path.dirname(pj);
  if (seen.has(dir)) return;
  seen.add(dir);
  const p = JSON.parse(fs.readFileSync(pj, 'utf8'));
  for (const d of Object.keys({ ...p.dependencies, ...p.optionalDependencies })) add(d, dir);
}
for (const e of externals) add(e, path.join(root, 'agent'));
for (const d of [...seen].sort()) console.log(path.relative(root, fs.realpathSync(d)));
