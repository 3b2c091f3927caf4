import { expect, test } from './fixtures.js'
import { expectText, runAction, signIn, text, texts } from './helpers.js'

test('the measurements panel counts what the servers saw: one login, one refresh for a batch of 401s, one nonce retry at each server', { tag: '@once' }, async ({ tab: page, demo }, testInfo) => {
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
  await expectText(page, '#m-outcomes', 'ok: 2')
  await expect.poll(() => texts(page, '#m-durations > div').then((t) => t.length)).toBe(2)
  const durations = await texts(page, '#m-durations > div')
  expect(durations[0]).toMatch(/^unauthorized · ok · \d+ ms · HTTP 200$/)
  expect(durations[durations.length - 1]).toMatch(/^login · ok · \d+ ms · HTTP 200$/)
  await expectText(page, '#m-unauthorized', '20')
  // The 401s that came back while that refresh was in flight joined it; later ones found its token.
  const joins = Number(/\((\d+) calls\)/.exec((await text(page, '#m-joins'))!)![1])
  expect(joins).toBeLessThanOrEqual(19)
  await expectText(page, '#m-nonces', '2 (authorization server 1, API 1)')
  await expectText(page, '#m-held', '0 (Retry-After 0, backoff 0)')
  // The panel in view, for the report.
  await page.evaluate(() => document.getElementById('measurements')?.scrollIntoView())
  await page.screenshot({ path: testInfo.outputPath('measurements.png') })
})
