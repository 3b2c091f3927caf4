// The authorized fetch, top to bottom: origin check, token, proof, send, nonce retry, 401, one
// refresh, one retry. How a refresh works inside is not its business.
import { isDPoPNonceError, type DPoP } from './dpop.js'
import type { Session } from './session.js'
import { discard, here, sha256 } from './util.js'

export interface FetchParts {
  /** Invariant 2: the only origins whose requests get a token. */
  origins: Set<string>
  send: typeof fetch
  dpop: DPoP | undefined
  /** The session to use now, refreshed first when due. */
  current(): Promise<Session>
  /** The session to retry with after a 401 on `used`. */
  renew(used: Session): Promise<Session>
  /** A refresh is possible without a refresh token (the app's own endpoint or function). */
  ownRefresh: boolean
}

/** The `error` parameter of a `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9449 §7.1). */
const challengeError = (challenge: string) => /\berror="?([\w-]+)/.exec(challenge)?.[1]

export function createAuthorizedFetch({ origins, send, dpop, current, renew, ownRefresh }: FetchParts) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    // A Request is built only when the caller passed one: building one per call costs more than the rest.
    const request = input instanceof Request ? input : undefined
    const url = new URL(request ? request.url : String(input), here())
    // Invariant 2: every request to any other origin passes through untouched: no header, no refresh.
    if (!origins.has(url.origin)) return send(input, init)
    const base = request && init ? new Request(request, init) : request
    const replayable = !(typeof ReadableStream == 'function' && init?.body instanceof ReadableStream)
    // Sent upper-case, as the htm claim says (fetch itself would send a lower-case `patch` as is).
    const method = (base?.method ?? init?.method ?? 'GET').toUpperCase()
    let s = await current()
    // Invariant 5: at most one retry after a refresh and one after a nonce challenge; never a loop.
    let refreshed = false
    let nonced = false
    for (;;) {
      const headers = new Headers(base ? base.headers : init?.headers)
      headers.set('authorization', s.type + ' ' + s.at)
      if (s.type == 'DPoP') headers.set('dpop', await dpop!.proof(method, url, await (s.ath ??= sha256(s.at!))))
      const res = await (base ? send(new Request(base.clone(), { method, headers })) : send(url, { ...init, method, headers }))
      dpop?.nonce(url, res)
      if (res.status != 401 || !replayable) return res
      const challenge = res.headers.get('www-authenticate') ?? ''
      const error = challengeError(challenge)
      if (!nonced && s.type == 'DPoP' && isDPoPNonceError(res, error)) {
        nonced = true
      } else if (!refreshed && (!challenge || error == 'invalid_token') && (s.rt || ownRefresh)) {
        refreshed = true
        discard(res)
        s = await renew(s)
        continue
      } else return res
      discard(res)
    }
  }
}
