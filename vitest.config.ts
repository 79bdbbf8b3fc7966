import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // A hang guard, not a speed bound: tests wait for changes with 15-30 s guards of their own,
    // several in a row, and a loaded 2-core machine runs them several times slower than idle.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Crash and integration tests spawn processes; two cores do not gain from more parallel files.
    maxWorkers: 2,
  },
});
