import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/session-storage.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // CI also writes a JSON report for the closing summary line (.ci/summary.mjs).
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.tmp/vitest.json' }]] : ['default'],
  },
})
