/**
 * @module Merkle root over a point's blob ids. Both sides compute it the same
 * way (PROTOCOL.md "Merkle root"), so the gateway can check a point's
 * reference list without reading any blob.
 */
import { blake3 } from '@napi-rs/blake-hash';

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);
export const BLOB_ID_BYTES = 32;
/** Children per node. Wide nodes keep the root cheap (a few hash calls per 10,000 ids) while still allowing proofs per group. */
export const MERKLE_FANOUT = 1024;

function level(prefix: Buffer, items: Buffer): Buffer {
  const parents: Buffer[] = [];
  const width = MERKLE_FANOUT * 32;
  for (let i = 0; i < items.length; i += width) parents.push(blake3(Buffer.concat([prefix, items.subarray(i, i + width)])));
  return Buffer.concat(parents);
}

/** refs: concatenated 32-byte ids in the order they are stored. */
export function merkleRoot(refs: Buffer): Buffer {
  if (refs.length % BLOB_ID_BYTES !== 0) throw new Error(`reference list length ${refs.length} is not a multiple of ${BLOB_ID_BYTES}`);
  let nodes = level(LEAF, refs);
  if (nodes.length === 0) return blake3(LEAF);
  while (nodes.length > 32) nodes = level(NODE, nodes);
  return nodes;
}

/**
 * Sort and de-duplicate ids, given in lowercase hex (sources collect them
 * that way to de-duplicate as they go; its order is the bytes' order); the
 * canonical form of a reference list.
 */
export function canonicalRefs(hexIds: Iterable<string>): Buffer {
  const sorted = [...new Set(hexIds)].sort();
  const out = Buffer.allocUnsafe(sorted.length * BLOB_ID_BYTES);
  sorted.forEach((hex, i) => {
    if (hex.length !== 2 * BLOB_ID_BYTES || out.write(hex, i * BLOB_ID_BYTES, BLOB_ID_BYTES, 'hex') !== BLOB_ID_BYTES) throw new Error(`reference ${hex} is not a ${BLOB_ID_BYTES}-byte id in hex`);
  });
  return out;
}
