// Wire requests to the authorization server: token and revocation POSTs, strict token-response
// parsing, OAuth error mapping. Stateless: what to redact comes in with the call.
import type { SharedSession } from './crosstab.js'
import { dpopRetries } from './dpop.js'
import {
  DPoPProofError,
  isLatchkeyError,
  NetworkError,
  OAuthError,
  ResponseError,
  SessionExpiredError,
  TimeoutError,
} from './errors.js'
import type { Context } from './options.js'
import type { Measurement } from './types.js'
import { isObject, now, readJSON } from './util.js'

/** Tokens as a token response gives them (wire names; the legend is on {@link SharedSession}). */
export type TokenSet = SharedSession

/** What every wire request of one client needs. */
export type Wire = Pick<Context, 'clientId' | 'send' | 'timeout' | 'dpop' | 'redact'>

/**
 * A token request's wire, with the measurement it fills in (`status`, `host`), where nonce retries
 * are told, and the tokens whose refresh token and scope a response without its own keeps (`prev`).
 */
export type TokenWire = Wire & Pick<Context, 'emit'> & { m: Measurement; prev?: TokenSet | undefined }

/** The longest `expires_in` accepted, s: 366 days (a literal: bundlers drop an unused one, not an unused 366 * 86400). */
const MAX_LIFETIME = 31_622_400
/** The longest `Retry-After` obeyed, ms: a longer one is a server's mistake, not a reason to stop for days. */
const MAX_RETRY_AFTER = 600_000
/** The most characters of a server's `error` or `error_description` that an error keeps. */
const MAX_TEXT = 200

/** Runs `fn` with a timeout; failures become typed errors. */
export async function timed<T>(what: string, timeout: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      fn(ctl.signal),
      new Promise<never>((_, reject) => (timer = setTimeout(() => (ctl.abort(), reject(new TimeoutError(what + ' timed out'))), timeout))),
    ])
  } catch (e) {
    // No cause: an app's refresh function may fail with an error quoting a token (V8's JSON
    // errors quote the body); a fetch failure says no more than its message here does.
    throw isLatchkeyError(e) ? e : new (e instanceof SyntaxError ? ResponseError : NetworkError)(what + ' failed')
  } finally {
    clearTimeout(timer)
  }
}

/** A form's fields; those without a value are left out. */
export type Form = Record<string, string | undefined>

/** POSTs a form; reads the body (up to its bound) within the timeout. */
export const postForm = (wire: Wire, url: string, form: Form, init: RequestInit = {}) =>
  timed('POST ' + url, wire.timeout, async (signal) => {
    const res = await wire.send(url, {
      method: 'POST',
      ...init,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...init.headers },
      body: new URLSearchParams(Object.entries(form).filter((field): field is [string, string] => !!field[1])),
      signal,
      // Invariant 9: a refresh token goes to the configured endpoint's origin only, never where a
      // redirect points. Browsers answer `manual` with an opaque response; Node with the 3xx itself.
      redirect: 'manual',
    })
    if (res.type == 'opaqueredirect' || (res.status > 299 && res.status < 400))
      throw new ResponseError(`POST ${url}: redirect refused (HTTP ${res.status})`, { response: res })
    return { res, json: await readJSON(res) }
  })

/**
 * Invariant 10: the `Retry-After` of a 429 or 503 (delta-seconds or an HTTP date, RFC 9110 §10.2.3)
 * in ms, capped at {@link MAX_RETRY_AFTER}; a date in the past is 0, anything unreadable none.
 */
const retryAfterOf = (res: Response) => {
  const value = res.headers.get('retry-after')
  if (value && (res.status == 429 || res.status == 503)) {
    const ms = /^\d+$/.test(value) ? +value * 1000 : Date.parse(value) - now()
    if (ms == ms) return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER)
  }
}

