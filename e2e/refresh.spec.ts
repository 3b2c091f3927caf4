import { expect, test } from './fixtures.js'
import { expectText, runAction, signIn, sleep } from './helpers.js'

test.describe('with 4-second access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 4 } })

  test('after the access token expires, the next call refreshes exactly once', async ({ tab, demo }) => {
    await signIn(tab, demo)
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.refreshToken).toBe(0)

    await sleep(4_500)
    expect((await runAction(tab, 'call-api')).state).toBe('ok')

    expect(demo.as.counts.refreshToken).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    // Refreshed before sending, not after a 401.
    expect(demo.api.counts.unauthorized.invalid_token).toBe(0)
    await expectText(tab, '#refresh-count', '1')
  })

  test('20 concurrent calls after expiry cause exactly one refresh', { tag: '@once' }, async ({ tab, demo }) => {
    await signIn(tab, demo)
    // One call first, so the API's nonce is known and only the refresh is under test here.
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await sleep(4_500)

    const { state, text } = await runAction(tab, 'call-many')
    expect(text).toContain('20 × 200')
    expect(state).toBe('ok')
    expect(demo.as.counts.refreshToken).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    expect(demo.api.counts.ok).toBe(1 + 20)
  })
})

test('20 concurrent 401s cause exactly one refresh, then every request is retried once', { tag: '@once' }, async ({ tab, demo }) => {
  await signIn(tab, demo)
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  await runAction(tab, 'expire')

  const { state, text } = await runAction(tab, 'call-many')
  expect(text).toContain('20 × 200')
  expect(state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(1)
  expect(demo.as.counts.invalidGrant).toBe(0)
  expect(demo.api.counts.unauthorized.invalid_token).toBeGreaterThanOrEqual(1)
  expect(demo.api.counts.unauthorized.invalid_token).toBeLessThanOrEqual(20)
  expect(demo.api.counts.ok).toBe(1 + 20)
})
