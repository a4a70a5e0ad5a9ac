import { loadAddon } from './load.js';

export const { xxh3 }: typeof import('@node-rs/xxhash') = loadAddon('@node-rs/xxhash');
