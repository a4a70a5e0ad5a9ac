'use strict';
// Bundles the gateway stand-in for the SEA: gateway/src/guard/client.ts,
// transpiled to CommonJS with the workspace's TypeScript, wrapped as
// `__bulwarkGuardClient`, followed by test/gateway-standin.cjs. When
// TypeScript is not installed the stand-in uses its own copy of the client.
const fs = require('node:fs');
const [clientTs, standin, out] = process.argv.slice(2);
let prelude = '';
try {
  const ts = require(require.resolve('typescript', { paths: [__dirname] }));
  const js = ts.transpileModule(fs.readFileSync(clientTs, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  prelude = `const __bulwarkGuardClient = (() => { const module = { exports: {} }; const exports = module.exports;\n${js}\nreturn module.exports; })();\n`;
} catch (e) {
  console.error(`kernel-guard: no TypeScript (${e.code || e.message}): the stand-in uses its copy of the guard client`);
}
const body = fs.readFileSync(standin, 'utf8').replace(/^'use strict';\n/, '');
fs.writeFileSync(out, `'use strict';\n${prelude}${body}`);
