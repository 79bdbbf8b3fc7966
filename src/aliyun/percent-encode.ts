import { ParamEncodingError } from './errors.js';

// encodeURIComponent leaves these five as they are; RFC 3986 (and Alibaba Cloud's signers) encode them.
const LEFT_BY_ENCODE_URI_COMPONENT = /[!'()*]/g;
const HAS_LEFT_BY_ENCODE_URI_COMPONENT = /[!'()*]/;
// Names, ids, regions and flags are mostly this already; checking is cheaper than encoding them.
const ONLY_UNRESERVED = /^[A-Za-z0-9_.~-]*$/;
const RFC3986_ESCAPES: Readonly<Record<string, string>> = {
  '!': '%21',
  "'": '%27',
  '(': '%28',
  ')': '%29',
  '*': '%2A',
};

function escapeReserved(char: string): string {
  return RFC3986_ESCAPES[char] ?? char;
}

/**
 * RFC 3986 percent-encoding of UTF-8, as Alibaba Cloud signatures expect: only `A-Z a-z 0-9 - _ . ~`
 * stay literal, a space is `%20` (never `+`). Throws ParamEncodingError for a lone surrogate.
 */
export function percentEncode(value: string): string {
  if (ONLY_UNRESERVED.test(value)) return value;
  let encoded: string;
  try {
    encoded = encodeURIComponent(value);
  } catch (error) {
    throw new ParamEncodingError('a parameter value holds a lone UTF-16 surrogate and has no UTF-8 form', {
      cause: error,
    });
  }
  return HAS_LEFT_BY_ENCODE_URI_COMPONENT.test(encoded)
    ? encoded.replace(LEFT_BY_ENCODE_URI_COMPONENT, escapeReserved)
    : encoded;
}
