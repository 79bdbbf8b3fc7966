import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { type PskFingerprint, pskFingerprinter } from '../ipsec/psk.js';
import { SecretKeyMissingError, SecretUnsealError } from './errors.js';

const VERSION = 'v1';
/** AES-GCM's 96-bit IV. */
const IV_BYTES = 12;
/** IVs drawn at once (3 KB of random bytes). */
const IV_POOL = 256;

/**
 * Seals secrets (a change's Psk) at rest with AES-256-GCM, so that Redis never holds them in
 * clear (DESIGN invariant 6). The sealed form is `v1.<iv>.<tag>.<ciphertext>` in base64url; the
 * change id is bound as additional data so a sealed Psk cannot be moved to another change. The
 * same secret keys the Psk labels that the change's public view shows.
 */
export class SecretBox {
  /** The Psk labels of this deployment, keyed by the same secret (see pskFingerprinter). */
  readonly fingerprint: PskFingerprint;

  private ivPool = Buffer.alloc(0);
  private ivOffset = 0;

  private constructor(private readonly key: Buffer | undefined) {
    this.fingerprint = pskFingerprinter(key);
  }

  /** `secretKey`: 32 bytes as 64 hex characters or base64; undefined means sealing is refused. */
  static fromKey(secretKey: string | undefined): SecretBox {
    return new SecretBox(secretKey === undefined ? undefined : decodeKey(secretKey));
  }

  get canSeal(): boolean {
    return this.key !== undefined;
  }

  seal(plaintext: string, boundTo: string): string {
    const key = this.requireKey();
    const iv = this.nextIv();
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(boundTo));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, cipher.getAuthTag(), ciphertext]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  /**
   * A fresh random IV, cut from a block of random bytes drawn IV_POOL at a time: a rollout seals
   * one Psk per target, and one draw per seal made drawing the largest part of sealing. Each IV is
   * used once; a used block is dropped, never refilled in place.
   */
  private nextIv(): Buffer {
    if (this.ivOffset + IV_BYTES > this.ivPool.length) {
      this.ivPool = randomBytes(IV_BYTES * IV_POOL);
      this.ivOffset = 0;
    }
    const iv = this.ivPool.subarray(this.ivOffset, this.ivOffset + IV_BYTES);
    this.ivOffset += IV_BYTES;
    return iv;
  }

  open(sealed: string, boundTo: string): string {
    const key = this.requireKey();
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || ciphertext === undefined) throw new SecretUnsealError();
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(boundTo));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch (error) {
      throw new SecretUnsealError({ cause: error });
    }
  }

  private requireKey(): Buffer {
    if (!this.key) throw new SecretKeyMissingError();
    return this.key;
  }
}

export function decodeKey(secretKey: string): Buffer | undefined {
  const key = /^[0-9a-fA-F]{64}$/.test(secretKey)
    ? Buffer.from(secretKey, 'hex')
    : Buffer.from(secretKey, 'base64');
  return key.length === 32 ? key : undefined;
}
