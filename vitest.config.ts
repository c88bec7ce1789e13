import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The sanitizer run (npm run test:asan) loads its addon build in each worker first.
    setupFiles: process.env.VNETLINK_ADDON ? ['test/asan-setup.ts'] : [],
    // Native addons and worker threads do not mix well: one process per test file.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
