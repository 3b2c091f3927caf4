// Token requests never follow redirects (invariant 9); no token of any generation in an error and
// no unbounded server text in a message (invariant 6); dispose() lets go of what a manager holds.
import { describe, expect, it } from 'vitest'
import { createTokenManager, isLatchkeyError, type TabMessage, type CrossTab } from '../src/index.js'
import { advance, cleanups, manager, served, setup, windowEvents } from './support/harness.js'
import { expectNoToken, tokensOf } from './support/invariants-helpers.js'
import { endless, json } from './support/servers.js'
import { createTabsHub } from './support/tabs.js'

/** A server that records every request it gets: where a redirect would send the refresh token. */
async function attacker() {
  const seen: { path: string; body: string }[] = []
  const evil = await served((req, res) => {
    seen.push({ path: req.url!, body: req.body })
    json(res, 200, { access_token: 'evil-at', token_type: 'Bearer', expires_in: 3600, refresh_token: 'evil-rt' })
  })
  return { evil, seen }
}

describe('token requests never follow a redirect (invariant 9)', () => {
  it.each([307, 308, 302])('a %s from the token endpoint sends the refresh token nowhere and adopts nothing', async (status) => {
    const { as, api } = await setup()
    const { evil, seen } = await attacker()
    const redirecting = await served((_req, res) => res.writeHead(status, { location: evil.url('/steal') }).end())
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: redirecting.url('/token'), allowedOrigins: [api.origin], dpop: false, crossTab: false })
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const error = await tm.refresh().catch((e) => e)
    expect(isLatchkeyError(error, 'invalid_response')).toBe(true)
    expect(error.message).toMatch(/redirect refused/)
    expect(error.status).toBe(status)
    expect(seen).toEqual([])
    // the last good tokens stay; nothing of the attacker's answer was adopted
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(api.requests.at(-1)!.authorization).toBe('Bearer ' + seeded.access_token)
    expectNoToken(error, [seeded.refresh_token, seeded.access_token])
  })

  it('a redirect from the revocation endpoint at logout: the refresh token goes nowhere, logout completes', async () => {
    const { as, api } = await setup()
    const { evil, seen } = await attacker()
    const redirecting = await served((_req, res) => res.writeHead(307, { location: evil.url('/revoke') }).end())
    const tm = createTokenManager({
      clientId: 'spa',
      tokenEndpoint: as.tokenEndpoint,
      revocationEndpoint: redirecting.url('/revoke'),
      allowedOrigins: [api.origin],
      dpop: false,
      crossTab: false,
    })
    const warnings: string[] = []
    tm.on('warning', ({ code }) => warnings.push(code))
    await tm.setTokens(as.seed())
    await tm.logout()
    expect(seen).toEqual([])
    expect(warnings).toEqual(['revocation_failed'])
    expect(tm.status()).toBeUndefined()
  })

  it('a redirect from the app\u2019s own refresh endpoint (cookie pattern) is refused too', async () => {
    const { api } = await setup()
    const { evil, seen } = await attacker()
    const redirecting = await served((_req, res) => res.writeHead(307, { location: evil.url('/refresh') }).end())
    const tm = createTokenManager({ clientId: 'spa', refresh: { url: redirecting.url('/auth/refresh') }, allowedOrigins: [api.origin], dpop: false, crossTab: false })
    expect(await tm.restore().catch((e) => e.code)).toBe('invalid_response')
    expect(seen).toEqual([])
  })
})

describe('no token of any generation in an error (invariant 6)', () => {
  it('an error_description quoting rotated-out refresh and access tokens of earlier generations', async () => {
    let quote = ''
    const { as, api } = await setup({ onRefresh: (res) => (quote ? (json(res, 400, { error: 'invalid_request', error_description: quote }), true) : false) })
    const tm = manager(as, [api.origin], { dpop: false })
    const first = as.seed()
    await tm.setTokens(first)
    const generations = [first.access_token, first.refresh_token]
    for (let i = 0; i < 5; i++) {
      await tm.refresh()
      await tm.fetch(api.url('/me'))
      generations.push(api.requests.at(-1)!.authorization!.split(' ')[1]!)
    }
    quote = `bad request; earlier tokens: ${generations.join(' and ')}`
    const errors: unknown[] = []
    tm.on('refresh-error', ({ error }) => errors.push(error))
    const error = await tm.refresh().catch((e) => e)
    expect(error.code).toBe('oauth_error')
    expect(error.message).toContain('[redacted]')
    expectNoToken([error, errors], [...generations, ...tokensOf(as)])
  })

  it('a 1,000,000-character error_description (the body under its 1 MiB bound) becomes a message of bounded length', async () => {
    const { as, api } = await setup({ onRefresh: (res) => (json(res, 400, { error: 'invalid_request', error_description: 'x'.repeat(1_000_000) }), true) })
    const tm = manager(as, [api.origin], { dpop: false })
    await tm.setTokens(as.seed())
    const error = await tm.refresh().catch((e) => e)
    expect(error.code).toBe('oauth_error')
    expect(error.message.length).toBeLessThan(400)
    expect(error.description.length).toBeLessThanOrEqual(200)
  })
})

