import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { fieldIssues, InvalidInputError, parseInWords } from '../../validation.js';
import { type Role, roleSchema } from './roles.js';

/**
 * API tokens: `ipf_` and 43 base64url characters (32 random bytes). Only the hex SHA-256 of the
 * whole token is ever stored, in the tokens file:
 * `{ "tokens": [ { "name": "alice", "roles": ["submitter"], "sha256": "<64 hex>" } ] }`.
 */
export const TOKEN_PATTERN = /^ipf_[A-Za-z0-9_-]{43}$/;

export function generateToken(): string {
  return `ipf_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A token's name is the audit `actor` of everything done with it. */
export const tokenNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$/,
    'must be 1-128 letters, digits, ".", "_", "@", "+" or "-", starting with a letter or digit',
  );

export const tokenEntrySchema = z.strictObject({
  name: tokenNameSchema,
  roles: z.array(roleSchema).min(1, 'must hold at least one role'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (the SHA-256 of the token)'),
});

export const tokensFileSchema = z
  .strictObject({ tokens: z.array(tokenEntrySchema) })
  .superRefine((file, ctx) => {
    const names = new Set<string>();
    const hashes = new Set<string>();
    file.tokens.forEach((entry, index) => {
      if (names.has(entry.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tokens', index, 'name'],
          message: 'is used by another token',
        });
      }
      if (hashes.has(entry.sha256)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tokens', index, 'sha256'],
          message: 'is used by another token',
        });
      }
      names.add(entry.name);
      hashes.add(entry.sha256);
    });
  });

export type TokenEntry = z.infer<typeof tokenEntrySchema>;
export type TokensFile = z.infer<typeof tokensFileSchema>;

/** Who a request acts as: the token's name and roles. */
export interface Principal {
  name: string;
  roles: readonly Role[];
}

/**
 * How an error names the file: `tokens file` by default, or the flag or variable the user gave it
 * with (`--file`, `IPSEC_FLEET_TOKENS_FILE`), so the message points at what to change.
 */
const DEFAULT_SOURCE = 'tokens file';

function fileError(path: string, rule: string, source = DEFAULT_SOURCE): InvalidInputError {
  return new InvalidInputError(`${source} ${path}`, [{ field: '', rule }]);
}

/** File system errors that a different path would cure, in words; the rest are not the input's fault. */
const PATH_ERRORS: Record<string, string> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a part of its directory path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'its file system is read-only',
  EISDIR: 'it is a directory',
  ENAMETOOLONG: 'the path is too long',
};

function pathError(path: string, doing: string, error: unknown, source: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = code === undefined ? undefined : PATH_ERRORS[code];
  return reason ? fileError(path, `${doing}: ${reason} (${code})`, source) : error;
}

/** Reads and validates a tokens file; `undefined` when it does not exist. */
export async function readTokensFile(
  path: string,
  source: string = DEFAULT_SOURCE,
): Promise<TokensFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(path, `cannot be read: ${(error as Error).message}`, source);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fileError(path, `is not valid JSON: ${(error as Error).message}`, source);
  }
  const result = parseInWords(tokensFileSchema, json);
  if (!result.success) throw new InvalidInputError(`${source} ${path}`, fieldIssues(result.error));
  return result.data;
}

/**
 * The tokens a server accepts, as hashes. A presented token is hashed and compared with every
 * stored hash in constant time (timingSafeEqual, no early exit), so neither the comparison nor
 * the position of a match shows in the response time.
 */
export class TokenStore {
  private entries: Array<Principal & { hash: Buffer }> = [];

  constructor(
    entries: readonly TokenEntry[],
    /** The file it was loaded from, re-read by `reload()`. */
    readonly path?: string,
  ) {
    this.replace(entries);
  }

  /** Loads a tokens file; a missing or invalid one is an InvalidInputError naming it. */
  static async load(path: string): Promise<TokenStore> {
    const file = await readTokensFile(path);
    if (!file) throw fileError(path, 'does not exist (create it with: ipsec-fleet token create)');
    return new TokenStore(file.tokens, path);
  }

  /** Re-reads the file (e.g. on SIGHUP); on any error the tokens in use are kept. */
  async reload(): Promise<number> {
    if (!this.path) return this.entries.length;
    const file = await readTokensFile(this.path);
    if (!file) throw fileError(this.path, 'does not exist');
    this.replace(file.tokens);
    return this.entries.length;
  }

  get size(): number {
    return this.entries.length;
  }

  authenticate(token: string): Principal | undefined {
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let found: Principal | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(presented, entry.hash) && found === undefined) {
        found = { name: entry.name, roles: entry.roles };
      }
    }
    return found;
  }

  private replace(entries: readonly TokenEntry[]): void {
    this.entries = entries.map((entry) => ({
      name: entry.name,
      roles: [...entry.roles],
      hash: Buffer.from(entry.sha256, 'hex'),
    }));
  }
}

const LOCK_WAIT_MS = 5_000;

/** Holds `<path>.lock` (created exclusively) while `work` runs, so concurrent writers queue up. */
async function withFileLock<T>(path: string, source: string, work: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await (await open(lockPath, 'wx', 0o600)).close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw pathError(path, `cannot create its lock file ${lockPath}`, error, source);
      }
      if (Date.now() > deadline) {
        throw fileError(
          path,
          `is locked by ${lockPath}; remove it if no other token create is running`,
          source,
        );
      }
      await sleep(50);
    }
  }
  try {
    return await work();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

/**
 * Creates a token named `name` with `roles`, adds its hash to the tokens file (created with mode
 * 0600; an existing file keeps its mode) and returns the token: the only time it exists in clear.
 * The file is rewritten through a temporary file and a rename, so it is never seen half written.
 * `source` is how errors name the file (see DEFAULT_SOURCE).
 */
export async function createToken(
  path: string,
  input: { name: string; roles: readonly Role[] },
  source: string = DEFAULT_SOURCE,
): Promise<string> {
  return withFileLock(path, source, async () => {
    const file = (await readTokensFile(path, source)) ?? { tokens: [] };
    if (file.tokens.some((entry) => entry.name === input.name)) {
      throw new InvalidInputError('token', [
        { field: 'name', rule: `a token named ${JSON.stringify(input.name)} already exists in ${path}` },
      ]);
    }
    const token = generateToken();
    const entry = tokenEntrySchema.parse({
      name: input.name,
      roles: [...new Set(input.roles)],
      sha256: hashToken(token),
    });
    const next: TokensFile = { tokens: [...file.tokens, entry] };
    const mode = await stat(path).then(
      (stats) => stats.mode & 0o777,
      () => 0o600,
    );
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      await chmod(temporary, mode);
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw pathError(path, 'cannot be written', error, source);
    }
    return token;
  });
}
