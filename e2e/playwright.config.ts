import { defineConfig, devices } from 'playwright/test'
import type { EngineName } from './engines/index.js'

// Each test written once runs in three engines, each Debian's build, against the real demo servers
// that every test starts for itself on free loopback ports: Chromium (/usr/bin/chromium, through
// Playwright), Firefox ESR (/usr/bin/firefox-esr, through puppeteer-core over WebDriver BiDi) and
// WebKitGTK (MiniBrowser through /usr/bin/WebKitWebDriver, on the Xvfb display the global setup
// starts). How to write such a test: the comment at the top of ./engines/types.ts.
//
// Tags name what a test needs beyond the adapter; each project leaves out what its driver lacks.
// @once: run in Chromium only, to keep `npm test` within its time on two cores: no browser at all,
// or more of what the all-engine tests already cover (more concurrent calls, more tab races, the
// demo's panels); the README's browser-support table lists what runs where.
const CHROMIUM_ONLY = ['@cdp', '@intercept', '@offline', '@once']
const leaveOut = (...tags: string[]) => new RegExp(tags.join('|'))
const engine = (engineName: EngineName) => ({ engineName, viewport: { width: 1280, height: 900 } })

export default defineConfig<{ engineName: EngineName }>({
  testDir: '.',
  outputDir: './.output',
  globalSetup: './global-setup.ts',
  // No test measures the browser's speed against a wall clock, so two at a time share the two cores.
  workers: 2,
  fullyParallel: true,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // CI also writes a JSON report for the closing summary line (.ci/summary.mjs).
  reporter: process.env.CI ? [['list'], ['json', { outputFile: '../.tmp/playwright.json' }]] : [['list']],
  use: { actionTimeout: 10_000 },
  projects: [
    { name: 'chromium', use: engine('chromium') },
    // The main flow again as a phone: Pixel 7 viewport, touch, mobile UA, isMobile.
    { name: 'phone', testMatch: /main-flow\.spec\.ts/, use: { ...devices['Pixel 7'], engineName: 'chromium' } },
    { name: 'firefox', use: engine('firefox'), grepInvert: leaveOut(...CHROMIUM_ONLY) },
    { name: 'webkit', use: engine('webkit'), grepInvert: leaveOut(...CHROMIUM_ONLY, '@init-script') },
  ],
})
