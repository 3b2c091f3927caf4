import { join } from 'node:path'
import type { TestInfo } from 'playwright/test'
import { expect, test, type EnginePage } from './fixtures.js'
import { expectAttribute, expectContains, expectEnabled, expectText, runAction, signIn, text, waitForURL } from './helpers.js'

// The demo page never shows a state that is not true: nonce challenges are in the event log, the
// countdown says when the next call refreshes, the storage verdict checks the real issued tokens,
// sign-out clears the storage panel, and the Back button after sign-in explains itself.

const shot = (tab: EnginePage, testInfo: TestInfo, name: string) =>
  tab.screenshot({ path: join(testInfo.project.testDir, 'screenshots', `${testInfo.project.name}-truth-${name}.png`) })

const COUNTDOWN = '#session .countdown-row'

test('sign in, call, expire, second tab, sign out: every panel tells the truth', { tag: '@once' }, async ({ tab: page, engine, demo, tokens }, testInfo) => {
  test.setTimeout(120_000)
  await signIn(page, demo)
  // The authorization server's nonce challenge on the code exchange (RFC 9449 §8).
  await expectContains(page, '#events', 'authorization server: POST /token → 400 use_dpop_nonce')
  await shot(page, testInfo, 'sign-in')

  expect((await runAction(page, 'call-api')).state).toBe('ok')
  // The API's challenge on the first call (RFC 9449 §9), answered by one retry.
  await expectContains(page, '#events', 'API: GET /api/me → 401 use_dpop_nonce')
  expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(1)
  expect(await page.evaluate(() => document.querySelectorAll('#events [data-kind="nonce"]').length)).toBe(2)
  // No token value is ever logged.
  const logged = (await text(page, '#events')) ?? ''
  for (const token of [...tokens.access, ...tokens.refresh]) expect(logged).not.toContain(token)
  await shot(page, testInfo, 'call')

  // The storage verdict is a comparison with every token the authorization server issued.
  const issued = (await (await fetch(new URL('/demo/issued-tokens', demo.appUrl))).json()) as { tokens: string[] }
  for (const token of [...tokens.access, ...tokens.refresh]) expect(issued.tokens).toContain(token)
  await expectText(page, '#storage-verdict', `None of the ${issued.tokens.length} issued tokens stored`)
  await expectAttribute(page, '#storage-verdict', 'data-state', 'ok')
  // An opaque refresh token (no JWT shape) stored in plain text is caught.
  const [refreshToken] = tokens.refresh
  expect(refreshToken).not.toMatch(/^eyJ/)
  await page.evaluate((value) => localStorage.setItem('careless-app', value), refreshToken!)
  await expectText(page, '#storage-verdict', 'Issued token stored: localStorage › careless-app')
  await expectAttribute(page, '#storage-verdict', 'data-state', 'bad')
  await page.evaluate(() => localStorage.removeItem('careless-app'))
  await expectAttribute(page, '#storage-verdict', 'data-state', 'ok')

  // A second tab joins the session.
  const second = await engine.newPage()
  await second.goto(demo.appUrl)
  await expectText(second, '#status-pill', 'Signed in')
  await expectContains(second, COUNTDOWN, 'access token left')
  // WebKitGTK takes no screenshot of a tab behind another: WebDriver's command never answers.
  if (engine.name !== 'webkit') await shot(second, testInfo, 'second-tab')

  // "Expire now": the countdown says so at once, in both tabs, and that the next call refreshes.
  await runAction(page, 'expire')
  await expectText(page, COUNTDOWN, /expired:\s*the API rejects it; the next call refreshes/)
  await expectText(second, COUNTDOWN, /expired:\s*the API rejects it; the next call refreshes/)
  await expectText(page, '#status-pill', 'Signed in')
  await shot(page, testInfo, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(1)
  await expectText(page, COUNTDOWN, /\d s\s*access token left|\d:\d\d\s*access token left/)
  await expectContains(second, COUNTDOWN, 'access token left')

  // Before sign-out the DPoP key is in IndexedDB, and the panel shows it.
  await expectContains(page, '#storage', 'CryptoKey')
  await page.click('#sign-out')
  await expectText(page, '#result', 'Signed out.')
  // Re-read once logout() resolved (the key is deleted by then): well before the 2 s periodic scan.
  await expectContains(page, '#storage', 'CryptoKey', { not: true, timeout: 1_000 })
  await expectText(second, '#status-pill', 'Signed out')
  await expectContains(second, '#storage', 'CryptoKey', { not: true, timeout: 1_000 })
  await shot(page, testInfo, 'sign-out')
})

test('sign-out clears the storage panel once logout() resolved, in every tab', { tag: ['@init-script', '@once'] }, async ({ tab: page, engine, demo }) => {
  // No periodic re-reads in this test: only the reads that sign-out itself causes can clear the panel.
  const second = await engine.newPage()
  for (const tab of [page, second]) {
    await tab.addInitScript!(() => {
      const setInterval = window.setInterval
      window.setInterval = ((handler: TimerHandler, ms?: number, ...rest: unknown[]) =>
        ms === 2000 ? 0 : setInterval(handler, ms, ...rest)) as typeof window.setInterval
    }, undefined)
  }
  await signIn(page, demo)
  await second.goto(demo.appUrl)
  await expectText(second, '#status-pill', 'Signed in')
  for (const tab of [page, second]) await expectContains(tab, '#storage', 'CryptoKey')
  await page.click('#sign-out')
  await expectText(page, '#result', 'Signed out.')
  for (const tab of [page, second]) {
    await expectText(tab, '#status-pill', 'Signed out')
    await expectContains(tab, '#storage', 'CryptoKey', { not: true })
    await expectContains(tab, '#storage', 'IndexedDB')
  }
})

test.describe('with 3 s access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 3 } })

  test('an expired token says the next call refreshes, and the call does', { tag: '@once' }, async ({ tab, demo }) => {
    await signIn(tab, demo)
    await expectText(tab, COUNTDOWN, /expired:\s*the next call refreshes/, { timeout: 5_000 })
    await expectText(tab, '#status-pill', 'Signed in')
    expect(demo.as.counts.refreshToken).toBe(0)
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.refreshToken).toBe(1)
    await expectText(tab, COUNTDOWN, /\d s\s*access token left/)
  })
})

