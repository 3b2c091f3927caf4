// Adversarial checks of the invariants and promises of the README: tricky URLs,
// interleavings of refresh, 401, setTokens, restore and logout, bad server input, and every place a
// token value could leak (errors, causes, events, warnings). Real loopback servers throughout; only
// Date is moved.
import { describe, expect, it, vi } from 'vitest'
import { randomBytes } from 'node:crypto'
import {
  createTokenManager,
  isLatchkeyError,
  memoryKeyStore,
  type TokenManager,
  type TokenManagerEvents,
  type TokenManagerOptions,
} from '../src/index.js'
import { json, startApi, startTokenServer, type TokenServer } from './support/servers.js'
import { advance, cleanups, manager as harnessManager, served, setup } from './support/harness.js'
import { decodeProof } from './support/dpop-helpers.js'
import { createTabsHub } from './support/tabs.js'
import { expectNoToken, printable, scriptedApi, sleep, slowWriteCrossTab, tokensOf } from './support/invariants-helpers.js'

const manager = (as: TokenServer, allowed: string[], options: Partial<TokenManagerOptions> = {}): TokenManager =>
  harnessManager(as, allowed, { dpop: false, ...options })

/** Records every event of `tm`, in order. */
function record(tm: TokenManager) {
  const events: [string, unknown][] = []
  for (const e of ['tokens', 'refresh', 'refresh-error', 'session-expired', 'logout', 'warning'] as const)
    tm.on(e, (s: TokenManagerEvents[typeof e]) => events.push([e, s]))
  return events
}

const html503 = (res: import('node:http').ServerResponse) => (res.writeHead(503, { 'content-type': 'text/html' }).end('<html>busy</html>'), true)

describe('origins (invariant 2)', () => {
  it('same-origin spellings get the token; look-alike origins get nothing', async () => {
    const { as } = await setup()
    const api = await scriptedApi(as)
    cleanups.push(api.close)
    const port = new URL(api.origin).port
    const tm = manager(as, [`http://localhost:${port}`, api.origin])
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const bearer = 'Bearer ' + seeded.access_token
    // the same origin, spelled differently: upper case, hex and short IPv4, a default path
    for (const u of [`HTTP://LocalHost:${port}/a`, `http://0x7f000001:${port}/b`, `http://127.1:${port}/c`, `${api.origin}/d?x=1#f`])
      expect((await tm.fetch(u)).status).toBe(200)
    expect(api.requests.map((r) => r.authorization)).toEqual([bearer, bearer, bearer, bearer])
    // other origins that reach the same socket: an IPv4-mapped IPv6 address
    const res = await tm.fetch(`http://[::ffff:127.0.0.1]:${port}/mapped`)
    expect(res.status).toBe(401)
    expect(api.requests.at(-1)).toMatchObject({ path: '/mapped', authorization: undefined, dpop: undefined })
    // userinfo: the origin matches, but fetch refuses such URLs before anything is sent
    const n = api.requests.length
    const userinfo = await tm.fetch(`http://user:pass@127.0.0.1:${port}/u`).catch((e) => e)
    expect(userinfo).toBeInstanceOf(TypeError)
    expectNoToken(userinfo, tokensOf(as))
    expect(api.requests).toHaveLength(n)
    expect(as.counts.refresh).toBe(0)
  })

  it('a Request to another origin passes untouched even with init; a Request to the allowed origin keeps its own URL', async () => {
    const { as } = await setup()
    const api = await scriptedApi(as)
    const other = await scriptedApi(as)
    cleanups.push(api.close, other.close)
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    await tm.fetch(new Request(other.url('/r1'), { headers: { authorization: 'Basic app-own' } }), { method: 'POST', body: 'x' })
    expect(other.requests[0]).toMatchObject({ path: '/r1', authorization: 'Basic app-own' })
    expect((await tm.fetch(new Request(api.url('/r2')), { headers: { 'x-a': '1' } })).status).toBe(200)
    expect(api.requests[0]!.authorization).toMatch(/^Bearer at-/)
  })

  it('a redirect from the allowed origin to another drops Authorization (the DPoP proof stays bound to the first URL)', async () => {
    const { as } = await setup({ dpop: true })
    const other = await scriptedApi(as, (_req, _n, res) => json(res, 200, { ok: true }))
    const api = await scriptedApi(as, (_req, _n, res) => void res.writeHead(302, { location: other.url('/landing') }).end())
    cleanups.push(api.close, other.close)
    const tm = manager(as, [api.origin], { dpop: { keyStore: memoryKeyStore() } })
    await tm.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    expect((await tm.fetch(api.url('/start'))).status).toBe(200)
    expect(api.requests[0]!.authorization).toMatch(/^DPoP at-/)
    expect(other.requests[0]!.authorization).toBeUndefined()
    const { payload } = await decodeProof(other.requests[0]!.dpop!)
    expect(payload.htu).toBe(api.url('/start'))
  })

  // The origin is checked on the URL that is sent: a URL object changed while tm.fetch awaits the
  // session must not take the token to its new origin.
  it('a URL object changed after tm.fetch() was called does not take the token to another origin', async () => {
    const { as, api } = await setup()
    const other = await startApi(as)
    cleanups.push(other.close)
    const tm = manager(as, [api.origin])
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const url = new URL(api.url('/mine'))
    const pending = tm.fetch(url)
    url.href = other.url('/stolen') // e.g. a loop reusing one URL object for several hosts
    await pending
    expect(other.requests.map((r) => r.authorization)).not.toContain('Bearer ' + seeded.access_token)
    expect(other.requests.every((r) => r.authorization === undefined)).toBe(true)
  })
})

