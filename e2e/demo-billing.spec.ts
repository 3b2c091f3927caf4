// The demo tells the truth about its two APIs: the event log names the billing API, and the
// billing API's first token shows as that API's token, not as a refresh of the session.
import { expect, test } from './fixtures.js'
import { expectContains, runAction, signIn, text } from './helpers.js'

test("the billing API's first token is its own, not a refresh of the session; the log names that API", { tag: '@once' }, async ({ tab: page, demo }) => {
  await signIn(page, demo)
  const generation = await page.evaluate(() => document.getElementById('generation')?.textContent)
  await page.evaluate(() => document.getElementById('call-billing')?.click())
  await page.waitForFunction(() => document.getElementById('billing-result')?.dataset['state'] == 'ok')
  await expectContains(page, '#events', "billing API's first token: one token request with its resource")
  // The billing API's own nonce challenge (RFC 9449 §9), named as that API's.
  await expectContains(page, '#events', 'billing API: GET /api/invoices → 401 use_dpop_nonce')
  expect(await page.evaluate(() => document.getElementById('events')?.textContent)).not.toContain('authorization server: GET /api/invoices')
  // The session card: no refresh, the same generation, the API's scope.
  expect(await page.evaluate(() => document.getElementById('refresh-count')?.textContent)).toBe('0')
  expect(await page.evaluate(() => document.getElementById('generation')?.textContent)).toBe(generation)
  expect(await page.evaluate(() => document.getElementById('scope')?.textContent)).toContain('api:read')
  expect(demo.as.counts.refreshToken).toBe(1)

  // A refresh of the session's own token still counts as one.
  await runAction(page, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect(await page.evaluate(() => document.getElementById('refresh-count')?.textContent)).toBe('1')
  expect(Number(await page.evaluate(() => document.getElementById('generation')?.textContent))).toBeGreaterThan(Number(generation))
})
