import { describe, expect, it } from 'vitest'
import { createTokenManager, isLatchkeyError, type TokenManager, type TokenManagerOptions } from '../src/index.js'
import { serve, startApi, startTokenServer, json, type TokenServer } from './support/servers.js'
import { advance, cleanups, manager as harnessManager, setup } from './support/harness.js'

const manager = (as: TokenServer, allowed: string[], options: Partial<TokenManagerOptions> = {}): TokenManager =>
  harnessManager(as, allowed, { dpop: false, ...options })

/** Every string a test wants to be sure never leaks. */
function tokensOf(as: TokenServer) {
  return [...as.accessTokens.keys(), ...as.refreshTokens.keys(), ...as.rotatedOut]
}

function expectNoToken(value: unknown, tokens: string[]) {
  const text =
    value instanceof Error
      ? [value.message, value.stack, JSON.stringify(value), String(value), String((value as { cause?: unknown }).cause ?? '')].join('\n')
      : JSON.stringify(value) + String(value)
  for (const t of tokens) expect(text).not.toContain(t)
}

describe('construction', () => {
  it('refuses plain http origins except loopback, and paths in origins', () => {
    const base = { clientId: 'spa', tokenEndpoint: 'https://as.example/token', crossTab: false, dpop: false } as const
    expect(() => createTokenManager({ ...base, allowedOrigins: ['http://api.example'] })).toThrow(TypeError)
    expect(() => createTokenManager({ ...base, allowedOrigins: ['https://api.example/v1'] })).toThrow(/allowedOrigins\[0\]/)
    expect(() => createTokenManager({ ...base, tokenEndpoint: 'http://as.example/token', allowedOrigins: [] })).toThrow(/tokenEndpoint/)
    for (const o of ['http://localhost:8080', 'http://127.0.0.1', 'http://127.3.2.1:9', 'http://[::1]:3000', 'https://api.example'])
      expect(() => createTokenManager({ ...base, allowedOrigins: [o] })).not.toThrow()
    expect(() => createTokenManager({ ...base, allowedOrigins: ['https://api.example'], persist: true })).toThrow(/persist/)
  })
})

describe('authorized fetch', () => {
  it('attaches the token only to allowed origins; others pass untouched and trigger no refresh', async () => {
    const { as, api } = await setup()
    const other = await startApi(as)
    cleanups.push(other.close)
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed({ expires_in: 1 }))
    advance(60) // expired: a request to the allowed origin would refresh first
    const res = await tm.fetch(other.url('/x'), { headers: { 'x-app': '1' } })
    expect(res.status).toBe(401)
    expect(other.requests[0]!.authorization).toBeUndefined()
    expect(other.requests[0]!.dpop).toBeUndefined()
    expect(as.counts.refresh).toBe(0)
    // same host, other port; other scheme spelling: still not the allowed origin
    const sneaky = other.origin.replace('127.0.0.1', 'localhost')
    await tm.fetch(sneaky + '/y')
    expect(other.requests[1]!.authorization).toBeUndefined()
  })

  it('keeps fetch semantics: strings, URL objects, Request objects, headers, method, body', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    const r1 = await tm.fetch(api.url('/a?q=1'), { method: 'post', body: JSON.stringify({ a: 1 }), headers: { 'content-type': 'application/json' } })
    expect(await r1.json()).toMatchObject({ method: 'POST', path: '/a?q=1', body: '{"a":1}' })
    const r2 = await tm.fetch(new URL(api.url('/b')))
    expect(r2.status).toBe(200)
    const r3 = await tm.fetch(new Request(api.url('/c'), { method: 'PUT', body: 'hello', headers: { 'x-app': 'y' } }))
    expect(await r3.json()).toMatchObject({ method: 'PUT', body: 'hello' })
    expect(api.requests.every((r) => r.authorization?.startsWith('Bearer at-'))).toBe(true)
  })

  it('throws a typed error without a session', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const error = await tm.fetch(api.url('/x')).catch((e) => e)
    expect(isLatchkeyError(error, 'no_session')).toBe(true)
    expect(api.requests).toHaveLength(0)
  })
})