describe('single flight and rotation (invariant 4)', () => {
  it('a 401 that arrives after the refresh completed uses the new token: one refresh', async () => {
    const { as } = await setup()
    const api = await scriptedApi(as, async (_req, _n, res, valid) => {
      if (_req.url!.startsWith('/slow')) await sleep(250) // the answer was decided before the refresh
      if (valid) json(res, 200, { ok: true })
      else json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })
    })
    cleanups.push(api.close)
    const tm = manager(as, [api.origin])
    const seeded = as.seed()
    await tm.setTokens(seeded)
    as.accessTokens.get(seeded.access_token)!.revoked = true
    const slow = tm.fetch(api.url('/slow'))
    await sleep(20)
    expect((await tm.fetch(api.url('/fast'))).status).toBe(200)
    expect(as.counts.refresh).toBe(1)
    expect((await slow).status).toBe(200)
    expect(as.counts.refresh).toBe(1)
    expect(as.counts.reuse).toBe(0)
    expect(api.requests.filter((r) => r.path === '/slow').map((r) => r.status)).toEqual([401, 200])
  })

  it('a refresh that fails while others wait: all get the typed error, one event; the next call refreshes once', async () => {
    let fail = true
    const { as, api } = await setup({ delayMs: 40, onRefresh: (res) => fail && html503(res) })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed({ expires_in: 60 }))
    const events = record(tm)
    advance(61)
    const first = await Promise.allSettled([...Array.from({ length: 10 }, (_, i) => tm.fetch(api.url('/a/' + i))), tm.refresh(), tm.getAccessToken()])
    expect(first.every((r) => r.status === 'rejected' && isLatchkeyError(r.reason, 'invalid_response'))).toBe(true)
    expect(events.map(([e]) => e)).toEqual(['refresh-error'])
    expect(as.counts.refresh).toBe(1)
    expect(api.requests).toHaveLength(0)
    fail = false
    const second = await Promise.all(Array.from({ length: 10 }, (_, i) => tm.fetch(api.url('/b/' + i))))
    expect(second.every((r) => r.status === 200)).toBe(true)
    expect(as.counts.refresh).toBe(2)
    expect(as.counts.reuse).toBe(0)
    expect(as.counts.invalidGrant).toBe(0)
  })

  it('refresh() racing setTokens(): each refresh token is presented at most once, the later login wins', async () => {
    const { as, api } = await setup({ delayMs: 60 })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    const second = as.seed()
    await Promise.all([tm.refresh(), tm.setTokens(second)])
    await tm.fetch(api.url('/x'))
    expect(api.requests.at(-1)!.authorization).toBe('Bearer ' + second.access_token)
    await tm.refresh()
    // the other order: setTokens first, the refresh then finds fresh tokens and does not spend them
    const third = as.seed()
    await Promise.all([tm.setTokens(third), tm.refresh()])
    expect(as.counts.refresh).toBe(2)
    expect(as.counts.reuse).toBe(0)
    expect(as.counts.invalidGrant).toBe(0)
  })

  it('restore() racing a refresh through the cookie endpoint: one call to the endpoint', async () => {
    const { as, api } = await setup()
    let calls = 0
    const bff = await served(async (_req, res) => (calls++, await sleep(60), json(res, 200, as.seed({ refresh_token: undefined }))))
    const tm = createTokenManager({ clientId: 'spa', allowedOrigins: [api.origin], refresh: { url: bff.url('/auth/refresh') }, dpop: false, crossTab: false })
    const [restored, res] = await Promise.all([tm.restore(), tm.fetch(api.url('/x')), tm.refresh(), tm.getAccessToken()])
    expect(restored).toBe(true)
    expect(res.status).toBe(200)
    expect(calls).toBe(1)
  })

  it('a timeout mid-refresh: every waiter gets timeout, the tokens stay, the next refresh is one request', async () => {
    const { as, api } = await setup({ rotate: false, delayMs: 400 })
    const tm = manager(as, [api.origin], { timeoutSeconds: 0.15 })
    const seeded = as.seed({ expires_in: 300 })
    await tm.setTokens(seeded)
    const waiting = await Promise.allSettled([tm.refresh(), tm.refresh(), tm.refresh()])
    expect(waiting.every((r) => r.status === 'rejected' && isLatchkeyError(r.reason, 'timeout'))).toBe(true)
    expect(as.counts.refresh).toBe(1)
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    expect(api.requests[0]!.authorization).toBe('Bearer ' + seeded.access_token)
    as.state.options.delayMs = 0
    await Promise.all([tm.refresh(), tm.refresh()])
    expect(as.counts.refresh).toBe(2)
  })

  // Callers that join a pending refresh that fails still go ahead when their token is valid, as the
  // README promises, not only the caller that started it.
  it('a failed early refresh lets every concurrent request with a still-valid token go ahead', async () => {
    const { as, api } = await setup({ delayMs: 50, onRefresh: html503 })
    const tm = manager(as, [api.origin], { refreshLeewaySeconds: 30 })
    const seeded = as.seed({ expires_in: 60 })
    await tm.setTokens(seeded)
    advance(53) // due (the refresh time is drawn between 45 s and 52.5 s) but valid for 7 s more
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => tm.fetch(api.url('/early/' + i))))
    expect(as.counts.refresh).toBe(1)
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.status : (r.reason as Error).name))).toEqual([200, 200, 200, 200, 200])
    // and a request made while a manual refresh is failing, with a token nowhere near expiry
    vi.useRealTimers()
    await tm.setTokens(as.seed({ expires_in: 300 }))
    const manual = tm.refresh().catch((e) => e)
    const res = await tm.fetch(api.url('/during-manual')).catch((e) => e)
    expect(isLatchkeyError(await manual, 'invalid_response')).toBe(true)
    expect(res.status).toBe(200)
  })

  // The cross-tab generation wait applies to tabs that hold a session: restore() through the cookie
  // endpoint in a fresh page does not wait for a generation no open tab will announce.
  it('restore() through the cookie endpoint does not wait for a generation no open tab will announce', async () => {
    const { as, api } = await setup()
    const bff = await served((_req, res) => json(res, 200, as.seed({ refresh_token: undefined })))
    const hub = createTabsHub()
    const gone = hub.tab() // a tab of an earlier visit, long closed
    await gone.write({ gen: 57, epoch: 3 })
    gone.close()
    const tab = hub.tab()
    cleanups.push(() => tab.close())
    const tm = createTokenManager({ clientId: 'spa', allowedOrigins: [api.origin], refresh: { url: bff.url('/auth/refresh') }, dpop: false, crossTab: tab })
    const t0 = Date.now()
    expect(await tm.restore()).toBe(true)
    expect(Date.now() - t0).toBeLessThan(500)
    expect(tm.status()!.generation).toBe(58)
  })
})

