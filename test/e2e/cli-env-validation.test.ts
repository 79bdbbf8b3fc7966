import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, type PrivateRedis, startPrivateRedis } from '../../src/redis/private-server.js';
import { type CliResult, runCli } from '../support/cli.js';
import { credentialsEnvOf, useSimulators } from '../support/sim-harness.js';

/**
 * Bad input must end the process with exit 2 before it reaches for Redis: a process that got past
 * the check would retry a dead Redis for ever (or log each retry). These runs are killed after a
 * hang guard, so a regression shows as a failed assertion (code null, timedOut) instead of a hung
 * test run; the guard says nothing about speed, which a loaded machine cannot promise.
 */
const HANG_GUARD_MS = 30_000;
/** Two guarded runs in a test, and the rest of it. */
const TEST_TIMEOUT_MS = 2 * HANG_GUARD_MS + 15_000;

const runCliWithin = (args: string[], env: NodeJS.ProcessEnv) =>
  runCli(args, env, { killAfterMs: HANG_GUARD_MS });

/** Ended by itself, and without a line of Redis connection retries (ioredis's or our outage log's). */
function expectNoRedisRetries(result: CliResult) {
  expect(result.timedOut).toBe(false);
  expect(result.stderr).not.toContain('[ioredis]');
  expect(result.stderr).not.toContain('Redis does not answer');
  expect(result.stderr).not.toContain('ECONNREFUSED');
}

/** Credentials, so that a worker gets past them to whatever the test is about. */
const credentials = { ALIBABA_CLOUD_ACCESS_KEY_ID: 'k', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's' };

let dir: string;
let tokensFile: string;
/** A Redis URL nothing listens on: a process that connects to it retries forever. */
let deadRedisUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ipf-env-'));
  tokensFile = join(dir, 'tokens.json');
  const created = await runCli([
    'token',
    'create',
    '--name',
    'ops',
    '--roles',
    'viewer',
    '--file',
    tokensFile,
  ]);
  expect(created.code).toBe(0);
  deadRedisUrl = `redis://127.0.0.1:${await freePort()}`;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const serveArgs = () => ['serve', '--port', '0', '--tokens', tokensFile];

describe('a bad IPSEC_FLEET_POLICY', { timeout: TEST_TIMEOUT_MS }, () => {
  for (const command of ['worker', 'serve'] as const) {
    it(`makes ${command} exit 2 at once, naming the variable and the field`, async () => {
      const args = command === 'worker' ? ['worker'] : serveArgs();
      const result = await runCliWithin(args, {
        ...credentials,
        REDIS_URL: deadRedisUrl,
        IPSEC_FLEET_POLICY: '{"busy":1}',
      });
      expectNoRedisRetries(result);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/IPSEC_FLEET_POLICY\.busy: /);
      expect(result.stderr).not.toContain('[ioredis]');
    });
  }

  it('makes worker exit 2 at once with a reachable Redis too (no connection left open)', async () => {
    const result = await runCliWithin(['worker'], {
      ...credentials,
      REDIS_URL: inject('redisUrl'),
      IPSEC_FLEET_PREFIX: 'env-validation',
      IPSEC_FLEET_POLICY: '{"transient":{"baseMs":1,"maxMs":2,"bogus":3}}',
    });
    expectNoRedisRetries(result);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/IPSEC_FLEET_POLICY\.transient\.bogus: unknown field/);
  });
});

