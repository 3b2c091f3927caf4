import type { KyInstance, Options } from 'ky'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createHash } from 'node:crypto'
import { createTokenManager, isLatchkeyError, type TokenManager, type TokenManagerOptions } from '../src/index.js'
import { kyHooks } from '../src/ky.js'
import { json, serve, startApi, startTokenServer, type TokenServer } from './support/servers.js'
import { startResource } from './support/ky-helpers.js'
import { kyVersions } from './support/ky-versions.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  vi.useRealTimers()
  while (cleanups.length) await cleanups.pop()!()
})

async function tokenServer(options: Parameters<typeof startTokenServer>[0] = {}) {
  const as = await startTokenServer(options)
  cleanups.push(as.close)
  return as
}

async function resource(as: TokenServer, options: Parameters<typeof startResource>[1] = {}) {
  const api = await startResource(as, options)
  cleanups.push(api.close)
  return api
}

async function api(as: TokenServer, options: Parameters<typeof startApi>[1] = {}) {
  const server = await startApi(as, options)
  cleanups.push(server.close)
  return server
}

function manager(as: TokenServer, allowed: string[], options: Partial<TokenManagerOptions> = {}): TokenManager {
  return createTokenManager({
    clientId: 'spa',
    tokenEndpoint: as.tokenEndpoint,
    allowedOrigins: allowed,
    dpop: false,
    crossTab: false,
    ...options,
  })
}


/** A signed-in manager, and an API that answers every request with 401. */
async function signedInAgainstRefusingApi() {
  const as = await tokenServer()
  const server = await api(as, { alwaysUnauthorized: true })
  const tm = manager(as, [server.origin])
  await tm.setTokens(as.seed())
  return { as, server, tm }
}

/** A manager whose token has expired, and a token server that takes 1.2 s to refresh it. */
async function expiredBehindSlowRefresh() {
  const as = await tokenServer({ delayMs: 1200 })
  const server = await resource(as)
  const tm = manager(as, [server.origin])
  await tm.setTokens(as.seed({ expires_in: 60 }))
  advance(61)
  return { as, server, tm }
}

/** Moves the clock (Date only: servers and timers keep running) `seconds` ahead. */
function advance(seconds: number) {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + seconds * 1000 })
}

function tokensOf(as: TokenServer) {
  return [...as.accessTokens.keys(), ...as.refreshTokens.keys(), ...as.rotatedOut]
}

function expectNoToken(error: unknown, tokens: string[]) {
  const e = error as Error & { request?: Request; options?: unknown }
  const text = [e.message, e.stack, JSON.stringify(e), String(e), JSON.stringify(e.options ?? {}), JSON.stringify([...(e.request?.headers ?? [])])].join('\n')
  for (const t of tokens) expect(text).not.toContain(t)
}

const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>

