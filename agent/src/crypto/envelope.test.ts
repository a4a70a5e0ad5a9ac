import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blobId, openBlob, openBlobTransient, sealBlob, BlobIntegrityError, FLAG_ZSTD } from './envelope.js';
import { deriveKeys, newMasterKey } from './keys.js';

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
