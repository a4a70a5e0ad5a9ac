/**
 * @module Blob ids and blob envelopes (FORMAT.md "Blob envelope"). The id is
 * a keyed BLAKE3 of the plaintext, so the gateway cannot test guesses; the
 * envelope is zstd (when it pays) then XChaCha20-Poly1305 with the id as
 * associated data, so a blob cannot be passed off under another id.
 */
import sodium from 'sodium-native';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { Compressor, decompress } from 'zstd-napi';

export const FLAG_ZSTD = 1;
const NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
const TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES;
export const ENVELOPE_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;
/** Trial-compress this much of a large block first; skip zstd if it does not shrink. */
const TRIAL_BYTES = 32 * 1024;

let compressor: Compressor | undefined;
function zstd(data: Buffer): Buffer {
  if (!compressor) {
    compressor = new Compressor();
    // Level 3 measured faster than 1 here on text-like data, and smaller.
    compressor.setParameters({ compressionLevel: 3 });
  }
  return compressor.compress(data);
}

export function blobId(key: Buffer, plaintext: Buffer): Buffer {
  return Blake3Hasher.newKeyed(key).update(plaintext).digestBuffer();
}

function worthCompressing(plain: Buffer): boolean {
  if (plain.length < 64) return false;
  if (plain.length <= 2 * TRIAL_BYTES) return true;
  return zstd(plain.subarray(0, TRIAL_BYTES)).length < TRIAL_BYTES * 0.9;
}

export function sealBlob(dataKey: Buffer, id: Buffer, plain: Buffer): Buffer {
  let flags = 0;
  let body = plain;
  if (worthCompressing(plain)) {
    const packed = zstd(plain);
    if (packed.length < plain.length - (plain.length >> 4)) { body = packed; flags = FLAG_ZSTD; }
  }
  const envelope = Buffer.allocUnsafe(1 + NONCE_BYTES + body.length + TAG_BYTES);
  envelope[0] = flags;
  const nonce = envelope.subarray(1, 1 + NONCE_BYTES);
  sodium.randombytes_buf(nonce);
  const ad = Buffer.concat([id, envelope.subarray(0, 1)]);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(envelope.subarray(1 + NONCE_BYTES), body, ad, null, nonce, dataKey);
  return envelope;
}

export class BlobIntegrityError extends Error {}

/** Decrypt, decompress and check that the plaintext hashes to `id`. */
export function openBlob(dataKey: Buffer, blobIdKey: Buffer, id: Buffer, envelope: Buffer): Buffer {
  if (envelope.length < ENVELOPE_OVERHEAD) throw new BlobIntegrityError(`blob ${id.toString('hex')} is too short to be an envelope`);
  const flags = envelope[0];
  const nonce = envelope.subarray(1, 1 + NONCE_BYTES);
  const body = Buffer.allocUnsafe(envelope.length - ENVELOPE_OVERHEAD);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(body, null, envelope.subarray(1 + NONCE_BYTES), Buffer.concat([id, envelope.subarray(0, 1)]), nonce, dataKey);
  } catch {
    throw new BlobIntegrityError(`blob ${id.toString('hex')} fails its MAC: it was altered or belongs to another key`);
  }
  const plain = flags & FLAG_ZSTD ? decompress(body) : body;
  if (!blobId(blobIdKey, plain).equals(id)) throw new BlobIntegrityError(`blob ${id.toString('hex')} decrypts but does not hash to its id`);
  return plain;
}