/** The typed error of a failed token request; `refreshing` tells whether a refusal ends the session. */
export function tokenFailure(wire: Wire, res: Response, json: unknown, where: string, refreshing: 'token' | 'own' | false) {
  const o = isObject(json) ? json : {}
  // Invariant 6: redacted whole (the body is bounded), then cut: a cut first may leave a piece of a
  // token that redaction no longer recognises.
  const text = (v: unknown) => (typeof v == 'string' ? wire.redact(v).slice(0, MAX_TEXT) : undefined)
  const error = text(o.error)
  const description = text(o.error_description)
  const message = `${where}: ${error ?? 'HTTP ' + res.status} ${description ?? ''}`.trim()
  // Invariant 13: a refresh refused in any form ends the session: `invalid_grant`, a bare 400 or 401
  // (a failure here is 400 or more) with no readable OAuth error (Glewlwyd answers a spent refresh
  // token so), and the app's own endpoint's 401 unless it is about the proof.
  const Kind =
    refreshing && (error == 'invalid_grant' || (!error && res.status < 402) || (refreshing == 'own' && res.status == 401 && !/dpop/.test(error!)))
      ? SessionExpiredError
      : error == 'invalid_dpop_proof'
        ? DPoPProofError
        : error
          ? OAuthError
          : ResponseError
  return new Kind(message, { response: res, error, description, retryAfter: retryAfterOf(res) })
}

/**
 * A token request with a DPoP proof; retried once when the server asks for a (new) nonce, once when
 * it refused a proof for its time. Resolves with the tokens of its response, strictly parsed.
 */
export async function tokenRequest(wire: TokenWire, url: string, form: Form, init: RequestInit, refreshing: 'token' | 'own' | false) {
  const { dpop, emit, m } = wire
  m.host = new URL(url).hostname
  // Invariant 5: one retry after a nonce challenge, one after a proof refused for its time.
  const retry = dpop && dpopRetries(dpop, emit, 'as')
  for (;;) {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string>) }
    const datedAt = dpop?.offset
    if (dpop) headers.dpop = await dpop.proof('POST', url)
    const { res, json } = await postForm(wire, url, form, { ...init, headers })
    m.status = res.status
    // Requests in flight when the nonce changed all carry the old one: each may retry once.
    dpop?.learn(url, res, isObject(json) ? json : undefined)
    if (res.ok) return parseTokenResponse(json, 'POST ' + url, !!dpop, wire.prev, res)
    if (!retry?.(res, (json as { error?: string })?.error, datedAt!)) throw tokenFailure(wire, res, json, 'POST ' + url, refreshing)
  }
}

/**
 * Validates a token response strictly (RFC 6749 §5.1); the lifetime counts from its arrival.
 * Invariant 8: anything malformed is a typed error and nothing of it is kept.
 */
export function parseTokenResponse(json: unknown, where: string, dpopOn: boolean, prev?: TokenSet, res?: Response): TokenSet {
  const o = isObject(json) ? json : {}
  const { access_token: at, token_type: tt, expires_in: ei, refresh_token: rt, scope } = o
  const t = typeof tt == 'string' && tt.toLowerCase()
  // A DPoP-bound token is useless without DPoP, and is never downgraded to Bearer.
  const type = t == 'dpop' && dpopOn ? 'DPoP' : t == 'bearer' ? 'Bearer' : undefined
  const wrong =
    o != json
      ? 'body'
      : typeof at != 'string' || !/^[\x20-\x7e]+$/.test(at)
        ? 'access_token'
        : !type
          ? 'token_type'
          : ei !== undefined && !(typeof ei == 'number' && ei > 0 && ei <= MAX_LIFETIME)
            ? 'expires_in'
            : rt !== undefined && (typeof rt != 'string' || !rt)
              ? 'refresh_token'
              : scope !== undefined && typeof scope != 'string' && 'scope'
  if (wrong) throw new ResponseError(`${where}: invalid ${wrong}`, { response: res })
  return {
    at: at as string,
    type: type!,
    exp: ei ? now() + (ei as number) * 1000 : undefined,
    life: ei ? (ei as number) * 1000 : undefined,
    rt: (rt as string | undefined) ?? prev?.rt,
    scope: (scope as string | undefined) ?? prev?.scope,
  }
}

/** RFC 7009: revokes a refresh token; resolves whether the server confirmed. */
export const revokeToken = (wire: Wire, endpoint: string, token: string) =>
  postForm(wire, endpoint, { token, token_type_hint: 'refresh_token', client_id: wire.clientId }).then(({ res }) => res.ok, () => false)
