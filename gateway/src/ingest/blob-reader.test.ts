import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeFrame, MessagePool } from '@bulwark/proto';
import type { BlobLocation } from '../catalog/catalog.js';
import type { BlobStore } from '../store/pack-store.js';
import { readBlobFrames } from './blob-reader.js';

/** One pack's bytes served by readInto, each read held until `release` lets it finish. */
function fakeStore(pack: Buffer) {
  const started: number[] = [];
  const held: (() => void)[] = [];
  const store = {
    async readInto(_hash: Buffer, offset: number, pieces: Buffer[]) {
      started.push(offset);
      await new Promise<void>((resolve) => held.push(resolve));
      for (const piece of pieces) { pack.copy(piece, 0, offset, offset + piece.length); offset += piece.length; }
    },
  } as unknown as BlobStore;
  const release = () => { for (const r of held.splice(0)) r(); };
  return { store, started, release };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('readBlobFrames', () => {
  // Eight 1 MiB blobs, 70 KiB apart in one pack: too far apart for one read, two to a 2.5 MiB frame.
  const pack = randomBytes(8 * (1024 * 1024 + 70 * 1024));
  const located: BlobLocation[] = Array.from({ length: 8 }, (_, i) => ({ id: randomBytes(32), pack_seq: 1, offset: i * (1024 * 1024 + 70 * 1024), length: 1024 * 1024, hash: Buffer.alloc(32) }));

  it('reads the next frame while the one it gave is being sent, and every blob arrives whole', async () => {
    const { store, started, release } = fakeStore(pack);
    const frames = readBlobFrames(store, 7, located, 2.5 * 1024 * 1024, new MessagePool(4 * 1024 * 1024, 4));
    const first = frames.next();
    await settle();
    expect(started).toEqual([located[0].offset, located[1].offset]);
    release();
    const { value } = await first;
    await settle();
    // Frame one is out, not yet sent: frame two's reads are under way already.
    expect(started.slice(2)).toEqual([located[2].offset, located[3].offset]);
    const seen = [value as Buffer];
    for (;;) {
      release();
      const next = frames.next();
      await settle();
      release();
      const r = await next;
      if (r.done) break;
      seen.push(r.value);
    }
    const blobs = seen.flatMap((f) => decodeFrame(f).blobData!.blobs!);
    expect(blobs.map((b) => b.id.toString('hex'))).toEqual(located.map((l) => l.id.toString('hex')));
    blobs.forEach((b, i) => expect(b.envelope.equals(pack.subarray(located[i].offset, located[i].offset + located[i].length))).toBe(true));
  });

  it('hands back the frame it was reading ahead once its reads end, when the sender stops early', async () => {
    const { store, release } = fakeStore(pack);
    const given: Buffer[] = [];
    const pool = { take: (n: number) => Buffer.alloc(n), give: (f: Buffer) => { given.push(f); } };
    const frames = readBlobFrames(store, 7, located, 2.5 * 1024 * 1024, pool);
    const first = frames.next();
    await settle();
    release();
    await first;
    await frames.return(undefined);
    expect(given).toHaveLength(0);
    release();
    await settle();
    expect(given).toHaveLength(1);
  });
});
