/**
 * What `npm pack` (and so `npm publish`) ships: the built code and every runtime asset it reads.
 * The code reads files from `<package root>/src` at run time (src/orchestrator/scripts.ts loads its
 * Lua scripts from src/orchestrator/lua), and tsc copies none of them into dist/, so a `files`
 * field that lists only dist/ gives a package that crashes on start, even on `--help`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/package-info.js';

const run = promisify(execFile);

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** `npm pack --json` with scripts off: `prepare` (a build) does not run, and nothing is fetched. */
async function npmPack(args: string[]): Promise<PackResult> {
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--offline', ...args], {
    cwd: projectRoot,
    maxBuffer: 64 * 1024 * 1024,
  });
  const results = JSON.parse(stdout) as PackResult[];
  expect(results).toHaveLength(1);
  return results[0] as PackResult;
}

/** Every file under `dir`, as a POSIX path relative to the project root. */
function filesUnder(dir: string): string[] {
  return readdirSync(join(projectRoot, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(projectRoot, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

const packageJson = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
};

function requireBuild(): void {
  const main = join(projectRoot, 'dist/src/cli/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build`);
}

describe('the npm package', () => {
  const scratch: string[] = [];
  afterAll(() => {
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  });

  it('holds the built CLI and every non-TypeScript file under src/ (the Lua scripts)', async () => {
    requireBuild();
    const packed = new Set((await npmPack(['--dry-run'])).files.map((file) => file.path));

    const lua = filesUnder('src/orchestrator/lua');
    expect(lua.filter((path) => path.endsWith('.lua')).length).toBeGreaterThan(0);
    // Nothing under src/ but TypeScript reaches dist/; anything else there is read from src/.
    const assets = filesUnder('src').filter((path) => !path.endsWith('.ts'));
    expect(assets).toEqual(expect.arrayContaining(lua));
    expect(assets.filter((path) => !packed.has(path))).toEqual([]);

    const entryPoints = [
      'package.json',
      'dist/src/cli/main.js',
      // Imported on demand by `ipsec-fleet worker`.
      'dist/workers/change-worker.js',
      ...Object.values(packageJson.bin).map((path) => path.replace(/^\.\//, '')),
    ];
    expect(entryPoints.filter((path) => !packed.has(path))).toEqual([]);
  });

  it('runs from its unpacked tarball: `ipsec-fleet --help` exits 0', async () => {
    requireBuild();
    const dir = mkdtempSync(join(tmpdir(), 'ipsec-fleet-pack-'));
    scratch.push(dir);
    const { filename } = await npmPack(['--pack-destination', dir]);
    await run('tar', ['-xzf', join(dir, filename), '-C', dir]);
    const root = join(dir, 'package');
    // The dependencies as installed here: what is under test is the package's own files.
    symlinkSync(join(projectRoot, 'node_modules'), join(root, 'node_modules'), 'dir');

    const { stdout } = await run(process.execPath, [join(root, 'dist/src/cli/main.js'), '--help'], {
      cwd: dir,
      env: { PATH: process.env.PATH },
    });
    expect(stdout).toContain('Usage: ipsec-fleet');
  });
});
