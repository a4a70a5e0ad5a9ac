import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blobId, openBlob, openBlobTransient, sealBlob, BlobIntegrityError, FLAG_ZSTD } from './envelope.js';
import { deriveKeys, newMasterKey } from './keys.js';

describe('blob ids', () => {
  it('are keyed BLAKE3 of the plaintext, whatever was hashed before and under which key (official test vectors)', () => {
    const vectorKey = Buffer.from('whats the Elvish word for friend');
    const otherKey = Buffer.alloc(32, 9);
    const input = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251));
    const vectors: [number, string][] = [
      [0, '92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26'],
      [1, '6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b'],
      [1025, '357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69'],
    ];
    const otherFirst = blobId(otherKey, input(1025));
    for (let round = 0; round < 2; round++) {
      for (const [n, hex] of vectors) {
        expect(blobId(vectorKey, input(n)).toString('hex')).toBe(hex);
        expect(blobId(otherKey, input(1025))).toEqual(otherFirst);
      }
    }
    expect(otherFirst.toString('hex')).not.toBe(vectors[2][1]);
  });
});

describe('blob envelope', () => {
  const keys = deriveKeys(newMasterKey());
  const text = Buffer.from('ransomware-proof '.repeat(10_000));

  it('compresses what compresses, not what does not, and opens to the same bytes', () => {
    const random = randomBytes(200_000);
    for (const plain of [text, random, Buffer.alloc(0), Buffer.from('x')]) {
      const id = blobId(keys.blobId, plain);
      const envelope = sealBlob(keys.data, id, plain);
      expect(openBlob(keys.data, keys.blobId, id, envelope).equals(plain)).toBe(true);
      expect(openBlobTransient(keys.data, keys.blobId, id, envelope).equals(plain)).toBe(true);
    }
    expect(sealBlob(keys.data, blobId(keys.blobId, text), text)[0] & FLAG_ZSTD).toBe(FLAG_ZSTD);
    expect(sealBlob(keys.data, blobId(keys.blobId, random), random)[0] & FLAG_ZSTD).toBe(0);
  });

  it.each([['openBlob', openBlob], ['openBlobTransient', openBlobTransient]])('%s detects a flipped bit, a swapped id, flipped flags and a foreign key', (_name, open) => {
    const id = blobId(keys.blobId, text);
    const envelope = sealBlob(keys.data, id, text);
    const flipped = Buffer.from(envelope); flipped[flipped.length - 20] ^= 1;
    expect(() => open(keys.data, keys.blobId, id, flipped)).toThrow(BlobIntegrityError);
    expect(() => open(keys.data, keys.blobId, Buffer.alloc(32, 1), envelope)).toThrow(/fails its MAC/);
    const flags = Buffer.from(envelope); flags[0] ^= FLAG_ZSTD;
    expect(() => open(keys.data, keys.blobId, id, flags)).toThrow(BlobIntegrityError);
    const other = deriveKeys(newMasterKey());
    expect(() => open(other.data, other.blobId, id, envelope)).toThrow(BlobIntegrityError);
  });

  it('keys blob ids: the same content has different ids under different agents', () => {
    expect(blobId(keys.blobId, text)).not.toEqual(blobId(deriveKeys(newMasterKey()).blobId, text));
  });
});
