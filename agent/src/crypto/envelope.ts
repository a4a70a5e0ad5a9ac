/**
 * @module Blob ids and blob envelopes (FORMAT.md "Blob envelope"). The id is
 * a keyed BLAKE3 of the plaintext, so the gateway cannot test guesses; the
 * envelope is zstd (when it pays) then XChaCha20-Poly1305 with the id as
 * associated data, so a blob cannot be passed off under another id.
 */
import { sodium } from '../native/sodium.js';
import { Blake3Hasher } from '../native/blake3.js';
import { ScratchBuffer } from '../buffers/scratch-buffer.js';
import { zstdBinding } from '../native/zstd.js';

const { CCtx, DCtx, compressBound, getFrameContentSize } = zstdBinding;

export const FLAG_ZSTD = 1;
const NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
const TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES;
export const ENVELOPE_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;
/** Trial-compress this much of a large block first; skip zstd if it does not shrink. */
const TRIAL_BYTES = 32 * 1024;
/** Level 3 measured as fast as 1 here on text-like data, and smaller. */
const ZSTD_LEVEL = 3;

// One context and one output buffer per thread, reused: a fresh buffer per blob is garbage the size of the backup.
let cctx: InstanceType<typeof CCtx> | undefined;
const compressed = new ScratchBuffer();

/** zstd of `data` into the thread's scratch buffer; the view is valid until the next call. */
function zstd(data: Buffer): Buffer {
  cctx ??= new CCtx();
  const out = compressed.take(compressBound(data.length));
  return out.subarray(0, cctx.compress(out, data, ZSTD_LEVEL));
}

const adBuffer = Buffer.alloc(33);
/** The AEAD's associated data: the blob id and the flags byte, so neither can be swapped. Valid until the next call. */
function associatedData(id: Buffer, flags: number): Buffer {
  id.copy(adBuffer, 0);
  adBuffer[id.length] = flags;
  return adBuffer.subarray(0, id.length + 1);
}

/**
 * One keyed hasher per key and thread, reset for every id: making one is a
 * native object the garbage collector must finalize, 10–20 µs here, more
 * than hashing a small blob takes.
 */
const keyedHashers = new WeakMap<Buffer, InstanceType<typeof Blake3Hasher>>();

export function blobId(key: Buffer, plaintext: Buffer): Buffer {
  let hasher = keyedHashers.get(key);
  if (hasher) hasher.reset();
  else keyedHashers.set(key, (hasher = Blake3Hasher.newKeyed(key)));
  return hasher.update(plaintext).digestBuffer();
}

function worthCompressing(plain: Buffer): boolean {
  if (plain.length < 64) return false;
  if (plain.length <= 2 * TRIAL_BYTES) return true;
  return zstd(plain.subarray(0, TRIAL_BYTES)).length < TRIAL_BYTES * 0.9;
}

/** The most bytes the envelope of `plainBytes` can take. */
export const envelopeBound = (plainBytes: number): number => ENVELOPE_OVERHEAD + plainBytes;

/** The flags byte and what gets encrypted: zstd of `plain` (a view into this thread's scratch) where it pays, else `plain`. */
function envelopeBody(plain: Buffer): { flags: number; body: Buffer } {
  if (worthCompressing(plain)) {
    const packed = zstd(plain);
    if (packed.length < plain.length - (plain.length >> 4)) return { flags: FLAG_ZSTD, body: packed };
  }
  return { flags: 0, body: plain };
}

function encryptInto(dataKey: Buffer, id: Buffer, flags: number, body: Buffer, out: Buffer): number {
  const length = ENVELOPE_OVERHEAD + body.length;
  out[0] = flags;
  const nonce = out.subarray(1, 1 + NONCE_BYTES);
  sodium.randombytes_buf(nonce);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out.subarray(1 + NONCE_BYTES, length), body, associatedData(id, flags), null, nonce, dataKey);
  return length;
}

/** Seal `plain` into `out` (at least `envelopeBound` long); returns the envelope's length. */
export function sealBlobInto(dataKey: Buffer, id: Buffer, plain: Buffer, out: Buffer): number {
  const { flags, body } = envelopeBody(plain);
  return encryptInto(dataKey, id, flags, body, out);
}

/**
 * Seal `plain` into memory of its own, exactly the envelope's size: the
 * ciphertext is written where it stays, and the memory can be transferred
 * to another thread or freed alone.
 */
export function sealBlob(dataKey: Buffer, id: Buffer, plain: Buffer): Buffer {
  const { flags, body } = envelopeBody(plain);
  const out = Buffer.allocUnsafeSlow(ENVELOPE_OVERHEAD + body.length);
  encryptInto(dataKey, id, flags, body, out);
  return out;
}

export class BlobIntegrityError extends Error {}

/** The largest plaintext any blob has (chunks, trees and volume blobs are far smaller): a bound, not a format rule. */
const MAX_PLAIN_BYTES = 64 * 1024 * 1024;

let dctx: InstanceType<typeof DCtx> | undefined;
// Page-aligned: a restore writes what it opens around the page cache, straight from here (image-writer.ts).
/** Reused memory for opened blobs: one per blob a caller holds at once (a write of it still in flight). */
export class OpenedScratch {
  readonly body = new ScratchBuffer(true);
  readonly plain = new ScratchBuffer(true);
}
const threadScratch = new OpenedScratch();

/** `scratch`: decrypt and decompress into these reused buffers instead of fresh ones. */
function open(dataKey: Buffer, blobIdKey: Buffer, id: Buffer, envelope: Buffer, scratch?: OpenedScratch): Buffer {
  const fail = (why: string) => new BlobIntegrityError(`blob ${id.toString('hex')} ${why}`);
  if (envelope.length < ENVELOPE_OVERHEAD) throw fail('is too short to be an envelope');
  const flags = envelope[0];
  const nonce = envelope.subarray(1, 1 + NONCE_BYTES);
  const bodyLength = envelope.length - ENVELOPE_OVERHEAD;
  const body = scratch ? scratch.body.take(bodyLength) : Buffer.allocUnsafe(bodyLength);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(body, null, envelope.subarray(1 + NONCE_BYTES), associatedData(id, flags), nonce, dataKey);
  } catch {
    throw fail('fails its MAC: it was altered or belongs to another key');
  }
  let plain = body;
  if (flags & FLAG_ZSTD) {
    // Every envelope's zstd frame records its size (one-shot compression): one exact buffer, one pass.
    const size = getFrameContentSize(body);
    if (size === null || size > MAX_PLAIN_BYTES) throw fail('does not say how large it is, or claims too much');
    const out = scratch ? scratch.plain.take(size) : Buffer.allocUnsafe(size);
    dctx ??= new DCtx();
    plain = out.subarray(0, dctx.decompress(out, body));
  }
  if (!blobId(blobIdKey, plain).equals(id)) throw fail('decrypts but does not hash to its id');
  return plain;
}

/** Decrypt, decompress and check that the plaintext hashes to `id`. */
export function openBlob(dataKey: Buffer, blobIdKey: Buffer, id: Buffer, envelope: Buffer): Buffer {
  return open(dataKey, blobIdKey, id, envelope);
}

/**
 * The same checks into reused buffers (this thread's, unless given), for
 * callers that write the plaintext out at once: it is valid only until the
 * next call with the same scratch.
 */
export function openBlobTransient(dataKey: Buffer, blobIdKey: Buffer, id: Buffer, envelope: Buffer, scratch = threadScratch): Buffer {
  return open(dataKey, blobIdKey, id, envelope, scratch);
}
