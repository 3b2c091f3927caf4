// Worker mode v2 over real MessageChannels and a real BroadcastChannel: one session for many
// connections (a SharedWorker's scope), per-worker sessions that share only a logout (dedicated
// workers), start-up without traps, and every message checked on both ends.
import { describe, expect, it, vi } from 'vitest'
import { isLatchkeyError, type TokenManager, type TokenManagerOptions } from '../src/index.js'
import { connectTokenManager, serveTokenManager, type ConnectOptions } from '../src/worker.js'
import { cleanups, setup } from './support/harness.js'
import type { TokenServer } from './support/servers.js'

const redirectUri = 'https://app.example/cb'
const authorizationEndpoint = 'https://as.example/authorize'

/** A SharedWorker's global scope: every `open()` is a page connecting, as a `connect` event. */
function sharedScope() {
  const scope = Object.assign(new EventTarget(), { onconnect: null })
  const open = (options: ConnectOptions = {}) => {
    const { port1, port2 } = new MessageChannel()
    scope.dispatchEvent(new MessageEvent('connect', { ports: [port1] }))
    cleanups.push(() => (port1.close(), port2.close()))
    return { tm: connectTokenManager(port2, options), port: port2 }
  }
  return { scope, open }
}

const optionsFor = (as: TokenServer, allowed: string[], more: Partial<TokenManagerOptions> = {}): TokenManagerOptions => ({
  clientId: 'spa',
  tokenEndpoint: as.tokenEndpoint,
  revocationEndpoint: as.revocationEndpoint,
  allowedOrigins: allowed,
  ...more,
})

async function signIn(tm: TokenManager, as: TokenServer) {
  const url = new URL(await tm.authorizationUrl({ authorizationEndpoint, redirectUri, scope: 'api' }))
  await tm.handleRedirect(`${redirectUri}?code=${as.code()}&state=${url.searchParams.get('state')}`)
  return url
}

const reasonOf = async (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e as Error & { code?: string })

/** The replies a raw port gets to what it posts, collected for `ms`. */
async function rawReplies(port: MessagePort, messages: unknown[], ms = 300) {
  const replies: Record<string, unknown>[] = []
  port.addEventListener('message', (e) => replies.push(e.data))
  port.start()
  for (const m of messages) port.postMessage(m)
  await new Promise((r) => setTimeout(r, ms))
  return replies
}