describe('bounded retries (invariant 5)', () => {
  it('nonce, then invalid_token, then nonce again: 3 attempts, 1 refresh, and the 401 is returned', async () => {
    const { as } = await setup({ dpop: true })
    let nonce = 0
    const api = await scriptedApi(as, (_req, n, res) => {
      const challenge = n == 2 ? 'DPoP error="invalid_token"' : 'DPoP error="use_dpop_nonce"'
      json(res, 401, { error: n == 2 ? 'invalid_token' : 'use_dpop_nonce' }, { 'www-authenticate': challenge, 'dpop-nonce': 'n-' + ++nonce })
    })
    cleanups.push(api.close)
    const tm = manager(as, [api.origin], { dpop: { keyStore: memoryKeyStore() } })
    await tm.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    const res = await tm.fetch(api.url('/loop'))
    expect(res.status).toBe(401)
    expect(api.requests).toHaveLength(3)
    expect(as.counts.refresh).toBe(1)
    const nonces = await Promise.all(api.requests.map(async (r) => (await decodeProof(r.dpop!)).payload.nonce))
    expect(nonces).toEqual([undefined, 'n-1', 'n-2'])
  })

  it('a nonce challenge is answered by one retry, never by a refresh, however often it comes', async () => {
    const { as } = await setup({ dpop: true })
    let nonce = 0
    const api = await scriptedApi(as, (_req, _n, res) =>
      json(res, 401, { error: 'use_dpop_nonce' }, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-' + ++nonce }),
    )
    cleanups.push(api.close)
    const tm = manager(as, [api.origin], { dpop: { keyStore: memoryKeyStore() } })
    await tm.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => tm.fetch(api.url('/n/' + i))))
    expect(results.every((r) => r.status === 401)).toBe(true)
    for (let i = 0; i < 10; i++) expect(api.requests.filter((r) => r.path === '/n/' + i)).toHaveLength(2)
    expect(as.counts.refresh).toBe(0)
  })

  it('a Bearer API that keeps answering 401 without a challenge: one refresh in all, at most 2 attempts each', async () => {
    const { as } = await setup()
    const api = await scriptedApi(as, (_req, _n, res) => json(res, 401, {}))
    cleanups.push(api.close)
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    await Promise.all(Array.from({ length: 20 }, (_, i) => tm.fetch(api.url('/b/' + i))))
    for (let i = 0; i < 20; i++) expect(api.requests.filter((r) => r.path === '/b/' + i).length).toBeLessThanOrEqual(2)
    expect(as.counts.refresh).toBe(1)
  })
})

