import { join } from 'node:path'
import type { Page, TestInfo } from 'playwright/test'
import { expect, test } from './fixtures.js'
import { runAction, signIn } from './helpers.js'

// The demo page never shows a state that is not true: nonce challenges are in the event log, the
// countdown says when the next call refreshes, the storage verdict checks the real issued tokens,
// sign-out clears the storage panel, and the Back button after sign-in explains itself.

const shot = (page: Page, testInfo: TestInfo, name: string) =>
  page.screenshot({ path: join(testInfo.project.testDir, 'screenshots', `${testInfo.project.name}-truth-${name}.png`), fullPage: true })

const countdown = (page: Page) => page.locator('#session .countdown-row')

test('sign in, call, expire, second tab, sign out: every panel tells the truth', async ({ page, context, demo, tokens }, testInfo) => {
  test.setTimeout(120_000)
  await signIn(page, demo)
  const events = page.locator('#events')
  // The authorization server's nonce challenge on the code exchange (RFC 9449 §8).
  await expect(events).toContainText('authorization server: POST /token → 400 use_dpop_nonce')
  await shot(page, testInfo, 'sign-in')

  expect((await runAction(page, 'call-api')).state).toBe('ok')
  // The API's challenge on the first call (RFC 9449 §9), answered by one retry.
  await expect(events).toContainText('API: GET /api/me → 401 use_dpop_nonce')
  expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(1)
  expect(await events.locator('[data-kind="nonce"]').count()).toBe(2)
  // No token value is ever logged.
  await tokens.settled()
  const logged = (await events.textContent()) ?? ''
  for (const token of [...tokens.access, ...tokens.refresh]) expect(logged).not.toContain(token)
  await shot(page, testInfo, 'call')

  // The storage verdict is a comparison with every token the authorization server issued.
  const verdict = page.locator('#storage-verdict')
  const issued = (await (await fetch(new URL('/demo/issued-tokens', demo.appUrl))).json()) as { tokens: string[] }
  for (const token of [...tokens.access, ...tokens.refresh]) expect(issued.tokens).toContain(token)
  await expect(verdict).toHaveText(`None of the ${issued.tokens.length} issued tokens stored`)
  await expect(verdict).toHaveAttribute('data-state', 'ok')
  // An opaque refresh token (no JWT shape) stored in plain text is caught.
  const [refreshToken] = tokens.refresh
  expect(refreshToken).not.toMatch(/^eyJ/)
  await page.evaluate((value) => localStorage.setItem('careless-app', value), refreshToken!)
  await expect(verdict).toHaveText('Issued token stored: localStorage › careless-app')
  await expect(verdict).toHaveAttribute('data-state', 'bad')
  await page.evaluate(() => localStorage.removeItem('careless-app'))
  await expect(verdict).toHaveAttribute('data-state', 'ok')

  // A second tab joins the session.
  const second = await context.newPage()
  await second.goto(demo.appUrl)
  await expect(second.locator('#status-pill')).toHaveText('Signed in')
  await expect(countdown(second)).toContainText('access token left')
  await shot(second, testInfo, 'second-tab')

  // "Expire now": the countdown says so at once, in both tabs, and that the next call refreshes.
  await runAction(page, 'expire')
  await expect(countdown(page)).toHaveText(/expired:\s*the API rejects it; the next call refreshes/)
  await expect(countdown(second)).toHaveText(/expired:\s*the API rejects it; the next call refreshes/)
  await expect(page.locator('#status-pill')).toHaveText('Signed in')
  await shot(page, testInfo, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(1)
  await expect(countdown(page)).toHaveText(/\d s\s*access token left|\d:\d\d\s*access token left/)
  await expect(countdown(second)).toContainText('access token left')

  // Before sign-out the DPoP key is in IndexedDB, and the panel shows it.
  const storage = page.locator('#storage')
  await expect(storage).toContainText('CryptoKey')
  await page.locator('#sign-out').click()
  await expect(page.locator('#result')).toHaveText('Signed out.')
  // Re-read once logout() resolved (the key is deleted by then): well before the 2 s periodic scan.
  await expect(storage).not.toContainText('CryptoKey', { timeout: 1_000 })
  await expect(second.locator('#status-pill')).toHaveText('Signed out')
  await expect(second.locator('#storage')).not.toContainText('CryptoKey', { timeout: 1_000 })
  await shot(page, testInfo, 'sign-out')
})

test('sign-out clears the storage panel once logout() resolved, in every tab', async ({ page, context, demo }) => {
  // No periodic re-reads in this test: only the reads that sign-out itself causes can clear the panel.
  await context.addInitScript(() => {
    const setInterval = window.setInterval
    window.setInterval = ((handler: TimerHandler, ms?: number, ...rest: unknown[]) =>
      ms === 2000 ? 0 : setInterval(handler, ms, ...rest)) as typeof window.setInterval
  })
  await signIn(page, demo)
  const second = await context.newPage()
  await second.goto(demo.appUrl)
  await expect(second.locator('#status-pill')).toHaveText('Signed in')
  for (const tab of [page, second]) await expect(tab.locator('#storage')).toContainText('CryptoKey')
  await page.locator('#sign-out').click()
  await expect(page.locator('#result')).toHaveText('Signed out.')
  for (const tab of [page, second]) {
    await expect(tab.locator('#status-pill')).toHaveText('Signed out')
    await expect(tab.locator('#storage')).not.toContainText('CryptoKey')
    await expect(tab.locator('#storage')).toContainText('IndexedDB')
  }
})

test.describe('with 3 s access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 3 } })

  test('an expired token says the next call refreshes, and the call does', async ({ page, demo }) => {
    await signIn(page, demo)
    await expect(countdown(page)).toHaveText(/expired:\s*the next call refreshes/, { timeout: 5_000 })
    await expect(page.locator('#status-pill')).toHaveText('Signed in')
    expect(demo.as.counts.refreshToken).toBe(0)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.refreshToken).toBe(1)
    await expect(countdown(page)).toHaveText(/\d s\s*access token left/)
  })
})

test('the Back button after sign-in, and a reused sign-in response, explain themselves', async ({ page, demo }) => {
  await signIn(page, demo)
  // Sign-in replaced the signed-out page's history entry: Back goes to the used sign-in page.
  await page.goBack()
  expect(new URL(page.url()).origin).toBe(demo.as.issuer)
  await expect(page.locator('h1')).toHaveText('This sign-in has ended')
  await expect(page.locator('body')).not.toContainText('invalid_request')
  await page.getByRole('link', { name: 'Back to the demo app' }).click()
  await expect(page.locator('#status-pill')).toHaveText('Signed out')

  // A redirect whose state was used already (or never issued here).
  await page.goto(`${demo.appUrl}?code=used&state=used-before&iss=${encodeURIComponent(demo.as.issuer)}`)
  await expect(page.locator('#signin-message')).toHaveText(
    'This sign-in response was already used, or belongs to another tab or browser: nothing was signed in. Sign in again.',
  )
  expect(new URL(page.url()).search).toBe('')
  await expect(page.locator('#sign-in')).toBeEnabled()
})
