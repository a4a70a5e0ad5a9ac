/**
 * @module The VolumeMap (storage.proto) encoded and decoded by hand. A 2 GiB
 * image after a few scattered incrementals has ~100,000 extents; protobufjs
 * took ~200 ms to decode such a map (a decode pass, then a toObject pass
 * turning each uint64 into a Long and back) and ~40 ms to encode it, and an
 * incremental backup does one of each and another encode for its manifest;
 * by hand, 104,690 extents decode in 34–49 ms and encode in 21–34 ms.
 * The bytes are the ones protobufjs writes (fields in number order, scalars
 * left out at their default), and decoding gives what its decode
 * + toObject({ longs: Number, bytes: Buffer, defaults: true }) gives:
 * codec.test.ts holds both to it.
 */
import type { Extent, VolumeMap } from './types.js';

const LEN = 2;
const VARINT = 0;
const EMPTY = Buffer.alloc(0);

function varintBytes(v: number): number {
  if (v < 128) return 1;
  if (v < 16384) return 2;
  if (v < 2097152) return 3;
  let n = 4;
  for (v = Math.floor(v / 268435456); v > 0; v = Math.floor(v / 128)) n++;
  return n;
}

/**
 * Writes fields as protobufjs does for proto3: a scalar only when it is set
 * and not its default (0, "", false, empty bytes); every element of a
 * repeated field. The buffer grows as needed.
 */
