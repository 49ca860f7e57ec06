import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Serial and network tests share PTYs and ports; files run in parallel, tests in a file in order.
    pool: 'forks',
  },
});
