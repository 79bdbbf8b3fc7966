import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Crash and integration tests spawn processes; two cores do not gain from more parallel files.
    maxWorkers: 2,
  },
});
