/**
 * Worker mode: the session (access tokens, refresh token, DPoP key) lives in a dedicated worker;
 * the page holds a handle that asks the worker for everything and never receives a token.
 *
 * @module
 */
import { redirectResult, type IssuerCheck } from './login.js'
import { createTokenManager } from './index.js'
import type { AuthorizationParameters, LoginStore, TokenManager, TokenManagerOptions } from './index.js'
import {
  fromWire,
  wireError,
  type PendingLogin,
  type MessageEndpoint,
  type Snapshot,
  type ToPage,
  type ToWorker,
  type WireError,
  type WireRequest,
  type WireResponse,
} from './worker/wire.js'

export type { MessageEndpoint } from './worker/wire.js'

/** Bodies up to this size (by `content-length`) cross whole; longer or unknown ones stream. */
const WHOLE_BODY = 65_536

/** What a `Request` made in the page tells the worker's fetch, besides its URL, headers and body. */
const REQUEST_FIELDS = ['method', 'redirect', 'credentials', 'mode', 'cache', 'referrerPolicy', 'integrity', 'keepalive'] as const

const EVENTS = ['tokens', 'refresh', 'refresh-error', 'session-expired', 'logout', 'warning'] as const

/**
 * Runs a token manager inside a module worker and answers the page that started the worker
 * ({@link connectTokenManager}). Tokens, the refresh token and the DPoP key stay in the worker;
 * tabs coordinate exactly as without a worker (Web Locks, BroadcastChannel and IndexedDB exist
 * there). Call it at the top level of the worker's module, before any `await`, so that no message
 * from the page arrives before it listens.
 *
 * The page can ask for everything a {@link TokenManager} does except a token: there is no message
 * that returns one.
 *
 * @param options The options of `createTokenManager`, except `loginStore`: a login started in the
 *   page waits in the page's `sessionStorage`.
 * @param scope Where the page's messages arrive: the worker's global scope, or a `MessagePort`.
 * @returns The worker's own handle on the same session, for code that runs in the worker.
 * @example
 * ```ts
 * // auth-worker.ts, bundled by the app as a module worker
 * import { serveTokenManager } from 'latchkey/worker'
 *
 * serveTokenManager({
 *   clientId: 'spa',
 *   tokenEndpoint: 'https://as.example/token',
 *   revocationEndpoint: 'https://as.example/revoke',
 *   allowedOrigins: ['https://api.example'],
 * })
 * ```
 */
