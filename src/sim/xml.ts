/**
 * The XML form of responses, for V1 calls that ask `Format=XML` (aliyun-cli and older SDKs).
 * The mapping is the one the cloud uses: an object becomes child elements named by its keys, a
 * list repeats the element of its key (`Regions: { Region: [a, b] }` →
 * `<Regions><Region>a</Region><Region>b</Region></Regions>`), and undefined fields are left out.
 */

export const XML_PROLOG = '<?xml version="1.0" encoding="UTF-8"?>';

// Characters XML 1.0 cannot carry at all, even escaped: most C0 controls, lone surrogates, U+FFFE/F.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const MARKUP = /[&<>"']/g;
const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};
const NAME_START = /^[A-Za-z_]/;
const NOT_NAME_CHAR = /[^A-Za-z0-9_.-]/g;

function entity(char: string): string {
  return ENTITIES[char] ?? char;
}

export function escapeXmlText(text: string): string {
  return text.replace(NOT_XML_CHAR, '').replace(MARKUP, entity);
}

/** Keys are API field names already; anything else is made into a legal name rather than broken XML. */
export function xmlName(key: string): string {
  const cleaned = key.replace(NOT_NAME_CHAR, '_');
  return NAME_START.test(cleaned) ? cleaned : `_${cleaned}`;
}

function appendElement(parts: string[], name: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) appendElement(parts, name, item);
    return;
  }
  parts.push(`<${name}>`);
  if (typeof value === 'object') appendChildren(parts, value as Record<string, unknown>);
  else parts.push(escapeXmlText(String(value)));
  parts.push(`</${name}>`);
}

function appendChildren(parts: string[], object: Record<string, unknown>): void {
  for (const key of Object.keys(object)) appendElement(parts, xmlName(key), object[key]);
}

/** A whole document: prolog, then `<root>` holding `body`'s fields. */
export function toXmlDocument(root: string, body: Record<string, unknown>): string {
  const parts: string[] = [XML_PROLOG];
  const name = xmlName(root);
  parts.push(`<${name}>`);
  appendChildren(parts, body);
  parts.push(`</${name}>`);
  return parts.join('');
}