test('the Back button after sign-in, and a reused sign-in response, explain themselves', async ({ tab, engine, demo }) => {
  await signIn(tab, demo)
  // Sign-in replaced the signed-out page's history entry: Back goes to the used sign-in page.
  await tab.goBack()
  await waitForURL(tab, (url) => url.origin === demo.as.issuer)
  if (engine.name === 'webkit') {
    // WebKit shows the used sign-in page again from its back-forward cache (its `no-store`
    // notwithstanding); submitting it reaches the server, which explains.
    await expectText(tab, 'h1', 'Sign in')
    await tab.click('button[type=submit]')
  }
  await expectText(tab, 'h1', 'This sign-in has ended')
  await expectContains(tab, 'body', 'invalid_request', { not: true })
  expect(await text(tab, 'a')).toBe('Back to the demo app')
  await tab.click('a')
  await waitForURL(tab, (url) => url.origin === new URL(demo.appUrl).origin)
  await expectText(tab, '#status-pill', 'Signed out')

  // A redirect whose state was used already (or never issued here).
  await tab.goto(`${demo.appUrl}?code=used&state=used-before&iss=${encodeURIComponent(demo.as.issuer)}`)
  await expectText(tab, '#signin-message',
    'This sign-in response was already used, or belongs to another tab or browser: nothing was signed in. Sign in again.')
  expect(new URL(await tab.url()).search).toBe('')
  await expectEnabled(tab, '#sign-in')
})