export function serveTokenManager(
  options: TokenManagerOptions,
  scope: MessageEndpoint = globalThis as unknown as MessageEndpoint,
): TokenManager {
  // The login's PKCE verifier and redirect URI wait in the page's sessionStorage (the worker has
  // none): the worker's manager leaves each here, keyed by `state`, until `authorize` hands it over.
  const pendingLogins = new Map<string, string>()
  const loginStore: LoginStore = { setItem: (key, value) => void pendingLogins.set(key, value), getItem: () => null, removeItem: () => {} }
  const tm = createTokenManager({ ...options, loginStore })
  // Requests in flight, by call id: the page aborts them by id. A streamed response keeps its
  // entry until its body is done, so that an abort during the body reaches the fetch too.
  const controllers = new Map<number, AbortController>()

  // With `resources`, each API's origin has a token (and a status) of its own.
  const resourceOrigins = Object.keys(options.resources ?? {}).map((o) => new URL(o).origin)
  const snapshot = (): Snapshot => Object.fromEntries([['', tm.status()], ...resourceOrigins.map((o) => [o, tm.status(o)])])
  // The page keeps the last snapshot it got: a message carries one only when it changed, so the
  // replies to a run of API calls carry none.
  let reported = ''
  const post = (message: ToPage, transfer: Transferable[] = []) => {
    const s = snapshot()
    const text = JSON.stringify(s)
    if (text != reported) message.s = s
    scope.postMessage(message, transfer)
    reported = text
  }

  const offs = EVENTS.map((v) =>
    tm.on(v, (d) => post({ v, d: 'error' in d ? { ...d, error: wireError(d.error) } : d })),
  )

  const fetchFor = async (i: number, { url, init, abortable }: WireRequest): Promise<WireResponse> => {
    const ctl = abortable && new AbortController()
    if (ctl) controllers.set(i, ctl)
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
        b = b.pipeThrough(new TransformStream({ flush: () => void controllers.delete(i) }))
      }
      return { status, statusText, headers: [...headers], url: res.url, b }
    } finally {
      if (!streamed) controllers.delete(i)
    }
  }

  /** What the page may ask. No entry returns a token: `getAccessToken` is not one of them. */
  const methods: Record<string, (a: unknown[], i: number) => unknown> = {
    restore: () => tm.restore(),
    setTokens: ([response]) => tm.setTokens(response as never),
    exchangeCode: ([parameters]) => tm.exchangeCode(parameters as never),
    dpopThumbprint: () => tm.dpopThumbprint(),
    refresh: () => tm.refresh(),
    logout: () => tm.logout(),
    fetch: ([request], i) => fetchFor(i, request as WireRequest),
    // The login request is built here, where the key is; what waits for the redirect goes to the
    // page, where handleRedirect reads it (redirectResult) and asks for the code exchange.
    authorize: async ([parameters]): Promise<PendingLogin> => {
      const url = await tm.authorizationUrl(parameters as AuthorizationParameters)
      const state = new URL(url).searchParams.get('state')!
      const record = [...pendingLogins].find(([key]) => key.endsWith(state))!
      pendingLogins.delete(record[0])
      return { url, record }
    },
    issuer: (): IssuerCheck => ({ issuer: options.issuer, issParameterRequired: options.issParameterRequired }),
    dispose: () => {
      offs.forEach((off) => off())
      scope.removeEventListener('message', receive)
      tm.dispose()
    },
  }

  const receive = async ({ data }: MessageEvent<ToWorker>) => {
    if (!data || typeof data != 'object') return
    const { i } = data
    if ('x' in data) return void controllers.get(i)?.abort()
    let r: unknown
    try {
      // Own entries only: a page script may post anything ('constructor', '__proto__', …).
      const method = Object.hasOwn(methods, data.m) ? methods[data.m]! : () => Promise.reject(new TypeError(data.m + ': not a method'))
      r = await method(data.a, i)
    } catch (e) {
      return post({ i, e: wireError(e) })
    }
    const b = (r as WireResponse | undefined)?.b
    try {
      post({ i, r }, b ? [b] : [])
    } catch (e) {
      if (!(b instanceof ReadableStream)) return post({ i, e: wireError(e) })
      // Where streams cannot be transferred, the body crosses whole.
      const whole = await new Response(b).arrayBuffer()
      post({ i, r: { ...(r as WireResponse), b: whole } }, [whole])
    }
  }
  scope.addEventListener('message', receive)
  scope.start?.()
  return tm
}

/**
 * The page's side of worker mode: a {@link TokenManager} whose session lives in `worker` (where
 * {@link serveTokenManager} runs). Every method works as in the page, with two differences:
 * `getAccessToken()` rejects with a `LatchkeyError` of code `unsupported`, since no token ever
 * leaves the worker; and `status()` answers from the last state the worker reported (it reports
 * a change with its next reply or event, so before the call that caused it resolves). The worker
 * builds the authorization request; its PKCE verifier and `state` wait in the page's
 * `sessionStorage` (the worker has none), as without a worker. They are not tokens, and the code
 * they redeem is bound to the worker's DPoP key (`dpop_jkt`).
 *
 * `fetch` takes what `fetch` takes and resolves with a real `Response` (`status`, `statusText`,
 * `headers`, `url`, body; not `type` or `redirected`). A request body is read into bytes first (so
 * it can be replayed after a 401, as in the page), except a `ReadableStream` given as
 * `init.body`, which is sent once. Response bodies with a known length up to 64 KiB arrive whole;
 * longer ones stream. An `AbortSignal` aborts the request in the worker. An opaque response
 * (`mode: 'no-cors'`, `redirect: 'manual'`) cannot be rebuilt in the page: it rejects with a
 * `RangeError`.
 *
 * Tokens handed to `setTokens` in the page were in the page already: worker mode keeps no promise
 * about those.
 *
 * @param worker The `Worker` running {@link serveTokenManager} (or a `MessagePort` to it).
 * @example
 * ```ts
 * import { connectTokenManager } from 'latchkey/worker'
 *
 * const tm = connectTokenManager(new Worker(new URL('./auth-worker.ts', import.meta.url), { type: 'module' }))
 * if (await tm.restore()) console.log(await (await tm.fetch('https://api.example/me')).json())
 * ```
 */
