import type { BeforeRequestHook, BeforeRetryHook, Hooks, NormalizedOptions } from 'ky'
import type { TokenManager } from './index.js'

type RequestState = { request: Request; options: NormalizedOptions & { timeout?: number | false } }

/**
 * ky hooks that send every request through `tm.fetch`, so a ky instance keeps every guarantee of
 * `tm.fetch`: the access token (with a DPoP proof) goes only to `allowedOrigins`, a token that is
 * due is refreshed first, a `use_dpop_nonce` challenge is answered by one retry, and a 401 joins
 * the single refresh and is retried exactly once. A 401 that remains becomes ky's `HTTPError`.
 * ky never retries a 401 (that would spend a second refresh) nor a `no_session` or
 * `session_expired` error; its other retries, `prefix` (ky 1: `prefixUrl`), `json`, `searchParams`,
 * `throwHttpErrors` and `afterResponse`/`beforeError` hooks work as usual. No hook and no error
 * ever sees a token: the request ky hands them carries none.
 *
 * The response comes from a `beforeRequest` hook, which ends ky's `beforeRequest` chain. Pass the
 * app's own hooks as `hooks` so that its `beforeRequest` hooks run first; they should change
 * `request.headers` in place, because one that returns a `Request` or `Response` ends the chain
 * before latchkey (the request then goes out without a token). `beforeRequest` hooks added later
 * with `.extend()` do not run. ky 2's `totalTimeout` covers the whole call, refresh and retry
 * included (ky 2's `timeout` never reaches the hook that sends the request); ky 1's `timeout` does,
 * and rejects with an `Error` named `TimeoutError` (ky's `isTimeoutError` recognises it). ky's
 * `fetch` option is not used: requests go through the `fetch` given to `createTokenManager`.
 *
 * @param tm The token manager whose tokens the requests carry.
 * @param hooks The app's own ky hooks, merged in: its `beforeRequest` hooks before latchkey's.
 * @returns The `hooks` option of `ky.create` or `ky.extend`.
 * @example ky 2 (ky 1: `prefixUrl`, `timeout`, and hooks called as `(request, options)`)
 * ```ts
 * import ky from 'ky'
 * import { kyHooks } from 'latchkey/ky'
 *
 * const api = ky.create({
 *   prefix: 'https://api.example',
 *   totalTimeout: 10_000,
 *   hooks: kyHooks(tm, { beforeRequest: [({ request }) => request.headers.set('x-request-id', crypto.randomUUID())] }),
 * })
 * const me = await api.get('me').json()
 * ```
 * @see RFC 6750, RFC 9449
 */
export function kyHooks(tm: TokenManager, hooks: Hooks = {}): Hooks {
  // ky 1 calls (request, options); ky 2 passes one state object.
  const send = (first: Request | RequestState, second?: NormalizedOptions) => {
    const request = (first as RequestState).request ?? (first as Request)
    const ms = ((first as RequestState).options ?? (second as RequestState['options'])).timeout
    const { signal } = request
    const ctl = new AbortController()
    return new Promise<Response>((resolve, reject) => {
      const stop = (reason: unknown) => (ctl.abort(reason), reject(reason))
      const abort = () => stop(signal.reason)
      const timer =
        typeof ms == 'number'
          ? setTimeout(() => stop(Object.assign(new Error(`Request timed out: ${request.method} ${request.url}`), { name: 'TimeoutError', request })), ms)
          : undefined
      signal.addEventListener('abort', abort)
      if (signal.aborted) abort()
      // A clone, so that the body is still there when ky retries.
      tm.fetch(request.clone(), { signal: ctl.signal })
        .then(resolve, reject)
        .finally(() => (clearTimeout(timer), signal.removeEventListener('abort', abort)))
    })
  }
  // latchkey already refreshed and retried once; no session stays no session.
  const once: BeforeRetryHook = ({ error }) => {
    const e = error as Error & { response?: Response; code?: string }
    if (e.response?.status == 401 || (Object(e)[Symbol.for('latchkey.error')] && /^(no_session|session_expired)$/.test(e.code!))) throw error
  }
  return {
    ...hooks,
    beforeRequest: [...(hooks.beforeRequest ?? []), send as BeforeRequestHook],
    beforeRetry: [once, ...(hooks.beforeRetry ?? [])],
  }
}
