import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ApiClient,
  ApiError,
  ApiResponseError,
  ApiUnreachableError,
  parseServerSentEvents,
  splitLines,
} from '../../src/cli/api-client.js';
import { sendJson, startHttpServer, type TestHttpServer } from '../support/http-server.js';

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

async function* chunks(...parts: string[]): AsyncGenerator<string> {
  for (const part of parts) yield part;
}

function event(id: string, type: string) {
  return {
    id,
    ts: Number(id.split('-')[0]),
    actor: 'sam',
    type,
    changeId: 'chg-1',
    ipsecServerId: 'iss-1',
    regionId: 'cn-shanghai',
    attempt: 0,
  };
}

function frame(body: ReturnType<typeof event>): string {
  return `id: ${body.id}\nevent: audit\ndata: ${JSON.stringify(body)}\n\n`;
}

describe('parseServerSentEvents', () => {
  it('follows the event-stream rules: fields, multi-line data, comments, ids, any line ending', async () => {
    const events = await collect(
      parseServerSentEvents(
        chunks(
          '\uFEFF: comment\r\nevent: audit\r\nid: 1-0\r\ndata: {"a":',
          '1}\r',
          '\n\r\ndata: line one\ndata:line two\n\n',
          'event: other\rdata: x\r\r',
          'data: cut off at the end',
        ),
      ),
    );
    expect(events).toEqual([
      { event: 'audit', data: '{"a":1}', id: '1-0' },
      { event: 'message', data: 'line one\nline two', id: '1-0' },
      { event: 'other', data: 'x', id: '1-0' },
    ]);
  });

  it('splits JSON lines across chunk borders', async () => {
    expect(await collect(splitLines(chunks('{"a"', ':1}\r\n{"b":2}\n', '{"c":3}')))).toEqual([
      '{"a":1}',
      '{"b":2}',
      '{"c":3}',
    ]);
  });
});

describe('ApiClient', () => {
  let server: TestHttpServer | undefined;
  let client: ApiClient | undefined;
  afterEach(async () => {
    await client?.destroy();
    await server?.close();
    client = undefined;
    server = undefined;
  });

  it('reopens a broken event stream and yields each event once, until the terminal one', async () => {
    let connections = 0;
    const lastEventIds: Array<string | undefined> = [];
    server = await startHttpServer((request, response: ServerResponse) => {
      connections++;
      lastEventIds.push(request.headers['last-event-id'] as string | undefined);
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(frame(event('1-0', 'submitted')));
      response.write(frame(event('2-0', 'running')));
      if (connections === 1) {
        // Cut off mid-stream, once what was written has reached the client.
        setTimeout(() => response.destroy(), 100);
        return;
      }
      response.write(': heartbeat\n\n');
      response.write(frame(event('3-0', 'succeeded')));
      response.write(frame(event('4-0', 'ignored after the end')));
      response.end();
    });
    client = new ApiClient({ baseUrl: server.origin, token: 'ipf_x', timeoutMs: 2_000 });
    const events = await collect(client.followChange('chg-1', { retryDelayMs: 10 }));
    expect(events.map((item) => item.type)).toEqual(['submitted', 'running', 'succeeded']);
    expect(connections).toBe(2);
    expect(lastEventIds).toEqual([undefined, '2-0']);
    expect(server.requests[0]?.headers.authorization).toBe('Bearer ipf_x');
    expect(server.requests[0]?.pathname).toBe('/v1/changes/chg-1/events');
  });

  it('gives up with ApiUnreachableError when the stream keeps ending early', async () => {
    server = await startHttpServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end(frame(event('1-0', 'submitted')));
    });
    client = new ApiClient({ baseUrl: server.origin });
    await expect(
      collect(client.followChange('chg-1', { retries: 2, retryDelayMs: 1 })),
    ).rejects.toBeInstanceOf(ApiUnreachableError);
    expect(server.requests).toHaveLength(3);
  });

  it('turns problem+json into ApiError and a proxy page into HTTP_<status>; keeps a base path', async () => {
    server = await startHttpServer((request, response) => {
      if (request.pathname === '/fleet/v1/changes/chg-1') {
        response.writeHead(404, { 'content-type': 'application/problem+json' });
        response.end(
          JSON.stringify({
            status: 404,
            code: 'CHANGE_NOT_FOUND',
            title: 'Not found',
            detail: 'no such change',
          }),
        );
        return;
      }
      if (request.pathname === '/fleet/v1/changes') {
        sendJson(response, 200, { changes: 'not a list' });
        return;
      }
      response.writeHead(502, { 'content-type': 'text/html' });
      response.end('<html>Bad Gateway</html>');
    });
    client = new ApiClient({ baseUrl: `${server.origin}/fleet/` });
    const notFound = await client.getChange('chg-1').catch((error: unknown) => error);
    expect(notFound).toBeInstanceOf(ApiError);
    expect(notFound).toMatchObject({ status: 404, code: 'CHANGE_NOT_FOUND', errors: [] });
    const proxy = await client.lane('iss-1').catch((error: unknown) => error);
    expect(proxy).toMatchObject({ status: 502, code: 'HTTP_502' });
    await expect(client.listChanges()).rejects.toBeInstanceOf(ApiResponseError);
  });

  it("describes a page that is not the API's without quoting it: a proxy may echo the request, Psk and all", async () => {
    const psk = 'Ech0ed-By-A-Proxy-7';
    let status = 502;
    server = await startHttpServer((request, response) => {
      response.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
      response.end(`<html><title>Bad Gateway</title><body>upstream refused: ${request.body}</body></html>`);
    });
    client = new ApiClient({ baseUrl: server.origin });
    const submission = {
      ipsecServerId: 'iss-1',
      regionId: 'cn-shanghai',
      params: { Psk: psk },
    };
    const refused = await client.submitChange(submission).catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 502, code: 'HTTP_502' });
    const detail = (refused as ApiError).problem.detail ?? '';
    expect(detail).toMatch(/a text\/html body of \d+ bytes, titled "Bad Gateway"/);
    expect(detail).not.toContain(psk);
    // The same page with a success status: not the API's JSON either, and not quoted.
    status = 200;
    const odd = await client.submitChange(submission).catch((error: unknown) => error);
    expect(odd).toBeInstanceOf(ApiResponseError);
    expect((odd as Error).message).toMatch(/a text\/html body of \d+ bytes/);
    expect((odd as Error).message).not.toContain(psk);
  });

  it('honours the caller signal', async () => {
    server = await startHttpServer(() => new Promise(() => undefined));
    client = new ApiClient({ baseUrl: server.origin, timeoutMs: 5_000 });
    const controller = new AbortController();
    const pending = client.lane('iss-1', { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await expect(pending).rejects.toThrow('stop');
  });
});
