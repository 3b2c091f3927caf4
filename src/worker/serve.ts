// The worker's realm of worker mode: one token manager that answers every connected page and never
// hands one a token, a key, or anything else a page script could use (invariant 11).
import { localCrossTab, type CrossTab } from '../crosstab.js'
import { LatchkeyError, isLatchkeyError } from '../errors.js'
import { createEvents } from '../events.js'
import { memoryKeyStore } from '../keystore.js'
import { redirectResult } from '../login.js'
import { createTokenManager } from '../manager.js'
import type { LoginStore, TokenManager, TokenManagerEvents, TokenManagerOptions } from '../types.js'
import { invalid, isObject } from '../util.js'
import {
  wireError,
  type Arguments,
  type Call,
  type MessageEndpoint,
  type Method,
  type Snapshot,
  type ToPage,
  type ToWorker,
  type WireRequest,
  type WireResponse,
  type WorkerMethods,
} from './protocol.js'

/** Bodies up to this size (by `content-length`) cross whole; longer or unknown ones stream. */
const WHOLE_BODY = 65_536

const EVENTS = ['tokens', 'refresh', 'refresh-error', 'session-expired', 'logout', 'warning'] as const

/** A SharedWorker's global scope: each page that connects arrives as a `connect` event with its port. */
interface SharedScope {
  addEventListener(type: 'connect', listener: (event: MessageEvent) => void): void
  onconnect: unknown
}

/** How the worker answers each method: its arguments as they crossed, and the connection that asked. */
type Answers = { [M in Method]: (a: Arguments<M>, i: number) => ReturnType<WorkerMethods[M]> }

/** The token manager being served, once its options are known. */
interface Served {
  tm: TokenManager
  snapshot(): Snapshot
  answersFor(connection: Connection): Answers
}

/**
 * Runs a token manager inside a module worker (a `SharedWorker`, so that every tab of the origin
 * shares one session, or a dedicated `Worker`) and answers the pages that connect to it
 * ({@link connectTokenManager}). Tokens, the refresh token and the DPoP key stay in the worker's
 * memory: nothing of the session is written to IndexedDB, Cache Storage or a BroadcastChannel,
 * all of which a page script of the same origin can read.
 *
 * - In a SharedWorker, one token manager serves every connected page: one refresh per storm, a new
 *   tab is signed in at once, a logout anywhere signs out every tab.
 * - In a dedicated Worker, each tab holds its own session; tabs tell each other only that one
 *   signed out (a message that carries no token), and every worker then revokes its own.
 *
 * Call it at the top level of the worker's module. Options may come as a promise (discovery run in
 * the worker): calls that arrive first wait for it, and if it rejects every page's calls reject
 * with that error (a `LatchkeyError` as it was, anything else as `worker_error`).
 *
 * `persist` is refused (a TypeError): its key would sit in IndexedDB, where the page reaches it.
 * An explicit `dpop: { keyStore }` is used as given; a store the page can reach gives the page a
 * key it can sign with.
 *
 * @param options The options of `createTokenManager` (without `persist` or a `crossTab` object),
 *   or a promise of them.
 * @param scope Where the pages' messages arrive: the worker's global scope, or a `MessagePort`.
 * @returns The worker's own handle on the same session (a promise of it, for a promise of options).
 * @example
 * ```ts
 * // auth-worker.ts, bundled by the app as a module worker
 * import { discover } from 'latchkey'
 * import { serveTokenManager } from 'latchkey/worker'
 *
 * serveTokenManager(discover('https://as.example').then((as) => ({ ...as, clientId: 'spa', allowedOrigins: ['https://api.example'] })))
 * ```
 */
