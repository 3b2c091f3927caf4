// subscribe() and the stable status() snapshot that UI frameworks build on, and handleRedirect()
// called twice with one URL (React StrictMode), against the loopback token server.
import { describe, expect, it } from 'vitest'
import { createTokenManager, type SessionInfo } from '../src/index.js'
import { cleanups, manager, setup } from './support/harness.js'
import { createTabsHub } from './support/tabs.js'

const params = { authorizationEndpoint: 'https://as.example/authorize', redirectUri: 'https://app.example/cb' }

/** Every value a subscriber was called with. */
function record(tm: { subscribe(listener: (s: SessionInfo | undefined) => void): () => void }) {
  const seen: (SessionInfo | undefined)[] = []
  const off = tm.subscribe((s) => seen.push(s))
  cleanups.push(off)
  return { seen, off }
}

describe('subscribe', () => {
  it('calls the listener at once with status(), then on login, refresh and logout; unsubscribing stops it', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const { seen, off } = record(tm)
    expect(seen).toEqual([undefined])
    await tm.setTokens(as.seed())
    expect(seen).toHaveLength(2)
    expect(seen[1]).toBe(tm.status())
    expect(seen[1]?.generation).toBe(1)
    await tm.refresh()
    expect(seen.at(-1)).toBe(tm.status())
    expect(seen.at(-1)?.generation).toBe(2)
    const calls = seen.length
    await tm.logout()
    expect(seen.length).toBeGreaterThan(calls)
    expect(seen.at(-1)).toBeUndefined()
    off()
    await tm.setTokens(as.seed())
    expect(seen.at(-1)).toBeUndefined()
  })

  it('works unbound, as useSyncExternalStore calls it', async () => {
    const { as, api } = await setup()
    const { subscribe, status, setTokens } = manager(as, [api.origin])
    const seen: unknown[] = []
    cleanups.push(subscribe((s) => seen.push(s)))
    await setTokens(as.seed())
    expect(seen).toEqual([undefined, status()])
  })

  it('tells of a session the server ended', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    await tm.setTokens(as.seed({ refresh_token: 'not-known-to-the-server' }))
    const { seen } = record(tm)
    await expect(tm.refresh()).rejects.toMatchObject({ code: 'session_expired' })
    expect(seen.at(-1)).toBeUndefined()
    expect(seen.length).toBe(2)
  })

  it('tells of tokens and of a logout from another tab', async () => {
    const { as, api } = await setup()
    const hub = createTabsHub()
    const one = manager(as, [api.origin], { crossTab: hub.tab(), dpop: false })
    const two = manager(as, [api.origin], { crossTab: hub.tab(), dpop: false })
    const { seen } = record(two)
    await one.setTokens(as.seed())
    await expect.poll(() => seen.at(-1)?.generation).toBe(1)
    await one.logout()
    await expect.poll(() => seen.at(-1)).toBeUndefined()
  })

  it('a listener that throws stops neither the others nor the manager', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    let thrown = 0
    const off = tm.subscribe((s) => {
      if (s) throw new Error('listener failed ' + ++thrown)
    })
    cleanups.push(off)
    const { seen } = record(tm)
    const uncaught: unknown[] = []
    const onError = (e: unknown) => void uncaught.push(e)
    process.on('uncaughtException', onError)
    cleanups.push(() => void process.off('uncaughtException', onError))
    await tm.setTokens(as.seed())
    expect(seen.at(-1)?.generation).toBe(1)
    await expect.poll(() => uncaught.length).toBe(1)
  })
})

describe('status() is a stable snapshot', () => {
  it('returns the same object until the session changes, then a new one', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    expect(tm.status()).toBeUndefined()
    await tm.setTokens(as.seed())
    const first = tm.status()
    expect(first).toBeDefined()
    expect(tm.status()).toBe(first)
    expect(tm.status(api.origin)).toBe(first)
    await (await tm.fetch(api.url('/me'))).text()
    expect(tm.status()).toBe(first)
    await tm.refresh()
    const second = tm.status()
    expect(second).not.toBe(first)
    expect(second?.generation).toBe(first!.generation + 1)
    expect(tm.status()).toBe(second)
  })

  it('with resources: each origin has its own snapshot; a token not fetched yet is undefined, then stable', async () => {
    const { as } = await setup({ dpop: false })
    const billing = 'https://billing.example'
    const tm = createTokenManager({
      clientId: 'spa',
      tokenEndpoint: as.tokenEndpoint,
      allowedOrigins: ['https://api.example'],
      resources: { [billing]: { resource: billing, scope: 'billing:read' } },
      dpop: false,
      crossTab: false,
    })
    await tm.setTokens(as.seed())
    expect(tm.status(billing)).toBeUndefined()
    const main = tm.status()
    await tm.getAccessToken(billing)
    const billed = tm.status(billing)
    expect(billed?.origin).toBe(billing)
    expect(tm.status(billing)).toBe(billed)
    expect(tm.status()).toBe(tm.status())
    expect(tm.status()?.origin).toBeUndefined()
    expect(main?.origin).toBeUndefined()
  })
})

describe('handleRedirect twice with the same URL (React StrictMode)', () => {
  it('returns the same promise and exchanges the code once', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const q = new URL(await tm.authorizationUrl(params)).searchParams
    const url = `${params.redirectUri}?code=${as.code()}&state=${q.get('state')}`
    const first = tm.handleRedirect(url)
    const second = tm.handleRedirect(new URL(url))
    expect(second).toBe(first)
    await Promise.all([first, second])
    // A third call, after the first has finished, still does not spend the code again.
    await tm.handleRedirect(url)
    expect(as.counts.code).toBe(1)
    expect(tm.status()?.generation).toBe(1)
  })

  it('a failed redirect fails the same way twice, and another URL is a new attempt', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const bad = `${params.redirectUri}?code=x&state=never-issued`
    const first = tm.handleRedirect(bad)
    expect(tm.handleRedirect(bad)).toBe(first)
    await expect(first).rejects.toMatchObject({ code: 'login_error' })
    const q = new URL(await tm.authorizationUrl(params)).searchParams
    await tm.handleRedirect(`${params.redirectUri}?code=${as.code()}&state=${q.get('state')}`)
    expect(as.counts.code).toBe(1)
  })
})