describe('a Redis that refuses the credentials in REDIS_URL', { timeout: TEST_TIMEOUT_MS }, () => {
  const password = 'redis-pw-7f3a9c';
  let redis: PrivateRedis;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url);
    // Allowed everything but INFO, which BullMQ's start asks for after our own PING passes.
    await admin.acl('SETUSER', 'no-info', 'on', `>${password}`, '~*', '&*', '+@all', '-info');
    // The admin's connection stays signed in; every later one must give the password.
    await admin.config('SET', 'requirepass', password);
  });
  afterAll(async () => {
    admin.disconnect();
    await redis.stop();
  });

  const cases = [
    {
      command: 'worker',
      url: () => redis.url,
      refusal: 'NOAUTH',
      says: 'refused the connection, NOAUTH: give the password',
    },
    {
      command: 'worker',
      url: () => `redis://:wrong-${password}@127.0.0.1:${redis.port}`,
      refusal: 'WRONGPASS',
      says: 'refused the connection, WRONGPASS: give the password',
    },
    {
      command: 'serve',
      url: () => `redis://:wrong-${password}@127.0.0.1:${redis.port}`,
      refusal: 'WRONGPASS',
      says: 'refused the connection, WRONGPASS: give the password',
    },
    // Met inside BullMQ's start, where it used to spin a core at 100% for ever.
    {
      command: 'worker',
      url: () => `redis://no-info:${password}@127.0.0.1:${redis.port}`,
      refusal: 'NOPERM',
      says: "refused the connection, its user lacks a right ipsec-fleet needs: NOPERM this user has no permissions to run the 'info'",
    },
    // A db the Redis does not have: ioredis would go on in db 0, another deployment's keys.
    {
      command: 'serve',
      url: () => `redis://:${password}@127.0.0.1:${redis.port}/99`,
      refusal: 'a database it does not have',
      says: 'has no database 99 (ERR DB index is out of range)',
    },
  ] as const;
  for (const { command, url, refusal, says } of cases) {
    it(`makes ${command} exit 2 at once on ${refusal}, naming REDIS_URL, quoting no password`, async () => {
      const result = await runCliWithin(command === 'worker' ? ['worker'] : serveArgs(), {
        ...credentials,
        REDIS_URL: url(),
      });
      expectNoRedisRetries(result);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`REDIS_REFUSED: REDIS_URL: Redis ${says}`);
      expect(result.stderr).not.toContain(password);
      const clients = (await admin.client('LIST')) as string;
      expect(clients.trim().split('\n')).toHaveLength(1);
    });
  }
});

