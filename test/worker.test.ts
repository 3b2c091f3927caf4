// Worker mode over a real MessageChannel: serveTokenManager on one port (the worker's side),
// connectTokenManager on the other (the page's), against the loopback token server and API. Every
// message that crosses is recorded, so the tests can check that no token ever does.
import ky from 'ky'
import { describe, expect, it } from 'vitest'
import {
  isLatchkeyError,
  LatchkeyError,
  LoginError,
  NoSessionError,
  OAuthError,
  ResponseError,
  RetryLaterError,
  type SessionInfo,
  type TokenManager,
  type TokenManagerEvents,
  type TokenManagerOptions,
} from '../src/index.js'
import { kyHooks } from '../src/ky.js'
import { connectTokenManager, serveTokenManager, type ConnectOptions } from '../src/worker.js'
import { advance, cleanups, served, setup } from './support/harness.js'
import { startResource } from './support/ky-helpers.js'
import type { TokenServer } from './support/servers.js'

const redirectUri = 'https://app.example/cb'
const authorizationEndpoint = 'https://as.example/authorize'

/** A page handle and the worker it talks to, over a MessageChannel that records what crosses. */
function connect(as: TokenServer, allowed: string[], options: Partial<TokenManagerOptions> = {}, connectOptions: ConnectOptions = {}) {
  const { port1, port2 } = new MessageChannel()
  const crossed: unknown[] = []
  // As text when sent: a transferred buffer is empty afterwards.
  const seen: string[] = []
  for (const port of [port1, port2]) {
    const post = port.postMessage.bind(port)
    port.postMessage = (message: unknown, transfer?: Transferable[]) => (crossed.push(message), seen.push(text(message)), post(message, transfer as never))
  }
  const inWorker = serveTokenManager(
    { clientId: 'spa', tokenEndpoint: as.tokenEndpoint, revocationEndpoint: as.revocationEndpoint, allowedOrigins: allowed, crossTab: false, ...options },
    port1,
  )
  const tm = connectTokenManager(port2, connectOptions)
  cleanups.push(() => (port1.close(), port2.close()))
  return { tm, inWorker, crossed, seen: () => seen.join('\n') }
}

/** Signs in the way an app does: authorizationUrl, the server's redirect, handleRedirect. */
async function signIn(tm: TokenManager, as: TokenServer) {
  const url = new URL(await tm.authorizationUrl({ authorizationEndpoint, redirectUri, scope: 'api' }))
  await tm.handleRedirect(`${redirectUri}?code=${as.code()}&state=${url.searchParams.get('state')}`)
  return url
}

/** A Bearer resource server that records every header, and a page signed in to it through a worker. */
async function signedInToResource(options: Parameters<typeof startResource>[1] = {}) {
  const { as } = await setup()
  const resource = await startResource(as, options)
  cleanups.push(resource.close)
  const { tm } = connect(as, [resource.origin], { dpop: false })
  await signIn(tm, as)
  return { as, resource, tm }
}

/** A message as text: bytes decoded, streams named. */
const text = (message: unknown) =>
  JSON.stringify(message, (_, v) =>
    v instanceof ArrayBuffer ? new TextDecoder().decode(v) : v instanceof ReadableStream ? '[stream]' : v instanceof Error ? String(v) : v,
  )

const issued = (as: TokenServer) => [...as.accessTokens.keys(), ...as.refreshTokens.keys(), ...as.rotatedOut]

const reasonOf = async (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e as Error & Partial<LatchkeyError>)