describe('dispose()', () => {
  it('stops listening to other tabs and to `online`, and closes the tab channel', async () => {
    const { as, api } = await setup({ expiresIn: 60 })
    const hub = createTabsHub()
    const received: TabMessage[] = []
    let closed = 0
    const base = hub.tab()
    cleanups.push(() => base.close())
    const crossTab: CrossTab = {
      ...base,
      listen: (fn) => base.listen((m) => (received.push(m), fn(m))),
      close: () => void closed++,
    }
    const target = windowEvents()
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: as.tokenEndpoint, allowedOrigins: [api.origin], dpop: false, crossTab })
    const other = hub.tab()
    cleanups.push(() => other.close())
    await tm.setTokens(as.seed({ expires_in: 1 }))
    advance(2)
    // before dispose, coming back online refreshes a due token
    target.dispatchEvent(new Event('online'))
    for (let i = 0; i < 100 && as.counts.refresh < 1; i++) await new Promise((r) => setTimeout(r, 5))
    expect(as.counts.refresh).toBe(1)
    await tm.setTokens(as.seed({ expires_in: 1 }))
    advance(4)
    tm.dispose()
    expect(closed).toBe(1)
    target.dispatchEvent(new Event('online'))
    other.post({ type: 'logout', epoch: 99 })
    await new Promise((r) => setTimeout(r, 50))
    expect(as.counts.refresh).toBe(1)
    expect(received.filter((m) => m.type == 'logout')).toEqual([])
    expect(tm.status()).toBeDefined()
  })
})

describe('timeoutSeconds is checked as discover() checks it', () => {
  it.each([2_147_484, 1e10, Infinity, NaN, 0, -1, '10'])('%s: a TypeError naming the option, before anything is sent', async (timeoutSeconds) => {
    const { as, api } = await setup()
    const make = () => manager(as, [api.origin], { dpop: false, timeoutSeconds: timeoutSeconds as number })
    expect(make).toThrow(TypeError)
    expect(make).toThrow(/^timeoutSeconds: /)
    expect(as.counts.refresh).toBe(0)
  })

  it('the largest timeout setTimeout can hold (2,147,483 s) does not fire at once: a refresh the server answers after 200 ms succeeds', async () => {
    const { as, api } = await setup({ delayMs: 200 })
    const tm = manager(as, [api.origin], { dpop: false, timeoutSeconds: 2_147_483 })
    await tm.setTokens(as.seed())
    await tm.refresh()
    expect(tm.status()!.generation).toBe(2)
    expect(as.counts.refresh).toBe(1)
  })
})

describe('the origin is checked on the URL that is sent (invariant 2)', () => {
  class Lying extends Request {
    constructor(input: string, private readonly shown: string) {
      super(input)
    }
    override get url() {
      return this.shown
    }
  }
  const shadowed = (real: string, shown: string) => {
    const r = new Request(real)
    Object.defineProperty(r, 'url', { value: shown })
    return r
  }

  it.each([
    ['a Request whose url is shadowed by an own property', (real: string, shown: string) => [shadowed(real, shown)] as const],
    ['the same, with init', (real: string, shown: string) => [shadowed(real, shown), { headers: { 'x-app': '1' } }] as const],
    ['a Request subclass whose url getter lies', (real: string, shown: string) => [new Lying(real, shown)] as const],
    ['the same, with init', (real: string, shown: string) => [new Lying(real, shown), { method: 'POST', body: 'x' }] as const],
  ])('%s: the token does not go to its real origin', async (_name, make) => {
    const { as, api } = await setup()
    const { evil, seen } = await attacker()
    const authorizations: (string | undefined)[] = []
    const tm = manager(as, [api.origin], {
      dpop: false,
      fetch: (input, init) => (authorizations.push(new Headers(input instanceof Request ? input.headers : init?.headers).get('authorization') ?? undefined), fetch(input, init)),
    })
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const [input, init] = make(evil.url('/steal'), api.url('/me'))
    await tm.fetch(input, init)
    // it went where the Request really points, without a token
    expect(seen.map((s) => s.path)).toEqual(['/steal'])
    expect(authorizations).toEqual([undefined])
    expect(api.requests).toEqual([])
    expect(as.counts.refresh).toBe(0)
  })
})

describe('every body latchkey reads stops at 1 MiB (invariant 13)', () => {
  it('where a response has no stream (React Native\u2019s fetch), a 2 MB token response is refused once read; a small one is used', async () => {
    let padding = 'p'.repeat(2_000_000)
    // a valid token response, padded
    const { as, api } = await setup({ onRefresh: (res) => (json(res, 200, { ...as.seed(), padding }), true) })
    const noStream: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      Object.defineProperty(res, 'body', { value: null })
      return res
    }
    const tm = manager(as, [api.origin], { dpop: false, fetch: noStream })
    await tm.setTokens(as.seed())
    const e = await tm.refresh().catch((e) => e)
    expect(isLatchkeyError(e, 'invalid_response')).toBe(true)
    expect(e.message).toMatch(/: invalid body$/)
    padding = ''
    await tm.refresh()
    expect(tm.status()!.generation).toBe(2)
  })

  it('a 200 with an endless body from the revocation endpoint: logout completes at once (the status confirms), the rest is never sent', async () => {
    const { as, api } = await setup()
    const written = { bytes: 0 }
    const revoking = await served((_req, res) => endless(res, written, '{"ok":"'))
    const tm = manager(as, [api.origin], { dpop: false, revocationEndpoint: revoking.url('/revoke'), timeoutSeconds: 5 })
    const warnings: string[] = []
    tm.on('warning', ({ code }) => warnings.push(code))
    await tm.setTokens(as.seed())
    const started = performance.now()
    await tm.logout()
    expect(performance.now() - started).toBeLessThan(2000)
    expect(warnings).toEqual([])
    expect(written.bytes).toBeLessThan(16 * 2 ** 20)
    expect(tm.status()).toBeUndefined()
  })
})
