// A React 19 app (in StrictMode) and a Vue 3 app, built by Vite from e2e/apps as their users build
// them, against the demo's real servers: sign-in by redirect, a refresh after expiry, a second tab,
// a logout seen by both tabs. The React app runs in every engine, the Vue app in Chromium (`@once`).
// Console errors and uncaught exceptions are read where the driver reports them: in Chromium.
import { rm } from 'node:fs/promises'
import type { ConsoleMessage } from 'playwright/test'
import { startDemo } from '../demo/server/demo.mjs'
import { buildApp } from './apps/build.js'
import { playwrightOf } from './engines/index.js'
import { expect, test, type EngineBrowser, type EnginePage } from './fixtures.js'
import { waitForURL } from './helpers.js'

// Short-lived access tokens, so that the test sees one expire.
const ACCESS_TOKEN_TTL = 6

/** Console errors and uncaught exceptions of `tab`, in Chromium (the other drivers here report none). */
function watchErrors(engine: EngineBrowser, tab: EnginePage): string[] {
  const errors: string[] = []
  if (engine.name != 'chromium') return errors
  const page = playwrightOf(tab)
  page.on('console', (m: ConsoleMessage) => void (m.type() == 'error' && errors.push(m.text())))
  page.on('pageerror', (e) => void errors.push(String(e)))
  return errors
}

type Page = EnginePage
const status = (page: Page) => page.evaluate(() => document.querySelector('#status')?.textContent?.trim())
const generation = (page: Page) => page.evaluate(() => Number((document.querySelector('#status') as HTMLElement | null)?.dataset['generation']))
const counters = (page: Page) => page.evaluate(() => (globalThis as unknown as { latchkeyApp: { renders: number; starts: number } }).latchkeyApp)
const click = (page: Page, id: string) => page.evaluate((id) => (document.getElementById(id) as HTMLButtonElement).click(), id)
/** The authorization server's one-click sign-in page. */
const continueAsDemoUser = async (page: Page) => {
  await page.waitForFunction(() => document.readyState == 'complete' && !!document.querySelector('form button[type=submit]'))
  await page.evaluate(() => (document.querySelector('form button[type=submit]') as HTMLButtonElement).click())
}
const waitForStatus = (page: Page, text: string, timeout?: number) =>
  page.waitForFunction((text) => document.querySelector('#status')?.textContent?.trim() == text, text, { timeout: timeout ?? 10_000 })

for (const framework of ['react', 'vue'] as const) {
  test.describe(`${framework} app built by Vite`, () => {
    let root: string
    test.beforeAll(async () => {
      test.setTimeout(120_000)
      root = await buildApp(framework)
    })
    test.afterAll(async () => {
      if (root) await rm(root, { recursive: true, force: true })
    })

    // In-page mode, and worker mode (the session in a SharedWorker, the app holding connectTokenManager's handle).
    for (const mode of ['in-page', 'worker'] as const)
    test(`${mode}: sign in by redirect, follow a refresh, share the session with a second tab, sign out of both`, { tag: framework == 'react' && mode == 'in-page' ? [] : ['@once'] }, async ({ engine, tab: page }) => {
      // No DPoP nonces: their challenges (a 400 and a 401 by design) are console errors in Chromium; e2e/nonce.spec.ts covers them.
      const demo = await startDemo({ root, accessTokenTTL: ACCESS_TOKEN_TTL, requireNonce: false })
      const appUrl = demo.appUrl + (mode == 'worker' ? '?mode=worker' : '')
      try {
        const errors = watchErrors(engine, page)
        await page.goto(appUrl)
        await waitForStatus(page, 'Signed out')

        // Sign in through the real authorization server.
        await click(page, 'sign-in')
        await waitForURL(page, (url) => url.origin == demo.as.issuer && url.pathname.startsWith('/interaction/'))
        await continueAsDemoUser(page)
        await waitForStatus(page, 'Signed in')
        expect(demo.as.counts.authorizationCode).toBe(1)
        expect(demo.as.counts.invalidGrant).toBe(0)
        expect(new URL(await page.url()).search).toBe('')
        expect(await page.evaluate(() => document.querySelector('#error')?.textContent ?? null)).toBeNull()
        // StrictMode ran the React start-up effect twice: the second handleRedirect joined the first.
        expect((await counters(page)).starts).toBe(framework == 'react' ? 2 : 1)
        const first = await generation(page)
        expect(first).toBeGreaterThan(0)

        // A second tab joins the session without signing in.
        const second = await engine.newPage()
        const secondErrors = watchErrors(engine, second)
        await second.goto(appUrl)
        await waitForStatus(second, 'Signed in')
        expect(await generation(second)).toBe(first)

        // After the access token expires, a call refreshes it once; both UIs show the new tokens.
        await page.waitForFunction(() => Date.now() > Number((document.querySelector('#status') as HTMLElement).dataset['expiresAt']), undefined, {
          timeout: (ACCESS_TOKEN_TTL + 5) * 1000,
        })
        const refreshes = demo.as.counts.refreshToken
        await click(page, 'call-api')
        await page.waitForFunction(() => document.querySelector('#result')?.textContent == '200')
        expect(demo.as.counts.refreshToken).toBe(refreshes + 1)
        const next = await generation(page)
        expect(next).toBeGreaterThan(first)
        await second.waitForFunction((g) => Number((document.querySelector('#status') as HTMLElement).dataset['generation']) == g, next)

        // Sign out in the second tab: both UIs are signed out within 2 s.
        await click(second, 'sign-out')
        await Promise.all([waitForStatus(second, 'Signed out', 2000), waitForStatus(page, 'Signed out', 2000)])
        expect(await status(page)).toBe('Signed out')
        await expect.poll(() => demo.as.counts.revocations).toBe(1)

        // No render loop: a handful of renders per change of the session, StrictMode's doubling included.
        for (const p of [page, second]) expect((await counters(p)).renders).toBeLessThanOrEqual(24)
        expect(errors).toEqual([])
        expect(secondErrors).toEqual([])
        expect(demo.as.counts.authorizationCode).toBe(1)
        expect(demo.as.counts.invalidGrant).toBe(0)
      } finally {
        await demo.stop()
      }
    })

    if (framework == 'react')
      test('RequireSession starts one sign-in when there is no session, under StrictMode', { tag: '@once' }, async ({ engine, tab: page }) => {
        const demo = await startDemo({ root, requireNonce: false })
        try {
          const errors = watchErrors(engine, page)
          await page.goto(demo.appUrl + '?page=billing')
          await waitForURL(page, (url) => url.origin == demo.as.issuer && url.pathname.startsWith('/interaction/'))
          await continueAsDemoUser(page)
          await waitForStatus(page, 'Signed in')
          expect(demo.as.counts.authorizationCode).toBe(1)
          // Each authorizationUrl() leaves a login in sessionStorage until its redirect is handled:
          // none is left, so the guard's effect (run twice by StrictMode) signed in once.
          const logins = await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('latchkey:login:')))
          expect(logins).toEqual([])
          expect(errors).toEqual([])
        } finally {
          await demo.stop()
        }
      })
  })
}