export function serveTokenManager(options: TokenManagerOptions, scope?: MessageEndpoint | SharedScope): TokenManager
export function serveTokenManager(options: PromiseLike<TokenManagerOptions>, scope?: MessageEndpoint | SharedScope): Promise<TokenManager>
export function serveTokenManager(
  options: TokenManagerOptions | PromiseLike<TokenManagerOptions>,
  scope: MessageEndpoint | SharedScope = globalThis as unknown as MessageEndpoint,
): TokenManager | Promise<TokenManager> {
  const shared = 'onconnect' in scope
  const connections = new Pages()
  const later = 'then' in options && typeof options.then == 'function'
  let served: Served | undefined
  let failure: unknown
  let ready: Promise<Served>
  try {
    ready = later ? Promise.resolve(options).then((o) => serve(o, shared, connections)) : Promise.resolve((served = serve(options as TokenManagerOptions, shared, connections)))
  } catch (e) {
    ready = Promise.reject((failure = e))
  }
  // A failure is reported to each call (and thrown here when the options were given as they are).
  ready.catch(() => {})
  const listen = (port: MessageEndpoint) => connections.add(new Connection(port, ready, connections, shared))
  if ('onconnect' in scope) scope.addEventListener('connect', (e) => listen(e.ports[0]!))
  else listen(scope)
  if (later) return ready.then((s) => s.tm)
  if (!served) throw failure
  return served.tm
}

/** The token manager of the worker, built from its options, and what it answers. */
function serve(options: TokenManagerOptions, shared: boolean, connections: Pages): Served {
  const { dpop = true, crossTab, persist } = options
  // Invariant 11: the key that encrypts a persisted refresh token would sit beside it, in the page's reach.
  if (persist) invalid('persist', 'refused in worker mode: the page could read what it stores')
  if (typeof crossTab == 'object') invalid('crossTab', 'worker mode shares nothing with other tabs but a logout')
  // The login's PKCE verifier and redirect URI wait in the page's sessionStorage (the worker has
  // none): the worker's manager leaves each here, keyed by `state`, until `authorize` hands it over.
  const pendingLogins = new Map<string, string>()
  const loginStore: LoginStore = { setItem: (key, value) => void pendingLogins.set(key, value), getItem: () => null, removeItem: () => {} }
  const core = createTokenManager({
    ...options,
    loginStore,
    // Invariant 11: the DPoP key lives in this worker's memory, not in IndexedDB, where the page reaches it.
    dpop: dpop === true ? { keyStore: memoryKeyStore() } : dpop,
    crossTab: shared || crossTab === false ? localCrossTab() : logoutOnlyCrossTab(options.clientId, () => tm),
  })
  // The worker's own handle hears the core's events and the pages' comings and goings.
  const tm: TokenManager = {
    ...core,
    on(type, listener) {
      const offs = [core.on(type, listener), connections.events.on(type, listener)]
      return () => offs.forEach((off) => off())
    },
  }

  // With `resources`, each API's origin has a token (and a status) of its own.
  const resourceOrigins = Object.keys(options.resources ?? {}).map((o) => new URL(o).origin)
  const snapshot = (): Snapshot => Object.fromEntries([['', tm.status()], ...resourceOrigins.map((o) => [o, tm.status(o)])])
  const forward = <E extends keyof TokenManagerEvents>(v: E) =>
    tm.on(v, (d) => connections.forEach((c) => c.post({ v, d: 'error' in d ? { ...d, error: wireError(d.error) } : d } as ToPage)))
  const offs = EVENTS.map(forward)

  const answersFor = (connection: Connection): Answers => ({
    restore: () => tm.restore(),
    setTokens: ([response]) => tm.setTokens(response),
    exchangeCode: ([parameters]) => tm.exchangeCode(parameters),
    dpopThumbprint: () => tm.dpopThumbprint(),
    refresh: () => tm.refresh(),
    logout: () => tm.logout(),
    fetch: ([request], i) => connection.fetch(tm, i, request),
    // The login request is built here, where the key is; what waits for the redirect goes to the
    // page, which hands it back with the redirect. The code is bound to this worker's key
    // (`dpop_jkt`) only when the page says the worker outlives the login: a worker that ends
    // with the page's navigation comes back with a new key, which a bound code refuses.
    authorize: async ([parameters, bind]) => {
      const url = new URL(await tm.authorizationUrl(parameters))
      if (!bind) url.searchParams.delete('dpop_jkt')
      const state = url.searchParams.get('state')!
      const record = [...pendingLogins].find(([key]) => key.endsWith(state))!
      pendingLogins.delete(record[0])
      return { url: url.href, record }
    },
    redirect: async ([url, saved]) => {
      const { issuer, issParameterRequired } = options
      const loginStore: LoginStore = { getItem: () => saved, removeItem: () => {}, setItem: () => {} }
      await tm.exchangeCode(await redirectResult(url, { issuer, issParameterRequired, loginStore }))
    },
    hold: ([lock]) => void globalThis.navigator?.locks?.request(lock, () => connection.close()),
    dispose: () => {
      connection.close()
      // A SharedWorker's session belongs to every page; a dedicated worker's, to the one page.
      if (shared) return
      offs.forEach((off) => off())
      tm.dispose()
    },
  })
  return { tm, snapshot, answersFor }
}

