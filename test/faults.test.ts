// The fault matrix (invariants 8 and 10): one row per way a token endpoint or an API fails,
// each against real loopback servers. Every row checks the typed error code, that no token is in
// any error or event, what state is left (the last good one, or none when the server ended the
// session), the exact number of requests each server saw, and a bound on the time it took.
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it, vi } from 'vitest'
import { createTokenManager, isLatchkeyError, type LatchkeyError, type LatchkeyErrorCode, type TokenManager, type TokenManagerOptions } from '../src/index.js'
import { served } from './support/harness.js'
import { expectNoToken, sleep } from './support/invariants-helpers.js'
import { endless, json, serve } from './support/servers.js'
import { createTabsHub } from './support/tabs.js'

type Req = IncomingMessage & { body: string }
type Answer = (req: Req, res: ServerResponse, rig: Rig) => void | Promise<void>

interface Rig {
  tm: TokenManager
  /** The token response of the login the manager starts from. */
  seed: ReturnType<Rig['good']>
  /** A good token response: a new access token the API accepts, and the refresh token rotated. */
  good(extra?: Record<string, unknown>): { access_token: string; token_type: string; expires_in: number; refresh_token: string }
  /** Token requests so far (every request to the token endpoint, answered or not). */
  tokenRequests: number
  apiRequests: number
  /** The Authorization header of the API's last request. */
  lastAuth: string | undefined
  api: { url(path: string): string }
  /** An origin in `allowedOrigins` where nothing listens. */
  closed: string
  /** Another tab of the same client, signed in from this one. */
  otherTab(): Promise<TokenManager>
  /** Freezes `Date` (servers read it too); `at(ms)` moves it to `start + ms`. */
  freeze(): void
  at(ms: number): void
}

interface Row {
  name: string
  /** Answers a refresh_token grant that presents the current refresh token (default: a good answer). */
  token?: Answer
  /** Answers an API request (default: 200 for an access token issued here, else 401 invalid_token). */
  api?: Answer
  options?: Partial<TokenManagerOptions>
  /** What the app does (default: `tm.refresh()`); resolves or rejects with what is checked. */
  act?: (rig: Rig) => Promise<unknown>
  /** The latchkey error code expected (none: the act succeeds). */
  code?: LatchkeyErrorCode
  tokenRequests: number
  apiRequests?: number
  /** The server ended the session: no tokens are left. Otherwise the generation held afterwards (default 1, the login's). */
  ended?: boolean
  generation?: number
  /** The bound on the act's duration, ms (default 1500). */
  ms?: number
  /** More checks of the outcome. */
  check?: (outcome: unknown, rig: Rig) => void | Promise<void>
}

const html = (status: number, body = '<html><body>Service unavailable</body></html>'): Answer => (_req, res) =>
  void res.writeHead(status, { 'content-type': 'text/html' }).end(body)
const oauth = (status: number, error: string, headers: Record<string, string> = {}): Answer => (_req, res) => json(res, status, { error }, headers)
const busy = (status: number, retryAfter: string): Answer => (_req, res) =>
  void res.writeHead(status, { 'content-type': 'text/html', 'retry-after': retryAfter }).end('<html>busy</html>')
/** A 200 whose body is a good token response with `extra` over it (`undefined` removes a field). */
const field = (extra: Record<string, unknown>): Answer => (_req, res, rig) => json(res, 200, rig.good(extra))
const raw = (body: string): Answer => (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(body)
const hang: Answer = () => new Promise(() => {})
/** Fails (503, HTML) until `n` requests were made, then answers well. */
const failUntil = (n: number): Answer => (req, res, rig) => (rig.tokenRequests < n ? html(503)(req, res, rig) : json(res, 200, rig.good()))
const failures = async (tm: TokenManager, n: number) => {
  const errors: LatchkeyError[] = []
  for (let i = 0; i < n; i++) errors.push(await tm.refresh().then(() => undefined as never, (e: LatchkeyError) => e))
  return errors
}
const retryAfterOf = (e: unknown) => (e as LatchkeyError).retryAfter
const inFiveSeconds = () => new Date(Date.now() + 5000).toUTCString()
/** Retries after a 503 with `Retry-After`: the second call is refused without a request. */
const twice = async ({ tm }: Rig) => {
  const first = await tm.refresh().catch((e) => e)
  expect(first.code).toBe('invalid_response')
  const second = await tm.refresh().catch((e) => e)
  // the second error tells the same wait, minus the time since, plus a spread of up to half of it (at most 30 s)
  if (second.code == 'retry_later') {
    expect(second.retryAfter).toBeGreaterThan(first.retryAfter - 1000)
    expect(second.retryAfter).toBeLessThanOrEqual(first.retryAfter + Math.min(first.retryAfter / 2, 30_000))
  }
  return second
}

/** An API that answers 401 invalid_token to every token. */
const refuseAll: Answer = (_req, res) => json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })

