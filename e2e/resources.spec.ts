import { expect, test } from './fixtures.js'
import { expectAttribute, expectContains, expectEnabled, attribute, signIn, sleep, text } from './helpers.js'

// Two APIs on their own origins, each with its own audience at the real authorization server
// (oidc-provider, resource indicators): latchkey holds one token per API (RFC 8707).
test.describe('one access token per API', () => {
  test.use({ demoOptions: { accessTokenTTL: 8 } })

  test('each API gets only tokens whose aud is itself; 50 calls to each after expiry make exactly 2 grants', { tag: '@once' }, async ({ tab, demo }) => {
    const run = async (id: string) => {
      await tab.click(`#${id}`)
      await expectEnabled(tab, `#${id}`, { timeout: 20_000 })
      return attribute(tab, '#billing-result', 'data-state')
    }
    await signIn(tab, demo)
    await tab.click('#call-api')
    await expectAttribute(tab, '#result', 'data-state', 'ok')
    // the login's token was asked for the first API; the billing API's comes from one grant, on first use
    expect(demo.as.counts.refreshToken).toBe(0)
    expect(await run('call-billing')).toBe('ok')
    expect(demo.as.counts.refreshToken).toBe(1)
    const invoices = JSON.parse((await text(tab, '#billing-result pre')) ?? '{}')
    expect(invoices.aud).toBe(demo.billing.origin)
    expect(invoices.scope).toBe('billing:read')

    // both tokens expire (8 s); then a storm to both APIs at once
    await sleep(8_500)
    const before = { ...demo.as.counts }
    await tab.fill('#batch-size', '50')
    expect(await run('call-both-many')).toBe('ok')
    await expectContains(tab, '#billing-result', 'API: 50/50 OK · billing API: 50/50 OK')
    expect(demo.as.counts.refreshToken - before.refreshToken).toBe(2)
    expect(demo.as.counts.invalidGrant).toBe(0)
    expect(demo.as.counts.grantsRevoked).toBe(0)

    // each API accepted only tokens issued for it, and never saw the other's
    expect(new Set(demo.api.counts.audiences)).toEqual(new Set([demo.api.origin]))
    expect(new Set(demo.billing.counts.audiences)).toEqual(new Set([demo.billing.origin]))
    expect(demo.billing.counts.audiences.length).toBe(51)
    for (const api of [demo.api, demo.billing]) expect(api.counts.unauthorized.invalid_token).toBe(0)
  })
})
