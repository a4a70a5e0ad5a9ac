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
 * repeated field.
 */
class Writer {
  at = 0;
  constructor(readonly buf: Buffer) {}
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
  tag(field: number, wire: number): void { this.buf[this.at++] = (field << 3) | wire; }
  number(field: number, v: number | undefined): void { if (v) { this.tag(field, VARINT); this.varint(v); } }
  bool(field: number, v: boolean | undefined): void { if (v) { this.tag(field, VARINT); this.buf[this.at++] = 1; } }
  /** `always`: an element of a repeated field, written even when empty. */
  bytes(field: number, b: Uint8Array | undefined, always = false): void {
    if (!b || (b.length === 0 && !always)) return;
    this.tag(field, LEN);
    this.varint(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  string(field: number, s: string | undefined): void {
    if (!s) return;
    this.tag(field, LEN);
    this.varint(Buffer.byteLength(s));
    this.at += this.buf.write(s, this.at, 'utf8');
  }
}

const numberBytes = (v: number | undefined) => (v ? 1 + varintBytes(v) : 0);

function extentBytes(e: Extent): number {
  return numberBytes(e.offset) + numberBytes(e.length) + (e.blobId?.length ? 1 + varintBytes(e.blobId.length) + e.blobId.length : 0)
    + numberBytes(e.blobIndex) + numberBytes(e.blobOffset);
}

export function encodeVolumeMap(map: VolumeMap): Buffer {
  let bound = 64 + (map.merkleRoot?.length ?? 0);
  for (const s of [map.path, map.provider, map.snapshot]) bound += s ? Buffer.byteLength(s) + 11 : 0;
  for (const b of map.blobs ?? []) bound += b.length + 11;
  const extentLengths = (map.extents ?? []).map(extentBytes);
  for (const n of extentLengths) bound += n + 11;
  const w = new Writer(Buffer.allocUnsafe(bound));
  w.string(1, map.path);
  w.number(2, map.sizeBytes);
  w.number(3, map.blockSize);
  map.extents?.forEach((e, i) => {
    w.tag(4, LEN);
    w.varint(extentLengths[i]);
    w.number(1, e.offset);
    w.number(2, e.length);
    w.bytes(3, e.blobId);
    w.number(4, e.blobIndex);
    w.number(5, e.blobOffset);
  });
  w.bytes(5, map.merkleRoot);
  for (const b of map.blobs ?? []) w.bytes(6, b, true);
  w.string(7, map.provider);
  w.bool(8, map.crashConsistent);
  w.string(9, map.snapshot);
  w.number(10, map.dataBytes);
  return w.buf.subarray(0, w.at);
}

class Reader {
  constructor(readonly buf: Buffer, public at: number, public end: number) {}
  get more(): boolean { return this.at < this.end; }
  varint(): number {
    if (this.at < this.end && this.buf[this.at] < 128) return this.buf[this.at++];
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.end) throw new RangeError('volume map: truncated varint');
      const b = this.buf[this.at++];
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

/** Reads the extent in [r.at, end) and leaves r after it. */
function readExtent(r: Reader, end: number): Extent {
  const e: Extent = { offset: 0, length: 0, blobId: EMPTY, blobIndex: 0, blobOffset: 0 };
  const outer = r.end;
  r.end = end;
  while (r.more) {
    const key = r.varint();
    const field = key > 0xffffffff ? -1 : key >>> 3;
    const wire = key & 7;
    if (field === 1) { expect(wire, VARINT, 'extent offset'); e.offset = r.varint(); }
    else if (field === 2) { expect(wire, VARINT, 'extent length'); e.length = r.varint(); }
    else if (field === 3) { expect(wire, LEN, 'extent blob id'); e.blobId = r.bytes(); }
    else if (field === 4) { expect(wire, VARINT, 'extent blob index'); e.blobIndex = r.varint() >>> 0; }
    else if (field === 5) { expect(wire, VARINT, 'extent blob offset'); e.blobOffset = r.varint(); }
    else r.skip(wire);
  }
  r.end = outer;
  return e;
}

export function decodeVolumeMap(data: Buffer, start = 0, end = data.length): VolumeMap {
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
        map.extents.push(readExtent(r, r.at + n));
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