/** `n` calls a second apart from t = 0: each one's status, or its error's code. */
const calls = async (tm: TokenManager, api: Rig['api'], at: Rig['at'], n: number) => {
  const outcomes: (number | string)[] = []
  for (let i = 0; i < n; i++) {
    at(i * 1000)
    outcomes.push(await tm.fetch(api.url('/all/' + i)).then((r) => r.status, (e: LatchkeyError) => e.code))
  }
  return outcomes
}

/** What the endless token response wrote before the client hung up. */
const endlessBody = { bytes: 0 }

const rows: Row[] = [
  // 5xx without a usable body: typed, the session and its tokens kept
  { name: '500 with an HTML page', token: html(500), code: 'invalid_response', tokenRequests: 1 },
  { name: '502 with an HTML page', token: html(502), code: 'invalid_response', tokenRequests: 1 },
  { name: '503 with an HTML page, no Retry-After', token: html(503), code: 'invalid_response', tokenRequests: 1 },
  { name: '504 with an empty body', token: (_req, res) => void res.writeHead(504).end(), code: 'invalid_response', tokenRequests: 1 },
  { name: 'a 5 MB HTML error page', token: html(503, '<html>' + 'x'.repeat(5_000_000) + '</html>'), code: 'invalid_response', tokenRequests: 1, ms: 5000, check: (e) => expect((e as Error).message.length).toBeLessThan(300) },

  // Retry-After (invariant 10)
  { name: '429 Retry-After: 2 (delta-seconds) → the next refresh fails fast, no request', token: busy(429, '2'), act: twice, code: 'retry_later', tokenRequests: 1,
    check: (e) => expect(retryAfterOf(e)).toBeGreaterThan(1000) },
  { name: '503 Retry-After: an HTTP date 5 s ahead → waits about 5 s', token: (req, res, rig) => busy(503, inFiveSeconds())(req, res, rig), act: twice, code: 'retry_later', tokenRequests: 1,
    check: (e) => expect(retryAfterOf(e)).toBeGreaterThan(3000) },
  { name: '503 Retry-After: a date in the past → no wait (first failure: no backoff)', token: busy(503, 'Wed, 21 Oct 2015 07:28:00 GMT'), act: twice, code: 'invalid_response', tokenRequests: 2 },
  { name: '503 Retry-After: unreadable → ignored', token: busy(503, 'soon'), act: twice, code: 'invalid_response', tokenRequests: 2 },
  { name: '429 Retry-After: one day → capped at 10 minutes (and at most 30 s of spread)', token: busy(429, '86400'), act: twice, code: 'retry_later', tokenRequests: 1,
    check: (e) => expect(retryAfterOf(e)).toBeLessThanOrEqual(630_000) },
  { name: '500 with Retry-After → not a Retry-After status (first failure: no wait)', token: busy(500, '30'), act: twice, code: 'invalid_response', tokenRequests: 2 },
  { name: '503 temporarily_unavailable with Retry-After from the app\u2019s own refresh endpoint', options: { refresh: { url: '/own' } },
    token: (_req, res) => json(res, 503, { error: 'temporarily_unavailable' }, { 'retry-after': '3' }),
    act: async ({ tm }) => (await tm.refresh().catch((e) => e), tm.refresh()), code: 'retry_later', tokenRequests: 1 },
  { name: 'during Retry-After, a still-valid token goes out with every call', token: busy(503, '30'),
    act: async ({ tm, api, freeze, at }) => {
      freeze()
      at(53_000) // due (the refresh time is drawn between 45 s and 52.5 s) but valid for 7 s more: each call tries to refresh first
      await tm.refresh().catch(() => {})
      return Promise.all([1, 2, 3].map((i) => tm.fetch(api.url('/valid/' + i))))
    },
    tokenRequests: 1, apiRequests: 3, check: (r) => expect((r as Response[]).map((x) => x.status)).toEqual([200, 200, 200]) },
  { name: 'during Retry-After, 20 calls with an expired token fail fast: no token request, no API request', token: busy(503, '30'),
    act: async ({ tm, api, freeze, at }) => {
      freeze()
      at(61_000)
      await tm.fetch(api.url('/first')).catch(() => {})
      return Promise.all(Array.from({ length: 20 }, (_, i) => tm.fetch(api.url('/expired/' + i)))).catch((e) => Promise.reject(e))
    },
    code: 'retry_later', tokenRequests: 1 },
  { name: 'Retry-After over: the next refresh goes out and succeeds', token: (req, res, rig) => (rig.tokenRequests == 1 ? busy(503, '2')(req, res, rig) : json(res, 200, rig.good())),
    act: async ({ tm, freeze, at }) => {
      freeze()
      await tm.refresh().catch(() => {})
      expect((await tm.refresh().catch((e) => e)).code).toBe('retry_later')
      // Retry-After plus its spread of up to half of it
      at(3001)
      return tm.refresh()
    },
    tokenRequests: 2, generation: 2 },
  { name: 'Retry-After learnt in one tab: the other tab sends nothing during it', token: busy(503, '10'),
    act: async (rig) => {
      const other = await rig.otherTab()
      await rig.tm.refresh().catch(() => {})
      return other.refresh()
    },
    code: 'retry_later', tokenRequests: 1 },

  // backoff with full jitter (invariant 10)
  { name: 'one failure, then at once a good answer: the first retry is free', token: failUntil(2), act: async ({ tm }) => (await failures(tm, 1), tm.refresh()), tokenRequests: 2, generation: 2 },
  { name: 'two failures in a row: the third refresh fails fast within 1 s of backoff, then goes out', token: html(503),
    act: async ({ tm, freeze, at }) => {
      freeze()
      const [, , held] = await failures(tm, 3)
      expect(held!.code).toBe('retry_later')
      expect(held!.retryAfter).toBeGreaterThan(0)
      expect(held!.retryAfter).toBeLessThanOrEqual(1000)
      at(1001)
      const [, fourth] = await failures(tm, 2)
      // the third failure in a row: up to 2 s
      expect(fourth!.retryAfter).toBeLessThanOrEqual(2000)
      return Promise.reject(fourth)
    },
    code: 'retry_later', tokenRequests: 3 },
  { name: 'a success resets the backoff: the next failure is free again', token: (req, res, rig) => (rig.tokenRequests == 3 ? json(res, 200, rig.good()) : html(503)(req, res, rig)),
    act: async ({ tm, freeze, at }) => {
      freeze()
      await failures(tm, 2)
      at(1001)
      await tm.refresh()
      const [a, b] = await failures(tm, 2)
      expect([a!.code, b!.code]).toEqual(['invalid_response', 'invalid_response'])
      return Promise.reject(b)
    },
    code: 'invalid_response', tokenRequests: 5, generation: 2 },
  { name: 'backoff never runs past a still-valid token\u2019s expiry', token: html(503),
    act: async ({ tm, freeze, at }) => {
      freeze()
      // six failures in a row, each after its backoff: the next backoff may reach 30 s
      for (let failed = 0, t = 0; failed < 6; ) {
        const [e] = await failures(tm, 1)
        if (e!.code == 'retry_later') at((t += e!.retryAfter! + 1))
        else failed++
      }
      at(59_800)
      await failures(tm, 1)
      const [held] = await failures(tm, 1)
      expect(held!.retryAfter).toBeLessThanOrEqual(200)
      return Promise.reject(held)
    },
    code: 'retry_later', tokenRequests: 7 },

  // no response at all
  { name: 'connection reset before the response', token: (req) => void req.socket.destroy(), code: 'network_error', tokenRequests: 1 },
  { name: 'connection reset in the middle of the body', token: (req, res) => (res.writeHead(200, { 'content-type': 'application/json' }), res.write('{"access_token":"at-'), setTimeout(() => req.socket.destroy(), 20)),
    code: 'network_error', tokenRequests: 1 },
  { name: 'connection refused (nothing listens)', options: { tokenEndpoint: 'closed' }, code: 'network_error', tokenRequests: 0 },
  { name: 'the token endpoint never answers (timeoutSeconds 0.3)', token: hang, options: { timeoutSeconds: 0.3 }, code: 'timeout', tokenRequests: 1, ms: 1000 },
  { name: 'headers, then the body stalls (timeoutSeconds 0.3)', token: (_req, res) => void (res.writeHead(200, { 'content-type': 'application/json' }), res.write('{"access_token":')),
    options: { timeoutSeconds: 0.3 }, code: 'timeout', tokenRequests: 1, ms: 1000 },

  // bodies are read up to 1 MiB, as a stream (invariant 13)
  { name: 'a 2 MB token response, valid JSON: refused, not adopted', token: field({ padding: 'p'.repeat(2_000_000) }), code: 'invalid_response', tokenRequests: 1,
    check: (e) => expect((e as Error).message).toMatch(/: invalid body$/) },
  { name: 'a 2 MB answer from the app’s own refresh endpoint: refused too', options: { refresh: { url: '/own' } }, token: field({ padding: 'p'.repeat(2_000_000) }),
    code: 'invalid_response', tokenRequests: 1 },
  { name: 'a 2 MB 503 OAuth error body: no JSON at all, a bare HTTP error, no description kept', token: (_req, res) => json(res, 503, { error: 'temporarily_unavailable', error_description: 'd'.repeat(2_000_000) }),
    code: 'invalid_response', tokenRequests: 1, check: (e) => expect(e).toMatchObject({ status: 503, message: expect.stringMatching(/: HTTP 503$/) }) },
  { name: 'an endless token response: reading stops at 1 MiB, the rest is never sent', token: (_req, res) => endless(res, endlessBody),
    act: ({ tm }) => ((endlessBody.bytes = 0), tm.refresh()), code: 'invalid_response', tokenRequests: 1,
    check: () => expect(endlessBody.bytes).toBeLessThan(16 * 2 ** 20) },

  // not a token response
  { name: 'truncated JSON quoting the new tokens', token: (_req, res, rig) => raw(JSON.stringify(rig.good()).slice(0, -20))(_req, res, rig), code: 'invalid_response', tokenRequests: 1 },
  { name: 'a JSON array', token: (_req, res, rig) => json(res, 200, [rig.good()]), code: 'invalid_response', tokenRequests: 1 },
  { name: 'a JSON string', token: raw('"at-a-string"'), code: 'invalid_response', tokenRequests: 1 },
  { name: 'JSON null', token: raw('null'), code: 'invalid_response', tokenRequests: 1 },
  { name: 'an empty 200', token: raw(''), code: 'invalid_response', tokenRequests: 1 },
  { name: 'a 200 with an HTML page', token: (_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'), code: 'invalid_response', tokenRequests: 1 },

  // every malformed field of a token response
  ...(
    [
      ['no access_token', { access_token: undefined }],
      ['an empty access_token', { access_token: '' }],
      ['a numeric access_token', { access_token: 12345 }],
      ['an access_token with a line break', { access_token: 'at-split\r\nx-injected: 1' }],
      ['no token_type', { token_type: undefined }],
      ['token_type mac', { token_type: 'mac' }],
      ['token_type DPoP without DPoP', { token_type: 'DPoP' }],
      ['expires_in as a string', { expires_in: '60' }],
      ['expires_in 0', { expires_in: 0 }],
      ['a negative expires_in', { expires_in: -60 }],
      ['expires_in of 30 000 years', { expires_in: 1e12 }],
      ['expires_in null', { expires_in: null }],
      ['a numeric refresh_token', { refresh_token: 42 }],
      ['an empty refresh_token', { refresh_token: '' }],
      ['a numeric scope', { scope: 7 }],
    ] as const
  ).map(([what, extra]): Row => ({ name: `a 200 with ${what}`, token: field(extra), code: 'invalid_response', tokenRequests: 1 })),

  // OAuth errors: only invalid_grant ends the session
  { name: '400 invalid_grant ends the session', token: oauth(400, 'invalid_grant'), code: 'session_expired', tokenRequests: 1, ended: true },
  { name: '400 invalid_client keeps it', token: oauth(400, 'invalid_client'), code: 'oauth_error', tokenRequests: 1 },
  { name: '401 invalid_client keeps it', token: oauth(401, 'invalid_client'), code: 'oauth_error', tokenRequests: 1 },
  { name: '500 server_error keeps it', token: oauth(500, 'server_error'), code: 'oauth_error', tokenRequests: 1 },
  { name: '503 temporarily_unavailable keeps it', token: oauth(503, 'temporarily_unavailable'), code: 'oauth_error', tokenRequests: 1 },
  { name: '400 with a 1,000,000-character error_description (under the 1 MiB bound): a bounded message', token: (_req, res) => json(res, 400, { error: 'invalid_request', error_description: 'd'.repeat(1_000_000) }),
    code: 'oauth_error', tokenRequests: 1, ms: 5000, check: (e) => expect((e as Error).message.length).toBeLessThan(300) },

  { name: 'an error_description repeating a 440-character refresh token 40 times: redacted before any cut, no piece of it left',
    token: (req, res, rig) => {
      if (rig.tokenRequests == 1) return json(res, 200, rig.good({ refresh_token: 'rt-' + randomBytes(330).toString('base64url') }))
      const presented = new URLSearchParams(req.body).get('refresh_token')!
      json(res, 400, { error: 'invalid_request', error_description: 'refused: ' + presented.repeat(40) })
    },
    act: async ({ tm }) => (await tm.refresh(), tm.refresh()),
    code: 'oauth_error', tokenRequests: 2, generation: 2, check: (e) => expect((e as LatchkeyError).description).toMatch(/^refused: (\[redacted\])+/) },

  // rotation and logout
  { name: 'a lost rotation response: the refresh token is spent; the next refresh presents it and the session ends (a known limit)',
    token: (req, _res, rig) => void (rig.good(), req.socket.destroy()), act: async ({ tm }) => (await tm.refresh().catch(() => {}), tm.refresh()),
    code: 'session_expired', tokenRequests: 2, ended: true },
  { name: 'logout during a slow refresh: logout wins, nothing comes back', token: async (_req, res, rig) => (await sleep(300), json(res, 200, rig.good())),
    act: async ({ tm }) => {
      const refreshing = tm.refresh()
      await sleep(50)
      await tm.logout()
      return refreshing
    },
    code: 'no_session', tokenRequests: 1, ended: true },

  // DPoP nonce churn: one retry each, never a refresh, never a loop
  { name: 'nonce churn at the token endpoint: one retry with the new nonce, then the error', options: { dpop: true },
    token: (_req, res) => json(res, 400, { error: 'use_dpop_nonce' }, { 'dpop-nonce': randomBytes(8).toString('hex') }), code: 'oauth_error', tokenRequests: 2 },
  { name: 'nonce churn at the API: one retry, then the 401 is the answer', options: { dpop: true },
    api: (_req, res) => json(res, 401, { error: 'use_dpop_nonce' }, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': randomBytes(8).toString('hex') }),
    act: ({ tm, api }) => tm.fetch(api.url('/churn')), tokenRequests: 0, apiRequests: 2, check: (r) => expect((r as Response).status).toBe(401) },

  // the API's side
  { name: 'a 401 loop at the API: one refresh, one retry, then the 401', api: refuseAll,
    act: ({ tm, api }) => tm.fetch(api.url('/loop')), tokenRequests: 1, apiRequests: 2, generation: 2, check: (r) => expect((r as Response).status).toBe(401) },
  { name: 'an API that refuses every token, 20 calls a second apart (shortest backoff draws): a refresh per 10 s, not per call; every 401 reaches the caller', api: refuseAll,
    act: async ({ tm, api, freeze, at }) => {
      vi.spyOn(Math, 'random').mockReturnValue(0)
      freeze()
      const warnings: string[] = []
      tm.on('warning', ({ code }) => warnings.push(code))
      const outcomes = await calls(tm, api, at, 20)
      expect(outcomes).toEqual(Array(20).fill(401))
      // t = 0 and t = 10 s refresh and retry; the 18 others are counted as failures, said by an event
      expect(warnings).toEqual(Array(18).fill('token_refused'))
    },
    tokenRequests: 2, apiRequests: 22, generation: 3 },
  { name: 'the same with the longest backoff draws: the failures it counted hold back the refresh at 10 s too', api: refuseAll,
    act: async ({ tm, api, freeze, at }) => {
      vi.spyOn(Math, 'random').mockReturnValue(0.999)
      freeze()
      const outcomes = await calls(tm, api, at, 20)
      // backoffs of 0, 1, 2, 4 and 8 s after the failures at 1, 2, 3, 5 and 9 s: held back until 17 s
      expect(outcomes[10]).toBe('retry_later')
      expect(outcomes.filter((o) => o != 401)).toEqual(['retry_later'])
    },
    tokenRequests: 1, apiRequests: 21, generation: 2 },
  { name: 'a token refused again right after a refresh counts as a failure: the backoff holds back the next refresh, in every tab', api: refuseAll,
    act: async (rig) => {
      const { tm, api, freeze, at } = rig
      vi.spyOn(Math, 'random').mockReturnValue(0.999)
      freeze()
      await tm.fetch(api.url('/first'))
      // refused again and again within 10 s: failures in a row, so the backoff begins
      for (let i = 1; i <= 4; i++) at(i * 100), await tm.fetch(api.url('/again/' + i))
      at(500)
      const other = await rig.otherTab()
      return other.refresh()
    },
    code: 'retry_later', tokenRequests: 1, apiRequests: 6, generation: 2 },
  { name: 'a dead API: NetworkError with the platform\u2019s error as cause', act: ({ tm, closed }) => tm.fetch(closed + '/me'), code: 'network_error', tokenRequests: 0,
    check: (e) => expect((e as Error).cause).toBeInstanceOf(TypeError) },
  { name: 'the API resets the connection: NetworkError', api: (req) => void req.socket.destroy(), act: ({ tm, api }) => tm.fetch(api.url('/reset')), code: 'network_error', tokenRequests: 0, apiRequests: 1 },
  { name: 'the caller aborts: the signal\u2019s reason, as with fetch', api: hang,
    act: ({ tm, api }) => tm.fetch(api.url('/slow'), { signal: AbortSignal.timeout(100) }), tokenRequests: 0, apiRequests: 1,
    check: (e) => expect((e as Error).name).toBe('TimeoutError') },
  { name: 'expires_in 0.2: a token serves for a second, not one call', token: field({ expires_in: 0.2 }),
    act: async ({ tm, api, freeze, at, seed }) => {
      freeze()
      await tm.setTokens({ ...seed, expires_in: 0.2 })
      // 30 calls over 1.5 s: one refresh (after a second), where a 50 ms leeway would refresh every few calls
      for (let i = 0; i < 30; i++) at(i * 50), await tm.fetch(api.url('/short/' + i))
    },
    tokenRequests: 1, apiRequests: 30, generation: 3 },
]

describe('fault matrix (invariants 8 and 10)', () => {
  it('has at least 40 rows', () => expect(rows.length).toBeGreaterThanOrEqual(40))

  it.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const issued: string[] = []
    const mint = (kind: string) => {
      const t = `${kind}-${randomBytes(16).toString('base64url')}`
      issued.push(t)
      return t
    }
    const accepted = new Set<string>()
    let refreshToken = ''
    const good: Rig['good'] = (extra = {}) => {
      const at = mint('at')
      accepted.add(at)
      // A row may choose the refresh token (a long one, say): the server then expects it.
      const chosen = extra.refresh_token
      refreshToken = typeof chosen == 'string' && chosen ? (issued.push(chosen), chosen) : mint('rt')
      const body = { access_token: at, token_type: row.options?.dpop ? 'DPoP' : 'Bearer', expires_in: 60, refresh_token: refreshToken, ...extra }
      return JSON.parse(JSON.stringify(body))
    }
    const as = await served(async (req, res) => {
      rig.tokenRequests++
      const presented = new URLSearchParams(req.body).get('refresh_token')
      if (presented != refreshToken) return json(res, 400, { error: 'invalid_grant' })
      await (row.token ?? ((_q, s) => json(s, 200, good())))(req, res, rig)
    })
    const api = await served(async (req, res) => {
      rig.apiRequests++
      rig.lastAuth = req.headers.authorization
      if (row.api) return row.api(req, res, rig)
      const ok = accepted.has((req.headers.authorization ?? '').split(' ')[1]!)
      if (ok) json(res, 200, { ok })
      else json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })
    })
    const dead = await serve(() => {})
    await dead.close()
    const hub = createTabsHub()
    const { tokenEndpoint, refresh, ...options } = row.options ?? {}
    const make = () =>
      createTokenManager({
        clientId: 'spa',
        tokenEndpoint: tokenEndpoint == 'closed' ? dead.url('/token') : as.url('/token'),
        allowedOrigins: [api.origin, dead.origin],
        dpop: false,
        crossTab: hub.tab(),
        timeoutSeconds: 2,
        ...(refresh && { refresh: { url: as.url((refresh as { url: string }).url) } }),
        ...options,
      })
    let start = 0
    const rig: Rig = {
      tm: make(),
      seed: undefined as never,
      good,
      tokenRequests: 0,
      apiRequests: 0,
      lastAuth: undefined,
      api,
      closed: dead.origin,
      async otherTab() {
        const other = make()
        expect(await other.restore()).toBe(true)
        return other
      },
      freeze() {
        start = Date.now()
        vi.useFakeTimers({ toFake: ['Date'], now: start })
      },
      at: (ms) => vi.setSystemTime(start + ms),
    }
    const events: unknown[] = []
    for (const type of ['tokens', 'refresh', 'refresh-error', 'session-expired', 'logout', 'warning'] as const) rig.tm.on(type, (e) => events.push(e))
    rig.seed = good()
    await rig.tm.setTokens(rig.seed)

    const began = performance.now()
    const outcome = await (row.act ?? (({ tm }: Rig) => tm.refresh()))(rig).then(
      (value) => value,
      (error: unknown) => error,
    )
    const took = performance.now() - began
    vi.useRealTimers()

    const code = isLatchkeyError(outcome) ? outcome.code : undefined
    expect(code, String(outcome)).toBe(row.code)
    expectNoToken(outcome, issued)
    expectNoToken(events, issued)
    expect({ tokenRequests: rig.tokenRequests, apiRequests: rig.apiRequests }).toEqual({ tokenRequests: row.tokenRequests, apiRequests: row.apiRequests ?? 0 })
    expect(took).toBeLessThan(row.ms ?? 1500)
    await row.check?.(outcome, rig)

    const status = rig.tm.status()
    if (row.ended) {
      expect(status).toBeUndefined()
      return
    }
    expect(status?.generation).toBe(row.generation ?? 1)
    if (row.api) return
    // the last good state: the next call goes out with the token of that generation
    expect((await rig.tm.fetch(api.url('/after'))).status).toBe(200)
    if (!row.generation) expect(rig.lastAuth).toBe(`${rig.seed.token_type} ${rig.seed.access_token}`)
  })
})

