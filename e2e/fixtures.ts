import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test as base, expect } from 'playwright/test'
import { startDemo } from '../demo/server/demo.mjs'
import { launch, type EngineBrowser, type EngineName, type EnginePage } from './engines/index.js'

export { expect }
export type { EngineBrowser, EngineName, EnginePage }

export type Demo = Awaited<ReturnType<typeof startDemo>>

export interface DemoOptions {
  accessTokenTTL?: number
  requireNonce?: boolean
}

/** Every token string the authorization server issued during the test, read on the server itself. */
export interface IssuedTokens {
  access: Set<string>
  refresh: Set<string>
}

// How to write a test for every engine: see the comment at the top of ./engines/types.ts.
export const test = base.extend<{
  demoOptions: DemoOptions
  demo: Demo
  dataDir: string
  engineName: EngineName
  launched: { engine: EngineBrowser; tab: EnginePage }
  engine: EngineBrowser
  tab: EnginePage
  tokens: IssuedTokens
}>({
  demoOptions: [{}, { option: true }],
  engineName: ['chromium', { option: true }],

  demo: async ({ demoOptions }, use) => {
    const demo = await startDemo(demoOptions)
    await use(demo)
    await demo.stop()
  },

  dataDir: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-e2e-'))
    await use(dir)
    // A browser's helper processes may still be writing caches for a moment after it closed.
    await rm(dir, { recursive: true, force: true, maxRetries: 5 })
  },

  // A fresh profile per test, so IndexedDB, cookies and history start empty and can be read back
  // from disk afterwards. The phone project's device options reach Chromium only.
  launched: async ({ engineName, dataDir, viewport, userAgent, isMobile, hasTouch, deviceScaleFactor }, use, testInfo) => {
    const launched = await launch(engineName, {
      dataDir,
      device: { viewport, isMobile, hasTouch, ...(userAgent ? { userAgent } : {}), ...(deviceScaleFactor ? { deviceScaleFactor } : {}) },
    })
    await use(launched)
    if (testInfo.status !== testInfo.expectedStatus) {
      // What the first tab showed when the test failed (unless the test closed it or the browser).
      const path = testInfo.outputPath('first-tab.png')
      const shown = await Promise.all([launched.tab.url(), launched.tab.screenshot({ path })]).catch(() => undefined)
      if (shown) await testInfo.attach('first tab', { path, contentType: 'image/png' })
      if (shown) testInfo.annotations.push({ type: 'first tab', description: shown[0] })
    }
    await launched.engine.close()
  },
  engine: async ({ launched }, use) => use(launched.engine),
  tab: async ({ launched }, use) => use(launched.tab),

  tokens: async ({ demo }, use) => {
    const { access, refresh } = issuedTokens(demo)
    await use({ access, refresh })
  },
})

/** Every token string the authorization server issues from now on, read on the server itself. */
export function issuedTokens(demo: Demo) {
  const access = new Set<string>()
  const refresh = new Set<string>()
  const other = new Set<string>()
  demo.as.provider.on('grant.success', (ctx: { body?: Record<string, unknown> }) => {
    const body = ctx.body ?? {}
    if (typeof body['access_token'] === 'string') access.add(body['access_token'])
    if (typeof body['refresh_token'] === 'string') refresh.add(body['refresh_token'])
    if (typeof body['id_token'] === 'string') other.add(body['id_token'])
  })
  return { access, refresh, all: () => [...access, ...refresh, ...other] }
}
