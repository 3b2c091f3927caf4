import { join } from 'node:path'
import { expect, test } from './fixtures.js'
import { press, runAction } from './helpers.js'

// Runs in both projects: desktop Chromium and a Pixel 7 profile (viewport, touch, mobile UA).
test('sign in, call the API with DPoP, recover from a revoked token, sign out', async ({ page, demo }, testInfo) => {
  const shot = (name: string) => join(testInfo.project.testDir, 'screenshots', `${testInfo.project.name}-${name}.png`)

  await page.goto(demo.appUrl)
  await expect(page.locator('#status-pill')).toHaveText('Signed out')
  await press(page.locator('#sign-in'))
  await page.waitForURL((url) => url.origin === demo.as.issuer)
  await page.screenshot({ path: shot('sign-in-page'), fullPage: true })
  await press(page.getByRole('button', { name: 'Continue as demo user' }))
  await expect(page.locator('#session')).toBeVisible()
  expect(demo.as.counts.authorizationCode).toBe(1)
  // The code and state are gone from the address bar once the redirect is handled.
  expect(new URL(page.url()).search).toBe('')
  await expect(page.locator('#token-type')).toHaveText('DPoP')

  const call = await runAction(page, 'call-api')
  expect(call.state).toBe('ok')
  const me = JSON.parse(await page.locator('#result pre').textContent() ?? '{}')
  expect(me.sub).toBe('demo')
  expect(demo.api.counts.lastScheme).toBe('DPoP')
  expect(demo.api.counts.ok).toBe(1)
  // The key the API saw in the token's cnf.jkt is the key the page shows.
  await expect(page.locator('#thumbprint')).toHaveText(me.jkt)

  await expect(page.locator('#storage-verdict')).toHaveText(/^None of the \d+ issued tokens stored$/)
  await page.screenshot({ path: shot('signed-in'), fullPage: true })

  // "Expire now": the API rejects the token; latchkey refreshes once and retries.
  await runAction(page, 'expire')
  const retried = await runAction(page, 'call-api')
  expect(retried.state).toBe('ok')
  expect(demo.api.counts.unauthorized.invalid_token).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)
  expect(demo.as.counts.invalidGrant).toBe(0)
  await expect(page.locator('#refresh-count')).toHaveText('1')

  await press(page.locator('#sign-out'))
  await expect(page.locator('#signed-out')).toBeVisible()
  await expect(page.locator('#status-pill')).toHaveText('Signed out')
  // The page shows the sign-out at once; the revocation request completes after.
  await expect.poll(() => demo.as.counts.revocations).toBe(1)
})