describe('logout wins (invariant 7)', () => {
  it('a refresh or request started after logout() was called (token endpoint) sends nothing', async () => {
    const { as, api } = await setup({ delayMs: 50 })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed({ expires_in: 60 }))
    advance(61)
    const out = tm.logout()
    const [refreshed, fetched] = await Promise.all([tm.refresh().catch((e) => e), tm.fetch(api.url('/x')).catch((e) => e), out])
    expect(isLatchkeyError(refreshed, 'no_session')).toBe(true)
    expect(isLatchkeyError(fetched, 'no_session')).toBe(true)
    expect(as.counts.refresh).toBe(0)
    expect(api.requests).toHaveLength(0)
    expect(as.refreshTokens.size).toBe(0)
  })

  it('logout during a refresh, then a new login: the late result is dropped and revoked, the new session works', async () => {
    const { as, api } = await setup({ delayMs: 150 })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    const inflight = tm.refresh().catch((e) => e)
    await sleep(20)
    await tm.logout()
    expect(isLatchkeyError(await inflight, 'no_session')).toBe(true)
    await sleep(30)
    expect(as.refreshTokens.size).toBe(0)
    const fresh = as.seed()
    await tm.setTokens(fresh)
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    await tm.refresh()
    expect(as.counts.reuse).toBe(0)
  })

  // logout() during a refresh's commit (counter write, persistence, announce) wins: the refreshed
  // session is not installed after logout cleared it, and its new refresh token is revoked.
  it('logout() while a refresh is committing wins: no session after it resolves, the new refresh token revoked', async () => {
    const { as, api } = await setup()
    const tabs = slowWriteCrossTab(80) // an IndexedDB write takes a few ms; 80 makes the window wide
    const tm = manager(as, [api.origin], { crossTab: tabs.tab })
    await tm.setTokens(as.seed())
    const committing = tabs.nextWrite()
    const inflight = tm.refresh().catch((e) => e)
    await committing // the token response is in; commit is writing the counters
    await tm.logout()
    expect(tm.status()).toBeUndefined()
    expect(isLatchkeyError(await inflight, 'no_session')).toBe(true)
    const after = await tm.fetch(api.url('/after')).catch((e) => e)
    expect(isLatchkeyError(after, 'no_session')).toBe(true)
    expect(api.requests.filter((r) => r.path === '/after')).toHaveLength(0)
    await sleep(50) // a fire-and-forget revocation may still be on its way
    expect(as.refreshTokens.size).toBe(0)
    expect(tabs.counters().epoch).toBeGreaterThanOrEqual(1)
  })

  // With a custom refresh (cookie pattern) there is no refresh token to compare: a refresh that
  // starts after logout() was called still brings nothing back.
  it('a refresh started after logout() was called, before it resolved, brings no tokens back (custom refresh)', async () => {
    const { as, api } = await setup()
    let calls = 0
    const bff = await served((_req, res) => (calls++, json(res, 200, as.seed({ refresh_token: undefined }))))
    const tm = createTokenManager({
      clientId: 'spa',
      allowedOrigins: [api.origin],
      refresh: { url: bff.url('/auth/refresh'), credentials: 'include' },
      dpop: false,
      crossTab: false,
    })
    await tm.setTokens(as.seed())
    const out = tm.logout()
    const during = tm.fetch(api.url('/during')).catch((e) => e) // a poll firing at that moment
    await out
    expect(tm.status()).toBeUndefined()
    await during
    expect(api.requests.filter((r) => r.path === '/during' && r.authorization)).toHaveLength(0)
    expect(calls).toBe(0)
  })

  // A DPoP login that completes while logout() runs is refused or usable, never installed with the
  // key logout then deletes (a session that looks signed in and can do nothing).
  it('a DPoP login that lands while logout() is running is either refused or usable, never a dead session', async () => {
    const { as, api } = await setup({ dpop: true, delayMs: 150 })
    const keyStore = memoryKeyStore()
    const tm = manager(as, [api.origin], { dpop: { keyStore } })
    await tm.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' })
    const inflight = tm.refresh().catch((e) => e) // holds the lock: logout waits for it
    await sleep(20)
    const out = tm.logout()
    const login = await tm.exchangeCode({ code: as.code(), codeVerifier: 'v', redirectUri: 'http://127.0.0.1/cb' }).catch((e) => e)
    await Promise.all([out, inflight])
    if (login === undefined && tm.status()) {
      const res = await tm.fetch(api.url('/me'))
      expect(res.status).toBe(200)
    } else expect(isLatchkeyError(login, 'no_session')).toBe(true)
    expect(as.counts.reuse).toBe(0)
  })
})

