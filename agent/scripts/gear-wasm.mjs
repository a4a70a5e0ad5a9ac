// Assembles src/chunking/gear.wat into src/chunking/gear-wasm.ts (the bytes, in base64).
// Run it after changing gear.wat; fastcdc.test.ts fails while the two disagree.
import fs from 'node:fs';
import wabtInit from 'wabt';

async function assembleGearWasm(watFile) {
  const wabt = await wabtInit();
  const module = wabt.parseWat(watFile, fs.readFileSync(watFile, 'utf8'));
  try {
    return Buffer.from(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = new URL('../src/chunking/', import.meta.url).pathname;
  const bytes = await assembleGearWasm(`${dir}gear.wat`);
  fs.writeFileSync(`${dir}gear-wasm.ts`, `/** gear.wat assembled by agent/scripts/gear-wasm.mjs: do not edit. */\nexport const GEAR_WASM = Buffer.from('${bytes.toString('base64')}', 'base64');\n`);
  console.log(`gear-wasm.ts: ${bytes.length} bytes`);
}
