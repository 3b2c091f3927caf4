import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test as base, chromium, expect, type BrowserContext, type Page } from 'playwright/test'
import { startDemo } from '../demo/server/demo.mjs'

export { expect }

export type Demo = Awaited<ReturnType<typeof startDemo>>

export interface DemoOptions {
  accessTokenTTL?: number
  requireNonce?: boolean
}

/** Every token string the authorization server handed to the page, read from its responses. */
export interface CapturedTokens {
  access: Set<string>
  refresh: Set<string>
  /** Waits until every token response seen so far has been read. */
  settled(): Promise<void>
}

// Without the networking flags Chromium stalls on refused background connections here.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export const test = base.extend<{
  demoOptions: DemoOptions
  demo: Demo
  userDataDir: string
  tokens: CapturedTokens
}>({
  demoOptions: [{}, { option: true }],

  demo: async ({ demoOptions }, use) => {
    const demo = await startDemo(demoOptions)
    await use(demo)
    await demo.stop()
  },

  userDataDir: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-e2e-'))
    await use(dir)
    await rm(dir, { recursive: true, force: true })
  },

  // A fresh persistent profile per test, so IndexedDB, cookies and history start empty and can
  // be read back from disk afterwards.
  context: async ({ userDataDir, viewport, userAgent, isMobile, hasTouch, deviceScaleFactor }, use) => {
    const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
      executablePath: '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
      viewport,
      isMobile,
      hasTouch,
      ...(userAgent ? { userAgent } : {}),
      ...(deviceScaleFactor ? { deviceScaleFactor } : {}),
    })
    await use(context)
    await context.close()
  },

  page: async ({ context }, use) => {
    const page: Page = context.pages()[0] ?? (await context.newPage())
    await use(page)
  },

  tokens: async ({ context, demo }, use) => {
    const access = new Set<string>()
    const refresh = new Set<string>()
    const pending: Promise<void>[] = []
    context.on('response', (response) => {
      if (response.url() !== demo.config.tokenEndpoint || response.request().method() !== 'POST') return
      pending.push(
        response.json().then(
          (body: Record<string, unknown>) => {
            if (typeof body['access_token'] === 'string') access.add(body['access_token'])
            if (typeof body['refresh_token'] === 'string') refresh.add(body['refresh_token'])
          },
          () => undefined,
        ),
      )
    })
    await use({ access, refresh, settled: async () => void (await Promise.all(pending)) })
  },
})
