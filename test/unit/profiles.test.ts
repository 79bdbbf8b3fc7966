import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { loadProfiles, ProfilesError } from '../../src/orchestrator/profiles.js';

const SECRET = 'very-secret-value-7f3a';
const file = (body: unknown) => () => (typeof body === 'string' ? body : JSON.stringify(body));

/** The message of the ProfilesError a profiles file of `body` is refused with. */
function refusalOf(config: ReturnType<typeof loadConfig>, body: unknown): string {
  try {
    loadProfiles(config, file(body));
  } catch (error) {
    expect(error).toBeInstanceOf(ProfilesError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('credential profiles', () => {
  it('reads named profiles and keeps the environment credentials as default', () => {
    const config = loadConfig({
      IPSEC_FLEET_PROFILES_FILE: '/etc/profiles.json',
      ALIBABA_CLOUD_ACCESS_KEY_ID: 'envId',
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'envSecret',
    });
    const profiles = loadProfiles(
      config,
      file({
        profiles: {
          default: { accessKeyId: 'fileId', accessKeySecret: SECRET },
          'prod-b': { accessKeyId: 'bId', accessKeySecret: SECRET, securityToken: 'tok' },
        },
      }),
    );
    expect(profiles).toEqual({
      default: { accessKeyId: 'envId', accessKeySecret: 'envSecret' },
      'prod-b': { accessKeyId: 'bId', accessKeySecret: SECRET, securityToken: 'tok' },
    });
  });

  it('uses the file alone when the environment has no credentials', () => {
    const config = loadConfig({ IPSEC_FLEET_PROFILES_FILE: '/p.json' });
    const profiles = loadProfiles(
      config,
      file({ profiles: { default: { accessKeyId: 'a', accessKeySecret: SECRET } } }),
    );
    expect(Object.keys(profiles)).toEqual(['default']);
  });

  it('names the bad field and never echoes a secret', () => {
    const config = loadConfig({ IPSEC_FLEET_PROFILES_FILE: '/p.json' });
    const attempts = [
      { profiles: { a: { accessKeyId: 'id', accessKeySecret: 42 } } },
      { profiles: { a: { accessKeyId: 'id', accessKeySecret: SECRET, extra: SECRET } } },
      { profiles: { a: { accessKeyId: SECRET } } },
      `{"profiles": {"a": {"accessKeyId": "${SECRET}", }}}`,
    ];
    const messages = attempts.map((body) => refusalOf(config, body));
    for (const message of messages) expect(message).not.toContain(SECRET);
    expect(messages[0]).toContain('profiles.a.accessKeySecret');
    expect(messages[1]).toContain('profiles.a.extra: unknown field');
    expect(messages[2]).toContain('profiles.a.accessKeySecret');
    expect(messages[3]).toContain('is not valid JSON');
  });

  it("states the file's rules in words, never in zod's", () => {
    const config = loadConfig({ IPSEC_FLEET_PROFILES_FILE: '/p.json' });
    const messageOf = (body: unknown) => refusalOf(config, body);
    const messages = [
      messageOf({ profiles: [] }),
      messageOf({ profiles: { a: {} } }),
      messageOf({ profiles: { 'bad name': { accessKeyId: 'id', accessKeySecret: SECRET } } }),
    ];
    expect(messages[0]).toBe('IPSEC_FLEET_PROFILES_FILE /p.json: profiles: must be an object');
    expect(messages[1]).toBe(
      'IPSEC_FLEET_PROFILES_FILE /p.json: profiles.a.accessKeyId: is required; profiles.a.accessKeySecret: is required',
    );
    expect(messages[2]).toBe(
      'IPSEC_FLEET_PROFILES_FILE /p.json: profiles.bad name: is not a valid key (must be 1-64 letters, digits, ".", "-" or "_")',
    );
    for (const message of messages) {
      expect(message).not.toMatch(/Too (?:small|big)|Invalid input|expected|received|type record/);
    }
  });

  it('without a file, the environment credentials are required as before', () => {
    expect(() => loadProfiles(loadConfig({}))).toThrow(/ALIBABA_CLOUD_ACCESS_KEY_ID/);
  });
});