describe('single-flight refresh', () => {
  it('1000 concurrent calls with an expired token cause exactly one refresh and all succeed', async () => {
    const { as, api } = await setup({ delayMs: 50 })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed({ expires_in: 60 }))
    advance(61)
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => tm.fetch(api.url('/n/' + i))))
    expect(results.every((r) => r.status === 200)).toBe(true)
    expect(as.counts.refresh).toBe(1)
    expect(as.counts.invalidGrant).toBe(0)
    expect(api.requests).toHaveLength(1000)
  })

  it('refreshes inside the leeway, capped at a quarter of the lifetime', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { refreshLeewaySeconds: 30 })
    await tm.setTokens(as.seed({ expires_in: 60 }))
    advance(40) // 20 s left: inside 30 s but outside 15 s (a quarter of 60)
    await tm.fetch(api.url('/x'))
    expect(as.counts.refresh).toBe(0)
    advance(46)
    await tm.fetch(api.url('/x'))
    expect(as.counts.refresh).toBe(1)
  })

  it('200 concurrent POSTs answered 401 → one refresh, each retried once with its body intact', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const seeded = as.seed()
    await tm.setTokens(seeded)
    as.accessTokens.get(seeded.access_token)!.revoked = true
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        tm.fetch(api.url('/post/' + i), { method: 'POST', body: JSON.stringify({ i }), headers: { 'content-type': 'application/json' } }),
      ),
    )
    expect(as.counts.refresh).toBe(1)
    for (const [i, r] of results.entries()) expect(await r.json()).toMatchObject({ path: '/post/' + i, body: JSON.stringify({ i }) })
    for (let i = 0; i < 200; i++) {
      const attempts = api.requests.filter((r) => r.path === '/post/' + i)
      expect(attempts.map((a) => a.status)).toEqual([401, 200])
      expect(attempts.every((a) => a.body === JSON.stringify({ i }))).toBe(true)
    }
  })

  it('an API that always answers 401 sees at most 2 attempts per request', async () => {
    const { as, api } = await setup({}, { alwaysUnauthorized: true })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => tm.fetch(api.url('/u/' + i))))
    expect(results.every((r) => r.status === 401)).toBe(true)
    for (let i = 0; i < 50; i++) expect(api.requests.filter((r) => r.path === '/u/' + i).length).toBeLessThanOrEqual(2)
    expect(as.counts.refresh).toBeLessThanOrEqual(2)
  })

  it('does not retry a one-shot stream body', async () => {
    const { as, api } = await setup({}, { alwaysUnauthorized: true })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('once')), c.close()) })
    const res = await tm.fetch(api.url('/s'), { method: 'POST', body, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(401)
    expect(api.requests).toHaveLength(1)
    expect(as.counts.refresh).toBe(0)
  })

  it('never presents a rotated refresh token twice over many rounds', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed({ expires_in: 10 }))
    for (let round = 1; round <= 20; round++) {
      advance(11 * round)
      await Promise.all([tm.fetch(api.url('/r')), tm.refresh(), tm.getAccessToken(), tm.fetch(api.url('/r2'))])
    }
    expect(as.counts.refresh).toBe(20)
    expect(as.counts.reuse).toBe(0)
    expect(as.counts.invalidGrant).toBe(0)
  })

  it('keeps the old refresh token when the response has none', async () => {
    const { as, api } = await setup({ rotate: false })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    await tm.refresh()
    await tm.refresh()
    expect(as.counts.refresh).toBe(2)
    expect(as.counts.invalidGrant).toBe(0)
  })
})

