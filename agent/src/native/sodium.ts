import { loadAddon } from './load.js';

export const sodium: typeof import('sodium-native') = loadAddon('sodium-native');
