// The server's time, in Chromium only (`@once`; invariant 12): the demo app runs in a page whose clock is
// 10 minutes ahead, 10 minutes behind or 2 hours ahead (an init script shifts Date.now, which is
// what latchkey reads); the servers keep the real time. The demo's authorization server and API
// expose `Date` to the page, and the API refuses a proof whose `iat` is more than a minute off.
import { expect, test, type Demo, type EnginePage } from './fixtures.js'
import { runAction, signIn } from './helpers.js'

const MINUTE = 60_000
const shifts: [string, number][] = [
  ['10 minutes ahead', 10 * MINUTE],
  ['10 minutes behind', -10 * MINUTE],
  ['2 hours ahead', 120 * MINUTE],
]

async function flow(page: EnginePage, demo: Demo, shift: number) {
  await page.addInitScript!((ms) => {
    const now = Date.now.bind(Date)
    Date.now = () => now() + ms
  }, shift)
  await signIn(page, demo)
  // The page's clock is off: the init script took.
  const skew = await page.evaluate(() => Date.now() - new Date().getTime())
  expect(Math.abs(skew - shift)).toBeLessThan(1000)
  for (let i = 0; i < 3; i++) expect((await runAction(page, 'call-api')).state).toBe('ok')
  // The API refuses every token: one refresh, one retry.
  await runAction(page, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.authorizationCode).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)
  // No proof was ever refused for its time: the server's time was known before the first API call.
  expect(demo.api.counts.unauthorized.invalid_dpop_proof).toBe(0)
  expect(demo.api.counts.ok).toBe(4)
}

test.describe('a page whose clock is off, with DPoP nonces', () => {
  for (const [name, shift] of shifts) {
    test(`device clock ${name}: sign-in, API calls, a nonce retry, a refresh`, { tag: ['@once', '@init-script'] }, async ({ tab: page, demo }) => {
      await flow(page, demo, shift)
      expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(1)
    })
  }
})

test.describe('a page whose clock is off, without nonces', () => {
  test.use({ demoOptions: { requireNonce: false } })
  for (const [name, shift] of shifts) {
    test(`device clock ${name}: sign-in, API calls, a refresh`, { tag: ['@once', '@init-script'] }, async ({ tab: page, demo }) => {
      await flow(page, demo, shift)
      expect(demo.api.counts.unauthorized.use_dpop_nonce).toBe(0)
    })
  }
})
