// The page's realm of worker mode: a TokenManager handle that asks the worker for everything and
// never receives a token.
import { createEvents } from '../events.js'
import { LatchkeyError } from '../errors.js'
import { PREFIX } from '../login.js'
import type { SessionInfo, TokenManager } from '../types.js'
import { here, isObject } from '../util.js'
import {
  fromWire,
  type Arguments,
  type Method,
  type MessageEndpoint,
  type Reply,
  type Result,
  type Snapshot,
  type ToPage,
  type ToWorker,
  type WireError,
  type WireRequest,
  type WireResponse,
} from './protocol.js'

/** What a `Request` made in the page tells the worker's fetch, besides its URL, headers and body. */
const REQUEST_FIELDS = ['method', 'redirect', 'credentials', 'mode', 'cache', 'referrerPolicy', 'integrity', 'keepalive'] as const

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
/** Options of {@link connectTokenManager}. */
export interface ConnectOptions {
  /**
   * How long to wait for the worker's first word: a worker that never answers (a wrong script, a
   * crash, an `await` before `serveTokenManager`) fails every call with a `timeout` error then.
   * @default 10
   */
  timeoutSeconds?: number
  /**
   * The worker outlives this page's navigation to the authorization server and back: a
   * `SharedWorker` created with `extendedLifetime: true` in a browser that honours it (Chromium),
   * or a login in a popup. Then the authorization code is bound to the worker's DPoP key
   * (`dpop_jkt`). Otherwise the worker that exchanges the code may be a new one with a new key:
   * PKCE binds the code, and the exchange's own DPoP proof binds the tokens.
   * @default false
   */
  workerOutlivesLogin?: boolean
}

/** A SharedWorker as the page sees it: messages go through its port. */
interface SharedWorkerLike {
  port: MessageEndpoint
  addEventListener(type: 'error', listener: (event: Event) => void): void
}

