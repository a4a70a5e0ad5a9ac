/**
 * @module The site recovery key (X25519). Agents seal their master key to its
 * public half; the secret half is kept only encrypted under a key derived
 * with Argon2id from the restore password, so the gateway alone cannot open
 * any backup.
 */
import sodium from 'sodium-native';

export interface SealedRecoveryKey {
  version: 1;
  kdf: 'argon2id13';
  opslimit: number;
  memlimit: number;
  salt: string;
  nonce: string;
  ciphertext: string;
  publicKey: string;
}

export const MIN_PASSWORD_LENGTH = 8;
// Moderate cost: a restore takes ~0.3 s to unlock and the gateway stays far below its memory budget.
const OPSLIMIT = 3;
const MEMLIMIT = 64 * 1024 * 1024;

function deriveKey(password: string, salt: Buffer, opslimit: number, memlimit: number): Buffer {
  const key = sodium.sodium_malloc(sodium.crypto_secretbox_KEYBYTES) as Buffer;
  sodium.crypto_pwhash(key, Buffer.from(password, 'utf8'), salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13);
  return key;
}

export function createRecoveryKey(password: string): SealedRecoveryKey {
  if (password.length < MIN_PASSWORD_LENGTH) throw new Error(`restore password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  const publicKey = Buffer.alloc(sodium.crypto_box_PUBLICKEYBYTES);
  const secretKey = sodium.sodium_malloc(sodium.crypto_box_SECRETKEYBYTES) as Buffer;
  sodium.crypto_box_keypair(publicKey, secretKey);
  const salt = Buffer.alloc(sodium.crypto_pwhash_SALTBYTES);
  sodium.randombytes_buf(salt);
  const nonce = Buffer.alloc(sodium.crypto_secretbox_NONCEBYTES);
  sodium.randombytes_buf(nonce);
  const key = deriveKey(password, salt, OPSLIMIT, MEMLIMIT);
  const ciphertext = Buffer.alloc(secretKey.length + sodium.crypto_secretbox_MACBYTES);
  sodium.crypto_secretbox_easy(ciphertext, secretKey, nonce, key);
  return {
    version: 1, kdf: 'argon2id13', opslimit: OPSLIMIT, memlimit: MEMLIMIT,
    salt: salt.toString('base64'), nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), publicKey: publicKey.toString('base64'),
  };
}

export class WrongRestorePassword extends Error {
  constructor() { super('the restore password is wrong'); }
}

/** Open an agent's sealed master key with the restore password. */
export function openSealedMasterKey(sealedRecovery: SealedRecoveryKey, password: string, sealedMasterKey: Buffer): Buffer {
  const key = deriveKey(password, Buffer.from(sealedRecovery.salt, 'base64'), sealedRecovery.opslimit, sealedRecovery.memlimit);
  const ciphertext = Buffer.from(sealedRecovery.ciphertext, 'base64');
  const secretKey = sodium.sodium_malloc(ciphertext.length - sodium.crypto_secretbox_MACBYTES) as Buffer;
  if (!sodium.crypto_secretbox_open_easy(secretKey, ciphertext, Buffer.from(sealedRecovery.nonce, 'base64'), key)) throw new WrongRestorePassword();
  const publicKey = Buffer.from(sealedRecovery.publicKey, 'base64');
  const master = Buffer.alloc(sealedMasterKey.length - sodium.crypto_box_SEALBYTES);
  if (!sodium.crypto_box_seal_open(master, sealedMasterKey, publicKey, secretKey)) throw new Error('the agent\'s sealed master key does not open with the recovery key');
  return master;
}