describe('failures', () => {
  it('invalid_grant clears the session and emits session-expired', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const seeded = as.seed()
    await tm.setTokens(seeded)
    as.refreshTokens.clear()
    const events: unknown[] = []
    tm.on('session-expired', (e) => events.push(e))
    const error = await tm.refresh().catch((e) => e)
    expect(isLatchkeyError(error, 'session_expired')).toBe(true)
    expect(events).toHaveLength(1)
    expect(tm.status()).toBeUndefined()
    expectNoToken(error, tokensOf(as))
    expectNoToken(events, tokensOf(as))
    expect(isLatchkeyError(await tm.fetch(api.url('/x')).catch((e) => e), 'no_session')).toBe(true)
  })

  const badResponses: [string, (res: import('node:http').ServerResponse) => void, string][] = [
    ['malformed JSON quoting a token', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"at-LEAKED-VALUE",'), 'invalid_response'],
    ['an HTML error page', (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>'), 'invalid_response'],
    ['a 500 with a JSON error', (res) => json(res, 500, { error: 'server_error' }), 'oauth_error'],
    ['no access_token', (res) => json(res, 200, { token_type: 'Bearer', expires_in: 60 }), 'invalid_response'],
    ['a wrong token_type', (res) => json(res, 200, { access_token: 'at-LEAKED-VALUE', token_type: 'mac', expires_in: 60 }), 'invalid_response'],
    ['an absurd expires_in', (res) => json(res, 200, { access_token: 'at-LEAKED-VALUE', token_type: 'Bearer', expires_in: 1e12 }), 'invalid_response'],
    ['a negative expires_in', (res) => json(res, 200, { access_token: 'at-LEAKED-VALUE', token_type: 'Bearer', expires_in: -5 }), 'invalid_response'],
    ['an array', (res) => json(res, 200, [{ access_token: 'at-LEAKED-VALUE' }]), 'invalid_response'],
  ]
  for (const [name, respond, code] of badResponses) {
    it(`${name} → typed error ${code}, event, previous tokens still used`, async () => {
      const { as, api } = await setup({ onRefresh: (res) => (respond(res), true) })
      const tm = manager(as, [api.origin])
      const seeded = as.seed()
      await tm.setTokens(seeded)
      const events: unknown[] = []
      tm.on('refresh-error', (e) => events.push(e))
      const error = await tm.refresh().catch((e) => e)
      expect(isLatchkeyError(error, code as 'invalid_response')).toBe(true)
      expect(events).toHaveLength(1)
      expectNoToken(error, [...tokensOf(as), 'at-LEAKED-VALUE'])
      expect(JSON.stringify(events)).not.toContain('LEAKED')
      const res = await tm.fetch(api.url('/after'))
      expect(res.status).toBe(200)
      expect(api.requests.at(-1)!.authorization).toBe('Bearer ' + seeded.access_token)
    })
  }

  it('a network error and a timeout give typed errors and keep the tokens', async () => {
    const { as, api } = await setup({ delayMs: 3000 })
    const tm = manager(as, [api.origin], { timeoutSeconds: 0.3 })
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const timeout = await tm.refresh().catch((e) => e)
    expect(isLatchkeyError(timeout, 'timeout')).toBe(true)
    const dead = await serve((_req, res) => res.destroy())
    await dead.close()
    const tm2 = manager(as, [api.origin], { tokenEndpoint: dead.url('/token') })
    await tm2.setTokens(seeded)
    const network = await tm2.refresh().catch((e) => e)
    expect(isLatchkeyError(network, 'network_error')).toBe(true)
    expect(tm.status()).toBeDefined()
    expect(tm2.status()).toBeDefined()
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
  })

  it('setTokens rejects bad input and leaves the last good state', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const good = as.seed()
    await tm.setTokens(good)
    for (const bad of [null, 'x', { access_token: '' }, { access_token: 'a', token_type: 'DPoP' }, { access_token: 'a', token_type: 'Bearer', expires_in: 0 }, { access_token: 'a', token_type: 'Bearer', refresh_token: 5 }])
      expect(isLatchkeyError(await tm.setTokens(bad as never).catch((e) => e), 'invalid_response')).toBe(true)
    await tm.fetch(api.url('/x'))
    expect(api.requests.at(-1)!.authorization).toBe('Bearer ' + good.access_token)
  })
})

describe('logout', () => {
  it('wins over an in-flight refresh: afterwards no token is sent and the refresh token is revoked', async () => {
    const { as, api } = await setup({ delayMs: 300 })
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed())
    const inflight = tm.refresh().catch((e) => e)
    await new Promise((r) => setTimeout(r, 50))
    await tm.logout()
    expect(isLatchkeyError(await inflight, 'no_session')).toBe(true)
    expect(tm.status()).toBeUndefined()
    const error = await tm.fetch(api.url('/after')).catch((e) => e)
    expect(isLatchkeyError(error, 'no_session')).toBe(true)
    expect(api.requests.filter((r) => r.path === '/after')).toHaveLength(0)
    expect(as.refreshTokens.size).toBe(0)
  })

  it('emits logout and never a token in any event', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const events: unknown[] = []
    for (const e of ['tokens', 'refresh', 'refresh-error', 'session-expired', 'logout', 'warning'] as const) tm.on(e, (s) => events.push([e, s]))
    await tm.setTokens(as.seed())
    await tm.refresh()
    await tm.logout()
    expect(events.map((e) => (e as string[])[0])).toEqual(['tokens', 'tokens', 'refresh', 'logout'])
    expectNoToken(events, tokensOf(as))
  })
})

describe('custom refresh', () => {
  it('an own endpoint with the refresh token in an HttpOnly cookie', async () => {
    let calls = 0
    const tokens = await startTokenServer()
    cleanups.push(tokens.close)
    const bff = await serve((req, res) => {
      calls++
      if (!String(req.headers.cookie).includes('rt=cookie-secret')) return json(res, 401, { error: 'no session' })
      json(res, 200, tokens.seed({ refresh_token: undefined }))
    })
    cleanups.push(bff.close)
    const api = await startApi(tokens)
    cleanups.push(api.close)
    const tm = createTokenManager({
      clientId: 'spa',
      allowedOrigins: [api.origin],
      refresh: { url: bff.url('/auth/refresh'), credentials: 'include', headers: { cookie: 'rt=cookie-secret' } },
      dpop: false,
      crossTab: false,
    })
    expect(await tm.restore()).toBe(true)
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    await Promise.all(Array.from({ length: 20 }, () => tm.refresh()))
    expect(calls).toBe(2)
  })

  it('a function returning a token response', async () => {
    const { as, api } = await setup()
    let calls = 0
    const tm = createTokenManager({
      clientId: 'spa',
      allowedOrigins: [api.origin],
      refresh: async () => (calls++, as.seed()),
      dpop: false,
      crossTab: false,
    })
    const results = await Promise.all(Array.from({ length: 30 }, () => tm.fetch(api.url('/f'))))
    expect(results.every((r) => r.status === 200)).toBe(true)
    expect(calls).toBe(1)
  })
})