describe.each(kyVersions)('$name', ({ ky, major, HTTPError, isTimeoutError, prefix, timeout, ...hook }) => {
  const client = (tm: TokenManager, origin: string, options: Options = {}): KyInstance =>
    ky.create({ ...prefix(origin), retry: 0, ...options, hooks: kyHooks(tm, options.hooks) })

  describe('kyHooks: single-flight refresh', () => {
    it('200 concurrent ky calls with an expired token cause one refresh and all succeed', async () => {
      const as = await tokenServer({ delayMs: 50 })
      const server = await resource(as)
      const tm = manager(as, [server.origin])
      const seeded = as.seed({ expires_in: 60 })
      await tm.setTokens(seeded)
      advance(61)
      const http = client(tm, server.origin)
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => http.get('n/' + i).json<{ path: string }>()))
      expect(results.map((r) => r.path)).toEqual(Array.from({ length: 200 }, (_, i) => '/n/' + i))
      expect(as.counts.refresh).toBe(1)
      expect(as.counts.invalidGrant).toBe(0)
      expect(server.requests).toHaveLength(200)
      const [fresh] = [...as.accessTokens.keys()].filter((t) => t !== seeded.access_token)
      expect(server.requests.every((r) => r.headers.authorization === 'Bearer ' + fresh)).toBe(true)
    })

    it('200 concurrent 401s → one refresh, each request retried once with its body intact', async () => {
      const as = await tokenServer()
      const server = await resource(as)
      const tm = manager(as, [server.origin])
      const seeded = as.seed()
      await tm.setTokens(seeded)
      as.accessTokens.get(seeded.access_token)!.revoked = true
      const http = client(tm, server.origin)
      const bodies = (i: number): Options =>
        i % 3 == 0 ? { json: { i } } : i % 3 == 1 ? { body: new URLSearchParams({ i: String(i) }) } : { body: 'text ' + i }
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => http.post('p/' + i, bodies(i)).json<{ body: string }>()))
      expect(as.counts.refresh).toBe(1)
      for (let i = 0; i < 200; i++) {
        const attempts = server.of('/p/' + i)
        expect(attempts.map((a) => a.status)).toEqual([401, 200])
        const expected = i % 3 == 0 ? JSON.stringify({ i }) : i % 3 == 1 ? 'i=' + i : 'text ' + i
        expect(attempts.map((a) => a.body)).toEqual([expected, expected])
        expect(results[i]!.body).toBe(expected)
        if (i % 3 == 0) expect(attempts[1]!.headers['content-type']).toBe('application/json')
      }
    })

    it('a final 401 raises ky’s HTTPError after exactly 2 attempts, without any token in it', async () => {
      const { as, server, tm } = await signedInAgainstRefusingApi()
      const error = await client(tm, server.origin).get('x').catch((e) => e)
      expect(error).toBeInstanceOf(HTTPError)
      expect((error as InstanceType<typeof HTTPError>).response.status).toBe(401)
      expect(server.requests.map((r) => r.status)).toEqual([401, 401])
      expect(as.counts.refresh).toBe(1)
      expect((error as InstanceType<typeof HTTPError>).request.headers.get('authorization')).toBeNull()
      expectNoToken(error, tokensOf(as))

      // a second 401 within 10 s of the refresh the first one bought: no refresh, the 401 at once
      const res = await client(tm, server.origin, { throwHttpErrors: false }).get('y')
      expect(res.status).toBe(401)
      expect(server.requests.filter((r) => r.path === '/y')).toHaveLength(1)
      expect(as.counts.refresh).toBe(1)
    })

    it('ky never retries a 401, even when told to: no second refresh', async () => {
      const { as, server, tm } = await signedInAgainstRefusingApi()
      const http = client(tm, server.origin, { retry: { limit: 3, statusCodes: [401, 503], delay: () => 1 } })
      const error = await http.get('x').catch((e) => e)
      expect(error).toBeInstanceOf(HTTPError)
      expect(server.requests).toHaveLength(2)
      expect(as.counts.refresh).toBe(1)
    })
  })

  describe('kyHooks: DPoP', () => {
    async function dpopSetup(apiOptions: Parameters<typeof startApi>[1] = {}) {
      const as = await tokenServer({ dpop: true })
      const server = await api(as, apiOptions)
      const tm = manager(as, [server.origin], { dpop: true })
      await tm.exchangeCode({ code: as.code(), codeVerifier: 'x', redirectUri: 'http://127.0.0.1/cb' })
      return { as, server, tm, http: client(tm, server.origin) }
    }

    it('sends DPoP proofs the API verifies, for prefixUrl + searchParams + json, and refreshes on 401 with a new proof', async () => {
      const { as, server, tm, http } = await dpopSetup()
      const first = [...as.accessTokens.keys()][0]!
      const res = await http.post('items', { json: { a: 1 }, searchParams: { q: 'x y', n: 2 } }).json<{ path: string; body: string }>()
      expect(res).toMatchObject({ path: '/items?q=x+y&n=2', body: '{"a":1}' })
      const sent = server.requests[0]!
      expect(sent.authorization).toBe('DPoP ' + first)
      const [h, p] = sent.dpop!.split('.')
      const header = decode(h!)
      const payload = decode(p!)
      expect(header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256' } })
      expect(header.jwk).not.toHaveProperty('d')
      expect(payload).toMatchObject({ htm: 'POST', htu: server.url('/items'), ath: createHash('sha256').update(first).digest('base64url') })
      expect(Math.abs((payload.iat as number) - Date.now() / 1000)).toBeLessThan(5)
      expect(typeof payload.jti).toBe('string')

      as.accessTokens.get(first)!.revoked = true
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => http.get('d/' + i, { searchParams: { i } }).json<{ ok: boolean }>()))
      expect(results.every((r) => r.ok)).toBe(true)
      expect(as.counts.refresh).toBe(1)
      const retried = server.requests.slice(1).filter((r) => r.status === 200)
      expect(retried).toHaveLength(20)
      const second = [...as.accessTokens.keys()][1]!
      for (const r of retried) {
        expect(r.authorization).toBe('DPoP ' + second)
        expect(decode(r.dpop!.split('.')[1]!).ath).toBe(createHash('sha256').update(second).digest('base64url'))
      }
      expect(new Set(server.requests.map((r) => decode(r.dpop!.split('.')[1]!).jti)).size).toBe(server.requests.length)
      expect(tm.status()?.tokenType).toBe('DPoP')
    })

    it('answers a nonce challenge with one retry, never a refresh, and reuses the nonce', async () => {
      const { as, server, http } = await dpopSetup({ requireNonce: true })
      expect(await http.get('n').json()).toMatchObject({ ok: true })
      expect(server.requests.map((r) => r.status)).toEqual([401, 200])
      expect(decode(server.requests[0]!.dpop!.split('.')[1]!).nonce).toBeUndefined()
      expect(decode(server.requests[1]!.dpop!.split('.')[1]!).nonce).toBe(server.nonces.current())
      await http.get('n2')
      expect(server.requests.map((r) => r.status)).toEqual([401, 200, 200])
      expect(as.counts.refresh).toBe(0)
    })

    it('a nonce the API keeps refusing is retried once, then surfaces as HTTPError', async () => {
      const { as, server, http } = await dpopSetup({ requireNonce: true })
      server.nonces.isValid = () => false
      const error = await http.get('n').catch((e) => e)
      expect(error).toBeInstanceOf(HTTPError)
      expect(server.requests.map((r) => r.status)).toEqual([401, 401])
      expect(as.counts.refresh).toBe(0)
    })
  })

  describe('kyHooks: origins', () => {
    it('a request to a non-allowed origin gets no token and causes no refresh', async () => {
      const as = await tokenServer()
      const allowed = await resource(as)
      const other = await resource(as)
      const tm = manager(as, [allowed.origin])
      await tm.setTokens(as.seed({ expires_in: 1 }))
      advance(60)
      const http = ky.create({ hooks: kyHooks(tm), throwHttpErrors: false, retry: 0 })
      const res = await http.get(other.url('/x'), { headers: { 'x-app': '1' } })
      expect(res.status).toBe(401)
      expect(other.requests[0]!.headers.authorization).toBeUndefined()
      expect(other.requests[0]!.headers.dpop).toBeUndefined()
      expect(other.requests[0]!.headers['x-app']).toBe('1')
      await http.get(other.origin.replace('127.0.0.1', 'localhost') + '/y')
      expect(other.requests[1]!.headers.authorization).toBeUndefined()
      expect(as.counts.refresh).toBe(0)
      expect((await http.get(allowed.url('/z'))).status).toBe(200)
      expect(as.counts.refresh).toBe(1)
    })
  })

  describe('kyHooks: ky features', () => {
    // Each version's own retry rule: defined for the version it concerns, so no run skips a test.
    if (major == 1) it('ky’s retry (503 then 200) reuses the refreshed token: one refresh in all', async () => {
      const as = await tokenServer({ delayMs: 30 })
      const server = await resource(as, { plan: (attempt) => (attempt == 1 ? 503 : undefined) })
      const tm = manager(as, [server.origin])
      await tm.setTokens(as.seed({ expires_in: 60 }))
      advance(61)
      const http = client(tm, server.origin, { retry: { limit: 2, delay: () => 10 } })
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => http.put('r/' + i, { json: { i } }).json<{ body: string }>()))
      expect(results.map((r) => r.body)).toEqual(Array.from({ length: 20 }, (_, i) => JSON.stringify({ i })))
      expect(as.counts.refresh).toBe(1)
      for (let i = 0; i < 20; i++) expect(server.of('/r/' + i).map((r) => r.status)).toEqual([503, 200])
      expect(new Set(server.requests.map((r) => r.headers.authorization)).size).toBe(1)
    })

    if (major == 2) it('ky 2 does not retry a response that a beforeRequest hook returned: a 503 is an HTTPError at once', async () => {
      const as = await tokenServer()
      const server = await resource(as, { plan: (attempt) => (attempt == 1 ? 503 : undefined) })
      const tm = manager(as, [server.origin])
      await tm.setTokens(as.seed())
      const error = await client(tm, server.origin, { retry: { limit: 2, delay: () => 10 } }).get('r').catch((e) => e)
      expect(error).toBeInstanceOf(HTTPError)
      expect(server.of('/r').map((r) => r.status)).toEqual([503])
    })

    it('ky’s timeout rejects with a TimeoutError and aborts the request', async () => {
      const as = await tokenServer()
      const server = await resource(as, { delayMs: 3000 })
      const tm = manager(as, [server.origin])
      await tm.setTokens(as.seed())
      const started = performance.now()
      const error = await client(tm, server.origin, timeout(200)).get('slow').catch((e) => e)
      expect(performance.now() - started).toBeLessThan(1500)
      expect(isTimeoutError(error)).toBe(true)
      expect(error.message).toBe(`Request timed out: GET ${server.url('/slow')}`)
      expect((error as { request: Request }).request.url).toBe(server.url('/slow'))
      expectNoToken(error, tokensOf(as))
      await vi.waitFor(() => expect(server.requests[0]!.aborted).toBe(true), { timeout: 1000 })
    })

    it('the timeout covers a slow refresh, which still completes for the next call', async () => {
      const { as, server, tm } = await expiredBehindSlowRefresh()
      const http = client(tm, server.origin, timeout(150))
      const started = performance.now()
      const error = await http.get('t').catch((e) => e)
      expect(isTimeoutError(error)).toBe(true)
      expect(performance.now() - started).toBeLessThan(1000)
      expect(server.requests).toHaveLength(0)
      await tm.getAccessToken()
      expect((await http.get('t2')).status).toBe(200)
      expect(as.counts.refresh).toBe(1)
    })

    it('an abort signal cancels the call at once, even while a refresh runs', async () => {
      const { server, tm } = await expiredBehindSlowRefresh()
      const ctl = new AbortController()
      setTimeout(() => ctl.abort(), 100)
      const started = performance.now()
      const error = await client(tm, server.origin).get('a', { signal: ctl.signal }).catch((e) => e)
      expect((error as Error).name).toBe('AbortError')
      expect(performance.now() - started).toBeLessThan(1000)
      const aborted = new AbortController()
      aborted.abort()
      expect((await client(tm, server.origin).get('b', { signal: aborted.signal }).catch((e) => e)).name).toBe('AbortError')
      await tm.getAccessToken()
      expect(server.requests).toHaveLength(0)
    })

    it('a reset connection is latchkey\u2019s NetworkError, which ky 1 retries like any network error', async () => {
      const as = await tokenServer()
      const seen: (string | undefined)[] = []
      const flaky = await serve((req, res) => (seen.push(req.headers.authorization), seen.length == 1 || req.url == '/y' ? req.socket.destroy() : json(res, 200, { ok: true })))
      cleanups.push(flaky.close)
      const tm = manager(as, [flaky.origin])
      const seeded = as.seed()
      await tm.setTokens(seeded)
      if (major == 1) {
        expect(await client(tm, flaky.origin, { retry: { limit: 2, delay: () => 1 } }).get('x').json()).toEqual({ ok: true })
        expect(seen).toEqual(['Bearer ' + seeded.access_token, 'Bearer ' + seeded.access_token])
      } else {
        // ky 2 retries only the network errors of its own fetch; the request here runs in a
        // beforeRequest hook, so ky 2 hands the typed error over at once.
        const first = await client(tm, flaky.origin, { retry: { limit: 2, delay: () => 1 } }).get('x').catch((e) => e)
        expect(isLatchkeyError(first, 'network_error')).toBe(true)
        expect(await client(tm, flaky.origin).get('x').json()).toEqual({ ok: true })
        expect(seen).toHaveLength(2)
      }
      // without ky's retry, the error is typed and carries the platform's error as its cause
      const error = await client(tm, flaky.origin).get('y').catch((e) => e)
      expect(isLatchkeyError(error, 'network_error')).toBe(true)
      expect(error.cause).toBeInstanceOf(TypeError)
      expect(seen).toHaveLength(3)
    })

    it('no session: the latchkey error surfaces and ky does not retry it', async () => {
      const as = await tokenServer()
      const server = await resource(as)
      const tm = manager(as, [server.origin])
      let calls = 0
      const http = client(tm, server.origin, { retry: { limit: 2, delay: () => 1 }, hooks: { beforeRequest: [() => void calls++] } })
      const error = await http.get('x').catch((e) => e)
      expect(isLatchkeyError(error, 'no_session')).toBe(true)
      expect(calls).toBe(1)
      expect(server.requests).toHaveLength(0)
    })
  })

  describe('kyHooks: app hooks', () => {
    it('runs the app’s hooks around latchkey’s, on both attempts, without showing them a token', async () => {
      const as = await tokenServer()
      const server = await resource(as, { plan: (_attempt, path) => (path == '/404' ? 404 : undefined) })
      const tm = manager(as, [server.origin])
      const seeded = as.seed()
      await tm.setTokens(seeded)
      as.accessTokens.get(seeded.access_token)!.revoked = true
      const seen: unknown[] = []
      const http = client(tm, server.origin, {
        hooks: {
          beforeRequest: [hook.beforeRequest((request) => void request.headers.set('x-trace', 't-1'))],
          afterResponse: [hook.afterResponse((request, response) => void seen.push([response.status, request.headers.get('authorization')]))],
        },
      })
      expect(await http.get('h').json()).toMatchObject({ ok: true })
      expect(server.requests.map((r) => [r.status, r.headers['x-trace'], r.headers.accept])).toEqual([
        [401, 't-1', 'application/json'],
        [200, 't-1', 'application/json'],
      ])
      expect(seen).toEqual([[200, null]])

      const errors: unknown[] = []
      const extended = http.extend({
        hooks: {
          afterResponse: [hook.afterResponse((_request, response) => void seen.push(response.status))],
          beforeError: [hook.beforeError((error) => (errors.push(error.response.status), error))],
        },
      })
      expect(await extended.get('more', { searchParams: { q: 1 } }).json()).toMatchObject({ path: '/more?q=1' })
      expect(seen.at(-1)).toBe(200)
      const notFound = await extended.get('404').catch((e) => e)
      expect(notFound).toBeInstanceOf(HTTPError)
      expect(errors).toEqual([404])
      expect(server.of('/404')).toHaveLength(1)
      as.accessTokens.clear()
      as.refreshTokens.clear()
      // past the 10 s in which a second 401 buys no refresh
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 11_000 })
      const expired = await extended.get('gone').catch((e) => e)
      expect(isLatchkeyError(expired, 'session_expired')).toBe(true)
      expect(server.of('/gone')).toHaveLength(1)
      expectNoToken(expired, tokensOf(as))
    })

    it('composes by spreading: kyHooks(tm) works as the hooks object and as a part of one', async () => {
      const as = await tokenServer()
      const server = await resource(as)
      const tm = manager(as, [server.origin])
      await tm.setTokens(as.seed())
      const ours = kyHooks(tm)
      const order: string[] = []
      const http = ky.create({
        ...prefix(server.origin),
        hooks: {
          ...ours,
          beforeRequest: [() => void order.push('app'), ...ours.beforeRequest!],
          afterResponse: [() => void order.push('after')],
        },
      })
      expect((await http.get('s')).status).toBe(200)
      expect(order).toEqual(['app', 'after'])
      expect(server.requests[0]!.headers.authorization).toMatch(/^Bearer at-/)
      expect(ky.create({ hooks: { ...kyHooks(tm) } })).toBeTypeOf('function')
    })
  })
})

describe('kyHooks: both calling conventions', () => {
  it('accepts ky 2’s single state object as well as ky 1’s arguments', async () => {
    const as = await tokenServer()
    const server = await resource(as)
    const tm = manager(as, [server.origin])
    await tm.setTokens(as.seed())
    const [hook] = kyHooks(tm).beforeRequest!
    const request = new Request(server.url('/v2'), { method: 'POST', body: 'b' })
    const options = { timeout: 1000 } as never
    const v2 = (await (hook as unknown as (s: unknown) => Promise<Response>)({ request, options, retryCount: 0 })) as Response
    const v1 = (await hook!(request as never, options, { retryCount: 0 })) as Response
    expect([v2.status, v1.status]).toEqual([200, 200])
    expect(server.requests.map((r) => [r.body, r.headers.authorization?.slice(0, 7)])).toEqual([
      ['b', 'Bearer '],
      ['b', 'Bearer '],
    ])
  })
})
