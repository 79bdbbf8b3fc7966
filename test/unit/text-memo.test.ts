import { describe, expect, it } from 'vitest';
import { TextMemo } from '../../src/text-memo.js';

describe('TextMemo', () => {
  it('keeps values by text, undefined ones included', () => {
    const memo = new TextMemo<string | undefined>();
    memo.set('a', 'A');
    memo.set('b', undefined);
    expect(memo.get('a')).toBe('A');
    expect(memo.has('b')).toBe(true);
    expect(memo.has('c')).toBe(false);
  });

  it('keeps no text longer than its limit, and starts over when full', () => {
    const memo = new TextMemo<number>(3, 4);
    memo.set('12345', 5);
    expect(memo.has('12345')).toBe(false);
    for (const text of ['a', 'b', 'c']) memo.set(text, 1);
    expect(memo.has('a')).toBe(true);
    memo.set('d', 1);
    expect(memo.has('a')).toBe(false);
    expect(memo.has('d')).toBe(true);
  });

  it('gives back a kept text equal to the one it was given', () => {
    const memo = new TextMemo<string>();
    const url = `/?IpsecServerId=iss-${'x'.repeat(40)}&RegionId=cn-shanghai`;
    const id = url.slice(2, url.indexOf('&'));
    memo.set(id, id);
    expect(memo.get(`IpsecServerId=iss-${'x'.repeat(40)}`)).toBe(id);
  });

  it('computes the value of a text once, undefined included, and keeps nothing when computing throws', () => {
    const memo = new TextMemo<number | undefined>();
    let computed = 0;
    const length = (text: string) => {
      computed++;
      if (text === 'bad') throw new URIError('malformed');
      return text === 'none' ? undefined : text.length;
    };
    expect(memo.remember('abc', length)).toBe(3);
    expect(memo.remember('abc', length)).toBe(3);
    expect(memo.remember('none', length)).toBeUndefined();
    expect(memo.remember('none', length)).toBeUndefined();
    expect(computed).toBe(2);
    expect(() => memo.remember('bad', length)).toThrow(URIError);
    expect(memo.has('bad')).toBe(false);
  });
});
