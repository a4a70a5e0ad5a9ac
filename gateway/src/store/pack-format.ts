/**
 * @module Byte layout of a pack file (FORMAT.md "Pack files"): one place that
 * writes and parses headers, entries and footers.
 */

export const PACK_MAGIC = Buffer.from('BWPACK01');
export const PACK_END_MAGIC = Buffer.from('BWPKEND1');
/** Written: 2 (header carries retention class, retain-until and a nonce). Read: 1 and 2. */
export const PACK_VERSION = 2;
export const PACK_NONCE_BYTES = 16;
export const BLOB_ID_BYTES = 32;
/** Content hash, footer length, end magic. */
export const TRAILER_BYTES = 32 + 4 + 8;
export const INDEX_ENTRY_BYTES = BLOB_ID_BYTES + 8 + 4;

export interface PackEntry { id: Buffer; offset: number; length: number }
/** Retention a pack is born with: its class (the policy id) and retain-until on the retention clock (ms). */
export interface PackRetention { class: string; retainUntil: number }
export interface PackFooter { agentId: string; entries: PackEntry[]; hash: Buffer; retention?: PackRetention; headerBytes: number }

/** Version 2 header: magic, version, agent id, retention class, retain-until, nonce (every pack is unique, so a re-sent pack never collides with a damaged one). */
export function packHeader(agentId: string, retention: PackRetention, nonce: Buffer): Buffer {
  const name = Buffer.from(agentId, 'utf8');
  const cls = Buffer.from(retention.class, 'utf8');
  const header = Buffer.alloc(8 + 4 + 2 + name.length + 2 + cls.length + 8 + PACK_NONCE_BYTES);
  PACK_MAGIC.copy(header, 0);
  header.writeUInt32LE(PACK_VERSION, 8);
  header.writeUInt16LE(name.length, 12);
  name.copy(header, 14);
  let at = 14 + name.length;
  header.writeUInt16LE(cls.length, at);
  cls.copy(header, at + 2);
  at += 2 + cls.length;
  header.writeBigUInt64LE(BigInt(retention.retainUntil), at);
  nonce.copy(header, at + 8);
  return header;
}

/** Parse the header fields; `head` is the first bytes of the file. */
export function parseHeader(head: Buffer): { agentId: string; retention?: PackRetention; headerBytes: number } {
  if (head.length < 14 || !head.subarray(0, 8).equals(PACK_MAGIC)) throw new PackFormatError('not a pack file (bad magic)');
  const version = head.readUInt32LE(8);
  if (version !== 1 && version !== 2) throw new PackFormatError(`unsupported pack version ${version}`);
  const nameLength = head.readUInt16LE(12);
  if (head.length < 14 + nameLength) throw new PackFormatError('pack header is truncated');
  const agentId = head.subarray(14, 14 + nameLength).toString('utf8');
  if (version === 1) return { agentId, headerBytes: 14 + nameLength };
  let at = 14 + nameLength;
  if (head.length < at + 2) throw new PackFormatError('pack header is truncated');
  const clsLength = head.readUInt16LE(at);
  if (head.length < at + 2 + clsLength + 8 + PACK_NONCE_BYTES) throw new PackFormatError('pack header is truncated');
  const cls = head.subarray(at + 2, at + 2 + clsLength).toString('utf8');
  at += 2 + clsLength;
  const retainUntil = Number(head.readBigUInt64LE(at));
  return { agentId, retention: { class: cls, retainUntil }, headerBytes: at + 8 + PACK_NONCE_BYTES };
}

/** Entry prefix: u32 length of the envelope, then the blob id. */
export function entryPrefix(id: Buffer, envelopeLength: number): Buffer {
  const prefix = Buffer.alloc(4 + BLOB_ID_BYTES);
  prefix.writeUInt32LE(envelopeLength, 0);
  id.copy(prefix, 4);
  return prefix;
}
export const ENTRY_PREFIX_BYTES = 4 + BLOB_ID_BYTES;

/** Index + count, before the trailer. */
export function packIndex(entries: PackEntry[]): Buffer {
  const index = Buffer.alloc(entries.length * INDEX_ENTRY_BYTES + 4);
  entries.forEach((e, i) => {
    const at = i * INDEX_ENTRY_BYTES;
    e.id.copy(index, at);
    index.writeBigUInt64LE(BigInt(e.offset), at + BLOB_ID_BYTES);
    index.writeUInt32LE(e.length, at + BLOB_ID_BYTES + 8);
  });
  index.writeUInt32LE(entries.length, entries.length * INDEX_ENTRY_BYTES);
  return index;
}

export function packTrailer(hash: Buffer, footerLength: number): Buffer {
  const trailer = Buffer.alloc(TRAILER_BYTES);
  hash.copy(trailer, 0);
  trailer.writeUInt32LE(footerLength, 32);
  PACK_END_MAGIC.copy(trailer, 36);
  return trailer;
}

export class PackFormatError extends Error {}

/** Parse header, index and trailer from a whole pack's bytes or its head and tail. */
export function parseFooter(head: Buffer, tail: Buffer, fileSize: number): PackFooter {
  const { agentId, retention, headerBytes } = parseHeader(head);
  if (tail.length < TRAILER_BYTES) throw new PackFormatError('pack too short for a trailer');
  const trailer = tail.subarray(tail.length - TRAILER_BYTES);
  if (!trailer.subarray(36).equals(PACK_END_MAGIC)) throw new PackFormatError('pack has no end marker (truncated or unsealed)');
  const footerLength = trailer.readUInt32LE(32);
  if (footerLength + TRAILER_BYTES > tail.length || footerLength < 4) throw new PackFormatError('pack footer length out of range');
  const index = tail.subarray(tail.length - TRAILER_BYTES - footerLength, tail.length - TRAILER_BYTES);
  const count = index.readUInt32LE(index.length - 4);
  if (count * INDEX_ENTRY_BYTES + 4 !== index.length) throw new PackFormatError('pack index size does not match its entry count');
  const dataEnd = fileSize - TRAILER_BYTES - footerLength;
  const entries: PackEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * INDEX_ENTRY_BYTES;
    const offset = Number(index.readBigUInt64LE(at + BLOB_ID_BYTES));
    const length = index.readUInt32LE(at + BLOB_ID_BYTES + 8);
    if (offset < headerBytes + ENTRY_PREFIX_BYTES || offset + length > dataEnd) throw new PackFormatError(`pack index entry ${i} points outside the data`);
    entries.push({ id: Buffer.from(index.subarray(at, at + BLOB_ID_BYTES)), offset, length });
  }
  return { agentId, entries, hash: Buffer.from(trailer.subarray(0, 32)), retention, headerBytes };
}