describe('worker mode: login and calls', () => {
  it('signs in through the worker, which alone holds the DPoP key and the tokens; the API gets a DPoP request', async () => {
    const { as, api } = await setup({ dpop: true })
    const { tm, seen } = connect(as, [api.origin])
    const url = await signIn(tm, as)
    // A worker may end with the page's navigation to the login: the code is bound by PKCE, the
    // tokens by the exchange's proof.
    expect(url.searchParams.has('dpop_jkt')).toBe(false)
    expect(url.searchParams.get('code_challenge_method')).toBe('S256')
    // status() is synchronous in the page and already reflects the login the reply reported.
    expect(tm.status()).toMatchObject({ tokenType: 'DPoP', scope: 'api', generation: 1 })
    const res = await tm.fetch(api.url('/items?x=1'), { method: 'POST', body: 'hello', headers: { 'x-app': '1' } })
    expect(res).toBeInstanceOf(Response)
    expect(res.status).toBe(200)
    expect(res.statusText).toBe('OK')
    expect(res.url).toBe(api.url('/items?x=1'))
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.json()).toEqual({ ok: true, method: 'POST', path: '/items?x=1', body: 'hello' })
    expect(api.requests.at(-1)!.authorization).toMatch(/^DPoP /)
    expect(api.requests.at(-1)!.dpop).toBeTruthy()
    expect(issued(as).length).toBeGreaterThan(1)
    // The scan sees what crossed, bodies included.
    expect(seen()).toContain('hello')
    for (const token of issued(as)) expect(seen()).not.toContain(token)
  })

  it('sends every replayable body type as fetch would, with its content type', async () => {
    const { resource, tm } = await signedInToResource()
    const form = new FormData()
    form.append('a', '1')
    form.append('file', new Blob(['xyz'], { type: 'text/plain' }), 'f.txt')
    const bodies: [string, BodyInit][] = [
      ['string', 'plain text'],
      ['URLSearchParams', new URLSearchParams({ q: 'a b', r: 'é' })],
      ['FormData', form],
      ['Blob', new Blob(['{"blob":1}'], { type: 'application/json' })],
      ['ArrayBuffer', new TextEncoder().encode('bytes').buffer as ArrayBuffer],
      ['Uint8Array', new TextEncoder().encode('view')],
      ['DataView', new DataView(new TextEncoder().encode('dataview').buffer as ArrayBuffer)],
    ]
    for (const [name, body] of bodies) {
      const res = await tm.fetch(resource.url('/' + name), { method: 'PUT', body })
      expect(res.status, name).toBe(200)
      const seen = resource.of('/' + name)[0]!
      const expected = new Request(resource.url('/'), { method: 'PUT', body })
      const type = expected.headers.get('content-type')
      if (name == 'FormData') expect(seen.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/)
      else expect(seen.headers['content-type'], name).toBe(type ?? undefined)
      if (name != 'FormData') expect(seen.body, name).toBe(await expected.text())
      else expect(seen.body).toContain('filename="f.txt"')
    }
    // A Request, alone and with init overriding its method; a URL object.
    const request = new Request(resource.url('/request'), { method: 'POST', body: 'from a request', headers: { 'x-r': '1' } })
    expect((await tm.fetch(request)).status).toBe(200)
    expect(resource.of('/request')[0]).toMatchObject({ method: 'POST', body: 'from a request' })
    expect(resource.of('/request')[0]!.headers['x-r']).toBe('1')
    expect((await tm.fetch(new URL(resource.url('/url')), { method: 'DELETE' })).status).toBe(200)
    expect(resource.of('/url')[0]!.method).toBe('DELETE')
    expect(resource.requests.every((r) => r.headers.authorization?.startsWith('Bearer '))).toBe(true)
  })

  it('a 401 refreshes once in the worker for 20 concurrent calls, replays their bodies, and the page hears of it', async () => {
    const { as, api } = await setup({ dpop: true, delayMs: 50 })
    const { tm } = connect(as, [api.origin])
    await signIn(tm, as)
    const heard: TokenManagerEvents['refresh'][] = []
    tm.on('refresh', (state) => heard.push(state))
    for (const t of as.accessTokens.values()) t.revoked = true
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await tm.fetch(api.url('/n/' + i), { method: 'POST', body: 'body ' + i })
        return ((await res.json()) as { body: string }).body
      }),
    )
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => 'body ' + i))
    expect(as.counts.refresh).toBe(1)
    expect(as.counts.invalidGrant).toBe(0)
    await expect.poll(() => heard.length).toBe(1)
    expect(heard[0]).toMatchObject({ reason: 'unauthorized', generation: 2 })
    expect(tm.status()?.generation).toBe(2)
  })

  it('a reply carries the session snapshot only when it changed; status() stays the worker\'s', async () => {
    const { as, api } = await setup({ dpop: true })
    const { tm, inWorker, crossed } = connect(as, [api.origin])
    await signIn(tm, as)
    const before = crossed.length
    for (let i = 0; i < 3; i++) await (await tm.fetch(api.url('/same'))).arrayBuffer()
    const replies = crossed.slice(before).filter((m) => !('m' in (m as object)))
    expect(replies).toHaveLength(3)
    for (const reply of replies) expect(reply).not.toHaveProperty('s')
    expect(tm.status()).toEqual(inWorker.status())
    // A refresh during a call: the reply that follows carries the new state.
    advance(301)
    await tm.fetch(api.url('/after-expiry'))
    expect(tm.status()).toEqual(inWorker.status())
    expect(tm.status()?.generation).toBe(2)
  })

  it('refreshes an expired token before the request, as the core does', async () => {
    const { as, api } = await setup({ dpop: true })
    const { tm } = connect(as, [api.origin])
    await signIn(tm, as)
    advance(301)
    expect((await tm.fetch(api.url('/after-expiry'))).status).toBe(200)
    expect(as.counts.refresh).toBe(1)
  })

  it('a ReadableStream body is sent once and never replayed after a 401', async () => {
    const { as, resource, tm } = await signedInToResource()
    for (const t of as.accessTokens.values()) t.revoked = true
    const body = new Response('streamed body').body!
    const res = await tm.fetch(resource.url('/stream'), { method: 'POST', body, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(401)
    expect(resource.of('/stream')).toHaveLength(1)
    expect(resource.of('/stream')[0]!.body).toBe('streamed body')
    expect(as.counts.refresh).toBe(0)
  })

  it('streams a long response body; a short one with a known length crosses whole', async () => {
    const { as } = await setup()
    const chunk = 'x'.repeat(16_384)
    const big = await served(async (req, res) => {
      if (req.url == '/small') return void res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('small')
      res.writeHead(200, { 'content-type': 'text/plain' })
      for (let i = 0; i < 16; i++) {
        res.write(chunk)
        await new Promise((r) => setTimeout(r, 5))
      }
      res.end()
    })
    const { tm, crossed } = connect(as, [big.origin], { dpop: false })
    await signIn(tm, as)
    const res = await tm.fetch(big.url('/big'))
    expect(res.body).toBeInstanceOf(ReadableStream)
    expect((await res.text()).length).toBe(16 * 16_384)
    expect(await (await tm.fetch(big.url('/small'))).text()).toBe('small')
    const bodies = crossed.map((m) => (m as { r?: { b?: unknown } }).r?.b).filter(Boolean)
    expect(bodies[0]).toBeInstanceOf(ReadableStream)
    expect(bodies[1]).toBeInstanceOf(ArrayBuffer)
  })

  it('an AbortSignal in the page aborts the request in the worker', async () => {
    const { resource: slow, tm } = await signedInToResource({ delayMs: 3000 })
    const ctl = new AbortController()
    const pending = reasonOf(tm.fetch(slow.url('/slow'), { signal: ctl.signal }))
    await expect.poll(() => slow.requests.length).toBe(1)
    ctl.abort()
    expect((await pending)?.name).toBe('AbortError')
    await expect.poll(() => slow.requests[0]!.aborted).toBe(true)
    // Already aborted: rejected at once, nothing sent.
    expect((await reasonOf(tm.fetch(slow.url('/never'), { signal: AbortSignal.abort() })))?.name).toBe('AbortError')
    expect(slow.of('/never')).toHaveLength(0)
  })

  it('kyHooks work with a connected handle', async () => {
    const { as, api } = await setup({ dpop: true })
    const { tm } = connect(as, [api.origin])
    await signIn(tm, as)
    const http = ky.create({ prefixUrl: api.origin, retry: 0, hooks: kyHooks(tm) })
    expect(await http.post('echo', { json: { a: 1 } }).json()).toMatchObject({ ok: true, method: 'POST', body: '{"a":1}' })
    expect(api.requests.at(-1)!.authorization).toMatch(/^DPoP /)
  })
})

