/**
 * @module Freeing a buffer's memory the moment nothing needs it. A buffer that
 * lived through two scavenges (a blob waiting for its acknowledgement, a frame
 * waiting for its pack) is freed only by the next full collection, which can
 * be seconds and hundreds of MiB away; moved into an object that dies young
 * (`structuredClone` with transfer), it goes at the next scavenge. Every view
 * of it reads as empty from then on.
 */

/** Frees `data`'s memory now if `data` is all of it (shared memory, or a view into part of it, is left alone). */
export function freeNow(data: Uint8Array | ArrayBufferLike): void {
  const view = data instanceof Uint8Array ? data : undefined;
  const memory = view ? view.buffer : data;
  if (!(memory instanceof ArrayBuffer)) return;
  if (view && (view.byteOffset !== 0 || view.byteLength !== memory.byteLength)) return;
  structuredClone(memory, { transfer: [memory] });
}
