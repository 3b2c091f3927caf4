import { expect, test } from './fixtures.js'
import { runAction, signIn } from './helpers.js'

test('tm.fetch to a non-allowed origin sends no Authorization and no DPoP header', async ({ tab, demo }) => {
  await signIn(tab, demo)
  // The allowed origin does get the token, so the check below is not vacuous.
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect(demo.api.counts.lastScheme).toBe('DPoP')

  demo.thirdParty.clear()
  const { state, text } = await runAction(tab, 'third-party')
  expect(state).toBe('ok')
  expect(text).toContain('No Authorization header arrived')

  const received = demo.thirdParty.requests.filter((r) => r.path === '/data')
  expect(received.length).toBeGreaterThanOrEqual(1)
  for (const { headers } of demo.thirdParty.requests) {
    expect(headers).not.toHaveProperty('authorization')
    expect(headers).not.toHaveProperty('dpop')
    expect(String(headers['access-control-request-headers'] ?? '')).not.toMatch(/authorization|dpop/i)
  }
})
