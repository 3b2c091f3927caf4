import { expect, test } from './fixtures.js'
import { runAction, signIn } from './helpers.js'

test('the measurements panel counts what the servers saw: one login, one refresh for a batch of 401s, one nonce retry at each server', async ({ page, demo }, testInfo) => {
  await signIn(page, demo)
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  await runAction(page, 'expire')
  expect((await runAction(page, 'call-many')).state).toBe('ok')

  expect(demo.as.counts.authorizationCode).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)
  expect(demo.as.counts.useDpopNonce).toBe(1)
  expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(1)
  // Two token requests, both ok. "Expire now" makes the API refuse the token: each of the 20 calls
  // of the batch got a 401 and was retried once, after the one refresh the first 401 began.
  await expect(page.locator('#m-outcomes')).toHaveText('ok: 2')
  await expect(page.locator('#m-durations > div')).toHaveCount(2)
  await expect(page.locator('#m-durations > div').first()).toHaveText(/^unauthorized · ok · \d+ ms · HTTP 200$/)
  await expect(page.locator('#m-durations > div').last()).toHaveText(/^login · ok · \d+ ms · HTTP 200$/)
  await expect(page.locator('#m-unauthorized')).toHaveText('20')
  // The 401s that came back while that refresh was in flight joined it; later ones found its token.
  const joins = Number(/\((\d+) calls\)/.exec((await page.locator('#m-joins').textContent())!)![1])
  expect(joins).toBeLessThanOrEqual(19)
  await expect(page.locator('#m-nonces')).toHaveText('2 (authorization server 1, API 1)')
  await expect(page.locator('#m-held')).toHaveText('0 (Retry-After 0, backoff 0)')
  await page.locator('#measurements').screenshot({ path: testInfo.outputPath('measurements.png') })
})
