import { expect, test } from './fixtures.js'
import { runAction, signIn } from './helpers.js'

test('DPoP nonce challenges from the AS and the API are each answered once', async ({ tab, demo }) => {
  await signIn(tab, demo)
  for (let i = 0; i < 3; i++) expect((await runAction(tab, 'call-api')).state).toBe('ok')
  await runAction(tab, 'expire')
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect((await runAction(tab, 'call-many')).state).toBe('ok')

  // Nonces are required at both: the first token request and the first API call are challenged,
  // and the nonce is reused from then on. The code exchange's one retry succeeded, so the page read
  // the cross-origin DPoP-Nonce header: the AS exposes it (CORS), and this engine honours that.
  expect(demo.as.counts.useDpopNonce).toBe(1)
  expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(1)
  expect(demo.api.counts.unauthorized.invalid_dpop_proof).toBe(0)
  expect(demo.as.counts.authorizationCode).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)
  expect(demo.api.counts.ok).toBe(3 + 1 + 20)
})

test('20 concurrent first calls, all challenged for a nonce, each retry once and succeed', { tag: '@once' }, async ({ tab, demo }) => {
  await signIn(tab, demo)
  // No API call yet: every one of the 20 requests goes out without the API's nonce.
  const { state, text } = await runAction(tab, 'call-many')
  expect(text).toContain('20 × 200')
  expect(state).toBe('ok')
  expect(demo.api.counts.unauthorized.use_dpop_nonce).toBeLessThanOrEqual(20)
  expect(demo.api.counts.ok).toBe(20)
  expect(demo.api.counts.requests).toBe(20 + demo.api.counts.unauthorized.use_dpop_nonce)
  expect(demo.as.counts.refreshToken).toBe(0)
})

test.describe('with nonces switched off', () => {
  test.use({ demoOptions: { requireNonce: false } })

  test('no challenge is sent and calls succeed', { tag: '@once' }, async ({ tab, demo }) => {
    await signIn(tab, demo)
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.useDpopNonce).toBe(0)
    expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(0)
    expect(demo.api.counts.ok).toBe(1)
  })
})
