import { join } from 'node:path'
import { expect, test } from './fixtures.js'
import { expectText, expectVisible, runAction, text, waitForURL } from './helpers.js'

// Runs in every engine, and in Chromium once more as a Pixel 7 (viewport, touch, mobile UA).
test('sign in, call the API with DPoP, recover from a revoked token, sign out', async ({ tab, demo }, testInfo) => {
  const shot = (name: string) => join(testInfo.project.testDir, 'screenshots', `${testInfo.project.name}-${name}.png`)

  await tab.goto(demo.appUrl)
  await expectText(tab, '#status-pill', 'Signed out')
  await tab.click('#sign-in')
  await waitForURL(tab, (url) => url.origin === demo.as.issuer)
  await tab.waitForFunction(() => document.readyState === 'complete' && !!document.querySelector('button[type=submit]'))
  await tab.screenshot({ path: shot('sign-in-page') })
  expect(await text(tab, 'button[type=submit]')).toBe('Continue as demo user')
  await tab.click('button[type=submit]')
  await expectVisible(tab, '#session')
  expect(demo.as.counts.authorizationCode).toBe(1)
  // The code and state are gone from the address bar once the redirect is handled.
  expect(new URL(await tab.url()).search).toBe('')
  await expectText(tab, '#token-type', 'DPoP')

  const call = await runAction(tab, 'call-api')
  expect(call.state).toBe('ok')
  const me = JSON.parse((await text(tab, '#result pre')) ?? '{}')
  expect(me.sub).toBe('demo')
  expect(demo.api.counts.lastScheme).toBe('DPoP')
  expect(demo.api.counts.ok).toBe(1)
  // The key the API saw in the token's cnf.jkt is the key the page shows.
  await expectText(tab, '#thumbprint', me.jkt)

  await expectText(tab, '#storage-verdict', /^None of the \d+ issued tokens stored$/)
  await tab.screenshot({ path: shot('signed-in') })

  // "Expire now": the API rejects the token; latchkey refreshes once and retries.
  await runAction(tab, 'expire')
  const retried = await runAction(tab, 'call-api')
  expect(retried.state).toBe('ok')
  expect(demo.api.counts.unauthorized.invalid_token).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)
  expect(demo.as.counts.invalidGrant).toBe(0)
  await expectText(tab, '#refresh-count', '1')

  await tab.click('#sign-out')
  await expectVisible(tab, '#signed-out')
  await expectText(tab, '#status-pill', 'Signed out')
  // The page shows the sign-out at once; the revocation request completes after.
  await expect.poll(() => demo.as.counts.revocations).toBe(1)
})
