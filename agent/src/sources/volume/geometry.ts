/**
 * @module The block geometry of volume points, on its own so the volume
 * workers can import it without the map codec (and with it all of
 * protobufjs, ~20 ms of start-up per thread).
 */
export const BLOCK_SIZE = 4096;
/** Blocks per group hash: a scan hashes a 64 KiB group first, and its blocks only if it changed. */
export const GROUP_BLOCKS = 16;
