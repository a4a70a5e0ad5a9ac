/**
 * @module Ed25519 signatures: the gateway countersigns every committed point
 * and checks the agent's own signature on it.
 */
import sodium from 'sodium-native';

export interface SigningKey { publicKey: Buffer; secretKey: Buffer }

export function createSigningKey(): SigningKey {
  const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_keypair(publicKey, secretKey);
  return { publicKey, secretKey };
}

export function sign(message: Buffer, key: SigningKey): Buffer {
  const signature = Buffer.alloc(sodium.crypto_sign_BYTES);
  sodium.crypto_sign_detached(signature, message, key.secretKey);
  return signature;
}

export function verify(message: Buffer, signature: Buffer, publicKey: Buffer): boolean {
  return signature.length === sodium.crypto_sign_BYTES && publicKey.length === sodium.crypto_sign_PUBLICKEYBYTES
    && sodium.crypto_sign_verify_detached(signature, message, publicKey);
}
