/**
 * @module The one place frames are encoded and decoded. Both sides call
 * `decodeFrame`, which enforces the size limit and turns anything that does
 * not decode into a typed `ProtocolError` before any handler sees it.
 */
import type protobuf from 'protobufjs';
import type { BlobData, Frame, PointHeader } from './types.js';
import { protoRoot as root } from './schema.js';
import { ErrorCode } from './types.js';

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

export function encodeFrame(frame: Frame): Buffer {
  if (frame.blobData) return encodeBlobDataFrame(frame.blobData);
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
 * protobufjs (codec.test.ts checks it).
 */
function encodeBlobDataFrame(body: BlobData): Buffer {
  const blobSize = (b: { id: Buffer; envelope: Buffer }) => 2 + varintBytes(b.id.length) + b.id.length + varintBytes(b.envelope.length) + b.envelope.length;
  let inner = body.requestId ? 1 + varintBytes(body.requestId) : 0;
  for (const b of body.blobs) { const n = blobSize(b); inner += 1 + varintBytes(n) + n; }
  const out = Buffer.allocUnsafe(1 + varintBytes(inner) + inner);
  out[0] = FRAME_BLOB_DATA;
  let at = writeVarint(out, 1, inner);
  if (body.requestId) { out[at++] = BLOB_DATA_REQUEST_ID; at = writeVarint(out, at, body.requestId); }
  for (const b of body.blobs) {
    out[at++] = BLOB_DATA_BLOB;
    at = writeVarint(out, at, blobSize(b));
    out[at++] = BLOB_ID;
    at = writeVarint(out, at, b.id.length);
    at += b.id.copy(out, at);
    out[at++] = BLOB_ENVELOPE;
    at = writeVarint(out, at, b.envelope.length);
    at += b.envelope.copy(out, at);
  }
  return out;
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

/** Codec for a storage.proto message, looked up by its short name. */
export function storageCodec<T>(name: 'Tree' | 'Manifest' | 'VolumeMap') {
  const type = root.lookupType(`bulwark.storage.v1.${name}`);
  return {
    /** `value` must already have the wire types (Buffers, numbers): `fromObject`'s conversion pass cost as much as the encoding. */
    encode(value: T): Buffer {
      const bytes = type.encode(value as object).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    decode(data: Buffer): T {
      return type.toObject(type.decode(data), { ...conversion, defaults: true }) as T;
    },
  };
}

/** Name of the message a frame carries, for logs and errors. */
export function frameKind(frame: Frame): keyof Frame {
  return Object.keys(frame)[0] as keyof Frame;
}
