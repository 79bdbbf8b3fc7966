import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { projectRoot } from '../package-info.js';

export type RedisConnection = Redis | Cluster;

export const SCRIPT_NAMES = [
  'submit',
  'acquire',
  'step',
  'extend-lease',
  'backoff',
  'finish',
  'rate-take',
  'rate-penalize',
  'rollout-create',
  'rollout-transition',
  'rollout-approve',
  'rollout-claim-rollback',
  'approve',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

const luaDir = join(projectRoot, 'src/orchestrator/lua');

/** Inlines `--- @include "name"` lines, as BullMQ's build does, so each script ships whole. */
function loadScript(name: string): string {
  const source = readFileSync(join(luaDir, `${name}.lua`), 'utf8');
  return source.replace(/^--- @include "([\w-]+)"$/gm, (_line, include: string) =>
    readFileSync(join(luaDir, 'includes', `${include}.lua`), 'utf8'),
  );
}

const definitions = new Map<ScriptName, string>(SCRIPT_NAMES.map((name) => [name, loadScript(name)]));
const commandName = (name: ScriptName) => `ipf_${name.replace(/-/g, '_')}`;
const defined = new WeakSet<object>();

/**
 * Runs the orchestrator's Lua scripts by EVALSHA (ioredis falls back to EVAL once per connection
 * when the script cache is cold, e.g. after a Redis restart).
 */
export class Scripts {
  constructor(private readonly redis: RedisConnection) {
    if (!defined.has(redis)) {
      for (const [name, lua] of definitions) {
        redis.defineCommand(commandName(name), { lua });
      }
      defined.add(redis);
    }
  }

  run(name: ScriptName, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    const command = (this.redis as unknown as Record<string, (...values: unknown[]) => Promise<unknown>>)[
      commandName(name)
    ];
    if (!command) throw new TypeError(`script ${name} is not defined on this connection`);
    return command.call(this.redis, keys.length, ...keys, ...args);
  }
}