class Writer {
  at = 0;
  buf: Buffer;
  constructor(sizeHint = 64 * 1024) { this.buf = Buffer.allocUnsafe(sizeHint); }
  reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }
  varint(v: number): void {
    const buf = this.buf;
    let at = this.at;
    if (v >= 0 && v <= 0x7fffffff && (v | 0) === v) {
      while (v > 127) { buf[at++] = (v & 127) | 128; v >>>= 7; }
    } else {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`volume map: ${v} is not an unsigned integer`);
      while (v >= 128) { buf[at++] = (v % 128) | 128; v = Math.floor(v / 128); }
    }
    buf[at++] = v;
    this.at = at;
  }
  /** One byte: every field number here is below 16. */
  tag(field: number, wire: number): void { this.buf[this.at++] = (field << 3) | wire; }
  number(field: number, v: number | undefined): void { if (v) { this.reserve(11); this.tag(field, VARINT); this.varint(v); } }
  bool(field: number, v: boolean | undefined): void { if (v) { this.reserve(2); this.tag(field, VARINT); this.buf[this.at++] = 1; } }
  /** `always`: an element of a repeated field, written even when empty. */
  bytes(field: number, b: Uint8Array | undefined, always = false): void {
    if (!b || (b.length === 0 && !always)) return;
    this.reserve(11 + b.length);
    this.tag(field, LEN);
    this.varint(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  string(field: number, s: string | undefined): void {
    if (!s) return;
    const n = Buffer.byteLength(s);
    this.reserve(11 + n);
    this.tag(field, LEN);
    this.varint(n);
    this.at += this.buf.write(s, this.at, 'utf8');
  }
  finish(): Buffer { return Buffer.from(this.buf.subarray(0, this.at)); }
}

const numberBytes = (v: number) => (v ? 1 + varintBytes(v) : 0);

export type VolumeMapHead = Pick<VolumeMap, 'path' | 'sizeBytes' | 'blockSize'>;
export type VolumeMapTail = Omit<VolumeMap, 'path' | 'sizeBytes' | 'blockSize' | 'extents'>;

/**
 * Writes a map field by field in number order, extents one at a time, so a
 * map with 100,000 extents is encoded without an object per extent.
 */
export class VolumeMapEncoder {
  private readonly w: Writer;
  /** `sizeHint`: the expected size in bytes (e.g. the previous map's), to spare the buffer's regrowth. */
  constructor(head: VolumeMapHead, sizeHint?: number) {
    this.w = new Writer(sizeHint);
    this.w.string(1, head.path);
    this.w.number(2, head.sizeBytes);
    this.w.number(3, head.blockSize);
  }
  extent(offset: number, length: number, blobIndex: number, blobOffset: number, blobId?: Uint8Array): void {
    const idLength = blobId?.length ?? 0;
    const n = numberBytes(offset) + numberBytes(length) + (idLength ? 1 + varintBytes(idLength) + idLength : 0) + numberBytes(blobIndex) + numberBytes(blobOffset);
    const w = this.w;
    // Room for all of it up front (bytes() reserves again, and may move the buffer: never cache it).
    w.reserve(6 + n);
    w.tag(4, LEN);
    w.varint(n);
    if (offset) { w.tag(1, VARINT); w.varint(offset); }
    if (length) { w.tag(2, VARINT); w.varint(length); }
    if (idLength) w.bytes(3, blobId);
    if (blobIndex) { w.tag(4, VARINT); w.varint(blobIndex); }
    if (blobOffset) { w.tag(5, VARINT); w.varint(blobOffset); }
  }
  finish(tail: VolumeMapTail): Buffer {
    const w = this.w;
    w.bytes(5, tail.merkleRoot);
    for (const b of tail.blobs ?? []) w.bytes(6, b, true);
    w.string(7, tail.provider);
    w.bool(8, tail.crashConsistent);
    w.string(9, tail.snapshot);
    w.number(10, tail.dataBytes);
    return w.finish();
  }
}

/** A length-delimited field's tag and length, then `payload`: for embedding an encoded message in another. */
export function lengthDelimitedField(field: number, payload: Buffer): Buffer {
  const w = new Writer(12);
  w.tag(field, LEN);
  w.varint(payload.length);
  return Buffer.concat([w.buf.subarray(0, w.at), payload]);
}

export function encodeVolumeMap(map: VolumeMap): Buffer {
  const encoder = new VolumeMapEncoder(map);
  for (const e of map.extents ?? []) encoder.extent(e.offset ?? 0, e.length ?? 0, e.blobIndex ?? 0, e.blobOffset ?? 0, e.blobId);
  return encoder.finish(map);
}

class Reader {
  constructor(readonly buf: Buffer, public at: number, public end: number) {}
  get more(): boolean { return this.at < this.end; }
  varint(): number {
    const buf = this.buf;
    let at = this.at;
    // Up to 31 bits in integer arithmetic (small integers, never boxed): nearly every varint of a map.
    if (at + 5 <= this.end) {
      let b = buf[at++];
      let v = b & 127;
      if (b < 128) { this.at = at; return v; }
      b = buf[at++]; v |= (b & 127) << 7;
      if (b < 128) { this.at = at; return v; }
      b = buf[at++]; v |= (b & 127) << 14;
      if (b < 128) { this.at = at; return v; }
      b = buf[at++]; v |= (b & 127) << 21;
      if (b < 128) { this.at = at; return v; }
      b = buf[at++];
      if (b < 8) { this.at = at; return v | (b << 28); }
    }
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.end) throw new RangeError('volume map: truncated varint');
      const b = buf[this.at++];
      v += (b & 127) * scale;
      if (b < 128) return v;
      scale *= 128;
    }
    throw new RangeError('volume map: varint longer than 10 bytes');
  }
  /** The [start, end) of a length-delimited field's payload, which it skips. */
  span(): [number, number] {
    const n = this.varint();
    const start = this.at;
    if (n > this.end - start) throw new RangeError('volume map: field runs past the end');
    this.at += n;
    return [start, this.at];
  }
  bytes(): Buffer { const [s, e] = this.span(); return Buffer.from(this.buf.subarray(s, e)); }
  string(): string { const [s, e] = this.span(); return this.buf.toString('utf8', s, e); }
  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === LEN) this.span();
    else if (wire === 5) this.advance(4);
    else throw new RangeError(`volume map: wire type ${wire} is not supported`);
  }
  private advance(n: number): void {
    if (n > this.end - this.at) throw new RangeError('volume map: field runs past the end');
    this.at += n;
  }
}

function expect(wire: number, want: number, field: string): void {
  if (wire !== want) throw new RangeError(`volume map: ${field} has wire type ${wire}, not ${want}`);
}

const EXTENT_FIELDS: Record<number, [string, number]> = { 1: ['extent offset', VARINT], 2: ['extent length', VARINT], 3: ['extent blob id', LEN], 4: ['extent blob index', VARINT], 5: ['extent blob offset', VARINT] };

