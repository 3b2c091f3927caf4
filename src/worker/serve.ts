// The worker's realm of worker mode: a token manager that answers the page's calls and never
// hands it a token.
import { redirectResult } from '../login.js'
import { createTokenManager } from '../manager.js'
import type { LoginStore, TokenManager, TokenManagerEvents, TokenManagerOptions } from '../types.js'
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

/** How the worker answers each method: its arguments as they crossed, and the call's id. */
type Answers = { [M in Method]: (a: Arguments<M>, i: number) => ReturnType<WorkerMethods[M]> }

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
export function serveTokenManager(options: TokenManagerOptions, scope: MessageEndpoint = globalThis as unknown as MessageEndpoint): TokenManager {
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

  const forward = <E extends keyof TokenManagerEvents>(v: E) =>
    tm.on(v, (d) => post({ v, d: 'error' in d ? { ...d, error: wireError(d.error) } : d } as ToPage))
  const offs = EVENTS.map(forward)

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

  const answers: Answers = {
    restore: () => tm.restore(),
    setTokens: ([response]) => tm.setTokens(response),
    exchangeCode: ([parameters]) => tm.exchangeCode(parameters),
    dpopThumbprint: () => tm.dpopThumbprint(),
    refresh: () => tm.refresh(),
    logout: () => tm.logout(),
    fetch: ([request], i) => fetchFor(i, request),
    // The login request is built here, where the key is; what waits for the redirect goes to the
    // page, where handleRedirect reads it (redirectResult) and asks for the code exchange.
    authorize: async ([parameters]) => {
      const url = await tm.authorizationUrl(parameters)
      const state = new URL(url).searchParams.get('state')!
      const record = [...pendingLogins].find(([key]) => key.endsWith(state))!
      pendingLogins.delete(record[0])
      return { url, record }
    },
    redirect: async ([url, saved]) => {
      const { issuer, issParameterRequired } = options
      const loginStore: LoginStore = { getItem: () => saved, removeItem: () => {}, setItem: () => {} }
      await tm.exchangeCode(await redirectResult(url, { issuer, issParameterRequired, loginStore }))
    },
    dispose: () => {
      offs.forEach((off) => off())
      scope.removeEventListener('message', receive)
      tm.dispose()
    },
  }

  /** Runs one call; a method that is not one of the answers' own entries is refused. */
  const answer = <M extends Method>({ m, a, i }: Call<M>): unknown => {
    // Own entries only: a page script may post anything ('constructor', '__proto__', …).
    if (!Object.hasOwn(answers, m)) return Promise.reject(new TypeError(m + ': not a method'))
    const method: Answers[M] = answers[m]
    return method(a, i)
  }

  const receive = async ({ data }: MessageEvent<ToWorker>) => {
    if (!data || typeof data != 'object') return
    const { i } = data
    if ('x' in data) return void controllers.get(i)?.abort()
    let r: unknown
    try {
      r = await answer(data)
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
