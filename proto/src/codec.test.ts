import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, encodeManifest, encodePointHeader, decodePointHeader, ProtocolError, MAX_FRAME_BYTES, storageCodec } from './codec.js';
import { decodeVolumeMap } from './volume-map-codec.js';
import { ErrorCode, type Frame, type Manifest, type VolumeMap } from './types.js';
import { canonicalRefs, merkleRoot } from './merkle.js';
import { protoRoot } from './schema.js';

const id = (n: number) => Buffer.alloc(32, n);

describe('frame codec', () => {
  it('round-trips every kind of frame', () => {
    const header = { pointId: Buffer.alloc(16, 1), agentId: 'agt-1', createdUnixMs: 1_700_000_000_000, kind: 'files' as const, manifestBlobId: id(2), merkleRoot: id(3), blobCount: 4, logicalBytes: 5_000_000_000, provider: 'full-read' };
    const frames: Frame[] = [
      { hello: { protocolVersion: 1, agentVersion: 'x' } },
      { error: { code: ErrorCode.FORBIDDEN, message: 'no', requestId: 9 } },
      { haveQuery: { requestId: 1, blobIds: [id(1), id(2)] } },
      { haveAnswer: { requestId: 1, missing: [0, 1] } },
      { blobData: { blobs: [{ id: id(1), envelope: Buffer.from('abc') }] } },
      { credit: { bytes: 123456789 } },
      { commitPoint: { requestId: 2, header, refs: Buffer.concat([id(1), id(2)]), agentSignature: Buffer.alloc(64, 7) } },
      { readBlobs: { requestId: 3, blobIds: [id(4)], agentId: 'agt-2' } },
    ];
    for (const frame of frames) expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
    expect(decodePointHeader(encodePointHeader(header))).toEqual(header);
  });

  it('writes blob frames byte for byte as the generic protobuf encoder does', () => {
    const FrameType = protoRoot.lookupType('bulwark.v1.Frame');
    const generic = (frame: Frame) => Buffer.from(FrameType.encode(FrameType.fromObject(frame)).finish());
    const bodies = [
      { blobs: [] },
      { requestId: 7, blobs: [{ id: id(1), envelope: Buffer.from('abc') }] },
      { requestId: 300_000, blobs: [{ id: id(2), envelope: Buffer.alloc(200, 1) }, { id: id(3), envelope: Buffer.alloc(3_000_000, 2) }] },
    ];
    for (const blobData of bodies) expect(encodeFrame({ blobData }).equals(generic({ blobData }))).toBe(true);
  });

  it('turns garbage into a typed error', () => {
    expect(() => decodeFrame(Buffer.from([0xff, 0xff, 0xff]))).toThrow(ProtocolError);
    try { decodeFrame(Buffer.from([0x0a, 0x05, 0x01])); } catch (err) { expect((err as ProtocolError).code).toBe(ErrorCode.MALFORMED_FRAME); }
    try { decodeFrame(Buffer.alloc(0)); } catch (err) { expect((err as ProtocolError).code).toBe(ErrorCode.MALFORMED_FRAME); }
  });

  it('refuses frames over the size limit before decoding them', () => {
    try { decodeFrame(Buffer.alloc(MAX_FRAME_BYTES + 1)); expect.unreachable(); } catch (err) { expect((err as ProtocolError).code).toBe(ErrorCode.FRAME_TOO_LARGE); }
  });
});

describe('storage codec', () => {
  it('encodes our objects byte for byte as the converting encoder does, and decodes them back', () => {
    const node = { name: Buffer.from('a\xe9'), type: 1, mode: 0o644, uid: 1000, gid: 0, size: 5_000_000_000, mtimeSec: 1_700_000_000, mtimeNsec: 123, content: [id(1), id(2)], contentSizes: [4_000_000, 1_000_000] };
    const map = { path: '/dev/vdb', sizeBytes: 2 ** 33, blockSize: 4096, extents: [{ offset: 0, length: 8192, blobIndex: 0, blobOffset: 0 }, { offset: 2 ** 32, length: 4096, blobIndex: 1, blobOffset: 2 ** 20 }], merkleRoot: id(9), blobs: [id(3), id(4)], provider: 'hash-scan', crashConsistent: false, snapshot: 'none', dataBytes: 12288 };
    const samples = [
      ['Tree', { nodes: [node, { ...node, name: Buffer.from('b'), type: 2, content: [], contentSizes: [] }] }],
      ['VolumeMap', map],
      ['Manifest', { hostname: 'h', roots: [{ path: '/data', root: node }], volume: map, files: 0, dirs: 3, bytesRead: 2 ** 40 }],
    ] as const;
    for (const [name, value] of samples) {
      const type = protoRoot.lookupType(`bulwark.storage.v1.${name}`);
      const codec = storageCodec<object>(name);
      const bytes = codec.encode(value);
      expect(bytes.equals(Buffer.from(type.encode(type.fromObject(value)).finish()))).toBe(true);
      expect(codec.encode(codec.decode(bytes)).equals(bytes)).toBe(true);
    }
  });
});

