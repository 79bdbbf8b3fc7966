/**
 * Algorithm names UpdateIpsecServer accepts, shared by phase 1 (IkeConfig) and phase 2
 * (IpsecConfig). Spelled exactly as on the wire: the cloud compares them as strings.
 */
export const ENCRYPTION_ALGORITHMS = ['aes', 'aes192', 'aes256', 'des', '3des'] as const;
export const AUTHENTICATION_ALGORITHMS = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'] as const;
export const DH_GROUPS = ['group1', 'group2', 'group5', 'group14'] as const;
/** Phase 2 may also run without perfect forward secrecy. */
export const IPSEC_PFS_VALUES = ['disabled', ...DH_GROUPS] as const;
export const IKE_VERSIONS = ['ikev1', 'ikev2'] as const;
export const IKE_MODES = ['main', 'aggressive'] as const;

/** SA lifetimes, in seconds, for both phases. */
export const MIN_LIFETIME_SECONDS = 0;
export const MAX_LIFETIME_SECONDS = 86_400;