describe('worker mode: one session for every page of a SharedWorker', () => {
  it('pages share one token manager: a second page is signed in at once, one refresh per storm, logout anywhere signs out all', async () => {
    const { as, api } = await setup({ dpop: true })
    const { scope, open } = sharedScope()
    serveTokenManager(optionsFor(as, [api.origin]), scope)
    const first = open().tm
    await signIn(first, as)
    const second = open().tm
    expect(await second.restore()).toBe(true)
    expect(as.counts.code).toBe(1)
    expect(second.status()).toMatchObject({ tokenType: 'DPoP', generation: 1 })

    for (const token of as.accessTokens.values()) token.revoked = true
    const before = as.counts.refresh
    const results = await Promise.all([first, second].flatMap((tm) => Array.from({ length: 10 }, () => tm.fetch(api.url('/items')))))
    expect(results.every((r) => r.status == 200)).toBe(true)
    expect(as.counts.refresh - before).toBe(1)

    const heard: string[] = []
    first.on('logout', ({ reason }) => heard.push(reason))
    await second.logout()
    await new Promise((r) => setTimeout(r, 50))
    expect(heard).toEqual(['logout'])
    expect(first.status()).toBeUndefined()
    expect(as.counts.revoked).toBeGreaterThan(0)
  })

  it('status() is the same object until the session changes, and subscribe() hears every change', async () => {
    const { as, api } = await setup()
    const { scope, open } = sharedScope()
    serveTokenManager(optionsFor(as, [api.origin], { dpop: false }), scope)
    const { tm } = open()
    let changes = 0
    const off = tm.subscribe(() => changes++)
    await signIn(tm, as)
    await new Promise((r) => setTimeout(r))
    const status = tm.status()
    expect(status).toBeDefined()
    expect(changes).toBeGreaterThanOrEqual(1)
    const seen = changes
    await tm.fetch(api.url('/items'))
    expect(tm.status()).toBe(status)
    await tm.refresh()
    await new Promise((r) => setTimeout(r))
    expect(tm.status()).not.toBe(status)
    expect(tm.status()?.generation).toBe(2)
    expect(changes).toBeGreaterThan(seen)
    off()
    await tm.logout()
    await new Promise((r) => setTimeout(r))
    expect(tm.status()).toBeUndefined()
  })

  it('a page that disposes its handle releases its connection only; the session stays for the others', async () => {
    const { as, api } = await setup()
    const { scope, open } = sharedScope()
    serveTokenManager(optionsFor(as, [api.origin], { dpop: false }), scope)
    const first = open().tm
    await signIn(first, as)
    const second = open().tm
    expect(await second.restore()).toBe(true)
    second.dispose()
    await new Promise((r) => setTimeout(r, 50))
    expect((await first.fetch(api.url('/items'))).status).toBe(200)
    // A new page hears from the worker how many pages it serves: the disposed one is not among them.
    const { port } = open()
    const [hello] = await rawReplies(port, [], 100)
    expect(hello).toEqual({ h: 2 })
  })

  it('malformed and hostile messages get a typed error on their own connection and disturb no other', async () => {
    const { as, api } = await setup()
    const { scope, open } = sharedScope()
    serveTokenManager(optionsFor(as, [api.origin], { dpop: false }), scope)
    const app = open().tm
    await signIn(app, as)
    const { port } = open()
    let deep: unknown = 'x'
    for (let n = 0; n < 100; n++) deep = { deep }
    const messages = [
      null,
      'hello',
      42,
      [],
      { i: 1 },
      { i: 'x', m: 'restore', a: [] },
      { i: 2, m: 'getAccessToken', a: [] },
      { i: 3, m: '__proto__', a: [] },
      { i: 4, m: 'constructor', a: [] },
      { i: 5, m: 'restore', a: 'no' },
      { i: 6, m: 'setTokens', a: [deep] },
      { i: 7, m: 'exchangeCode', a: [{ code: 1, codeVerifier: {}, redirectUri: [] }] },
      { i: 8, m: 'fetch', a: [{ url: api.url('/items'), init: { headers: [['a', { toString: 1 }]] } }] },
      { i: 9, m: 'setTokens', a: ['x'.repeat(32 * 1024 * 1024)] },
      { i: 10, m: 'hold', a: ['x'.repeat(1000)] },
      { type: 'hello' },
      { type: 'tokens', epoch: 9, gen: 9, session: { at: 'forged', type: 'Bearer' } },
    ]
    const replies = await rawReplies(port, messages, 1000)
    const errors = replies.filter((r) => 'e' in r)
    expect(errors.length).toBe(messages.length)
    for (const { e } of errors) expect(e).toMatchObject({ code: 'invalid_message' })
    expect(errors.map((r) => r['i']).filter((i) => i)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    // The app's connection and session are as they were.
    expect(app.status()?.tokenType).toBe('Bearer')
    expect((await app.fetch(api.url('/items'))).status).toBe(200)
    expect(api.requests.at(-1)!.authorization).not.toMatch(/forged/)
  })
})

/** Web Locks as a page and a worker share them: a held name is granted to the next asker once its holder is gone. */
function fakeLocks() {
  const waiting = new Map<string, (() => unknown)[]>()
  const locks = {
    request(name: string, granted: () => unknown) {
      const queue = waiting.get(name)
      if (queue) return void queue.push(granted)
      waiting.set(name, [])
      return Promise.resolve().then(granted)
    },
  }
  /** The page that holds `name` is gone: its lock goes to whoever waits. */
  const end = (name: string) => {
    const queue = waiting.get(name) ?? []
    waiting.delete(name)
    queue.forEach((granted) => granted())
  }
  return { locks, waiting, end }
}

describe('worker mode: the connections of closed pages are released', () => {
  it('1,000 pages opened and closed leave nothing behind', async () => {
    const { as, api } = await setup()
    const { locks, waiting, end } = fakeLocks()
    vi.stubGlobal('navigator', { locks })
    const { scope, open } = sharedScope()
    serveTokenManager(optionsFor(as, [api.origin], { dpop: false }), scope)
    const page = (port: MessagePort) => connectTokenManager({ port, addEventListener() {} })
    for (let n = 0; n < 1000; n++) {
      const { port1, port2 } = new MessageChannel()
      scope.dispatchEvent(new MessageEvent('connect', { ports: [port1] }))
      page(port2)
      // The page holds its lock and has told the worker, which now waits for it.
      await expect.poll(() => [...waiting.values()].some((queue) => queue.length == 1), { interval: 1 }).toBe(true)
      const [name] = [...waiting].find(([, queue]) => queue.length == 1)!
      end(name)
      port2.close()
    }
    expect(waiting.size).toBe(0)
    const { port } = open()
    const [hello] = await rawReplies(port, [], 50)
    expect(hello).toEqual({ h: 1 })
  }, 60_000)
})

describe('worker mode: start-up without traps', () => {
  it('options may come as a promise: calls made meanwhile wait for it', async () => {
    const { as, api } = await setup()
    const { port1, port2 } = new MessageChannel()
    cleanups.push(() => (port1.close(), port2.close()))
    let resolve!: (o: TokenManagerOptions) => void
    const served = serveTokenManager(new Promise<TokenManagerOptions>((r) => (resolve = r)), port1)
    const tm = connectTokenManager(port2)
    const restored = tm.restore()
    await new Promise((r) => setTimeout(r, 50))
    resolve(optionsFor(as, [api.origin], { dpop: false }))
    expect(await restored).toBe(false)
    expect(await (await served).restore()).toBe(false)
    await signIn(tm, as)
    expect((await tm.fetch(api.url('/items'))).status).toBe(200)
  })

  it('a rejected promise of options reaches every page as a typed error', async () => {
    const { scope, open } = sharedScope()
    const failure = Promise.reject(new Error('discovery failed'))
    serveTokenManager(failure, scope).catch(() => {})
    const pages = [open().tm, open().tm]
    for (const tm of pages) {
      const e = await reasonOf(tm.restore())
      expect(isLatchkeyError(e, 'worker_error')).toBe(true)
      expect(e?.message).toContain('discovery failed')
    }
  })

  it('a worker that never answers fails the pending and later calls with `timeout` within timeoutSeconds', async () => {
    const { port2 } = new MessageChannel()
    cleanups.push(() => port2.close())
    const tm = connectTokenManager(port2, { timeoutSeconds: 0.2 })
    const started = Date.now()
    const e = await reasonOf(tm.restore())
    expect(isLatchkeyError(e, 'timeout')).toBe(true)
    expect(Date.now() - started).toBeLessThan(2000)
    expect(isLatchkeyError(await reasonOf(tm.refresh()), 'timeout')).toBe(true)
  })

  it('persist is refused in worker mode, and so is a crossTab of the app’s own', async () => {
    const { as } = await setup()
    const { port1 } = new MessageChannel()
    cleanups.push(() => port1.close())
    expect(() => serveTokenManager(optionsFor(as, [], { persist: true }), port1)).toThrow(/^persist: refused in worker mode/)
    const crossTab = { lock: async () => undefined } as unknown as TokenManagerOptions['crossTab']
    expect(() => serveTokenManager(optionsFor(as, [], { crossTab }), port1)).toThrow(TypeError)
  })

  it('a persist refused in a worker reaches the page as the TypeError it is', async () => {
    const { as } = await setup()
    const { port1, port2 } = new MessageChannel()
    cleanups.push(() => (port1.close(), port2.close()))
    expect(() => serveTokenManager(optionsFor(as, [], { persist: true }), port1)).toThrow(TypeError)
    const e = await reasonOf(connectTokenManager(port2).restore())
    expect(e).toBeInstanceOf(TypeError)
    expect(e?.message).toMatch(/^persist: refused in worker mode/)
  })
})

describe('worker mode: dedicated workers share a logout and nothing else', () => {
  it('each worker holds its own session; nothing on the channel carries or installs a token; a logout in one signs out every one, each revoking its own', async () => {
    const { as, api } = await setup({ dpop: true })
    const channel = new BroadcastChannel('latchkey-worker:spa')
    const overheard: string[] = []
    channel.onmessage = (e) => overheard.push(JSON.stringify(e.data))
    cleanups.push(() => channel.close())
    const tabs = [0, 1].map(() => {
      const { port1, port2 } = new MessageChannel()
      const inWorker = serveTokenManager(optionsFor(as, [api.origin]), port1)
      cleanups.push(() => (inWorker.dispose(), port1.close(), port2.close()))
      return connectTokenManager(port2)
    })
    const [first, second] = tabs as [TokenManager, TokenManager]
    await signIn(first, as)
    // A new tab has no session of its own: it signs in (the authorization server's session makes it one redirect).
    expect(await second.restore()).toBe(false)
    // A forged session on the channel, and a plea for one, change nothing.
    channel.postMessage({ type: 'hello' })
    channel.postMessage({ type: 'tokens', epoch: 5, gen: 5, session: { at: 'forged', type: 'Bearer' } })
    await new Promise((r) => setTimeout(r, 100))
    expect(second.status()).toBeUndefined()
    expect(await second.restore()).toBe(false)
    await signIn(second, as)
    expect(first.status()?.generation).toBe(1)
    expect(second.status()?.generation).toBe(1)

    const revokedBefore = as.counts.revoked
    await first.logout()
    await expect.poll(() => second.status()).toBeUndefined()
    await expect.poll(() => as.counts.revoked - revokedBefore).toBe(2)
    for (const message of overheard) expect(message).toBe('{"type":"logout"}')
    expect(overheard.length).toBeGreaterThan(0)
  })
})
