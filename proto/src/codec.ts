/**
 * @module The one place frames are encoded and decoded. Both sides call
 * `decodeFrame`, which enforces the size limit and turns anything that does
 * not decode into a typed `ProtocolError` before any handler sees it.
 */
import type protobuf from 'protobufjs';
import type { BlobData, Frame, Manifest, PointHeader, VolumeMap } from './types.js';
import { decodeVolumeMap, encodeVolumeMap, lengthDelimitedField, splitFields } from './volume-map-codec.js';
import { protoRoot as root } from './schema.js';
import { ErrorCode } from './types.js';
import { allocMessage, type MessageBuffers } from './whole-messages.js';

export const PROTOCOL_VERSION = 1;
/** Largest frame either side accepts; blob batches are cut to stay below it. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

const FrameType = root.lookupType('bulwark.v1.Frame');
const PointHeaderType = root.lookupType('bulwark.v1.PointHeader');

const conversion: protobuf.IConversionOptions = { longs: Number, enums: Number, bytes: Buffer, defaults: false, oneofs: false };

export class ProtocolError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** `buffers`: where a blob frame goes (default: memory of its own, with websocket headroom). */
export function encodeFrame(frame: Frame, buffers: Pick<MessageBuffers, 'take'> = { take: allocMessage }): Buffer {
  if (frame.blobData) return encodeBlobDataFrame(frame.blobData, buffers);
  const bytes = FrameType.encode(FrameType.fromObject(frame)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const varintBytes = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) { out[at++] = (n & 0x7f) | 0x80; n >>>= 7; }
  out[at++] = n;
  return at;
}

const lengthDelimited = (field: number) => (field << 3) | 2;
const FRAME_BLOB_DATA = lengthDelimited(14);
const BLOB_DATA_REQUEST_ID = 1 << 3;
const BLOB_DATA_BLOB = lengthDelimited(2);
const BLOB_ID = lengthDelimited(1);
const BLOB_ENVELOPE = lengthDelimited(2);

/**
 * Frame{blob_data} written by hand: blob frames carry nearly every byte of a
 * backup or restore, and this costs one copy of each envelope where the
 * generic encoder spends as much again on bookkeeping. Same wire bytes as
 * protobufjs (codec.test.ts checks it). The frame has room for its websocket
 * header in front (whole-messages.ts).
 */
function encodeBlobDataFrame(body: BlobData, buffers: Pick<MessageBuffers, 'take'>): Buffer {
  const ids = body.blobs.map((b) => b.id);
  const lengths = body.blobs.map((b) => b.envelope.length);
  const out = buffers.take(blobDataFrameBytes(body.requestId ?? 0, ids, lengths));
  const at = writeBlobDataFrame(out, body.requestId ?? 0, ids, lengths);
  body.blobs.forEach((b, i) => b.envelope.copy(out, at[i]));
  return out;
}

const blobBytes = (id: Buffer, length: number) => 2 + varintBytes(id.length) + id.length + varintBytes(length) + length;

function blobDataBytes(requestId: number, ids: Buffer[], lengths: number[]): number {
  let inner = requestId ? 1 + varintBytes(requestId) : 0;
  ids.forEach((id, i) => { const n = blobBytes(id, lengths[i]); inner += 1 + varintBytes(n) + n; });
  return inner;
}

/** Size of a Frame{blob_data} carrying envelopes of these lengths. */
export function blobDataFrameBytes(requestId: number, ids: Buffer[], lengths: number[]): number {
  const inner = blobDataBytes(requestId, ids, lengths);
  return 1 + varintBytes(inner) + inner;
}

/**
 * Writes a Frame{blob_data} into `out` (exactly blobDataFrameBytes long) except
 * the envelopes' bytes, and returns where each envelope goes: the gateway
 * reads them from its packs straight into place.
 */
export function writeBlobDataFrame(out: Buffer, requestId: number, ids: Buffer[], lengths: number[]): number[] {
  const offsets: number[] = [];
  out[0] = FRAME_BLOB_DATA;
  let at = writeVarint(out, 1, blobDataBytes(requestId, ids, lengths));
  if (requestId) { out[at++] = BLOB_DATA_REQUEST_ID; at = writeVarint(out, at, requestId); }
  ids.forEach((id, i) => {
    out[at++] = BLOB_DATA_BLOB;
    at = writeVarint(out, at, blobBytes(id, lengths[i]));
    out[at++] = BLOB_ID;
    at = writeVarint(out, at, id.length);
    at += id.copy(out, at);
    out[at++] = BLOB_ENVELOPE;
    at = writeVarint(out, at, lengths[i]);
    offsets.push(at);
    at += lengths[i];
  });
  if (at !== out.length) throw new Error(`blob frame layout is ${at} bytes, its buffer ${out.length}`);
  return offsets;
}