describe('bad server input (invariant 8)', () => {
  it('a 200 with a valid access_token but a bad field changes nothing: old access token used, old refresh token spent next', async () => {
    const { as, api } = await setup({
      onRefresh: (res) => (json(res, 200, { access_token: 'at-HALF', token_type: 'Bearer', expires_in: 300, refresh_token: 'rt-HALF', scope: 42 }), true),
    })
    const tm = manager(as, [api.origin])
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const before = tm.status()
    expect(isLatchkeyError(await tm.refresh().catch((e) => e), 'invalid_response')).toBe(true)
    expect(tm.status()).toEqual(before)
    await tm.fetch(api.url('/x'))
    expect(api.requests.at(-1)!.authorization).toBe('Bearer ' + seeded.access_token)
    as.state.options.onRefresh = undefined
    await tm.refresh()
    expect(as.counts.invalidGrant).toBe(0)
    expect(as.rotatedOut.has(seeded.refresh_token)).toBe(true)
  })

  it('an expired token and an unreachable token endpoint: typed network_error, no token in it, the session kept', async () => {
    const { as, api } = await setup()
    const dead = await served((_req, res) => res.destroy())
    await dead.close()
    const tm = manager(as, [api.origin], { tokenEndpoint: dead.url('/token') })
    const seeded = as.seed({ expires_in: 60 })
    await tm.setTokens(seeded)
    advance(61)
    const error = await tm.fetch(api.url('/x')).catch((e) => e)
    expect(isLatchkeyError(error, 'network_error')).toBe(true)
    expectNoToken(error, tokensOf(as))
    expect(tm.status()).toBeDefined()
  })

  // An access_token that cannot go in an HTTP header (CR, LF, NUL, non-ASCII) would make every
  // later fetch throw the platform's TypeError, which quotes it: refused at the door instead.
  it('an access_token that cannot be sent in a header is refused as invalid_response; the last good token stays', async () => {
    const bad = 'at-' + randomBytes(12).toString('base64url') + '\r\nx-injected: 1'
    const { as, api } = await setup({ onRefresh: (res) => (json(res, 200, { access_token: bad, token_type: 'Bearer', expires_in: 300 }), true) })
    const tm = manager(as, [api.origin])
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const error = await tm.refresh().then(
      () => undefined,
      (e) => e,
    )
    expect(isLatchkeyError(error, 'invalid_response')).toBe(true)
    const res = await tm.fetch(api.url('/after')).catch((e) => e)
    expectNoToken(res, [bad.split('\r')[0]!])
    expect(res.status).toBe(200)
    expect(api.requests.at(-1)!.authorization).toBe('Bearer ' + seeded.access_token)
  })
})

