import { IKE_CONFIG_KEYS, ikeConfigSchema } from './ike-config.js';
import { IPSEC_CONFIG_KEYS, ipsecConfigSchema } from './ipsec-config.js';
import type { IpsecServer } from './server.js';
import type { MutableParams } from './update-params.js';

/**
 * The params to send, with each config they name (IkeConfig, IpsecConfig) made whole from the
 * server's current one, the names of the keys filled in, and of those left out because our own
 * rules refuse the server's value (on a cloud that resets left-out keys, those go back to their
 * defaults: the caller records them).
 *
 * Whether UpdateIpsecServer keeps the config keys a call leaves out, or puts them back to their
 * documented defaults, the reference does not say (it gives a default for each). Sending every key
 * makes the outcome the same either way: a change of IkeLifetime must not take IkeVersion back to
 * ikev2 on a server that runs ikev1. A current value our own rules refuse, or an empty one, is
 * left out rather than sent: a change must not fail over a key it did not name.
 */
export function completeConfigs(
  params: MutableParams,
  server: IpsecServer,
): { params: MutableParams; filled: string[]; refused: string[] } {
  const filled: string[] = [];
  const refused: string[] = [];
  const complete = <K extends string>(
    name: 'IkeConfig' | 'IpsecConfig',
    keys: readonly K[],
    rules: Record<K, { safeParse(value: unknown): { success: boolean } }>,
    requested: Partial<Record<K, unknown>> | undefined,
    current: Partial<Record<K, unknown>> | undefined,
  ): Record<string, unknown> | undefined => {
    if (!requested) return undefined;
    const whole: Record<string, unknown> = {};
    for (const key of keys) {
      if (requested[key] !== undefined) {
        whole[key] = requested[key];
        continue;
      }
      const value = current?.[key];
      if (value === undefined || value === '') continue;
      if (!rules[key].safeParse(value).success) {
        refused.push(`${name}.${key}`);
        continue;
      }
      whole[key] = value;
      filled.push(`${name}.${key}`);
    }
    return whole;
  };
  const IkeConfig = complete(
    'IkeConfig',
    IKE_CONFIG_KEYS,
    ikeConfigSchema.shape,
    params.IkeConfig,
    server.IkeConfig,
  );
  const IpsecConfig = complete(
    'IpsecConfig',
    IPSEC_CONFIG_KEYS,
    ipsecConfigSchema.shape,
    params.IpsecConfig,
    server.IpsecConfig,
  );
  if (filled.length === 0) return { params, filled, refused };
  return {
    params: {
      ...params,
      ...(IkeConfig ? { IkeConfig: IkeConfig as MutableParams['IkeConfig'] } : {}),
      ...(IpsecConfig ? { IpsecConfig: IpsecConfig as MutableParams['IpsecConfig'] } : {}),
    },
    filled,
    refused,
  };
}
