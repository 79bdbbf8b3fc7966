import { describe, expect, it } from 'vitest';
import { IpsecServerNotFoundError } from '../../src/ipsec/errors.js';
import { ServerReader } from '../../src/orchestrator/server-reader.js';
import { startHoldProxy } from '../support/hold-proxy.js';
import { useSimulators } from '../support/sim-harness.js';

const sims = useSimulators();

describe('ServerReader (batched ListIpsecServers over HTTP)', () => {
  it('reads many servers of a region with few calls, each read answered with its own server', async () => {
    const sim = await sims.start({ servers: 120, regions: ['cn-hangzhou'] });
    const reader = new ServerReader(sims.client(sim), 5_000);
    const ids = sim.servers.map((server) => server.ipsecServerId);

    const servers = await Promise.all(ids.map((id) => reader.read('cn-hangzhou', id)));

    expect(servers.map((server) => server.IpsecServerId)).toEqual(ids);
    // 120 ids fit 6 pages of 20; one read-ahead turn may add a call, never one per id.
    expect(sim.stats().byAction.ListIpsecServers).toBeLessThanOrEqual(7);
  });

  it('gathers the reads that arrive while a call is out into the next call', async () => {
    const sim = await sims.start({ servers: 60, regions: ['cn-hangzhou'] });
    // The first call's answer is held back until every read below has been asked for, so that
    // call is surely still out while they arrive, however slow the machine.
    const proxy = await startHoldProxy(sim.endpoint, () => true, 30_000);
    sims.defer(() => proxy.close());
    const reader = new ServerReader(sims.client(sim, { endpoint: proxy.origin }), 30_000);
    const ids = sim.servers.map((server) => server.ipsecServerId);

    // One read goes out alone; the next 30 arrive one turn apart while it is out.
    const first = reader.read('cn-hangzhou', ids[0] as string);
    const rest: Promise<unknown>[] = [];
    for (const id of ids.slice(1, 31)) {
      await new Promise((resolve) => setImmediate(resolve));
      rest.push(reader.read('cn-hangzhou', id));
    }
    proxy.release();
    await Promise.all([first, ...rest]);
    expect(proxy.held()).toBe(1);

    // The lone first read; then 20 ids go as soon as a page is full and the last 10 when it is
    // back. Without gathering, reads a turn apart would each be a call of their own (31 calls).
    expect(sim.stats().byAction.ListIpsecServers).toBe(3);
  });

  it('rejects a read of an unknown server and still answers the others of its call', async () => {
    const sim = await sims.start({ servers: 5, regions: ['cn-hangzhou'] });
    const reader = new ServerReader(sims.client(sim), 5_000);
    const known = sim.servers[0]?.ipsecServerId as string;

    const [found, missing, again] = await Promise.allSettled([
      reader.read('cn-hangzhou', known),
      reader.read('cn-hangzhou', 'iss-doesnotexist0000'),
      reader.read('cn-hangzhou', known),
    ]);

    expect(found).toMatchObject({ status: 'fulfilled', value: { IpsecServerId: known } });
    expect(again).toMatchObject({ status: 'fulfilled', value: { IpsecServerId: known } });
    expect(missing.status).toBe('rejected');
    expect((missing as PromiseRejectedResult).reason).toBeInstanceOf(IpsecServerNotFoundError);
    expect(sim.stats().byAction.ListIpsecServers).toBe(1);
  });

  it('fails every read of a call the cloud refuses, and reads again afterwards', async () => {
    const sim = await sims.start({ servers: 5, regions: ['cn-hangzhou'] });
    const known = sim.servers[0]?.ipsecServerId as string;
    const unknownKey = sims.client(sim, {
      credentials: { accessKeyId: 'LTAI5tNobody', accessKeySecret: 'x' },
    });
    const refused = new ServerReader(unknownKey, 5_000);

    const results = await Promise.allSettled([
      refused.read('cn-hangzhou', known),
      refused.read('cn-hangzhou', known),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({
      code: 'InvalidAccessKeyId.NotFound',
    });
    // The failed call leaves nothing behind in the region: the next read goes out and is answered.
    const callsBefore = sim.stats().byAction.ListIpsecServers ?? 0;
    await expect(refused.read('cn-hangzhou', known)).rejects.toMatchObject({
      code: 'InvalidAccessKeyId.NotFound',
    });
    expect(sim.stats().byAction.ListIpsecServers).toBe(callsBefore + 1);

    const reader = new ServerReader(sims.client(sim), 5_000);
    await expect(reader.read('cn-hangzhou', known)).resolves.toMatchObject({ IpsecServerId: known });
  });
});
