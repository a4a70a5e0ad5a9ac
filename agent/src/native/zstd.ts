import { loadAddon } from './load.js';

/** The low-level binding: its exports are what the agent's envelope code drives directly. */
export const zstdBinding: typeof import('zstd-napi/binding.js') = loadAddon('zstd-napi/binding.js');