export function connectTokenManager(
  worker: MessageEndpoint | SharedWorkerLike,
  { timeoutSeconds = 10, workerOutlivesLogin = false }: ConnectOptions = {},
): TokenManager {
  const port = 'port' in worker ? worker.port : worker
  let id = 0
  let snapshot: Snapshot = {}
  const calls = new Map<number, (reply: Reply) => void>()
  const { emit, on } = createEvents()
  // Each redirect URL handled, and its outcome.
  const redirects: Record<string, Promise<void>> = {}
  const subscribers = new Set<(session: SessionInfo | undefined) => void>()

  // Once the worker fails before it ever answered, every call fails at once instead of waiting forever.
  let heard = false
  let failed: WireError | undefined
  const fail = (code: 'timeout' | 'worker_error', message: string) => {
    const e: WireError = { name: 'LatchkeyError', code, message }
    if (!heard) failed = e
    calls.forEach((settle) => settle({ i: 0, e }))
    calls.clear()
  }
  const timer = setTimeout(() => heard || fail('timeout', 'no answer from the worker'), timeoutSeconds * 1000)
  // Every message is checked: what is not the protocol's is dropped.
  const receive = ({ data }: MessageEvent<ToPage>) => {
    if (!isObject(data)) return
    heard = true
    clearTimeout(timer)
    if (isObject(data.s)) {
      snapshot = data.s
      subscribers.forEach((listener) => queueMicrotask(() => listener(snapshot[''])))
    }
    if ('v' in data) {
      const d = data.d
      if (isObject(d)) emit(data.v, 'error' in d ? { ...d, error: fromWire(d.error) } : d)
    } else if ('i' in data) {
      calls.get(data.i)?.(data)
      calls.delete(data.i)
    }
  }
  port.addEventListener('message', receive)
  worker.addEventListener('error', () => fail('worker_error', 'the worker failed'))
  port.start?.()

  /** Posts a call; throws at once when `transfer` cannot be transferred. */
  const call = <M extends Method>(m: M, a: Arguments<M>, transfer: Transferable[] = [], signal?: AbortSignal | null): Promise<Result<M>> => {
    if (failed) return Promise.reject(fromWire(failed))
    const i = ++id
    port.postMessage({ i, m, a } satisfies { i: number; m: Method; a: unknown[] }, transfer)
    return new Promise((resolve, reject) => {
      const abort = () => (calls.delete(i), port.postMessage({ i, x: 1 } satisfies ToWorker, []), reject(signal!.reason))
      signal?.addEventListener('abort', abort)
      calls.set(i, ({ r, e }) => {
        // A streamed body still belongs to the request: an abort now stops it in the worker too.
        if (!((r as WireResponse | undefined)?.b instanceof ReadableStream)) signal?.removeEventListener('abort', abort)
        e ? reject(fromWire(e)) : resolve(r as Result<M>)
      })
    })
  }
  const ask =
    <M extends Method>(m: M) =>
    (...a: Arguments<M>) =>
      call(m, a)

  // A SharedWorker outlives its pages: each holds a Web Lock while it lives, which the worker asks
  // for too; granted, it tells the worker that this page is gone and its connection can go.
  if (port != worker) {
    const lock = PREFIX + Math.random()
    navigator.locks?.request(lock, () => new Promise(() => call('hold', [lock]).catch(() => {})))
  }

  return {
    async authorizationUrl(parameters) {
      const { url, record } = await call('authorize', [parameters, workerOutlivesLogin])
      sessionStorage.setItem(...record)
      return url
    },
    // The worker checks the response; the page hands over what waited here for it, once. The same
    // URL twice (React StrictMode runs start-up effects twice) is one exchange, as in the core.
    handleRedirect: (input) =>
      (redirects[String(input)] ??= (() => {
        const url = new URL(input, here())
        const key = PREFIX + url.searchParams.get('state')
        const saved = sessionStorage.getItem(key)
        sessionStorage.removeItem(key)
        return call('redirect', [url.href, saved])
      })()),
    fetch: (input, init) => fetchThroughWorker(call, input, init),
    getAccessToken: () => Promise.reject(new LatchkeyError('unsupported', 'tokens stay in the worker')),
    status(origin) {
      // As the core: an origin with a token of its own (`resources`) has its own status; others share one.
      const key = origin && new URL(origin, here()).origin
      return snapshot[key && key in snapshot ? key : '']
    },
    on,
    subscribe(listener) {
      // As the core: at once with status(), then after every change.
      subscribers.add(listener)
      listener(snapshot[''])
      return () => void subscribers.delete(listener)
    },
    // The rest is asked of the worker as it is.
    restore: ask('restore'),
    setTokens: ask('setTokens'),
    exchangeCode: ask('exchangeCode'),
    dpopThumbprint: ask('dpopThumbprint'),
    refresh: ask('refresh'),
    logout: ask('logout'),
    dispose() {
      clearTimeout(timer)
      call('dispose', []).catch(() => {})
      port.removeEventListener('message', receive)
    },
  }
}

/** Posts call `m` to the worker and resolves with its result. */
type Caller = <M extends Method>(m: M, a: Arguments<M>, transfer?: Transferable[], signal?: AbortSignal | null) => Promise<Result<M>>

/** `tm.fetch` in the page: the request as it crosses to the worker, the worker's response rebuilt here. */
async function fetchThroughWorker(call: Caller, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  // A stream is sent as it is: it cannot be read twice, so it is never replayed (as in the page).
  const stream = init?.body instanceof ReadableStream ? init.body : undefined
  // A Request costs more than the rest of the call: built only for a Request given or a body to read.
  const request = input instanceof Request || init?.body ? new Request(input, stream ? { ...init, body: null } : init) : undefined
  const source: RequestInit = request ?? init ?? {}
  const signal = source.signal
  signal?.throwIfAborted()
  const body = stream ?? (request?.body ? await request.arrayBuffer() : null)
  const url = request ? request.url : new URL(input as string | URL, here()).href
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
}