describe('no token in errors, events or warnings (invariant 6)', () => {
  it('a server echoing the presented refresh token and the access token in error and error_description', async () => {
    const { as, api } = await setup()
    const seeded = as.seed()
    const echo = await served((req, res) => {
      const rt = new URLSearchParams(req.body).get('refresh_token')
      json(res, 400, { error: 'invalid_request ' + rt, error_description: `refresh_token ${rt} does not belong to ${seeded.access_token}` })
    })
    const tm = manager(as, [api.origin], { tokenEndpoint: echo.url('/token') })
    await tm.setTokens(seeded)
    const events = record(tm)
    const error = await tm.refresh().catch((e) => e)
    expect(isLatchkeyError(error, 'oauth_error')).toBe(true)
    expect(error.description).toContain('[redacted]')
    expectNoToken(error, tokensOf(as))
    expectNoToken(events, tokensOf(as))
  })

  it('a failing revocation (5xx quoting the token, or no server) warns without the token; logout still completes', async () => {
    const { as, api } = await setup()
    const revoke = await served((req, res) => json(res, 500, { error: 'server_error', error_description: 'cannot revoke ' + new URLSearchParams(req.body).get('token') }))
    const dead = await served((_req, res) => res.destroy())
    await dead.close()
    for (const revocationEndpoint of [revoke.url('/revoke'), dead.url('/revoke')]) {
      const tm = manager(as, [api.origin], { revocationEndpoint })
      await tm.setTokens(as.seed())
      const events = record(tm)
      await tm.logout()
      expect(events.map(([e, s]) => (e === 'warning' ? (s as { code: string }).code : e))).toEqual(['logout', 'revocation_failed'])
      expectNoToken(events, tokensOf(as))
      expect(tm.status()).toBeUndefined()
    }
  })

  it('a throwing listener breaks nothing: other listeners still run, the refresh completes, the error surfaces later', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const thrown: unknown[] = []
    process.setUncaughtExceptionCaptureCallback((e) => thrown.push(e))
    try {
      const seen: string[] = []
      tm.on('tokens', () => {
        throw new Error('listener 1')
      })
      tm.on('tokens', ({ reason }) => seen.push(reason))
      const off = tm.on('refresh', () => {
        throw new Error('listener 2')
      })
      await tm.setTokens(as.seed())
      await tm.refresh()
      off()
      await tm.refresh()
      expect((await tm.fetch(api.url('/x'))).status).toBe(200)
      expect(seen).toEqual(['set', 'refresh', 'refresh'])
      await sleep(10)
      expect(thrown.map((e) => (e as Error).message)).toEqual(['listener 1', 'listener 1', 'listener 2', 'listener 1'])
    } finally {
      process.setUncaughtExceptionCaptureCallback(null)
    }
  })

  // V8's JSON parse errors quote their input: a custom refresh function that parses a body quoting
  // a token (README's own example) must not pass that text on through a cause or a refresh-error event.
  it('a custom refresh function that fails to parse a body quoting a token leaks no part of it', async () => {
    const { as, api } = await setup()
    const short = 'at-' + randomBytes(12).toString('base64url').slice(0, 16) // 19 chars: V8 quotes it whole
    const long = 'at-' + randomBytes(24).toString('base64url')
    let body = short
    const bff = await served((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body))
    const tm = createTokenManager({
      clientId: 'spa',
      allowedOrigins: [api.origin],
      refresh: async ({ signal }) => (await fetch(bff.url('/auth/refresh'), { method: 'POST', signal })).json(),
      dpop: false,
      crossTab: false,
    })
    await tm.setTokens(as.seed())
    const events = record(tm)
    const e1 = await tm.refresh().catch((e) => e)
    body = `{"token_type":"Bearer","access_token":${long}}` // an unquoted value: V8 quotes 10 characters of it
    const e2 = await tm.refresh().catch((e) => e)
    for (const e of [e1, e2]) {
      expect(isLatchkeyError(e)).toBe(true)
      expectNoToken(e, [short, long])
      // not JSON is a bad response, not a network failure
      expect(e.code).toBe('invalid_response')
    }
    expectNoToken(events, [short, long])
  })
})