describe('millisecond settings are capped at the longest timer Node.js honours', {
  timeout: TEST_TIMEOUT_MS,
}, () => {
  const sims = useSimulators();
  const simCredentials = credentialsEnvOf;

  it('api --timeout', async () => {
    const sim = await sims.start({ servers: 1 });
    const result = await runCli(
      ['api', 'DescribeRegions', '--endpoint', sim.endpoint, '--timeout', '99999999999'],
      simCredentials(sim),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--timeout: must be at most 2147483647/);
    expect(result.stderr).not.toContain('TimeoutOverflowWarning');
    expect(sim.stats().requests).toBe(0);
    const atCap = await runCli(
      ['api', 'DescribeRegions', '--endpoint', sim.endpoint, '--timeout', '2147483647'],
      simCredentials(sim),
    );
    expect(atCap.stderr).toBe('');
    expect(atCap.code).toBe(0);
    expect(sim.stats().requests).toBe(1);
  });

  // Spawns several binaries at once: seconds each on a loaded machine.
  it('number flags are digits only: no hex, no exponent', { timeout: 90_000 }, async () => {
    const sim = await sims.start({ servers: 1 });
    const cases: Array<[string[], string]> = [
      [['api', 'DescribeRegions', '--endpoint', sim.endpoint, '--timeout', '0x10'], '--timeout'],
      [['api', 'DescribeRegions', '--endpoint', sim.endpoint, '--timeout', '1e3'], '--timeout'],
      [['worker', '--concurrency', '1e2'], '--concurrency'],
      [['demo', '--servers', '0x10'], '--servers'],
    ];
    // Should a flag be taken after all, the worker and the demo must reach no Redis: one on a port
    // nothing listens on, and no redis-server on PATH for the demo to start its own.
    const nowhere = { REDIS_URL: 'redis://127.0.0.1:1', PATH: '' };
    const results = await Promise.all(
      cases.map(([args]) => runCli(args, { ...simCredentials(sim), ...nowhere }, { killAfterMs: 60_000 })),
    );
    cases.forEach(([args, flag], index) => {
      expect(results[index]?.code, args.join(' ')).toBe(2);
      expect(results[index]?.stderr, args.join(' ')).toContain(`${flag}: must be a whole number`);
      expect(results[index]?.stderr, args.join(' ')).toContain('(digits only)');
    });
    expect(sim.stats().requests).toBe(0);
  });

  it("flag rules are stated in the CLI's words, naming the flag as typed, not in zod's", {
    timeout: 90_000,
  }, async () => {
    const nowhere = { REDIS_URL: 'redis://127.0.0.1:1', PATH: '' };
    const cases: Array<[string[], string]> = [
      [['list', '--limit', '0', '--api', 'http://127.0.0.1:1'], '--limit: must be from 1 to 500'],
      [['demo', '--servers', 'abc'], '--servers: must be a whole number'],
      [['sim', '--port', '99999'], '--port: must be a port number from 0 to 65535'],
      [['sim', '--servers', '1.5'], '--servers: must be a whole number'],
      [['sim', '--servers', '200000'], '--servers: must be from 0 to 100000'],
      [['sim', '--seed', '1.5'], '--seed: must be a whole number'],
      [['sim', '--regions', ','], '--regions: must name at least one region'],
      // A list flag's bad entry: the flag as typed and the entry's place, not zod's --regions.1.
      [['sim', '--regions', 'cn-shanghai,B@D'], '--regions: value 2: must be region ids'],
      [['api', 'DescribeRegions', '--signature', 'v2'], '--signature: must be v3 or v1'],
      [['api', 'DescribeRegions', '--method', 'PUT'], '--method: must be GET or POST'],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args, nowhere, { killAfterMs: 60_000 })));
    cases.forEach(([args, message], index) => {
      expect(results[index]?.code, args.join(' ')).toBe(2);
      expect(results[index]?.stderr, args.join(' ')).toContain(message);
      expect(results[index]?.stderr, args.join(' ')).not.toMatch(
        /Too (?:small|big)|Invalid (?:input|option)|expected/,
      );
      expect(results[index]?.stderr, args.join(' ')).not.toMatch(/--[a-z-]+\.\d/);
    });
  });

  // Spawns several binaries at once: seconds each on a loaded machine.
  it("number, list and policy rules past zod's own checks are stated in words too", {
    timeout: 90_000,
  }, async () => {
    const nowhere = { REDIS_URL: 'redis://127.0.0.1:1', PATH: '' };
    const rolloutFile = join(dir, 'rollout-targets-not-a-list.yaml');
    await writeFile(rolloutFile, 'targets: iss-a\n');
    const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
      // Past 2^53: int()'s range, under zod's words, came along with the flag's own bound.
      [
        ['list', '--timeout', '99999999999999999999', '--api', 'http://127.0.0.1:1'],
        {},
        '--timeout: must be at most 3600000',
      ],
      // A whole number too big was told it "must be a whole number".
      [['sim', '--seed', '99999999999999999999999'], {}, '--seed: must be at most 9007199254740991'],
      [['rollout', 'plan', '-f', rolloutFile, '--api', 'http://127.0.0.1:1'], {}, 'targets: must be a list'],
      [
        ['rollout', 'create', '-f', rolloutFile, '--api', 'http://127.0.0.1:1'],
        {},
        'targets: must be a list',
      ],
      [
        ['worker'],
        { ...credentials, IPSEC_FLEET_POLICY: '{"busy":{"baseMs":-1,"maxMs":10}}' },
        'IPSEC_FLEET_POLICY.busy.baseMs: must not be negative',
      ],
    ];
    const results = await Promise.all(
      cases.map(([args, env]) => runCli(args, { ...nowhere, ...env }, { killAfterMs: 60_000 })),
    );
    cases.forEach(([args, , message], index) => {
      const result = results[index];
      expect(result?.code, args.join(' ')).toBe(2);
      expect(result?.stderr, args.join(' ')).toContain(message);
      expect(result?.stderr, args.join(' ')).not.toMatch(
        /Too (?:small|big)|Invalid (?:input|option)|expected|[<>]=/,
      );
      expect(result?.stderr.trim().split('; '), args.join(' ')).toHaveLength(1);
    });
  });

  it('IPSEC_FLEET_HTTP_TIMEOUT_MS', async () => {
    const sim = await sims.start({ servers: 1 });
    const result = await runCli(['api', 'DescribeRegions', '--endpoint', sim.endpoint], {
      ...simCredentials(sim),
      IPSEC_FLEET_HTTP_TIMEOUT_MS: '99999999999',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/IPSEC_FLEET_HTTP_TIMEOUT_MS: must be at most 2147483647/);
    expect(sim.stats().requests).toBe(0);
  });

  it('IPSEC_FLEET_POLICY callTimeoutMs', async () => {
    const result = await runCliWithin(['worker'], {
      ...credentials,
      REDIS_URL: deadRedisUrl,
      IPSEC_FLEET_POLICY: '{"callTimeoutMs":99999999999}',
    });
    expectNoRedisRetries(result);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/IPSEC_FLEET_POLICY\.callTimeoutMs: must be at most 2147483647/);
  });
});

