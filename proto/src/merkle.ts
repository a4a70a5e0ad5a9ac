/**
 * @module Merkle root over a point's blob ids. Both sides compute it the same
 * way (PROTOCOL.md "Merkle root"), so the gateway can check a point's
 * reference list without reading any blob.
 */
import { blake3 } from '@napi-rs/blake-hash';

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);
export const BLOB_ID_BYTES = 32;

/** refs: concatenated 32-byte ids in the order they are stored. */
export function merkleRoot(refs: Buffer): Buffer {
  if (refs.length % BLOB_ID_BYTES !== 0) throw new Error(`reference list length ${refs.length} is not a multiple of ${BLOB_ID_BYTES}`);
  let level: Buffer[] = [];
  for (let i = 0; i < refs.length; i += BLOB_ID_BYTES) {
    level.push(blake3(Buffer.concat([LEAF, refs.subarray(i, i + BLOB_ID_BYTES)])));
  }
  if (level.length === 0) return blake3(LEAF);
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? blake3(Buffer.concat([NODE, level[i], level[i + 1]])) : level[i]);
    }
    level = next;
  }
  return level[0];
}

/** Sort and de-duplicate ids; the canonical form of a reference list. */
export function canonicalRefs(ids: Iterable<Buffer>): Buffer {
  const unique = new Map<string, Buffer>();
  for (const id of ids) unique.set(id.toString('hex'), id);
  const keys = [...unique.keys()].sort();
  return Buffer.concat(keys.map((k) => unique.get(k)!));
}