/**
 * Dedicated workers: each tab has its own session; the one fact tabs share is a logout, as a
 * message with no token and nothing to adopt. A worker that hears it logs out too, revoking its
 * own refresh token. Nothing from the channel ever installs a session.
 */
function logoutOnlyCrossTab(clientId: string, tm: () => TokenManager): CrossTab {
  const local = localCrossTab()
  if (typeof BroadcastChannel != 'function') return local
  const channel = new BroadcastChannel('latchkey-worker:' + clientId)
  channel.onmessage = ({ data }) => void (isObject(data) && data['type'] == 'logout' && tm().status() && tm().logout().catch(() => {}))
  return {
    ...local,
    // A session that the server ended is this tab's alone: the others keep theirs.
    post: (m) => void (m.type == 'logout' && !m.expired && channel.postMessage({ type: 'logout' })),
    close: () => channel.close(),
  }
}

/**
 * Plain data within bounds (8 levels deep, 10,000 values, 1 MiB characters in one string): what
 * structured clone makes of a page's legitimate call. Bytes (a request body) may be any size.
 */
function bounded(value: unknown, budget = { values: 10_000 }, depth = 0): boolean {
  if (--budget.values < 0 || depth > 8) return false
  if (typeof value == 'string') return value.length <= 1 << 20
  if (value === null || typeof value != 'object') return typeof value != 'bigint' && typeof value != 'symbol'
  if (value instanceof ArrayBuffer || value instanceof ReadableStream) return true
  const proto = Object.getPrototypeOf(value)
  if (proto != Object.prototype && proto != Array.prototype) return false
  return Object.values(value).every((v) => bounded(v, budget, depth + 1))
}

const none = (a: unknown[]) => !a.length
const text = (v: unknown): v is string => typeof v == 'string'

/** The arguments each method takes, as a page may send them; the token manager checks the rest. */
const ARGUMENTS: Record<Method, (a: unknown[]) => boolean> = {
  restore: none,
  dpopThumbprint: none,
  refresh: none,
  logout: none,
  dispose: none,
  setTokens: ([response]) => isObject(response),
  exchangeCode: ([p]) => isObject(p) && text(p['code']) && text(p['codeVerifier']) && text(p['redirectUri']),
  fetch: ([r]) =>
    isObject(r) && text(r['url']) && isObject(r['init']) && [r['init']['headers'] ?? []].flat().every((h) => Array.isArray(h) && h.length == 2 && h.every(text)),
  authorize: ([p, bind]) => isObject(p) && typeof bind == 'boolean',
  redirect: ([url, saved]) => text(url) && (saved === null || text(saved)),
  hold: ([lock]) => text(lock) && lock.length <= 200,
}

/** A page's message as the protocol has it, or a `invalid_message` error naming what is wrong. */
function check(data: unknown): ToWorker {
  const refuse = (why: string): never => {
    throw new LatchkeyError('invalid_message', 'message refused: ' + why)
  }
  if (!isObject(data)) return refuse('not an object')
  const { i, m, a, x } = data
  if (!Number.isSafeInteger(i)) refuse('call id')
  if (x === 1) return { i: i as number, x }
  // Own entries only: a page script may post anything ('constructor', '__proto__', …).
  if (!text(m) || !Object.hasOwn(ARGUMENTS, m)) return refuse('not a method')
  if (!Array.isArray(a) || a.length > 2 || !bounded(a) || !ARGUMENTS[m as Method](a)) refuse(m + ' arguments')
  return data as Call
}

/** The pages connected now: each arrival and departure is measured (`worker_connection`). */
class Pages extends Set<Connection> {
  events = createEvents()
  override add(page: Connection) {
    super.add(page)
    this.events.emit('measure', { name: 'worker_connection', connections: this.size })
    return this
  }
  override delete(page: Connection) {
    const had = super.delete(page)
    if (had) this.events.emit('measure', { name: 'worker_connection', connections: this.size })
    return had
  }
}

