import { expect, test } from './fixtures.js'
import { runAction, signIn } from './helpers.js'

test.describe('with 4-second access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 4 } })

  test('after the access token expires, the next call refreshes exactly once', async ({ page, demo }) => {
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.refreshToken).toBe(0)

    await page.waitForTimeout(4_500)
    expect((await runAction(page, 'call-api')).state).toBe('ok')

    expect(demo.as.counts.refreshToken).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    // Refreshed before sending, not after a 401.
    expect(demo.api.counts.unauthorized.invalid_token).toBe(0)
    await expect(page.locator('#refresh-count')).toHaveText('1')
  })

  test('20 concurrent calls after expiry cause exactly one refresh', async ({ page, demo }) => {
    await signIn(page, demo)
    // One call first, so the API's nonce is known and only the refresh is under test here.
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    await page.waitForTimeout(4_500)

    const { state, text } = await runAction(page, 'call-many')
    expect(text).toContain('20 × 200')
    expect(state).toBe('ok')
    expect(demo.as.counts.refreshToken).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    expect(demo.api.counts.ok).toBe(1 + 20)
  })
})

test('20 concurrent 401s cause exactly one refresh, then every request is retried once', async ({ page, demo }) => {
  await signIn(page, demo)
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  await runAction(page, 'expire')

  const { state, text } = await runAction(page, 'call-many')
  expect(text).toContain('20 × 200')
  expect(state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(1)
  expect(demo.as.counts.invalidGrant).toBe(0)
  expect(demo.api.counts.unauthorized.invalid_token).toBeGreaterThanOrEqual(1)
  expect(demo.api.counts.unauthorized.invalid_token).toBeLessThanOrEqual(20)
  expect(demo.api.counts.ok).toBe(1 + 20)
})
