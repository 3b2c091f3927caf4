// The server's time (invariant 12): with the device clock minutes or hours off, DPoP proofs
// are dated by the server's clock as latchkey learnt it (a `Date` header, the `iat` of an ID token or
// a JWT access token), a proof refused for its time is retried once at the corrected time (invariant
// 5), and expiry still counts from arrival. Only this process's clock moves (`Date.now`): the demo
// servers run in a worker thread with a clock of their own, and the loopback servers here read the
// real time.
import { randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createDPoPVerifier, DPoPError } from '../demo/server/dpop.mjs'
import { createTokenManager, discover, memoryKeyStore, type TokenManager } from '../src/index.js'
import { served } from './support/harness.js'
import { json } from './support/servers.js'
import { authorize, demoServersInWorker } from './support/sign-in.js'

const REDIRECT = 'http://127.0.0.1/callback'
const MINUTE = 60_000
const realNow = Date.now.bind(Date)

/** Moves this process's clock (the device's) `ms` off the real time; the harness puts it back after each test. */
const shiftDeviceClock = (ms: number) => vi.spyOn(Date, 'now').mockImplementation(() => realNow() + ms)

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { iat: number }

/** The fetch latchkey is given: records the `iat` of every DPoP proof it sends, by the real clock's distance. */
function recordingFetch() {
  const skews: number[] = []
  const fetch: typeof globalThis.fetch = (input, init) => {
    const proof = new Headers(init?.headers).get('dpop')
    if (proof) skews.push(claims(proof).iat - Math.floor(realNow() / 1000))
    return globalThis.fetch(input, init)
  }
  return { fetch, skews }
}

const shifts: [string, number][] = [
  ['10 minutes ahead', 10 * MINUTE],
  ['10 minutes behind', -10 * MINUTE],
  ['2 hours ahead', 120 * MINUTE],
]

describe.each([
  ['with DPoP nonces', true],
  ['without nonces', false],
])('oidc-provider and an API that checks iat within 60 s, %s', (_mode, requireNonce) => {
  let demo: Awaited<ReturnType<typeof demoServersInWorker>>
  beforeAll(async () => {
    demo = await demoServersInWorker({ redirectUri: REDIRECT, requireNonce, accessTokenTTL: 2 })
  })
  afterAll(() => demo?.stop())

  it.each(shifts)('device clock %s: sign-in, API calls, nonce retries, a refresh after expiry, logout', async (_name, shift) => {
    const { fetch, skews } = recordingFetch()
    shiftDeviceClock(shift)
    const tm = createTokenManager({
      ...(await discover(demo.issuer)),
      clientId: 'spa',
      allowedOrigins: [demo.apiOrigin],
      dpop: { keyStore: memoryKeyStore() },
      crossTab: false,
      fetch,
    })
    const before = await demo.counts()
    const url = await tm.authorizationUrl({ redirectUri: REDIRECT, scope: 'openid offline_access api:read', resource: demo.apiOrigin })
    await tm.handleRedirect(await authorize(url, REDIRECT))
    // Expiry counts from arrival, by the device's clock: the token's 2 s, whatever the clock says.
    const { expiresAt } = tm.status()!
    expect(Math.abs(expiresAt! - (Date.now() + 2000))).toBeLessThan(1500)

    for (let i = 0; i < 3; i++) expect((await tm.fetch(demo.apiOrigin + '/api/me')).status).toBe(200)
    // After expiry (2 s of real time): one refresh, then the call.
    await new Promise((r) => setTimeout(r, 2100))
    expect((await tm.fetch(demo.apiOrigin + '/api/items')).status).toBe(200)
    await tm.logout()

    const after = await demo.counts()
    const delta = (side: 'as' | 'api', key: string) =>
      ((side == 'as' ? after.as[key] : after.api.unauthorized[key]) ?? 0) - ((side == 'as' ? before.as[key] : before.api.unauthorized[key]) ?? 0)
    expect(delta('as', 'authorizationCode')).toBe(1)
    expect(delta('as', 'refreshToken')).toBe(1)
    expect(after.api.ok - before.api.ok).toBe(4)
    // The API never refused a proof for its time: the server's time was known before the first call.
    expect(delta('api', 'invalid_dpop_proof')).toBe(0)
    // With nonces, each server challenged once and was answered once; without, never.
    expect(delta('api', 'use_dpop_nonce')).toBe(requireNonce ? 1 : 0)
    if (requireNonce) expect(delta('as', 'useDpopNonce')).toBeGreaterThanOrEqual(1)
    // Every proof after the first answer is dated by the server's time, within a couple of seconds.
    expect(skews.length).toBeGreaterThanOrEqual(6)
    expect(skews.slice(1).every((s) => Math.abs(s) <= 2)).toBe(true)
    tm.dispose()
  })
})