describe('bad files and addresses exit 2 with the flag or variable named', {
  timeout: TEST_TIMEOUT_MS,
}, () => {
  it('IPSEC_FLEET_PROFILES_FILE that is missing or invalid', async () => {
    const missing = await runCliWithin(['worker'], {
      REDIS_URL: deadRedisUrl,
      IPSEC_FLEET_PROFILES_FILE: join(dir, 'absent-profiles.json'),
    });
    expectNoRedisRetries(missing);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/PROFILES_INVALID: IPSEC_FLEET_PROFILES_FILE .*absent-profiles\.json/);

    const file = join(dir, 'profiles.json');
    await writeFile(file, JSON.stringify({ profiles: { prod: { accessKeyId: 'id' } } }));
    const invalid = await runCliWithin(['worker'], {
      REDIS_URL: deadRedisUrl,
      IPSEC_FLEET_PROFILES_FILE: file,
    });
    expectNoRedisRetries(invalid);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/profiles\.prod\.accessKeySecret: /);
  });

  it('IPSEC_FLEET_SECRET_KEY with characters outside base64, which decoding would skip', async () => {
    const valid = Buffer.alloc(32, 7).toString('base64');
    for (const key of [`${'A'.repeat(43)}!`, `${valid.slice(0, 20)}*${valid.slice(20)}`]) {
      const result = await runCliWithin(['worker'], {
        ...credentials,
        REDIS_URL: deadRedisUrl,
        IPSEC_FLEET_SECRET_KEY: key,
      });
      expectNoRedisRetries(result);
      expect(result.code, key).toBe(2);
      expect(result.stderr).toMatch(/IPSEC_FLEET_SECRET_KEY: must be 32 bytes/);
      expect(result.stderr).not.toContain(key);
    }
  });

  it('token create --file in a directory that does not exist', async () => {
    const file = join(dir, 'no-such-dir', 't.json');
    const result = await runCli(['token', 'create', '--name', 'x', '--roles', 'viewer', '--file', file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^ipsec-fleet: INVALID_INPUT: invalid --file .*t\.json: /);
    expect(result.stderr).toMatch(/directory does not exist/);
    await expect(stat(join(dir, 'no-such-dir'))).rejects.toThrow();
  });

  it('serve --host and IPSEC_FLEET_HOST that are not addresses', async () => {
    const flag = await runCliWithin([...serveArgs(), '--host', '999.1.1.1'], { REDIS_URL: deadRedisUrl });
    expectNoRedisRetries(flag);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--host: must be an IP address or a host name/);
    expect(flag.stderr).not.toContain('getaddrinfo');

    const env = await runCliWithin(serveArgs(), { REDIS_URL: deadRedisUrl, IPSEC_FLEET_HOST: '999.1.1.1' });
    expectNoRedisRetries(env);
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/IPSEC_FLEET_HOST: must be an IP address or a host name/);
  });

  it('serve --host that is well formed but does not resolve', async () => {
    const result = await runCliWithin([...serveArgs(), '--host', 'no-such-host.invalid'], {
      REDIS_URL: deadRedisUrl,
    });
    // The address is checked when listening, after serve has gone on without Redis (by design:
    // it warns once and answers 503 until Redis does); ioredis's own retry lines stay out.
    expect(result.timedOut).toBe(false);
    expect(result.stderr).not.toContain('[ioredis]');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/INVALID_INPUT: invalid options: --host: no-such-host\.invalid /);
  });
});

/** The description paragraph of a command's help: between the usage line and the options. */
function descriptionOf(help: string): string[] {
  const paragraph = help.split('\n\n')[1] ?? '';
  return paragraph.split('\n');
}

describe('help', () => {
  it('worker --help names the variables it reads and the exit codes', async () => {
    const result = await runCli(['worker', '--help']);
    expect(result.code).toBe(0);
    for (const name of [
      'IPSEC_FLEET_POLICY',
      'IPSEC_FLEET_PROFILES_FILE',
      'IPSEC_FLEET_PREFIX',
      'Exit codes:',
    ]) {
      expect(result.stdout).toContain(name);
    }
  });

  for (const args of [['serve'], ['worker'], ['token', 'create']]) {
    it(`${args.join(' ')} --help wraps its description evenly (no hard line breaks)`, async () => {
      const result = await runCli([...args, '--help']);
      expect(result.code).toBe(0);
      const lines = descriptionOf(result.stdout);
      expect(lines.length).toBeGreaterThan(1);
      // Commander fills each line to its width (80 off a terminal); a hard \n leaves a short one.
      for (const line of lines.slice(0, -1)) expect(line.length, line).toBeGreaterThan(60);
    });
  }
});
