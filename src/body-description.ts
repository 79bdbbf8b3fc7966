/**
 * What an HTTP body that is not the expected answer was, without its text: a proxy's or portal's
 * page may quote the request, its URL or its body, and with them a Psk or a signed parameter (and
 * the description goes to the audit on every retry, or to a terminal). Its type, its size and a
 * title (or first heading) that quotes nothing still tell a load balancer's 502 from a captive
 * portal.
 */
export function describeBody(contentType: string | undefined, text: string): string {
  if (text.trim() === '') return 'an empty body';
  const type = contentType?.split(';')[0]?.trim();
  const title = /<(title|h1)[^>]*>([^<]{1,80})<\/\1>/i.exec(text)?.[2]?.trim();
  const shownTitle = title && !/[=?&%/\\]/.test(title) ? `, titled "${title}"` : '';
  return `${type ? `a ${type}` : 'an untyped'} body of ${Buffer.byteLength(text)} bytes${shownTitle}`;
}
