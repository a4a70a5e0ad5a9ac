/**
 * @module The native addons are CommonJS and are loaded with require(): an
 * ES-module import of one first runs Node's export-name scanner over its
 * entry file, which cost every thread of a run (the main one and each
 * worker) ~10 ms per addon, a tenth of a no-change incremental's CPU.
 * One module per addon, so a thread loads only the ones it uses.
 */
import { createRequire } from 'node:module';

export const loadAddon = createRequire(import.meta.url);