/** The real time in the `Date` header (the loopback servers keep the test's clock), or no `Date` at all. */
function realDate(res: ServerResponse, send: boolean) {
  res.sendDate = send
  if (send) res.setHeader('date', new Date(realNow()).toUTCString())
  else res.removeHeader('date')
}

/**
 * A DPoP token endpoint and API on loopback that read the real clock and refuse a proof dated more
 * than 60 s off (the token endpoint accepts any time when `lenient`, as oidc-provider does with a
 * nonce it issued). `token`: what the token response carries that tells the server's time.
 */
async function strictServers({ sendDate = true, token = 'opaque' as 'opaque' | 'id_token' | 'jwt', lenient = false } = {}) {
  const verifier = createDPoPVerifier({ now: realNow, maxAgeSeconds: 55, clockSkewSeconds: 5 })
  const lenientVerifier = createDPoPVerifier({ now: realNow, maxAgeSeconds: 86_400, clockSkewSeconds: 86_400 })
  const counts = { token: 0, api: 0, refused: 0 }
  const tokens = new Map<string, string>()
  const refuse = (res: ServerResponse, e: unknown, status: number) => {
    if (!(e instanceof DPoPError)) throw e
    counts.refused++
    const header = status == 401 ? { 'www-authenticate': `DPoP error="${e.error}"` } : {}
    json(res, status, { error: e.error, error_description: e.description }, header)
  }
  const as = await served(async (req, res) => {
    realDate(res, sendDate)
    counts.token++
    let jkt: string
    try {
      ;({ jkt } = await (lenient ? lenientVerifier : verifier).verify({ proof: req.headers.dpop, method: 'POST', url: as.url('/token') }))
    } catch (e) {
      return refuse(res, e, 400)
    }
    const iat = Math.floor(realNow() / 1000)
    // An unsigned JWT is enough here: latchkey reads only its iat, the server's time.
    const jwt = (claims: object) => ['{"alg":"none"}', JSON.stringify(claims), ''].map((p) => Buffer.from(p).toString('base64url')).join('.')
    const at = token == 'jwt' ? jwt({ iss: as.origin, iat, exp: iat + 300, jti: randomBytes(8).toString('hex') }) : 'at-' + randomBytes(16).toString('hex')
    tokens.set(at, jkt)
    const body: Record<string, unknown> = { access_token: at, token_type: 'DPoP', expires_in: 3600, refresh_token: 'rt-' + randomBytes(8).toString('hex') }
    if (token == 'id_token') body.id_token = jwt({ iss: as.origin, sub: 'me', aud: 'spa', iat, exp: iat + 300, name: 'Zoë ☃' })
    json(res, 200, body)
  })
  const api = await served(async (req, res) => {
    realDate(res, sendDate)
    counts.api++
    const at = (req.headers.authorization ?? '').split(' ')[1] ?? ''
    try {
      await verifier.verify({ proof: req.headers.dpop, method: req.method!, url: api.url(req.url!), accessToken: at, jkt: tokens.get(at) })
    } catch (e) {
      return refuse(res, e, 401)
    }
    json(res, 200, { ok: true })
  })
  return { as, api, counts }
}

const strictManager = (as: { url(p: string): string }, api: { origin: string }): TokenManager =>
  createTokenManager({ clientId: 'spa', tokenEndpoint: as.url('/token'), allowedOrigins: [api.origin], dpop: { keyStore: memoryKeyStore() }, crossTab: false })

