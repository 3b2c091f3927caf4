import { describe, expect, it } from 'vitest'
import { createTokenManager, isLatchkeyError, memoryKeyStore, type KeyStore, type TokenManager, type TokenManagerOptions } from '../src/index.js'
import { type TokenServer } from './support/servers.js'
import { advance, cleanups, setup, sleep, until } from './support/harness.js'
import { createTabsHub } from './support/tabs.js'

/** Opens `n` tabs of one client sharing a hub and (for DPoP) one key store, as tabs share IndexedDB. */
function openTabs(as: TokenServer, apiOrigin: string, n: number, hub: ReturnType<typeof createTabsHub>, options: Partial<TokenManagerOptions> = {}, keyStore: KeyStore = memoryKeyStore()) {
  const { dpop, ...rest } = options
  return Array.from({ length: n }, () => {
    const crossTab = hub.tab()
    cleanups.push(() => crossTab.close())
    return createTokenManager({
      clientId: 'spa',
      tokenEndpoint: as.tokenEndpoint,
      revocationEndpoint: as.revocationEndpoint,
      allowedOrigins: [apiOrigin],
      dpop: dpop === false ? false : { keyStore },
      crossTab,
      ...rest,
    })
  })
}

describe.each([
  ['Bearer', false],
  ['DPoP', true],
] as const)('tabs (%s)', (_name, dpop) => {
  async function signedIn(n: number, hubOptions = { delayMs: 25 }, serverOptions = {}) {
    const { as, api } = await setup({ dpop, ...serverOptions })
    const hub = createTabsHub(hubOptions)
    const keyStore = memoryKeyStore()
    const tabs = openTabs(as, api.origin, n, hub, { dpop }, keyStore)
    if (dpop) await tabs[0]!.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    else await tabs[0]!.setTokens(as.seed({ expires_in: 60 }))
    await until(() => tabs.every((t) => t.status()))
    return { as, api, hub, tabs, keyStore }
  }

  it('4 tabs × 50 concurrent calls after expiry → exactly one refresh, no invalid_grant, all succeed', async () => {
    const { as, api, tabs } = await signedIn(4, { delayMs: 40 }, { expiresIn: 60, delayMs: 20 })
    expect(tabs.every((t) => t.status())).toBe(true)
    advance(61)
    const results = await Promise.all(tabs.flatMap((tm, t) => Array.from({ length: 50 }, (_, i) => tm.fetch(api.url(`/t${t}/${i}`)))))
    expect(results.filter((r) => r.status === 200)).toHaveLength(200)
    expect(as.counts.refresh).toBe(1)
    expect(as.counts.invalidGrant).toBe(0)
    expect(api.requests).toHaveLength(200)
  })

  it('logout racing another tab\u2019s finished refresh: the newest refresh token is revoked too, none stays alive at the server', async () => {
    // The refreshing tab's new tokens reach the other tab 100 ms later: it logs out holding the old ones.
    const { as, tabs } = await signedIn(2, { delayMs: 100 })
    const [a, b] = tabs as [TokenManager, TokenManager]
    await b.refresh()
    expect(as.refreshTokens.size).toBe(1)
    await a.logout()
    await until(() => !b.status())
    // every refresh token the server ever issued is rotated out or revoked
    await until(() => as.refreshTokens.size == 0, 2000)
    expect(as.counts.revoked).toBe(1)
  })

  it('the lock granted before the new tokens arrive: the next tab waits for that generation', async () => {
    // Messages take far longer than the refresh: the second tab takes the lock long before it hears.
    const { as, tabs } = await signedIn(2, { delayMs: 200 }, { expiresIn: 60 })
    await sleep(250)
    advance(61)
    await Promise.all([tabs[0]!.refresh(), sleep(5).then(() => tabs[1]!.getAccessToken())])
    expect(as.counts.refresh).toBe(1)
    expect(as.counts.reuse).toBe(0)
  })

  it('a tab opened later is signed in at once; with no session anywhere restore() is false promptly', async () => {
    const { as, api, hub, keyStore } = await signedIn(1)
    const [late] = openTabs(as, api.origin, 1, hub, { dpop }, keyStore)
    const started = Date.now()
    expect(await late!.restore()).toBe(true)
    expect(Date.now() - started).toBeLessThan(500)
    expect((await late!.fetch(api.url('/late'))).status).toBe(200)
    expect(as.counts.refresh).toBe(0)
    const lonely = openTabs(as, api.origin, 1, createTabsHub(), { dpop })[0]!
    const t0 = Date.now()
    expect(await lonely.restore()).toBe(false)
    expect(Date.now() - t0).toBeLessThan(100)
  })

  it('logout in one tab signs out every tab; their next call sends no token', async () => {
    const { as, api, tabs } = await signedIn(3)
    const events: string[] = []
    tabs.forEach((t, i) => t.on('logout', ({ reason }) => events.push(`${i}:${reason}`)))
    await tabs[0]!.logout()
    await until(() => events.length == 3)
    expect(events.sort()).toEqual(['0:logout', '1:tab', '2:tab'])
    for (const tm of tabs) expect(isLatchkeyError(await tm.fetch(api.url('/after')).catch((e) => e), 'no_session')).toBe(true)
    expect(api.requests.filter((r) => r.path === '/after')).toHaveLength(0)
    expect(as.refreshTokens.size).toBe(0)
  })

  it('logout wins over another tab’s in-flight refresh', async () => {
    const { as, api, tabs } = await signedIn(2, { delayMs: 5 }, { delayMs: 300 })
    const inflight = tabs[1]!.refresh().catch((e) => e)
    await sleep(50)
    await tabs[0]!.logout()
    expect(isLatchkeyError(await inflight, 'no_session')).toBe(true)
    await until(() => tabs.every((t) => !t.status()))
    for (const tm of tabs) {
      expect(tm.status()).toBeUndefined()
      expect(isLatchkeyError(await tm.fetch(api.url('/after')).catch((e) => e), 'no_session')).toBe(true)
    }
    expect(api.requests).toHaveLength(0)
    // the refresh token the late result carried was revoked too
    expect(as.refreshTokens.size).toBe(0)
  })

  it('a refresh token rejected in one tab ends the session in every tab', async () => {
    const { as, tabs } = await signedIn(3)
    const expired: number[] = []
    tabs.forEach((t, i) => t.on('session-expired', () => expired.push(i)))
    as.refreshTokens.clear()
    expect(isLatchkeyError(await tabs[2]!.refresh().catch((e) => e), 'session_expired')).toBe(true)
    await until(() => expired.length == 3)
    expect(expired.sort()).toEqual([0, 1, 2])
    expect(tabs.every((t) => !t.status())).toBe(true)
  })
})