/** Reads the extent in [r.at, end) into `e` and leaves r after it. */
function readExtent(r: Reader, end: number, e: Extent): Extent {
  const outer = r.end;
  r.end = end;
  while (r.at < end) {
    const key = r.varint();
    // Keys as the encoder writes them: (field << 3) | wire type.
    switch (key) {
      case 0x08: e.offset = r.varint(); break;
      case 0x10: e.length = r.varint(); break;
      case 0x1a: e.blobId = r.bytes(); break;
      case 0x20: e.blobIndex = r.varint() >>> 0; break;
      case 0x28: e.blobOffset = r.varint(); break;
      default: {
        const known = key <= 0xffffffff ? EXTENT_FIELDS[key >>> 3] : undefined;
        if (known) expect(key & 7, known[1], known[0]);
        r.skip(key & 7);
      }
    }
  }
  r.end = outer;
  return e;
}

/**
 * Each extent as it is read, with the map's fields read so far (in encoder
 * order: path, size and block size come first); `decodeVolumeMap` then leaves
 * `extents` empty. `e` is reused for the next extent.
 */
export type ExtentVisitor = (e: Readonly<Extent>, map: Readonly<VolumeMap>) => void;

const blankExtent = (): Extent => ({ offset: 0, length: 0, blobId: EMPTY, blobIndex: 0, blobOffset: 0 });

export function decodeVolumeMap(data: Buffer, start = 0, end = data.length, visit?: ExtentVisitor): VolumeMap {
  const scratch = blankExtent();
  const map: VolumeMap = { path: '', sizeBytes: 0, blockSize: 0, extents: [], merkleRoot: EMPTY, blobs: [], provider: '', crashConsistent: false, snapshot: '', dataBytes: 0 };
  const r = new Reader(data, start, end);
  while (r.more) {
    const key = r.varint();
    const field = key > 0xffffffff ? -1 : key >>> 3;
    const wire = key & 7;
    switch (field) {
      case 1: expect(wire, LEN, 'path'); map.path = r.string(); break;
      case 2: expect(wire, VARINT, 'size'); map.sizeBytes = r.varint(); break;
      case 3: expect(wire, VARINT, 'block size'); map.blockSize = r.varint() >>> 0; break;
      case 4: {
        expect(wire, LEN, 'extent');
        const n = r.varint();
        if (n > r.end - r.at) throw new RangeError('volume map: field runs past the end');
        if (visit) {
          scratch.offset = 0; scratch.length = 0; scratch.blobId = EMPTY; scratch.blobIndex = 0; scratch.blobOffset = 0;
          visit(readExtent(r, r.at + n, scratch), map);
        } else {
          map.extents.push(readExtent(r, r.at + n, blankExtent()));
        }
        break;
      }
      case 5: expect(wire, LEN, 'merkle root'); map.merkleRoot = r.bytes(); break;
      case 6: expect(wire, LEN, 'blob id'); map.blobs!.push(r.bytes()); break;
      case 7: expect(wire, LEN, 'provider'); map.provider = r.string(); break;
      case 8: expect(wire, VARINT, 'crash consistency'); map.crashConsistent = r.varint() !== 0; break;
      case 9: expect(wire, LEN, 'snapshot'); map.snapshot = r.string(); break;
      case 10: expect(wire, VARINT, 'data bytes'); map.dataBytes = r.varint(); break;
      default: r.skip(wire);
    }
  }
  return map;
}

/**
 * The top-level fields of an encoded message as [field, start, end) byte
 * ranges (tag included), so that one field can be decoded by hand and the
 * rest by protobufjs.
 */
export function splitFields(data: Buffer): { field: number; start: number; end: number; payload: [number, number] }[] {
  const r = new Reader(data, 0, data.length);
  const out: { field: number; start: number; end: number; payload: [number, number] }[] = [];
  while (r.more) {
    const start = r.at;
    const key = r.varint();
    const wire = key % 8;
    let payload: [number, number];
    if (wire === LEN) payload = r.span();
    else { const s = r.at; r.skip(wire); payload = [s, r.at]; }
    out.push({ field: Math.floor(key / 8), start, end: r.at, payload });
  }
  return out;
}