describe('merkle root', () => {
  it('changes with any id and with order, and matches for the canonical form', () => {
    const refs = canonicalRefs([id(3), id(1), id(2), id(1)].map((b) => b.toString('hex')));
    expect(refs).toEqual(Buffer.concat([id(1), id(2), id(3)]));
    const mixed = [0xa0, 0x09, 0x1f, 0x0a, 0xff, 0x00].map(id);
    expect(canonicalRefs(mixed.map((b) => b.toString('hex')))).toEqual(Buffer.concat([...mixed].sort(Buffer.compare)));
    expect(() => canonicalRefs(['ab'])).toThrow(/not a 32-byte id/);
    const root = merkleRoot(refs);
    const tampered = Buffer.from(refs); tampered[40] ^= 1;
    expect(merkleRoot(tampered)).not.toEqual(root);
    expect(merkleRoot(Buffer.concat([id(2), id(1), id(3)]))).not.toEqual(root);
    const many = Buffer.concat(Array.from({ length: 5000 }, (_, i) => { const b = Buffer.alloc(32); b.writeUInt32BE(i); return b; }));
    const bigRoot = merkleRoot(many);
    const flipped = Buffer.from(many); flipped[32 * 4321] ^= 1;
    expect(merkleRoot(flipped)).not.toEqual(bigRoot);
    expect(() => merkleRoot(Buffer.alloc(33))).toThrow(/multiple of 32/);
  });
});

