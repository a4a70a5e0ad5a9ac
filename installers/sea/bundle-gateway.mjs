// Bundles gateway/src/cli/main.ts into ONE CommonJS script for a Node single
// executable (a SEA's entry point must be one CJS file; its require() sees
// only built-in modules). Native addons cannot be required from inside a
// SEA, so the plugin below replaces each addon's loader with
// `__bulwarkAddon(NAME)`, which process.dlopen()s NAME from the directory of
// the executable (from the bundle's directory when run by plain node), and
// copies the .node files there.
//
//   node bundle-gateway.mjs OUT_DIR [--test-standin FILE]
//        → OUT_DIR/bulwark-gateway.cjs + *.node + addons.txt
//
// --test-standin (kernel-guard's qemu test only, never an installer): FILE is
// a CommonJS script whose verbs (ingest write delete status status-store
// hold-open) the binary runs instead of the gateway's CLI, with the gateway's
// guard client as global __bulwarkGuardClient. One authenticated executable
// can then both serve as the real gateway and do the raw store operations
// the attack cases need.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const argv = process.argv.slice(2);
const standinAt = argv.indexOf('--test-standin');
const standin = standinAt >= 0 ? path.resolve(argv.splice(standinAt, 2)[1]) : null;
const out = path.resolve(argv[0] ?? path.join(root, 'gateway/dist/sea'));
const gwRequire = createRequire(path.join(root, 'gateway/package.json'));
const pkgDir = (name, from = gwRequire) => path.dirname(from.resolve(`${name}/package.json`));

// Each addon: the loader module to replace, the .node file, the name it gets beside the binary.
const sqlite = pkgDir('sqlite3');
const sodium = pkgDir('sodium-native');
const blake = pkgDir('@napi-rs/blake-hash');
const blakeRequire = createRequire(path.join(blake, 'package.json'));
const arch = `${process.platform}-${process.arch}`;
const addons = [
  { loader: path.join(sqlite, 'lib/sqlite3-binding.js'), file: path.join(sqlite, 'build/Release/node_sqlite3.node'), name: 'node_sqlite3.node' },
  { loader: path.join(sodium, 'binding.js'), file: path.join(sodium, `prebuilds/${arch}/sodium-native.node`), name: 'sodium-native.node' },
  {
    loader: path.join(blake, 'index.js'),
    file: path.join(pkgDir(`@napi-rs/blake-hash-${arch}-gnu`, blakeRequire), `blake.${arch}-gnu.node`),
    name: 'blake-hash.node',
  },
];
// bufferutil is optional for ws (it falls back to JS): ship it when present.
let bufferutil = null;
try {
  const bu = pkgDir('bufferutil', createRequire(path.join(pkgDir('ws'), 'package.json')));
  const f = path.join(bu, `prebuilds/${arch}/bufferutil.node`);
  if (fs.existsSync(f)) bufferutil = { loader: path.join(bu, 'index.js'), file: f, name: 'bufferutil.node', optional: true };
} catch { /* not installed */ }
if (bufferutil) addons.push(bufferutil);
for (const a of addons) if (!fs.existsSync(a.file)) throw new Error(`addon not built: ${a.file}`);

const byLoader = new Map(addons.map((a) => [fs.realpathSync(a.loader), a]));
const addonPlugin = {
  name: 'bulwark-addons',
  setup(b) {
    // Optional requires in try/catch of modules that are not installed (ws:
    // utf-8-validate; debug: supports-color). In a SEA a runtime require() of
    // a non-builtin prints a warning, so the bundle gets a module that throws
    // the way a missing one would.
    b.onResolve({ filter: /^(utf-8-validate|supports-color)$/ }, (args) => ({ path: args.path, namespace: 'bulwark-absent' }));
    b.onLoad({ filter: /.*/, namespace: 'bulwark-absent' }, (args) => ({
      contents: `throw Object.assign(new Error('${args.path} is not bundled'), { code: 'MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
    b.onLoad({ filter: /\.js$/ }, (args) => {
      const a = byLoader.get(fs.realpathSync(args.path));
      if (!a) return undefined;
      const contents = a.optional
        ? `try { module.exports = __bulwarkAddon(${JSON.stringify(a.name)}); } catch { module.exports = require('./fallback'); }`
        : `module.exports = __bulwarkAddon(${JSON.stringify(a.name)});`;
      return { contents, loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

// Runs before any bundled module. In a SEA, __filename is the executable.
const banner = `'use strict';
const __bulwarkAddonDir = (() => {
  let sea = false;
  try { sea = require('node:sea').isSea(); } catch {}
  return require('node:path').dirname(sea ? process.execPath : __filename);
})();
function __bulwarkAddon(name) {
  const m = { exports: {} };
  process.dlopen(m, require('node:path').join(__bulwarkAddonDir, name));
  return m.exports;
}`;

fs.mkdirSync(out, { recursive: true });
const mainTs = path.join(root, 'gateway/src/cli/main.ts');
const entry = standin
  ? {
      stdin: {
        contents: `const verbs = ['ingest', 'write', 'delete', 'status', 'status-store', 'hold-open'];
if (verbs.includes(process.argv[2])) {
  globalThis.__bulwarkGuardClient = require(${JSON.stringify(path.join(root, 'gateway/src/guard/client.ts'))});
  require(${JSON.stringify(standin)});
} else {
  require(${JSON.stringify(mainTs)});
}`,
        resolveDir: root,
        sourcefile: 'sea-test-entry.js',
        loader: 'js',
      },
    }
  : { entryPoints: [mainTs] };
const result = await build({
  ...entry,
  absWorkingDir: root,
  outfile: path.join(out, 'bulwark-gateway.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minifyWhitespace: true,
  banner: { js: banner },
  plugins: [addonPlugin],
  logLevel: 'warning',
  metafile: true,
});
// the first line of main.ts is a #! line: harmless in CJS, esbuild keeps it first
const loaded = new Set(Object.keys(result.metafile.inputs).filter((p) => !p.includes(':') && p !== 'sea-test-entry.js').map((p) => fs.realpathSync(path.resolve(root, p))));
for (const a of addons) {
  if (!loaded.has(fs.realpathSync(a.loader)) && !a.optional) throw new Error(`the bundle does not reach ${a.loader}: the addon plugin is out of date`);
  fs.copyFileSync(a.file, path.join(out, a.name));
}
fs.writeFileSync(path.join(out, 'addons.txt'), addons.map((a) => a.name).join('\n') + '\n');
console.log(`bundled ${path.join(out, 'bulwark-gateway.cjs')} (${(fs.statSync(path.join(out, 'bulwark-gateway.cjs')).size / 1e6).toFixed(1)} MB), addons: ${addons.map((a) => a.name).join(' ')}`);
