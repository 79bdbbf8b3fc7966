import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/orchestrator/secret-box.js';

const key = randomBytes(32).toString('hex');

describe('SecretBox', () => {
  it('opens what it sealed, for the change it was bound to', () => {
    const box = SecretBox.fromKey(key);
    const sealed = box.seal('my-psk', 'chg-1');
    expect(sealed).not.toContain('my-psk');
    expect(sealed.startsWith('v1.')).toBe(true);
    expect(box.open(sealed, 'chg-1')).toBe('my-psk');
  });

  it('seals the same secret differently every time', () => {
    const box = SecretBox.fromKey(key);
    expect(box.seal('my-psk', 'chg-1')).not.toBe(box.seal('my-psk', 'chg-1'));
  });

  it('gives every seal an IV of its own, past the block of random bytes IVs are cut from', () => {
    const box = SecretBox.fromKey(key);
    const sealed = Array.from({ length: 1_000 }, (_, index) => box.seal('my-psk', `rol-1/${index}`));
    const ivs = sealed.map((value) => value.split('.')[1]);
    expect(new Set(ivs).size).toBe(sealed.length);
    for (const iv of ivs) expect(Buffer.from(iv as string, 'base64url')).toHaveLength(12);
    expect(sealed.map((value, index) => box.open(value, `rol-1/${index}`))).toEqual(
      sealed.map(() => 'my-psk'),
    );
  });

  it('refuses a sealed value moved to another change, tampered with, or opened with another key', () => {
    const box = SecretBox.fromKey(key);
    const sealed = box.seal('my-psk', 'chg-1');
    expect(() => box.open(sealed, 'chg-2')).toThrow(
      expect.objectContaining({ code: 'SECRET_UNSEAL_FAILED' }),
    );
    const parts = sealed.split('.');
    const tampered = [...parts.slice(0, 3), Buffer.from('other').toString('base64url')].join('.');
    expect(() => box.open(tampered, 'chg-1')).toThrow(
      expect.objectContaining({ code: 'SECRET_UNSEAL_FAILED' }),
    );
    const otherKey = SecretBox.fromKey(randomBytes(32).toString('base64'));
    expect(() => otherKey.open(sealed, 'chg-1')).toThrow(
      expect.objectContaining({ code: 'SECRET_UNSEAL_FAILED' }),
    );
    expect(() => box.open('garbage', 'chg-1')).toThrow(
      expect.objectContaining({ code: 'SECRET_UNSEAL_FAILED' }),
    );
  });

  it('without a key, says which variable is missing instead of storing a secret in clear', () => {
    const box = SecretBox.fromKey(undefined);
    expect(box.canSeal).toBe(false);
    expect(() => box.seal('my-psk', 'chg-1')).toThrow(
      expect.objectContaining({
        code: 'SECRET_KEY_MISSING',
        message: expect.stringContaining('IPSEC_FLEET_SECRET_KEY'),
      }),
    );
  });
});