// Keeps `printable` honest: it must see a token hidden in a cause, as console.log would.
it('the leak check sees a token hidden in a non-enumerable cause', () => {
  const error = new Error('outer', { cause: new Error('inner at-SECRET-0123456789') })
  expect(printable(error)).toContain('at-SECRET-0123456789')
})

describe('a refused refresh ends the session (invariant 13)', () => {
  // Most backends answer a refused cookie with a JSON error body: a 401 from the custom refresh
  // endpoint ends the session whatever its body, and restore() for a signed-out visitor is false.
  it('a 401 with a JSON error body from the custom refresh endpoint ends the session; restore() is false', async () => {
    const { as, api } = await setup()
    let signedIn = false
    const bff = await served((_req, res) =>
      signedIn ? json(res, 200, as.seed({ refresh_token: undefined })) : json(res, 401, { error: 'unauthorized', error_description: 'no session cookie' }),
    )
    const options = { clientId: 'spa', allowedOrigins: [api.origin], refresh: { url: bff.url('/auth/refresh') }, dpop: false, crossTab: false } as const
    const visitor = createTokenManager(options)
    expect(await visitor.restore().catch((e) => e)).toBe(false)

    signedIn = true
    const tm = createTokenManager(options)
    expect(await tm.restore()).toBe(true)
    signedIn = false // the cookie session ended on the server
    const events = record(tm)
    const error = await tm.refresh().catch((e) => e)
    expect(isLatchkeyError(error, 'session_expired')).toBe(true)
    expect(tm.status()).toBeUndefined()
    expect(events.map(([e]) => e)).toEqual(['session-expired'])
  })
})