const code = (tm: TokenManager) => tm.exchangeCode({ code: 'c', codeVerifier: 'v'.repeat(43), redirectUri: REDIRECT })

describe('a proof refused for its time: one retry at the server\u2019s time (invariant 5)', () => {
  it.each(shifts)('device clock %s, no nonces: the code exchange is refused once, retried at the Date the refusal carried, and API calls go through', async (_name, shift) => {
    const { as, api, counts } = await strictServers()
    shiftDeviceClock(shift)
    const tm = strictManager(as, api)
    await code(tm)
    expect(counts).toEqual({ token: 2, api: 0, refused: 1 })
    for (let i = 0; i < 3; i++) expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(counts).toEqual({ token: 2, api: 3, refused: 1 })
  })

  it('the device clock jumps 10 minutes mid-session: the API refuses one proof, the retry at the corrected time passes', async () => {
    const { as, api, counts } = await strictServers()
    const tm = strictManager(as, api)
    await code(tm)
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    shiftDeviceClock(10 * MINUTE)
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(counts).toEqual({ token: 1, api: 4, refused: 1 })
  })

  it.each([
    ['the iat of an ID token tells the server\u2019s time', 'id_token', 200, 0],
    ['the iat of a JWT access token tells the server\u2019s time', 'jwt', 200, 0],
    ['an opaque token and no ID token tell nothing: the API\u2019s refusal is the answer', 'opaque', 401, 1],
  ] as const)('no Date header anywhere: %s', async (_name, token, status, refused) => {
    const { as, api, counts } = await strictServers({ sendDate: false, token, lenient: true })
    shiftDeviceClock(10 * MINUTE)
    const tm = strictManager(as, api)
    await code(tm)
    expect((await tm.fetch(api.url('/me'))).status).toBe(status)
    // Without anything learnt, the refusal is not retried: nothing would date the retry better.
    expect(counts).toEqual({ token: 1, api: 1, refused })
  })

  it('a server that refuses every proof gets exactly one retry, never a loop', async () => {
    let tokenRequests = 0
    const as = await served((_req, res) => {
      tokenRequests++
      // A server an hour ahead that refuses everything.
      res.setHeader('date', new Date(realNow() + 60 * MINUTE).toUTCString())
      json(res, 400, { error: 'invalid_dpop_proof' })
    })
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: as.url('/token'), allowedOrigins: [as.origin], dpop: { keyStore: memoryKeyStore() }, crossTab: false })
    expect((await code(tm).catch((e) => e)).code).toBe('invalid_dpop_proof')
    expect(tokenRequests).toBe(2)
    expect((await code(tm).catch((e) => e)).code).toBe('invalid_dpop_proof')
    // The time is learnt now: a refusal with nothing new to learn is not retried.
    expect(tokenRequests).toBe(3)
  })
})

describe('the server\u2019s time as a measurement (clock_offset)', () => {
  /**
   * The `clock_offset` measurements of `tm`, in whole seconds: the Date header is rounded down to
   * the second, so an offset of exactly N s is learnt as within (N - 1, N] s.
   */
  const offsets = (tm: TokenManager) => {
    const seconds: number[] = []
    tm.on('measure', (m) => void (m.name == 'clock_offset' && seconds.push(Math.ceil(m.offset! / 1000))))
    return seconds
  }

  it('emitted once when learnt, again only when the device clock moves, never per request', async () => {
    const { as, api, counts } = await strictServers()
    shiftDeviceClock(-10 * MINUTE)
    const tm = strictManager(as, api)
    const seconds = offsets(tm)
    await code(tm)
    for (let i = 0; i < 3; i++) expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    // Five responses with a Date (the refusal, the token, three API calls): one measurement.
    expect(seconds).toEqual([600])
    shiftDeviceClock(5 * MINUTE)
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(seconds).toEqual([600, -300])
    expect(counts.refused).toBe(2)
  })

  it('a device within a second of the server emits none', async () => {
    const { as, api } = await strictServers()
    const tm = strictManager(as, api)
    const seconds = offsets(tm)
    await code(tm)
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(seconds).toEqual([])
  })
})