describe('volume map codec (hand-written)', () => {
  const VolumeMapType = protoRoot.lookupType('bulwark.storage.v1.VolumeMap');
  const ManifestType = protoRoot.lookupType('bulwark.storage.v1.Manifest');
  const options = { longs: Number, enums: Number, bytes: Buffer, defaults: true };
  const generic = (bytes: Buffer) => VolumeMapType.toObject(VolumeMapType.decode(bytes), options);
  let seed = 12345;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return Math.floor((seed / 2 ** 31) * n); };
  const big = () => Math.min(Number.MAX_SAFE_INTEGER, [0, 1, 127, 128, 16383, 16384, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1][rand(9)] + (rand(2) ? rand(1000) * 4096 : 0));
  const maybe = <T>(v: T): T | undefined => (rand(4) === 0 ? undefined : v);
  function randomMap(extents: number): VolumeMap {
    const map: Record<string, unknown> = {
      path: maybe(['/dev/vdb', '', '/img/dïsk ✓.img'][rand(3)]), sizeBytes: maybe(big()), blockSize: maybe(rand(2) ? 4096 : 0),
      extents: Array.from({ length: extents }, () => {
        const e: Record<string, unknown> = { offset: maybe(big()), length: maybe(big()), blobIndex: maybe(rand(3) ? rand(5000) : 2 ** 32 - 1), blobOffset: maybe(big()) };
        if (rand(5) === 0) e.blobId = rand(2) ? id(rand(200)) : Buffer.alloc(0);
        return e;
      }),
      merkleRoot: maybe(id(7)), blobs: maybe(Array.from({ length: rand(4) }, (_, i) => id(i))), provider: maybe('hash-scan'),
      crashConsistent: maybe(rand(2) === 0), snapshot: maybe('lvm'), dataBytes: maybe(big()),
    };
    for (const k of Object.keys(map)) if (map[k] === undefined) delete map[k];
    return map as unknown as VolumeMap;
  }

  it('writes the bytes protobufjs writes and decodes them to what protobufjs decodes', () => {
    for (let i = 0; i < 200; i++) {
      const map = randomMap(rand(40));
      const bytes = storageCodec<VolumeMap>('VolumeMap').encode(map);
      expect(bytes.equals(Buffer.from(VolumeMapType.encode(VolumeMapType.fromObject(map)).finish())), `map ${i}`).toBe(true);
      expect(storageCodec<VolumeMap>('VolumeMap').decode(bytes)).toEqual(generic(bytes));
    }
  });

  it('stays byte-identical while its buffer grows (maps far over 64 KiB, extents with blob ids)', () => {
    // Every alignment of the 64 KiB boundary against an extent with a blob id.
    for (let pad = 0; pad < 64; pad++) {
      const extents = Array.from({ length: 1600 }, (_, k) => ({ offset: k * 4096, length: 4096, blobId: id(k % 251), blobIndex: 1 + (k % 100), blobOffset: 0 }));
      const map = { path: 'p'.repeat(pad), sizeBytes: 2 ** 31, blockSize: 4096, extents, merkleRoot: id(1), blobs: [] } as VolumeMap;
      const bytes = storageCodec<VolumeMap>('VolumeMap').encode(map);
      expect(bytes.length).toBeGreaterThan(64 * 1024);
      expect(bytes.equals(Buffer.from(VolumeMapType.encode(VolumeMapType.fromObject(map)).finish())), `pad ${pad}`).toBe(true);
    }
  });

  it('skips unknown fields, and fails on truncation or bad wire types wherever protobufjs does', () => {
    const bytes = storageCodec<VolumeMap>('VolumeMap').encode(randomMap(5));
    // Unknown fields of every wire type, at the end and inside an extent.
    const unknown = Buffer.from([15 << 3 | 0, 0x96, 0x01, 14 << 3 | 1, 1, 2, 3, 4, 5, 6, 7, 8, 13 << 3 | 2, 2, 0xaa, 0xbb, 12 << 3 | 5, 1, 2, 3, 4]);
    const extended = Buffer.concat([bytes, unknown, Buffer.from([4 << 3 | 2, 5, 1 << 3, 9, 11 << 3, 0x80, 0x01])]);
    expect(decodeVolumeMap(extended)).toEqual(generic(extended));
    for (let cut = 0; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      let ours: unknown, theirs: unknown;
      try { ours = decodeVolumeMap(part); } catch (err) { ours = err instanceof RangeError ? 'error' : err; }
      try { theirs = generic(part); } catch { theirs = 'error'; }
      expect(ours, `cut at ${cut}`).toEqual(theirs);
    }
    expect(() => decodeVolumeMap(Buffer.from([4 << 3 | 0, 1]))).toThrow(/extent has wire type 0/);
    expect(() => decodeVolumeMap(Buffer.from([2 << 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/longer than 10 bytes/);
    expect(() => storageCodec<VolumeMap>('VolumeMap').encode({ ...randomMap(0), sizeBytes: -1 })).toThrow(RangeError);
  });

  it('keeps a manifest byte-identical with its map encoded by hand, and decodes it as protobufjs does', () => {
    const codec = storageCodec<Manifest>('Manifest');
    const node = { name: Buffer.from('x'), type: 1, mode: 0o600, size: 3 };
    const manifests = [
      { hostname: 'h', roots: [], volume: randomMap(300), files: 0, dirs: 0, bytesRead: 2 ** 33 },
      { volume: randomMap(3), bytesRead: 7 },
      { hostname: 'files only', roots: [{ path: '/a', root: node }], files: 1, dirs: 0, bytesRead: 3 },
    ] as unknown as Manifest[];
    for (const manifest of manifests) {
      const bytes = codec.encode(manifest);
      expect(bytes.equals(Buffer.from(ManifestType.encode(ManifestType.fromObject(manifest)).finish()))).toBe(true);
      expect(codec.decode(bytes)).toEqual(ManifestType.toObject(ManifestType.decode(bytes), options));
      // A map encoded beforehand (as a volume backup does) gives the same bytes.
      if (manifest.volume) expect(encodeManifest({ ...manifest, volume: undefined }, storageCodec<VolumeMap>('VolumeMap').encode(manifest.volume)).equals(bytes)).toBe(true);
    }
  });
});