/** One page's connection: its calls, its requests in flight, the last session state it was told. */
class Connection {
  // Requests in flight, by call id: the page aborts them by id. A streamed response keeps its
  // entry until its body is done, so that an abort during the body reaches the fetch too.
  #controllers = new Map<number, AbortController>()
  // The snapshot this page holds: a message carries one only when it changed.
  #reported = ''
  #served: Served | undefined
  #ready: Promise<Served>
  #port: MessageEndpoint
  // A SharedWorker's port is closed with its page; a dedicated worker's scope is not (its close() ends the worker).
  #shared: boolean
  #connections: Pages
  #receive = (e: MessageEvent) => void this.#answer(e.data)

  constructor(port: MessageEndpoint, ready: Promise<Served>, connections: Pages, shared: boolean) {
    this.#port = port
    this.#shared = shared
    this.#connections = connections
    this.#ready = ready
    ready.then((s) => (this.#served = s), () => {})
    port.addEventListener('message', this.#receive)
    port.start?.()
    // The page learns at once that the worker listens (it gives up on a worker that never does).
    port.postMessage({ h: shared ? connections.size + 1 : 1 } satisfies ToPage, [])
  }

  /** Posts `message` with the session's state, when it changed since this page was last told. */
  post(message: ToPage, transfer: Transferable[] = []) {
    const s = this.#served?.snapshot()
    const text = JSON.stringify(s)
    if (s && text != this.#reported) message.s = s
    this.#port.postMessage(message, transfer)
    this.#reported = text
  }

  /** The page is gone or disposed its handle: nothing of it stays. */
  close() {
    this.#port.removeEventListener('message', this.#receive)
    this.#controllers.forEach((c) => c.abort())
    this.#connections.delete(this)
    if (this.#shared) (this.#port as MessagePort).close()
  }

  async #answer(data: unknown) {
    let call: ToWorker
    try {
      call = check(data)
    } catch (e) {
      // A malformed message gets its error on its own connection and disturbs nothing else.
      const i = isObject(data) && Number.isSafeInteger(data['i']) ? (data['i'] as number) : 0
      return this.post({ i, e: wireError(e) })
    }
    const { i } = call
    if ('x' in call) return void this.#controllers.get(i)?.abort()
    let r: unknown
    try {
      const served = await this.#ready.catch((e: unknown) => {
        throw isLatchkeyError(e) || e instanceof TypeError ? e : new LatchkeyError('worker_error', 'the worker could not start: ' + String((e as Error)?.message))
      })
      r = await invoke(served.answersFor(this), call)
    } catch (e) {
      return this.post({ i, e: wireError(e) })
    }
    const b = (r as WireResponse | undefined)?.b
    try {
      this.post({ i, r }, b ? [b] : [])
    } catch (e) {
      if (!(b instanceof ReadableStream)) return this.post({ i, e: wireError(e) })
      // Where streams cannot be transferred, the body crosses whole.
      const whole = await new Response(b).arrayBuffer()
      this.post({ i, r: { ...(r as WireResponse), b: whole } }, [whole])
    }
  }

  async fetch(tm: TokenManager, i: number, { url, init, abortable }: WireRequest): Promise<WireResponse> {
    const ctl = abortable && new AbortController()
    if (ctl) this.#controllers.set(i, ctl)
    let streamed = false
    try {
      // A stream the page could not transfer arrives as bytes: still sent once, never replayed.
      if (init.duplex && !(init.body instanceof ReadableStream)) init.body = new Response(init.body).body
      const res = await tm.fetch(url, ctl ? { ...init, signal: ctl.signal } : init)
      const { status, statusText, headers } = res
      let b: WireResponse['b'] = res.body
      if (b && Number(headers.get('content-length') ?? Infinity) <= WHOLE_BODY) b = await res.arrayBuffer()
      else if (b && ctl) {
        streamed = true
        b = b.pipeThrough(new TransformStream({ flush: () => void this.#controllers.delete(i) }))
      }
      return { status, statusText, headers: [...headers], url: res.url, b }
    } finally {
      if (!streamed) this.#controllers.delete(i)
    }
  }
}

/** Runs call `m` with its arguments. */
function invoke<M extends Method>(answers: Answers, { m, a, i }: Call<M>): unknown {
  const method: Answers[M] = answers[m]
  return method(a, i)
}
