// A refresh refused in any form ends the session (invariant 13): RFC 6749's `invalid_grant`,
// and a bare 400 or 401 whose body holds no readable OAuth error (Glewlwyd answers a spent,
// revoked or expired refresh token with HTTP 400 and an empty body). What may pass (5xx, timeouts,
// network failures) stays retryable and keeps the session.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createTokenManager, isLatchkeyError, SessionExpiredError, type LatchkeyError, type TokenManagerOptions } from '../src/index.js'
import { served } from './support/harness.js'
import { expectNoToken } from './support/invariants-helpers.js'
import { json } from './support/servers.js'

type Answer = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

const empty = (status: number): Answer => (_req, res) => void res.writeHead(status).end()
const text = (status: number, type: string, body: string): Answer => (_req, res) => void res.writeHead(status, { 'content-type': type }).end(body)

/** A token endpoint that answers every refresh_token grant with `answer`, an API that takes any token, and a signed-in manager. */
async function rig(answer: Answer, options: Partial<TokenManagerOptions> = {}, own = false) {
  const issued: string[] = []
  const counts = { token: 0, api: 0 }
  const as = await served(async (req, res) => {
    counts.token++
    await answer(req, res)
  })
  const api = await served((_req, res) => (counts.api++, json(res, 200, { ok: true })))
  const tm = createTokenManager({
    clientId: 'spa',
    allowedOrigins: [api.origin],
    dpop: false,
    crossTab: false,
    timeoutSeconds: 1,
    ...(own ? { refresh: { url: as.url('/auth/refresh') } } : { tokenEndpoint: as.url('/token') }),
    ...options,
  })
  const events: string[] = []
  const expired: LatchkeyError[] = []
  tm.on('session-expired', ({ error }) => (events.push('session-expired'), expired.push(error)))
  tm.on('refresh-error', () => events.push('refresh-error'))
  const seed = { access_token: 'at-' + randomBytes(16).toString('hex'), refresh_token: 'rt-' + randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300 }
  issued.push(seed.access_token, seed.refresh_token)
  await tm.setTokens(seed)
  return { tm, api, counts, events, expired, issued }
}

/** Refused: the session ends as with invalid_grant, however the server said it. */
const refused: [string, Answer][] = [
  ['400 with an empty body (Glewlwyd)', empty(400)],
  ['401 with an empty body', empty(401)],
  ['400 with an HTML page', text(400, 'text/html', '<html><body>Bad Request</body></html>')],
  ['401 with a plain-text body', text(401, 'text/plain', 'Unauthorized')],
  ['400 with JSON but no error', (_req, res) => json(res, 400, { message: 'bad refresh token' })],
  ['400 with an error that is not a string', (_req, res) => json(res, 400, { error: 42 })],
  ['400 invalid_grant (RFC 6749 §5.2)', (_req, res) => json(res, 400, { error: 'invalid_grant' })],
]

/** Not a refusal of the session: retryable, the session stays. */
const passing: [string, string, Answer][] = [
  ['500 with an empty body', 'invalid_response', empty(500)],
  ['502 with an HTML page', 'invalid_response', text(502, 'text/html', '<html>bad gateway</html>')],
  ['503 with an empty body', 'invalid_response', empty(503)],
  ['a timeout', 'timeout', () => new Promise<void>(() => {})],
  ['a reset connection', 'network_error', (req) => void req.socket.destroy()],
  ['400 invalid_request (an OAuth error that is not a refusal)', 'oauth_error', (_req, res) => json(res, 400, { error: 'invalid_request' })],
  ['429 with an empty body', 'invalid_response', empty(429)],
]

describe('a refresh refused without a readable OAuth error ends the session (invariant 13)', () => {
  it.each(refused)('%s: session_expired, the session-expired event, no tokens, no further token request', async (_name, answer) => {
    const { tm, api, counts, events, expired, issued } = await rig(answer)
    const error = await tm.refresh().then(() => undefined, (e: LatchkeyError) => e)
    expect(error).toBeInstanceOf(SessionExpiredError)
    expect(isLatchkeyError(error, 'session_expired')).toBe(true)
    expect(events).toEqual(['session-expired'])
    expect(expired[0]).toBe(error)
    expect(tm.status()).toBeUndefined()
    // Signed out: the next call sends nothing anywhere.
    expect((await tm.fetch(api.url('/me')).catch((e: LatchkeyError) => e)).code).toBe('no_session')
    expect(counts).toEqual({ token: 1, api: 0 })
    expectNoToken(error, issued)
  })

  it('the same through tm.fetch with an expired token: it rejects with session_expired', async () => {
    const { tm, api, counts, events } = await rig(empty(400), {}, false)
    await tm.setTokens({ access_token: 'at-short', refresh_token: 'rt-short', token_type: 'Bearer', expires_in: 0.001 })
    await new Promise((r) => setTimeout(r, 1100))
    const error = await tm.fetch(api.url('/me')).catch((e: LatchkeyError) => e)
    expect((error as LatchkeyError).code).toBe('session_expired')
    expect(events).toEqual(['session-expired'])
    expect(counts).toEqual({ token: 1, api: 0 })
  })

  it('the app\u2019s own refresh endpoint too: a bare 400 ends the session', async () => {
    const { tm, events } = await rig(empty(400), {}, true)
    expect((await tm.refresh().catch((e: LatchkeyError) => e))!.code).toBe('session_expired')
    expect(events).toEqual(['session-expired'])
  })

  it('a code exchange answered 400 with an empty body is invalid_response: there is no session to end', async () => {
    const as = await served(empty(400))
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: as.url('/token'), allowedOrigins: [as.origin], dpop: false, crossTab: false })
    const events: string[] = []
    tm.on('session-expired', () => events.push('session-expired'))
    const error = await tm.exchangeCode({ code: 'c', codeVerifier: 'v'.repeat(43), redirectUri: 'http://127.0.0.1/' }).catch((e: LatchkeyError) => e)
    expect((error as LatchkeyError).code).toBe('invalid_response')
    expect(events).toEqual([])
  })
})

describe('what may pass stays retryable and keeps the session', () => {
  it.each(passing)('%s: %s, refresh-error, the session and its token stay', async (_name, code, answer) => {
    const { tm, api, counts, events } = await rig(answer)
    const before = tm.status()
    const error = await tm.refresh().then(() => undefined, (e: LatchkeyError) => e)
    expect(error?.code).toBe(code)
    expect(events).toEqual(['refresh-error'])
    expect(tm.status()).toEqual(before)
    // The still-valid token goes on being used.
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(counts.token).toBe(1)
  })
})
