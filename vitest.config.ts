import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration and end-to-end suites start their own servers; two cores do not gain from more forks.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: process.env.CI ? ['default'] : ['default'],
    projects: [
      // Unit tests start no server and need no FerretDB: `npx vitest run --project unit`. They
      // change no global state (no module mocks, fake timers or environment stubs), so one worker
      // loads the modules once for all its files instead of once per file: half the time.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false } },
      {
        // Everything else talks to servers it starts (redis-server, FerretDB, the built fleet); the
        // global setup builds FerretDB once (cached in ~/.cache/workfleet) and picks its backend.
        extends: true,
        test: {
          name: 'servers',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          globalSetup: ['test/helpers/global-setup.ts'],
        },
      },
    ],
  },
});
