/**
 * @module Reading many blobs for a restore with few system calls: blobs that
 * lie close together in one pack are fetched with one read and sliced.
 */
import type { BlobLocation } from '../catalog/catalog.js';
import type { BlobStore } from '../store/pack-store.js';

const MAX_SPAN_BYTES = 4 * 1024 * 1024;
const MAX_GAP_BYTES = 64 * 1024;

/** Yields blobs in pack order; `located` must be sorted by pack, then offset. */
export async function* readLocated(store: BlobStore, located: BlobLocation[]): AsyncGenerator<{ id: Buffer; envelope: Buffer }> {
  for (let i = 0; i < located.length;) {
    const first = located[i];
    let j = i + 1;
    let end = first.offset + first.length;
    while (j < located.length) {
      const next = located[j];
      if (next.pack_seq !== first.pack_seq || next.offset < end || next.offset - end > MAX_GAP_BYTES || next.offset + next.length - first.offset > MAX_SPAN_BYTES) break;
      end = next.offset + next.length;
      j++;
    }
    const span = await store.readBlob(first.hash, first.offset, end - first.offset);
    for (let k = i; k < j; k++) {
      const loc = located[k];
      yield { id: loc.id, envelope: span.subarray(loc.offset - first.offset, loc.offset - first.offset + loc.length) };
    }
    i = j;
  }
}
