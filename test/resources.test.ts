// One access token per API (RFC 8707 resource indicators): each origin in `resources` gets a token
// from a refresh_token grant with its own `resource`, lazily; grants never overlap; the refresh
// token is presented once per rotation, in any tab.
import { describe, expect, it } from 'vitest'
import { createTokenManager, memoryKeyStore, type TokenManager, type TokenManagerEvents, type TokenManagerOptions } from '../src/index.js'
import { advance, cleanups, sleep, windowEvents } from './support/harness.js'
import { expectNoToken, tokensOf } from './support/invariants-helpers.js'
import { startApi, startTokenServer, type TokenServer } from './support/servers.js'
import { createTabsHub } from './support/tabs.js'

async function twoApis(serverOptions: Parameters<typeof startTokenServer>[0] = {}) {
  const as = await startTokenServer({ expiresIn: 60, ...serverOptions })
  cleanups.push(as.close)
  // Each API checks that a token was issued for it: any other token gets a 401.
  const orders = await startApi(as, { audience: 'urn:orders' })
  cleanups.push(orders.close)
  const billing = await startApi(as, { audience: 'urn:billing' })
  cleanups.push(billing.close)
  const other = await startApi(as)
  cleanups.push(other.close)
  return { as, orders, billing, other }
}

type Apis = Awaited<ReturnType<typeof twoApis>>

function manager(as: TokenServer, apis: Apis, options: Partial<TokenManagerOptions> = {}): TokenManager {
  return createTokenManager({
    clientId: 'spa',
    tokenEndpoint: as.tokenEndpoint,
    revocationEndpoint: as.revocationEndpoint,
    resources: {
      [apis.orders.origin]: 'urn:orders',
      [apis.billing.origin]: { resource: 'urn:billing', scope: 'billing:read' },
    },
    crossTab: false,
    ...options,
  })
}

