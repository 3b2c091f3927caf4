import { expect, test } from './fixtures.js'
import { expectText, runAction, signIn, text } from './helpers.js'
import { authorizationRequests, signInAgain, workerUrl } from './worker-helpers.js'

// Worker mode with a dedicated Worker per tab (where SharedWorker is missing: older Android
// Chrome, some WebViews), against the real authorization server: each tab holds its own session;
// tabs share only that one signed out. The first test runs in every engine, the second in Chromium.

const dedicated = (demo: Parameters<typeof workerUrl>[0]) => workerUrl(demo, 'dedicated')

test('dedicated Worker: sign in by same-tab redirect (PKCE binds the code, the exchange proof the tokens), call the API, refresh once after a rejected token', async ({ tab, demo }) => {
  const authorizations = authorizationRequests(demo)
  await signIn(tab, demo, dedicated(demo))
  await expectText(tab, '#mode-name', 'Worker mode (dedicated Worker)')
  expect(new URL(await tab.url()).search).toBe('?mode=worker&worker=dedicated')
  // The worker that made the request ended with the page's navigation: the code is not bound to its key.
  expect(authorizations).toHaveLength(1)
  expect(authorizations[0]!.has('dpop_jkt')).toBe(false)
  expect(authorizations[0]!.get('code_challenge_method')).toBe('S256')
  await expectText(tab, '#token-type', 'DPoP')

  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  const me = JSON.parse((await text(tab, '#result pre')) ?? '{}')
  // The tokens are bound to the key of the worker that exchanged the code.
  await expectText(tab, '#thumbprint', me.jkt)

  await runAction(tab, 'expire')
  const before = demo.as.counts.refreshToken
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken - before).toBe(1)
  expect(demo.as.counts.invalidGrant).toBe(0)
})

test('dedicated Worker: each tab has its own session; a sign-out in one signs out every tab, each revoking its own', { tag: '@once' }, async ({ tab: page, engine, demo }) => {
  await signIn(page, demo, dedicated(demo))
  const second = await engine.newPage()
  await second.goto(dedicated(demo))
  // Nothing crosses between the tabs' workers but a logout: the new tab is signed out.
  await expectText(second, '#status-pill', 'Signed out')
  await signInAgain(second, demo, dedicated(demo))
  expect(demo.as.counts.authorizationCode).toBe(2)
  const keys = await Promise.all([page, second].map((tab) => text(tab, '#thumbprint')))
  expect(keys[0]).not.toBe(keys[1])
  for (const tab of [page, second]) expect((await runAction(tab, 'call-api')).state).toBe('ok')

  await page.click('#sign-out')
  for (const tab of [page, second]) await expectText(tab, '#status-pill', 'Signed out')
  await expect.poll(() => demo.as.counts.revocations).toBe(2)
  await second.reload()
  await expectText(second, '#status-pill', 'Signed out')
})
