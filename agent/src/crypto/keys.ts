/**
 * @module The agent's key hierarchy: one 32-byte master key, and sub-keys
 * derived from it for blob ids, blob data, manifest signing and chunk
 * boundaries (DESIGN.md §3). Deriving everything from one key means the
 * restore password, which recovers the master key, recovers all of them.
 */
import { sodium } from '../native/sodium.js';

export interface AgentKeys {
  master: Buffer;
  blobId: Buffer;
  data: Buffer;
  chunkSeed: Buffer;
  signPublic: Buffer;
  signSecret: Buffer;
}

const CONTEXT = Buffer.from('bulwark1');

function derive(master: Buffer, id: number, bytes = 32): Buffer {
  const key = Buffer.alloc(bytes);
  sodium.crypto_kdf_derive_from_key(key, id, CONTEXT, master);
  return key;
}

export function newMasterKey(): Buffer {
  const key = Buffer.alloc(32);
  sodium.randombytes_buf(key);
  return key;
}

export function deriveKeys(master: Buffer): AgentKeys {
  if (master.length !== 32) throw new Error('the master key must be 32 bytes');
  const signPublic = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  const signSecret = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_seed_keypair(signPublic, signSecret, derive(master, 3));
  return { master, blobId: derive(master, 1), data: derive(master, 2), chunkSeed: derive(master, 4), signPublic, signSecret };
}

export function sealToRecoveryKey(master: Buffer, recoveryPublicKey: Buffer): Buffer {
  const sealed = Buffer.alloc(master.length + sodium.crypto_box_SEALBYTES);
  sodium.crypto_box_seal(sealed, master, recoveryPublicKey);
  return sealed;
}

export function signDetached(message: Buffer, secretKey: Buffer): Buffer {
  const signature = Buffer.alloc(sodium.crypto_sign_BYTES);
  sodium.crypto_sign_detached(signature, message, secretKey);
  return signature;
}

export function verifyDetached(message: Buffer, signature: Buffer, publicKey: Buffer): boolean {
  return signature.length === sodium.crypto_sign_BYTES && sodium.crypto_sign_verify_detached(signature, message, publicKey);
}