describe('resources: one access token per API', () => {
  it('each API gets a token for itself only, fetched lazily with its resource and scope', async () => {
    const apis = await twoApis()
    const { as, orders, billing } = apis
    const tm = manager(as, apis, { dpop: false })
    await tm.setTokens(as.seed())
    expect(as.counts.refresh).toBe(0)
    expect((await tm.fetch(orders.url('/o'))).status).toBe(200)
    expect(as.counts.resources).toEqual(['urn:orders'])
    expect((await tm.fetch(billing.url('/b'))).status).toBe(200)
    expect((await tm.fetch(orders.url('/o2'))).status).toBe(200)
    expect(as.counts.resources).toEqual(['urn:orders', 'urn:billing'])
    expect(orders.requests.map((r) => [r.aud, r.status])).toEqual([['urn:orders', 200], ['urn:orders', 200]])
    expect(billing.requests.map((r) => [r.aud, r.status])).toEqual([['urn:billing', 200]])
    // the scope asked for came back with the billing token
    expect(tm.status(billing.origin)).toMatchObject({ scope: 'billing:read', origin: billing.origin, tokenType: 'Bearer' })
    expect(tm.status(orders.origin + '/any/path')).toMatchObject({ origin: orders.origin })
    // the two tokens differ and neither is the login token
    const [o, b] = [orders.requests[0]!.authorization, billing.requests[0]!.authorization]
    expect(o).not.toBe(b)
  })

  it('a storm of 50 calls to each of two APIs after expiry: exactly 2 grants, one after the other, no reuse', async () => {
    const apis = await twoApis({ dpop: true, delayMs: 30 })
    const { as, orders, billing } = apis
    const tm = manager(as, apis, { dpop: { keyStore: memoryKeyStore() } })
    await tm.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    // the login's token is the first API's (asked for its resource): only billing needs a grant
    await Promise.all([tm.fetch(orders.url('/warm')), tm.fetch(billing.url('/warm'))])
    expect(as.counts.resources).toEqual(['urn:billing'])
    expect(orders.requests[0]!.aud).toBe('urn:orders')
    advance(61)
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => [tm.fetch(orders.url(`/o${i}`)), tm.fetch(billing.url(`/b${i}`))]).flat(),
    )
    expect(results.map((r) => r.status).filter((s) => s != 200)).toEqual([])
    expect(as.counts.refresh).toBe(3)
    expect(as.counts.invalidGrant).toBe(0)
    expect(as.counts.reuse).toBe(0)
    expect(new Set(as.counts.resources.slice(1))).toEqual(new Set(['urn:orders', 'urn:billing']))
    for (const r of [...orders.requests, ...billing.requests]) expect(r.status).toBe(200)
  })

  it('an allowed origin outside `resources` gets the session token; others get nothing', async () => {
    const apis = await twoApis()
    const { as, orders, other } = apis
    const tm = manager(as, apis, { dpop: false, allowedOrigins: [other.origin] })
    const seeded = as.seed()
    await tm.setTokens(seeded)
    expect((await tm.fetch(other.url('/x'))).status).toBe(200)
    expect(other.requests[0]!.authorization).toBe('Bearer ' + seeded.access_token)
    expect((await tm.fetch(orders.url('/y'))).status).toBe(200)
    expect(orders.requests[0]!.authorization).not.toBe('Bearer ' + seeded.access_token)
    expect(as.counts.resources).toEqual(['urn:orders'])
    // getAccessToken hands out each origin's own token, and none for an origin that is not allowed
    expect(await tm.getAccessToken(other.origin + '/p')).toBe(seeded.access_token)
    expect(await tm.getAccessToken(orders.origin)).toBe(orders.requests[0]!.authorization!.slice(7))
    const refused = await tm.getAccessToken('https://elsewhere.example').catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(TypeError)
    expectNoToken([String(refused)], tokensOf(as))
    expect(as.counts.resources).toEqual(['urn:orders'])
  })

  it('a 401 at one API refreshes that API token only, once', async () => {
    const apis = await twoApis()
    const { as, orders, billing } = apis
    const tm = manager(as, apis, { dpop: false })
    await tm.setTokens(as.seed())
    await tm.fetch(orders.url('/o'))
    await tm.fetch(billing.url('/b'))
    const billingToken = billing.requests[0]!.authorization!.split(' ')[1]!
    as.accessTokens.get(billingToken)!.revoked = true
    const results = await Promise.all(Array.from({ length: 20 }, () => tm.fetch(billing.url('/again'))))
    expect(results.every((r) => r.status == 200)).toBe(true)
    expect(as.counts.resources).toEqual(['urn:orders', 'urn:billing', 'urn:billing'])
    expect((await tm.fetch(orders.url('/o2'))).status).toBe(200)
    expect(as.counts.refresh).toBe(3)
  })

  it('events and status name the origin and never carry a token', async () => {
    const apis = await twoApis()
    const { as, billing } = apis
    const tm = manager(as, apis, { dpop: false })
    const seen: unknown[] = []
    for (const e of ['tokens', 'refresh', 'refresh-error', 'session-expired', 'logout'] as (keyof TokenManagerEvents)[]) tm.on(e, (s) => seen.push(s))
    await tm.setTokens(as.seed())
    expect(tm.status(billing.origin)).toBeUndefined()
    await tm.fetch(billing.url('/b'))
    expect(seen).toContainEqual(expect.objectContaining({ reason: 'refresh', origin: billing.origin }))
    await tm.logout()
    expectNoToken([seen, tm.status(), tm.status(billing.origin)], tokensOf(as))
  })

  it('authorizationUrl asks for every resource', async () => {
    const apis = await twoApis()
    const tm = manager(apis.as, apis, { dpop: false })
    const url = new URL(await tm.authorizationUrl({ authorizationEndpoint: 'https://as.example/authorize', redirectUri: 'https://app.example/', resource: 'urn:extra' }))
    expect(url.searchParams.getAll('resource')).toEqual(['urn:extra', 'urn:orders', 'urn:billing'])
  })

  it('with persist, a reload restores the session: the resource token counts as DPoP-bound', async () => {
    const apis = await twoApis({ dpop: true })
    const { as, orders } = apis
    const keyStore = memoryKeyStore()
    const before = manager(as, apis, { dpop: { keyStore }, persist: true })
    await before.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    before.dispose()
    // a reload: a new manager over the same key store
    const after = manager(as, apis, { dpop: { keyStore }, persist: true })
    expect(await after.restore()).toBe(true)
    expect((await after.fetch(orders.url('/o'))).status).toBe(200)
    expect(as.counts.resources).toEqual(['urn:orders'])
    expect(after.status()).toMatchObject({ origin: orders.origin, tokenType: 'DPoP' })
  })

  it('coming back online refreshes nothing while the main API token is fresh', async () => {
    const apis = await twoApis()
    const { as } = apis
    const target = windowEvents()
    // Every request the manager starts is seen here the moment it is made, not when it arrives.
    const started: string[] = []
    const tm = manager(as, apis, { dpop: false, fetch: (input, init) => (started.push(String(input)), fetch(input, init)) })
    cleanups.push(() => tm.dispose())
    await tm.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    started.length = 0
    target.dispatchEvent(new Event('online'))
    // A resume refresh would start without waiting for any I/O (no DPoP, tabs in memory): once the
    // event loop has turned twice it would have been sent.
    for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r))
    expect(started).toEqual([])
    expect(as.counts.refresh).toBe(0)
    advance(61)
    target.dispatchEvent(new Event('online'))
    for (let i = 0; i < 100 && as.counts.refresh < 1; i++) await sleep(5)
    expect(as.counts.resources).toEqual(['urn:orders'])
  })

  it('refuses bad resources: not an origin, no indicator', () => {
    const base = { clientId: 'spa', tokenEndpoint: 'https://as.example/token', crossTab: false } as const
    expect(() => createTokenManager({ ...base, resources: { 'https://api.example/path': 'urn:x' } })).toThrow(TypeError)
    expect(() => createTokenManager({ ...base, resources: { 'http://api.example': 'urn:x' } })).toThrow(/not https or loopback/)
    expect(() => createTokenManager({ ...base, resources: { 'https://api.example': '' } })).toThrow(TypeError)
    expect(() => createTokenManager({ ...base, resources: {} })).toThrow(/allowedOrigins/)
  })
})