describe('worker mode: resources and the issuer', () => {
  it('with resources: the login asks for every API, and status(origin) in the page is the worker\'s', async () => {
    const { as, api } = await setup()
    const billing = await startResource(as)
    cleanups.push(billing.close)
    const resources = { [api.origin]: 'https://api.example', [billing.origin]: { resource: 'https://billing.example', scope: 'billing' } }
    const { tm, inWorker } = connect(as, [], { resources, dpop: false, authorizationEndpoint })
    const url = new URL(await tm.authorizationUrl({ redirectUri, resource: 'https://extra.example' }))
    expect(url.origin + url.pathname).toBe(authorizationEndpoint)
    expect(url.searchParams.getAll('resource')).toEqual(['https://extra.example', 'https://api.example', 'https://billing.example'])
    await tm.handleRedirect(`${redirectUri}?code=${as.code()}&state=${url.searchParams.get('state')}`)
    expect((await tm.fetch(billing.url('/b'))).status).toBe(200)
    expect(tm.status(billing.origin)).toEqual(inWorker.status(billing.origin))
    expect(tm.status(billing.url('/any/path'))).toEqual(inWorker.status(billing.origin))
    expect(tm.status(billing.origin)).not.toEqual(tm.status())
    expect(tm.status()).toEqual(inWorker.status())
  })

  it('handleRedirect in the page checks the issuer the worker was given (RFC 9207)', async () => {
    const { as, api } = await setup()
    const { tm } = connect(as, [api.origin], { dpop: false, issuer: 'https://as.example', issParameterRequired: true })
    const state = async () => new URL(await tm.authorizationUrl({ authorizationEndpoint, redirectUri })).searchParams.get('state')
    const wrong = await reasonOf(tm.handleRedirect(`${redirectUri}?code=${as.code()}&state=${await state()}&iss=https://evil.example`))
    expect(wrong).toBeInstanceOf(LoginError)
    expect(wrong?.message).toBe('wrong issuer')
    expect(await reasonOf(tm.handleRedirect(`${redirectUri}?code=${as.code()}&state=${await state()}`))).toBeInstanceOf(LoginError)
    await tm.handleRedirect(`${redirectUri}?code=${as.code()}&state=${await state()}&iss=https://as.example`)
    expect(as.counts.code).toBe(1)
  })
})