export function connectTokenManager(worker: MessageEndpoint): TokenManager {
  let id = 0
  let snapshot: Snapshot = {}
  const calls = new Map<number, (reply: { r?: unknown; e?: WireError | undefined }) => void>()
  const listeners = new Map<string, Set<(state: never) => void>>()

  // A worker whose script failed to load or to run reports an error before it ever answered: every
  // call fails from then on, instead of waiting forever.
  let heard = false
  let failed: WireError | undefined
  const receive = ({ data }: MessageEvent<ToPage>) => {
    heard = true
    if (data.s) snapshot = data.s
    if ('v' in data) {
      const d = data.d as { error?: WireError | Error }
      if (d.error) d.error = fromWire(d.error as WireError)
      // One task each: a listener that throws is reported and stops no other.
      listeners.get(data.v)?.forEach((fn) => queueMicrotask(() => (fn as (state: unknown) => void)(d)))
    } else {
      calls.get(data.i)?.(data)
      calls.delete(data.i)
    }
  }
  worker.addEventListener('message', receive)
  worker.addEventListener('error', () => {
    if (heard) return
    failed = { name: 'Error', message: 'the worker did not start' }
    calls.forEach((settle) => settle({ e: failed! }))
    calls.clear()
  })
  worker.start?.()

  /** Posts a call; throws at once when `transfer` cannot be transferred. */
  const call = <T>(m: string, a: unknown[] = [], transfer: Transferable[] = [], signal?: AbortSignal | null): Promise<T> => {
    if (failed) return Promise.reject(fromWire(failed))
    const i = ++id
    worker.postMessage({ i, m, a } satisfies ToWorker, transfer)
    return new Promise((resolve, reject) => {
      const abort = () => (calls.delete(i), worker.postMessage({ i, x: 1 } satisfies ToWorker, []), reject(signal!.reason))
      signal?.addEventListener('abort', abort)
      calls.set(i, ({ r, e }) => {
        // A streamed body still belongs to the request: an abort now stops it in the worker too.
        if (!((r as WireResponse | undefined)?.b instanceof ReadableStream)) signal?.removeEventListener('abort', abort)
        e ? reject(fromWire(e)) : resolve(r as T)
      })
    })
  }

  const handle: Partial<TokenManager> = {
    async authorizationUrl(parameters) {
      const { url, record } = await call<PendingLogin>('authorize', [parameters])
      sessionStorage.setItem(...record)
      return url
    },
    async handleRedirect(url) {
      await call('exchangeCode', [await redirectResult(url, await call('issuer'))])
    },
    async fetch(input, init) {
      // A stream is sent as it is: it cannot be read twice, so it is never replayed (as in the page).
      const stream = init?.body instanceof ReadableStream ? init.body : undefined
      // A Request costs more than the rest of the call: built only for a Request given or a body to read.
      const request = input instanceof Request || init?.body ? new Request(input, stream ? { ...init, body: null } : init) : undefined
      const source: RequestInit = request ?? init ?? {}
      const signal = source.signal
      signal?.throwIfAborted()
      const body = stream ?? (request?.body ? await request.arrayBuffer() : null)
      const url = request ? request.url : new URL(input as string | URL, globalThis.location?.href).href
      // Only what the caller set crosses; the worker's fetch fills in the same defaults.
      const wire: WireRequest = { url, init: {} }
      for (const key of REQUEST_FIELDS) if (source[key] != null) (wire.init as Record<string, unknown>)[key] = source[key]
      if (source.headers) wire.init.headers = [...new Headers(source.headers)]
      if (body) wire.init.body = body
      if (signal) wire.abortable = 1
      if (stream) wire.init.duplex = 'half'
      let pending: Promise<WireResponse>
      try {
        pending = call('fetch', [wire], body ? [body] : [], signal)
      } catch (e) {
        if (!stream) throw e
        // This browser cannot transfer streams: the body crosses as bytes, still sent only once.
        wire.init.body = await new Response(stream).arrayBuffer()
        pending = call('fetch', [wire], [wire.init.body], signal)
      }
      const r = await pending
      const response = new Response(r.b, r)
      Object.defineProperty(response, 'url', { value: r.url })
      return response
    },
    getAccessToken: () => Promise.reject(fromWire({ name: 'LatchkeyError', code: 'unsupported', message: 'tokens stay in the worker' })),
    status(origin) {
      // As the core: an origin with a token of its own (`resources`) has its own status; others share one.
      const key = origin && new URL(origin, globalThis.location?.href).origin
      return snapshot[key && key in snapshot ? key : '']
    },
    on(type, listener) {
      let set = listeners.get(type)
      if (!set) listeners.set(type, (set = new Set()))
      set.add(listener)
      return () => void set.delete(listener)
    },
    dispose() {
      worker.postMessage({ i: ++id, m: 'dispose', a: [] } satisfies ToWorker, [])
      worker.removeEventListener('message', receive)
      listeners.clear()
    },
  }
  // The rest is asked of the worker as it is.
  for (const m of ['restore', 'setTokens', 'exchangeCode', 'dpopThumbprint', 'refresh', 'logout']) (handle as Record<string, unknown>)[m] = (...a: unknown[]) => call(m, a)
  return handle as TokenManager
}