describe('resources across tabs', () => {
  it('two tabs, storms to both APIs after expiry: 2 grants in all, no invalid_grant; tabs share every token', async () => {
    const apis = await twoApis({ delayMs: 20 })
    const { as, orders, billing } = apis
    const hub = createTabsHub({ delayMs: 30 })
    const tabs = [0, 1].map(() => {
      const crossTab = hub.tab()
      cleanups.push(() => crossTab.close())
      return manager(as, apis, { dpop: false, crossTab })
    })
    await tabs[0]!.setTokens(as.seed())
    for (let i = 0; i < 200 && !tabs[1]!.status(); i++) await sleep(5)
    await tabs[0]!.fetch(orders.url('/warm'))
    for (let i = 0; i < 200 && !tabs[1]!.status(orders.origin); i++) await sleep(5)
    // tab 1 adopted tab 0's orders token: no grant of its own
    expect(tabs[1]!.status(orders.origin)).toBeDefined()
    await tabs[1]!.fetch(orders.url('/from-tab-1'))
    expect(as.counts.refresh).toBe(1)
    advance(61)
    const results = await Promise.all(
      tabs.flatMap((tm) => Array.from({ length: 25 }, (_, i) => [tm.fetch(orders.url(`/o${i}`)), tm.fetch(billing.url(`/b${i}`))]).flat()),
    )
    expect(results.map((r) => r.status).filter((s) => s != 200)).toEqual([])
    expect(as.counts.invalidGrant).toBe(0)
    expect(as.counts.reuse).toBe(0)
    expect(as.counts.refresh).toBe(3)
    expect(as.counts.resources.slice(1).sort()).toEqual(['urn:billing', 'urn:orders'])
  })
})
