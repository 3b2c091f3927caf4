// The authorized fetch, top to bottom: origin check, token, proof, send, nonce retry, 401, one
// refresh, one retry. How a refresh works inside is not its business.
import type { SharedToken } from './crosstab.js'
import { dpopRetries } from './dpop.js'
import { NetworkError } from './errors.js'
import type { Context } from './options.js'
import { discard, here, sha256 } from './util.js'

export interface TokenSource {
  /** The access token for `origin` now, refreshed first when due. */
  current(origin?: string): Promise<SharedToken>
  /** The token to retry with after a 401 on `used`; none: the 401 is the answer. */
  renew(used: SharedToken, origin?: string): Promise<SharedToken | undefined>
  /** Whether a refresh is possible at all (a refresh token, or the app's own refresh). */
  canRefresh(): boolean
}

/** The `error` parameter of a `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9449 §7.1). */
const challengeError = (challenge: string) => /\berror="?([\w-]+)/.exec(challenge)?.[1]

export function createAuthorizedFetch({ origins, resourceOf, send, dpop, crypto, emit }: Context, { current, renew, canRefresh }: TokenSource) {
  // The `ath` claim of each access token, computed once (RFC 9449 §4.2).
  const ath = new WeakMap<SharedToken, Promise<string>>()
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    // Invariant 2 is checked on the URL that is sent: a Request passed in is built anew, once, and
    // that one is read and sent (a passed one's `url` may be an own property or a subclass getter
    // that lies). A Request is built only when the caller passed one: it costs more than the rest.
    const base = input instanceof Request ? new Request(input, init) : undefined
    const url = new URL(base ? base.url : String(input), here())
    // Invariant 2: every request to any other origin passes through untouched: no header, no refresh.
    if (!origins.has(url.origin)) return base ? send(base) : send(input, init)
    const replayable = !(typeof ReadableStream == 'function' && init?.body instanceof ReadableStream)
    // Sent upper-case, as the htm claim says (fetch itself would send a lower-case `patch` as is).
    const method = (base?.method ?? init?.method ?? 'GET').toUpperCase()
    // RFC 8707: an origin in `resources` gets the token of its own resource, and no other.
    const origin = resourceOf.has(url.origin) ? url.origin : undefined
    let token = await current(origin)
    // Invariant 5: at most one retry after a refresh, one after a nonce challenge and one after a
    // proof refused for its time; never a loop.
    let refreshed = false
    const retry = dpop && dpopRetries(dpop, emit, 'api')
    for (;;) {
      const headers = new Headers(base ? base.headers : init?.headers)
      const datedAt = dpop?.offset
      headers.set('authorization', token.type + ' ' + token.at)
      if (token.type == 'DPoP') {
        if (!ath.has(token)) ath.set(token, sha256(crypto, token.at!))
        headers.set('dpop', await dpop!.proof(method, url, await ath.get(token)))
      }
      const options = { ...init, method, headers }
      const res = await (base ? send(new Request(base.clone(), { method, headers })) : send(url, options)).catch((e) => {
        // No response: a NetworkError with the platform's error as its cause (ky 1 retries it like
        // any network error). An abort by the caller's own signal stays its reason, and bad arguments
        // stay a TypeError (building the Request throws it), as with fetch.
        if (!(base ?? init)?.signal?.aborted) {
          base || new Request(url, options)
          e = new NetworkError(method + ' ' + url.origin + url.pathname + ' failed', { cause: e })
        }
        throw e
      })
      dpop?.learn(url, res)
      if (res.status != 401 || !replayable) return res
      const challenge = res.headers.get('www-authenticate') ?? ''
      const error = challengeError(challenge)
      // A DPoP retry sends the same token with a new proof; otherwise a 401 with no challenge, or
      // `invalid_token`, buys one refresh.
      if (!(token.type == 'DPoP' && retry!(res, error, datedAt!))) {
        if (refreshed || (challenge && error != 'invalid_token') || !canRefresh()) return res
        refreshed = true
        emit('measure', { name: 'unauthorized' })
        const next = await renew(token, origin)
        if (!next) return res
        token = next
      }
      discard(res)
    }
  }
}