export function decodeFrame(data: Buffer): Frame {
  if (data.length > MAX_FRAME_BYTES) {
    throw new ProtocolError(ErrorCode.FRAME_TOO_LARGE, `frame of ${data.length} bytes exceeds the limit of ${MAX_FRAME_BYTES}`);
  }
  let message: protobuf.Message;
  try {
    message = FrameType.decode(data);
  } catch (err) {
    throw new ProtocolError(ErrorCode.MALFORMED_FRAME, `frame does not decode: ${(err as Error).message}`);
  }
  const frame = FrameType.toObject(message, conversion) as Frame;
  if (Object.keys(frame).length !== 1) {
    throw new ProtocolError(ErrorCode.MALFORMED_FRAME, 'frame carries no known message');
  }
  return frame;
}

/** Canonical bytes of a point header: what the agent and gateway sign. */
export function encodePointHeader(header: PointHeader): Buffer {
  const bytes = PointHeaderType.encode(PointHeaderType.fromObject(header)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodePointHeader(data: Buffer): PointHeader {
  return PointHeaderType.toObject(PointHeaderType.decode(data), conversion) as PointHeader;
}

/** A tree whose encoding is larger is stored in parts of this size (storage.proto `Tree.parts`). */
export const TREE_PART_BYTES = 1024 * 1024;

interface StorageCodec<T> { encode(value: T): Buffer; decode(data: Buffer): T }

function protobufCodec<T>(type: protobuf.Type): StorageCodec<T> {
  return {
    /** `value` must already have the wire types (Buffers, numbers): `fromObject`'s conversion pass cost as much as the encoding. */
    encode(value) {
      const bytes = type.encode(value as object).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    decode(data) {
      return type.toObject(type.decode(data), { ...conversion, defaults: true }) as T;
    },
  };
}

/** Codec for a storage.proto message, looked up by its short name. */
export function storageCodec<T>(name: 'Tree' | 'Manifest' | 'VolumeMap'): StorageCodec<T> {
  if (name === 'VolumeMap') return { encode: encodeVolumeMap, decode: decodeVolumeMap } as unknown as StorageCodec<T>;
  if (name === 'Manifest') return manifestCodec as unknown as StorageCodec<T>;
  return protobufCodec<T>(root.lookupType(`bulwark.storage.v1.${name}`));
}

const protobufManifest = protobufCodec<Partial<Manifest>>(root.lookupType('bulwark.storage.v1.Manifest'));
const MANIFEST_VOLUME_FIELD = 3;

/**
 * A manifest whose volume map is already encoded (`encodedVolume`, e.g. by
 * VolumeMapEncoder; it replaces `manifest.volume`): the fields before the
 * map, the map, the fields after it — the order protobufjs writes them in,
 * so the bytes are the ones it would write.
 */
export function encodeManifest(manifest: Manifest, encodedVolume?: Buffer): Buffer {
  const volume = encodedVolume ?? (manifest.volume ? encodeVolumeMap(manifest.volume) : undefined);
  if (!volume) return protobufManifest.encode(manifest);
  const before: Partial<Manifest> = {};
  const after: Partial<Manifest> = {};
  for (const [key, v] of Object.entries(manifest) as [keyof Manifest, never][]) {
    if (key === 'hostname' || key === 'roots') before[key] = v;
    else if (key !== 'volume') after[key] = v;
  }
  return Buffer.concat([protobufManifest.encode(before), lengthDelimitedField(MANIFEST_VOLUME_FIELD, volume), protobufManifest.encode(after)]);
}

/** The manifest's volume map by hand, the other fields by protobufjs (split at the top-level fields). */
const manifestCodec: StorageCodec<Manifest> = {
  encode: (value) => encodeManifest(value),
  decode(data) {
    const fields = splitFields(data);
    const volume = fields.filter((f) => f.field === MANIFEST_VOLUME_FIELD).pop();
    if (!volume) return protobufManifest.decode(data) as Manifest;
    const manifest = protobufManifest.decode(Buffer.concat(fields.filter((f) => f.field !== MANIFEST_VOLUME_FIELD).map((f) => data.subarray(f.start, f.end)))) as Manifest;
    manifest.volume = decodeVolumeMap(data, volume.payload[0], volume.payload[1]);
    return manifest;
  },
};

/** Name of the message a frame carries, for logs and errors. */
export function frameKind(frame: Frame): keyof Frame {
  return Object.keys(frame)[0] as keyof Frame;
}
