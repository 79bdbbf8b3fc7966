import { MAX_TARGETS } from '../../src/rollouts/rollout.js';

/*
 * The largest rollout `POST /v1/rollouts` takes: every field at its longest JSON. ROLLOUT_BODY_LIMIT
 * is computed from it (test/api/refused-requests.test.ts checks that it fits), and
 * `npm run bench:rollout-accept` times its acceptance.
 */

/** A Han character outside the BMP: one character of a name, four bytes of UTF-8. */
const HAN = '\u{20000}';
/** An FQDN of the largest length, 253 characters. */
const fqdn = (char: string) => [63, 63, 63, 61].map((length) => char.repeat(length)).join('.');

/**
 * Params with every field at its longest; other variants than 0 are distinct texts (each
 * LocalSubnet block too) of nearly that length, for a rollout whose targets differ.
 */
export function largestParams(variant = 0) {
  return {
    LocalSubnet: Array.from(
      { length: 32 },
      (_, block) => `${100 + block}.${255 - ((variant >> 8) & 255)}.${255 - (variant & 255)}.255/32`,
    ).join(','),
    ClientIpPool: '255.255.255.255/32',
    IpsecServerName: HAN.repeat(128),
    EffectImmediately: 'false',
    IkeConfig: JSON.stringify({
      IkeVersion: 'ikev2',
      IkeMode: 'aggressive',
      IkeEncAlg: 'aes256',
      IkeAuthAlg: 'sha512',
      IkePfs: 'group14',
      IkeLifetime: 86_400 - (variant % 1_000),
      LocalId: fqdn('a'),
      RemoteId: fqdn('b'),
    }),
    IpsecConfig: JSON.stringify({
      IpsecEncAlg: 'aes256',
      IpsecAuthAlg: 'sha512',
      IpsecPfs: 'disabled',
      IpsecLifetime: 86_400,
    }),
    PskEnabled: 'true',
    // Each `"` is two bytes of JSON.
    Psk: '"'.repeat(100),
  };
}

/**
 * A spec of `targets` targets with every field at its longest: server ids of the longest length
 * unless `serverId` names them, each target's params `paramsOf(index)` (variant 0 unless told).
 */
export function largestSpec(
  targets: number,
  options: {
    serverId?: (index: number) => string;
    paramsOf?: (index: number) => ReturnType<typeof largestParams>;
  } = {},
) {
  const common = largestParams(0);
  const serverId = options.serverId ?? ((index: number) => `iss-${String(index).padStart(124, '0')}`);
  return {
    targets: Array.from({ length: targets }, (_, index) => ({
      ipsecServerId: serverId(index),
      regionId: `cn-${'a'.repeat(61)}`,
      params: options.paramsOf?.(index) ?? common,
      profile: 'p'.repeat(64),
    })),
    params: common,
    strategy: { batches: Array.from({ length: 1_000 }, () => Number.MAX_SAFE_INTEGER) },
    maxErrors: '100%',
    pause: 'every',
    bakeMs: 86_400_000,
    maxChangesPerMinute: MAX_TARGETS,
    approvals: { required: 10, expiresMs: 30 * 86_400_000 },
    planOnly: true,
    // Control characters are six bytes of JSON each.
    note: '\u0001'.repeat(1024),
  };
}