describe('worker mode: errors and events', () => {
  it('errors arrive as the latchkey errors they were, with code, name and OAuth fields', async () => {
    const { as, api } = await setup({ dpop: true })
    const { tm } = connect(as, [api.origin])
    const none = await reasonOf(tm.fetch(api.url('/x')))
    expect(none).toBeInstanceOf(NoSessionError)
    expect(isLatchkeyError(none, 'no_session')).toBe(true)
    expect(none?.name).toBe('NoSessionError')
    const refused = await reasonOf(tm.exchangeCode({ code: 'unknown', codeVerifier: 'v', redirectUri }))
    expect(refused).toBeInstanceOf(OAuthError)
    expect(refused).toMatchObject({ code: 'oauth_error', name: 'OAuthError', error: 'invalid_grant', status: 400 })
    expect(refused?.message).toContain('POST ' + as.tokenEndpoint)
    // redirectResult runs in the page, against the page's sessionStorage.
    const login = await reasonOf(tm.handleRedirect(`${redirectUri}?code=c&state=never-issued`))
    expect(login).toBeInstanceOf(LoginError)
    const unsupported = await reasonOf(tm.getAccessToken())
    expect(isLatchkeyError(unsupported, 'unsupported')).toBe(true)
    expect(unsupported).toBeInstanceOf(LatchkeyError)
  })

  it('a Retry-After learnt in the worker reaches the page: retryAfter on the 503, then RetryLaterError without a request', async () => {
    const { as, api } = await setup({ onRefresh: (res) => (res.writeHead(503, { 'retry-after': '30' }).end(), true) })
    const { tm } = connect(as, [api.origin], { dpop: false })
    await signIn(tm, as)
    expect(await reasonOf(tm.refresh())).toMatchObject({ code: 'invalid_response', status: 503, retryAfter: 30_000 })
    const held = await reasonOf(tm.refresh())
    expect(held).toBeInstanceOf(RetryLaterError)
    expect(held?.retryAfter).toBeGreaterThan(25_000)
    expect(as.counts.refresh).toBe(1)
  })

  it('other errors keep their name and message: a TypeError of a bad argument, an unknown message', async () => {
    const { as, api } = await setup()
    const { tm } = connect(as, [api.origin], { dpop: false })
    const off = await reasonOf(tm.dpopThumbprint())
    expect(off).toBeInstanceOf(TypeError)
    expect(off?.message).toBe('dpop: off')
    const bad = await reasonOf(tm.authorizationUrl({ authorizationEndpoint: 'http://as.example/authorize', redirectUri }))
    expect(bad).toBeInstanceOf(TypeError)
    expect(bad?.message).toContain('authorizationEndpoint')
  })

  it('forwards events with their errors rebuilt; a failed refresh keeps the session', async () => {
    const { as, api } = await setup({ onRefresh: (res) => (res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '7' }).end('<h1>down</h1>'), true) })
    const { tm } = connect(as, [api.origin], { dpop: false })
    const errors: TokenManagerEvents['refresh-error'][] = []
    const tokens: TokenManagerEvents['tokens'][] = []
    tm.on('refresh-error', (state) => errors.push(state))
    const off = tm.on('tokens', (state) => tokens.push(state))
    await signIn(tm, as)
    await expect.poll(() => tokens.length).toBe(1)
    expect(tokens[0]).toMatchObject({ reason: 'login', tokenType: 'Bearer', generation: 1 })
    off()
    const failed = await reasonOf(tm.refresh())
    expect(failed).toBeInstanceOf(ResponseError)
    expect(failed?.status).toBe(503)
    await expect.poll(() => errors.length).toBe(1)
    expect(errors[0]!.reason).toBe('manual')
    expect(errors[0]!.error).toBeInstanceOf(ResponseError)
    expect(errors[0]!.error.status).toBe(503)
    // The server's Retry-After crosses too; meanwhile a refresh fails at once, in the worker, as a RetryLaterError.
    expect(failed?.retryAfter).toBeGreaterThan(6000)
    const held = await reasonOf(tm.refresh())
    expect(held).toBeInstanceOf(RetryLaterError)
    expect(held).toMatchObject({ code: 'retry_later', name: 'RetryLaterError' })
    expect(held?.retryAfter).toBeGreaterThan(5000)
    expect(tm.status()?.generation).toBe(1)
  })

  it('logout revokes in the worker; the page hears it and status() is signed out', async () => {
    const { as, api } = await setup({ dpop: true })
    const { tm, inWorker, seen } = connect(as, [api.origin])
    await signIn(tm, as)
    const statuses: (SessionInfo | undefined)[] = []
    tm.on('logout', () => statuses.push(tm.status()))
    await tm.logout()
    expect(tm.status()).toBeUndefined()
    expect(inWorker.status()).toBeUndefined()
    await expect.poll(() => statuses).toEqual([undefined])
    expect(as.counts.revoked).toBe(1)
    expect(isLatchkeyError(await reasonOf(tm.fetch(api.url('/x'))), 'no_session')).toBe(true)
    for (const token of issued(as)) expect(seen()).not.toContain(token)
  })

  it('a worker that failed to start fails every call instead of leaving it waiting', async () => {
    const target = Object.assign(new EventTarget(), { postMessage() {} })
    const tm = connectTokenManager(target)
    const pending = reasonOf(tm.restore())
    target.dispatchEvent(new Event('error'))
    expect(await pending).toMatchObject({ code: 'worker_error', message: 'the worker failed' })
    expect(isLatchkeyError(await pending, 'worker_error')).toBe(true)
    expect(await reasonOf(tm.fetch('https://api.example/'))).toMatchObject({ code: 'worker_error' })
  })

  it('dispose stops the page listening and the worker answering', async () => {
    const { as, api } = await setup()
    const { tm } = connect(as, [api.origin], { dpop: false })
    expect(await tm.restore()).toBe(false)
    tm.dispose()
    let settled = false
    tm.restore().then(() => (settled = true), () => (settled = true))
    await new Promise((r) => setTimeout(r, 200))
    expect(settled).toBe(false)
  })
})
