import { expect, test } from './fixtures.js'
import { runAction, signIn } from './helpers.js'

test('DPoP nonce challenges from the AS and the API are each answered once', async ({ page, demo }) => {
  // The browser can only read DPoP-Nonce cross-origin if the AS exposes it (CORS).
  const challenge = page.waitForResponse((r) => r.url() === demo.config.tokenEndpoint && r.status() === 400)
  await signIn(page, demo)
  const exposed = (await (await challenge).allHeaders())['access-control-expose-headers'] ?? ''
  expect(exposed.toLowerCase()).toContain('dpop-nonce')

  for (let i = 0; i < 3; i++) expect((await runAction(page, 'call-api')).state).toBe('ok')
  await runAction(page, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect((await runAction(page, 'call-many')).state).toBe('ok')

  // Nonces are required at both: the first token request and the first API call are challenged,
  // and the nonce is reused from then on.
  expect(demo.as.counts.useDpopNonce).toBe(1)
  expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(1)
  expect(demo.api.counts.unauthorized.invalid_dpop_proof).toBe(0)
  expect(demo.as.counts.authorizationCode).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)
  expect(demo.api.counts.ok).toBe(3 + 1 + 20)
})

test('20 concurrent first calls, all challenged for a nonce, each retry once and succeed', async ({ page, demo }) => {
  await signIn(page, demo)
  // No API call yet: every one of the 20 requests goes out without the API's nonce.
  const { state, text } = await runAction(page, 'call-many')
  expect(text).toContain('20 × 200')
  expect(state).toBe('ok')
  expect(demo.api.counts.unauthorized.use_dpop_nonce).toBeLessThanOrEqual(20)
  expect(demo.api.counts.ok).toBe(20)
  expect(demo.api.counts.requests).toBe(20 + demo.api.counts.unauthorized.use_dpop_nonce)
  expect(demo.as.counts.refreshToken).toBe(0)
})

test.describe('with nonces switched off', () => {
  test.use({ demoOptions: { requireNonce: false } })

  test('no challenge is sent and calls succeed', async ({ page, demo }) => {
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.useDpopNonce).toBe(0)
    expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(0)
    expect(demo.api.counts.ok).toBe(1)
  })
})
