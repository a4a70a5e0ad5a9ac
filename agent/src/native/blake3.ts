import { loadAddon } from './load.js';

export const { Blake3Hasher, blake3 }: typeof import('@napi-rs/blake-hash') = loadAddon('@napi-rs/blake-hash');
