import { indexedDBKeyStore } from './keystore.js'

/**
 * An access token as it travels between tabs of one origin (in memory, over BroadcastChannel).
 * Wire names: `at` the access token, `type` its token type, `exp` its expiry (ms since the epoch,
 * local clock), `life` its lifetime in ms, `scope` its scope, `due` when it is refreshed (drawn once,
 * at its first use, so that every tab refreshes it at the same time).
 */
export interface SharedToken {
  at?: string | undefined
  type: 'Bearer' | 'DPoP'
  exp?: number | undefined
  life?: number | undefined
  scope?: string | undefined
  due?: number | undefined
}

/**
 * A session as it travels between tabs: the token for every allowed origin without a resource of
 * its own, `rt` the refresh token, `res` the token of each `resources` origin, by origin.
 */
export interface SharedSession extends SharedToken {
  rt?: string | undefined
  res?: Record<string, SharedToken> | undefined
}

/**
 * Messages between the tabs of one client. Never written to storage. A logout's `gen` is the
 * generation whose refresh token the tab that logged out revokes (0: none).
 */
export type TabMessage =
  | { type: 'tokens'; epoch: number; gen: number; jkt?: string | undefined; session: SharedSession }
  | { type: 'logout'; epoch: number; gen?: number; expired?: boolean }
  | { type: 'hello' }

/** Numbers (never tokens) that tabs share through storage that is consistent under the lock. */
export interface SharedCounters {
  /** The newest token generation any tab committed. */
  gen: number
  /** Advanced by every logout; sessions of an older epoch are dead. */
  epoch: number
  /** No token request from any tab before this time (ms since the epoch): a server's `Retry-After`, or a backoff. */
  wait?: number | undefined
  /** Failed refreshes in a row, for the backoff; every new token set resets it (and `wait`). */
  fails?: number | undefined
  /** `wait` is the backoff's, longer than what the server asked for (`Retry-After`). */
  backoff?: boolean | undefined
}

/**
 * How the tabs of one origin coordinate. The default uses Web Locks, BroadcastChannel and
 * IndexedDB; pass your own to `crossTab` for other runtimes or tests.
 */
export interface CrossTab {
  /** Runs `fn` while holding the exclusive lock `name` across all tabs. */
  lock<T>(name: string, fn: () => Promise<T>): Promise<T>
  /** Sends a message to every other tab. */
  post(message: TabMessage): void
  /** Receives the other tabs' messages; returns an unsubscribe function. */
  listen(fn: (message: TabMessage) => void): () => void
  /** Reads the shared counters; called while holding the lock, must see the last holder's write. */
  read(): Promise<SharedCounters>
  /** Writes the shared counters; resolves once a later `read` in any tab sees them. */
  write(value: SharedCounters): Promise<void>
  /**
   * Whether some other tab may hold a session right now: `false` lets `restore()` answer at once
   * (answer `true` when you cannot tell; `restore()` then waits up to a second for a reply).
   */
  peers(): Promise<boolean>
  /** Marks this tab as holding a session (`true`) or not (`false`), for `peers()` in other tabs. */
  hold(holding: boolean): void
  /** Lets go of the channel and anything held, when the token manager is disposed. */
  close?(): void
}

/** In-tab lock and counters: single-flight within the tab, no other tabs. */
export function localCrossTab(): CrossTab {
  const chain = new Map<string, Promise<unknown>>()
  let counters: SharedCounters = { gen: 0, epoch: 0 }
  return {
    lock(name, fn) {
      const run = (chain.get(name) ?? Promise.resolve()).then(fn, fn)
      chain.set(name, run.catch(() => {}))
      return run
    },
    post() {},
    listen: () => () => {},
    peers: async () => false,
    hold() {},
    read: async () => counters,
    write: async (v) => void (counters = v),
  }
}

/**
 * Web Locks + BroadcastChannel + IndexedDB, or `undefined` where Web Locks or BroadcastChannel is
 * missing (the caller then degrades to {@link localCrossTab}).
 */
export function browserCrossTab(id: string): CrossTab | undefined {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks
  if (!locks || typeof BroadcastChannel != 'function') return
  const name = 'latchkey:' + id
  const channel = new BroadcastChannel(name)
  const db = indexedDBKeyStore()
  let release: (() => void) | undefined
  return {
    lock: (lock, fn) => locks.request(name + ':' + lock, fn) as Promise<Awaited<ReturnType<typeof fn>>>,
    post: (message) => channel.postMessage(message),
    listen(fn) {
      const on = (e: MessageEvent<TabMessage>) => fn(e.data)
      channel.addEventListener('message', on)
      return () => channel.removeEventListener('message', on)
    },
    // IndexedDB, unlike localStorage, is read through the same backend the last lock holder wrote to.
    // Without IndexedDB the counters stay at zero: tabs still share the lock and the channel.
    read: async () => ((await db.get(name).catch(() => {})) as SharedCounters) ?? { gen: 0, epoch: 0 },
    write: (value) => db.set(name, value).catch(() => {}),
    async peers() {
      const { held = [] } = await locks.query()
      return held.some((l) => l.name == name + ':session')
    },
    hold(holding) {
      if (!holding) return release?.(), (release = undefined)
      if (release) return
      const held = new Promise<void>((r) => (release = r))
      locks.request(name + ':session', { mode: 'shared' }, () => held)
    },
    close() {
      this.hold(false)
      channel.close()
    },
  }
}
