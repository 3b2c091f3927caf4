import { expect, test } from './fixtures.js'
import { runAction, signIn } from './helpers.js'
import { authorizationRequests, signInAgain, workerUrl } from './worker-helpers.js'

// Worker mode with a dedicated Worker per tab (where SharedWorker is missing: older Android
// Chrome, some WebViews), in real Chromium against the real authorization server: each tab holds
// its own session; tabs share only that one signed out.

const dedicated = (demo: Parameters<typeof workerUrl>[0]) => workerUrl(demo, 'dedicated')

test('dedicated Worker: sign in by same-tab redirect (PKCE binds the code, the exchange proof the tokens), call the API, refresh once after a rejected token', async ({ page, demo }) => {
  const authorizations = authorizationRequests(demo)
  await signIn(page, demo, dedicated(demo))
  await expect(page.locator('#mode-name')).toHaveText('Worker mode (dedicated Worker)')
  expect(new URL(page.url()).search).toBe('?mode=worker&worker=dedicated')
  // The worker that made the request ended with the page's navigation: the code is not bound to its key.
  expect(authorizations).toHaveLength(1)
  expect(authorizations[0]!.has('dpop_jkt')).toBe(false)
  expect(authorizations[0]!.get('code_challenge_method')).toBe('S256')
  await expect(page.locator('#token-type')).toHaveText('DPoP')

  expect((await runAction(page, 'call-api')).state).toBe('ok')
  const me = JSON.parse((await page.locator('#result pre').textContent()) ?? '{}')
  // The tokens are bound to the key of the worker that exchanged the code.
  await expect(page.locator('#thumbprint')).toHaveText(me.jkt)

  await runAction(page, 'expire')
  const before = demo.as.counts.refreshToken
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken - before).toBe(1)
  expect(demo.as.counts.invalidGrant).toBe(0)
})

test('dedicated Worker: each tab has its own session; a sign-out in one signs out every tab, each revoking its own', async ({ page, context, demo }) => {
  await signIn(page, demo, dedicated(demo))
  const second = await context.newPage()
  await second.goto(dedicated(demo))
  // Nothing crosses between the tabs' workers but a logout: the new tab is signed out.
  await expect(second.locator('#status-pill')).toHaveText('Signed out')
  await signInAgain(second, demo, dedicated(demo))
  expect(demo.as.counts.authorizationCode).toBe(2)
  const keys = await Promise.all([page, second].map((tab) => tab.locator('#thumbprint').textContent()))
  expect(keys[0]).not.toBe(keys[1])
  for (const tab of [page, second]) expect((await runAction(tab, 'call-api')).state).toBe('ok')

  await page.locator('#sign-out').click()
  for (const tab of [page, second]) await expect(tab.locator('#status-pill')).toHaveText('Signed out')
  await expect.poll(() => demo.as.counts.revocations).toBe(2)
  await second.reload()
  await expect(second.locator('#status-pill')).toHaveText('Signed out')
})