describe('tabs with separate keys', () => {
  it('ignores tokens bound to another tab’s DPoP key', async () => {
    const { as, api } = await setup({ dpop: true })
    const hub = createTabsHub({ delayMs: 5 })
    const [a] = openTabs(as, api.origin, 1, hub, {}, memoryKeyStore())
    const [b] = openTabs(as, api.origin, 1, hub, {}, memoryKeyStore())
    await a!.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    await sleep(40)
    expect(a!.status()).toBeDefined()
    expect(b!.status()).toBeUndefined()
  })
})

describe('reload survival (persist)', () => {
  it('with persist on, a reloaded last tab restores the session; the stored form holds no token', async () => {
    const { as, api } = await setup({ dpop: true })
    const keyStore = memoryKeyStore()
    const values = new Map<string, unknown>()
    const spy: KeyStore = {
      get: (k) => keyStore.get(k),
      set: (k, v) => (values.set(k, v), keyStore.set(k, v)),
      delete: (k) => (values.delete(k), keyStore.delete(k)),
    }
    const [first] = openTabs(as, api.origin, 1, createTabsHub(), { persist: true }, spy)
    await first!.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    await first!.refresh()
    const tokens = [...as.accessTokens.keys(), ...as.refreshTokens.keys(), ...as.rotatedOut]
    const dump = JSON.stringify([...values], (_k, v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? Buffer.from(v as ArrayBuffer).toString('latin1') : v))
    for (const t of tokens) expect(dump).not.toContain(t)
    const record = [...values.values()].find((v) => (v as { key?: unknown }).key instanceof CryptoKey) as { key: CryptoKey }
    expect(record.key.algorithm.name).toBe('AES-GCM')
    expect(record.key.extractable).toBe(false)
    await expect(crypto.subtle.exportKey('raw', record.key)).rejects.toThrow()

    // "reload": a new manager, no other tab, same IndexedDB
    const [reloaded] = openTabs(as, api.origin, 1, createTabsHub(), { persist: true }, spy)
    expect(await reloaded!.restore()).toBe(true)
    expect((await reloaded!.fetch(api.url('/me'))).status).toBe(200)
    expect(as.counts.reuse).toBe(0)

    // logout forgets it
    await reloaded!.logout()
    const [again] = openTabs(as, api.origin, 1, createTabsHub(), { persist: true }, spy)
    expect(await again!.restore()).toBe(false)
  })

  it('without persist a reload needs a new login', async () => {
    const { as, api } = await setup({ dpop: true })
    const keyStore = memoryKeyStore()
    const [first] = openTabs(as, api.origin, 1, createTabsHub(), {}, keyStore)
    await first!.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    const [reloaded] = openTabs(as, api.origin, 1, createTabsHub(), {}, keyStore)
    expect(await reloaded!.restore()).toBe(false)
  })

  it('degrades to one tab where Web Locks and BroadcastChannel are missing', async () => {
    const { as, api } = await setup()
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: as.tokenEndpoint, allowedOrigins: [api.origin], dpop: false })
    await tm.setTokens(as.seed({ expires_in: 60 }))
    advance(61)
    await Promise.all(Array.from({ length: 20 }, () => tm.fetch(api.url('/x'))))
    expect(as.counts.refresh).toBe(1)
    expect(await tm.restore()).toBe(true)
  })
})
