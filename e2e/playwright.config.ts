import { defineConfig, devices } from 'playwright/test'

// Real Chromium (Debian's /usr/bin/chromium, launched by the fixtures in ./fixtures.ts) against
// the real demo servers, which every test starts for itself on free loopback ports.
export default defineConfig({
  testDir: '.',
  outputDir: './.output',
  globalSetup: './global-setup.ts',
  // One test at a time: the cross-tab tests time a new tab's sign-in (under 1 s), and a second
  // browser with its own servers on the same two cores pushes that past the limit.
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // CI also writes a JSON report for the closing summary line (.ci/summary.mjs).
  reporter: process.env.CI ? [['list'], ['json', { outputFile: '../.tmp/playwright.json' }]] : [['list']],
  use: { actionTimeout: 10_000 },
  projects: [
    { name: 'desktop', use: { viewport: { width: 1280, height: 900 } } },
    // The main flow again as a phone: Pixel 7 viewport, touch, mobile UA, isMobile.
    { name: 'phone', testMatch: /main-flow\.spec\.ts/, use: { ...devices['Pixel 7'] } },
  ],
})
