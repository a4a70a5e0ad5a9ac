/**
 * @module Freeing a buffer's memory the moment nothing needs it. A buffer that
 * lived through two scavenges (a blob waiting for its acknowledgement, a frame
 * waiting for its pack) is freed only by the next full collection, which can
 * be seconds and hundreds of MiB away; moved into an object that dies young
 * (`structuredClone` with transfer), it goes at the next scavenge. Every view
 * of it reads as empty from then on.
 */

/** Frees `data`'s memory now if `data` is all of it (a view into shared memory is left alone). */
export function freeNow(data: Uint8Array | ArrayBuffer): void {
  const memory = data instanceof ArrayBuffer ? data : data.buffer;
  if (!(memory instanceof ArrayBuffer)) return;
  if (!(data instanceof ArrayBuffer) && (data.byteOffset !== 0 || data.byteLength !== memory.byteLength)) return;
  structuredClone(memory, { transfer: [memory] });
}