describe('proactive refreshes are spread (invariant 10)', () => {
  it('tokens issued in the same instant are refreshed at times drawn inside the leeway window, not together', async () => {
    const refreshedAt: number[] = []
    let issue = 0
    const as = await served((_req, res) => {
      refreshedAt.push(Date.now() - issue)
      json(res, 200, { access_token: 'at-' + randomBytes(8).toString('hex'), token_type: 'Bearer', expires_in: 300, refresh_token: 'rt-' + randomBytes(8).toString('hex') })
    })
    const api = await served((_req, res) => json(res, 200, {}))
    issue = Date.now()
    vi.useFakeTimers({ toFake: ['Date'], now: issue })
    const clients = Array.from({ length: 40 }, () =>
      createTokenManager({ clientId: 'spa', tokenEndpoint: as.url('/token'), allowedOrigins: [api.origin], dpop: false, crossTab: false, refreshLeewaySeconds: 30 }),
    )
    await Promise.all(clients.map((tm) => tm.setTokens({ access_token: 'at-seed', token_type: 'Bearer', expires_in: 300, refresh_token: 'rt-seed' })))
    for (let t = 260_000; t <= 300_000; t += 250) {
      vi.setSystemTime(issue + t)
      await Promise.all(clients.map((tm) => tm.getAccessToken()))
    }
    expect(refreshedAt).toHaveLength(40)
    // never before expiry − leeway, and the last half of the leeway stays a margin
    expect(Math.min(...refreshedAt)).toBeGreaterThanOrEqual(270_000)
    expect(Math.max(...refreshedAt)).toBeLessThanOrEqual(285_000)
    // spread: 40 draws over 15 s fall in many different quarter-seconds
    expect(new Set(refreshedAt).size).toBeGreaterThan(20)
  })
  it.each([8, 60, 120])('%i s tokens issued in the same instant (the leeway capped at a quarter of the lifetime) are refreshed at scattered times in the first half of the window', async (lifetime) => {
    const refreshedAt: number[] = []
    let issue = 0
    const as = await served((_req, res) => {
      refreshedAt.push(Date.now() - issue)
      json(res, 200, { access_token: 'at-' + randomBytes(8).toString('hex'), token_type: 'Bearer', expires_in: lifetime, refresh_token: 'rt-' + randomBytes(8).toString('hex') })
    })
    issue = Date.now()
    vi.useFakeTimers({ toFake: ['Date'], now: issue })
    const clients = Array.from({ length: 40 }, () =>
      createTokenManager({ clientId: 'spa', tokenEndpoint: as.url('/token'), allowedOrigins: ['https://api.example'], dpop: false, crossTab: false, refreshLeewaySeconds: 30 }),
    )
    await Promise.all(clients.map((tm) => tm.setTokens({ access_token: 'at-seed', token_type: 'Bearer', expires_in: lifetime, refresh_token: 'rt-seed' })))
    // the effective window is a quarter of the lifetime; its first half is where refreshes fall
    const window = (lifetime * 1000) / 4
    const step = window / 200
    for (let t = lifetime * 1000 - window - 10 * step; t <= lifetime * 1000 - window / 2 + 10 * step; t += step) {
      vi.setSystemTime(issue + t)
      await Promise.all(clients.map((tm) => tm.getAccessToken()))
    }
    expect(refreshedAt).toHaveLength(40)
    expect(Math.min(...refreshedAt)).toBeGreaterThanOrEqual(lifetime * 1000 - window)
    expect(Math.max(...refreshedAt)).toBeLessThanOrEqual(lifetime * 1000 - window / 2 + step)
    // 40 draws over 100 steps of the half-window fall at many different times
    expect(new Set(refreshedAt).size).toBeGreaterThan(20)
  })
})

describe('clients told the same Retry-After come back spread out (invariant 10)', () => {
  it('40 clients get 503 with Retry-After: 10; each waits 10 s to 15 s, and they return at many different times', async () => {
    const as = await served((_req, res) => void res.writeHead(503, { 'retry-after': '10' }).end())
    const clients = Array.from({ length: 40 }, () =>
      createTokenManager({ clientId: 'spa', tokenEndpoint: as.url('/token'), allowedOrigins: ['https://api.example'], dpop: false, crossTab: false }),
    )
    await Promise.all(clients.map((tm) => tm.setTokens({ access_token: 'at-seed', token_type: 'Bearer', expires_in: 300, refresh_token: 'rt-seed' })))
    await Promise.all(clients.map((tm) => tm.refresh().catch(() => {})))
    const waits = await Promise.all(clients.map((tm) => tm.refresh().then(() => 0, (e: LatchkeyError) => e.retryAfter!)))
    for (const w of waits) expect(w).toBeGreaterThan(9_000), expect(w).toBeLessThanOrEqual(15_000)
    // spread over 5 s: 40 draws fall into many different tenths of a second
    expect(new Set(waits.map((w) => Math.floor(w / 100))).size).toBeGreaterThan(20)
  })
})
