/**
 * Every error latchkey throws or reports is a {@link LatchkeyError} with a stable `code`.
 * Messages name the method and URL involved and never contain a token value.
 *
 * @module
 */

/** The stable codes of {@link LatchkeyError}; switch on these, never on messages. */
export type LatchkeyErrorCode =
  | 'invalid_response'
  | 'oauth_error'
  | 'session_expired'
  | 'invalid_dpop_proof'
  | 'network_error'
  | 'timeout'
  | 'no_session'
  | 'login_error'
  | 'retry_later'
  | 'unsupported'
  | 'invalid_message'
  | 'worker_error'

/** What an error may carry besides its message. */
export interface LatchkeyErrorOptions {
  /** The underlying error. */
  cause?: unknown
  /** The response that caused the error. */
  response?: Response | undefined
  /** The OAuth `error` value the server sent. */
  error?: string | undefined
  /** The server's `error_description`. */
  description?: string | undefined
  /** How long to wait before the next token request, ms. */
  retryAfter?: number | undefined
}

const brand = Symbol.for('latchkey.error')

/** Base class of every latchkey error. */
export class LatchkeyError extends Error {
  /** What went wrong, as a stable string. */
  readonly code: LatchkeyErrorCode
  /** The OAuth `error` value the server sent (`invalid_grant`, `access_denied`, …), when it sent one. */
  readonly error?: string
  /** The server's `error_description`, when it sent one (scrubbed of token values). */
  readonly description?: string
  /** The HTTP status of the response that caused the error, when there was one. */
  readonly status?: number
  /**
   * Milliseconds until this client sends a token request again: a server's `Retry-After`, or the
   * backoff after failed refreshes. Set on `retry_later` errors and on the 429 or 503 that began the wait.
   */
  readonly retryAfter?: number
  /** The response that caused the error, when there was one (non-enumerable; its body is consumed). */
  declare readonly response?: Response

  constructor(code: LatchkeyErrorCode, message: string, { response, error, description, retryAfter, ...cause }: LatchkeyErrorOptions = {}) {
    super(message, cause)
    this.code = code
    if (error) this.error = error
    if (description) this.description = description
    if (retryAfter! >= 0) this.retryAfter = retryAfter!
    if (response) this.status = response.status
    Object.defineProperties(this, { [brand]: { value: true }, response: { value: response } })
  }
}

/** The constructor of one kind of {@link LatchkeyError}, whose `code` is `C`. */
export interface LatchkeyErrorClass<C extends LatchkeyErrorCode> {
  new (message: string, options?: LatchkeyErrorOptions): LatchkeyError & { readonly code: C }
  readonly prototype: LatchkeyError
}

const kind = <C extends LatchkeyErrorCode>(code: C, name: string): LatchkeyErrorClass<C> =>
  class extends LatchkeyError {
    constructor(message: string, options?: LatchkeyErrorOptions) {
      super(code, message, options)
      this.name = name
    }
  } as LatchkeyErrorClass<C>

/**
 * `invalid_response`: a server answered with something that is not a valid response: not JSON, a
 * missing or malformed field, an unsupported `token_type`, an absurd `expires_in`, or an HTTP error
 * without an OAuth error body (an HTML 5xx page, say). Neither the body nor a parser message is
 * ever included.
 */
export const ResponseError = kind('invalid_response', 'ResponseError')
export type ResponseError = InstanceType<typeof ResponseError>
/** `oauth_error`: the server answered with an OAuth error response (RFC 6749 §5.2); see `error`, `description`. */
export const OAuthError = kind('oauth_error', 'OAuthError')
export type OAuthError = InstanceType<typeof OAuthError>
/**
 * `session_expired`: the session cannot be continued: the refresh token was rejected
 * (`invalid_grant`), the refresh endpoint refused the session, or the access token expired with no
 * way to refresh it. Tokens have been cleared and `session-expired` emitted.
 */
export const SessionExpiredError = kind('session_expired', 'SessionExpiredError')
export type SessionExpiredError = InstanceType<typeof SessionExpiredError>
/** `invalid_dpop_proof`: a server rejected a DPoP proof (RFC 9449 §5.2, §7.1); `description` says why. */
export const DPoPProofError = kind('invalid_dpop_proof', 'DPoPProofError')
export type DPoPProofError = InstanceType<typeof DPoPProofError>
/** `network_error`: a request failed before any response arrived (or the device is offline); `cause` holds the underlying error. */
export const NetworkError = kind('network_error', 'NetworkError')
export type NetworkError = InstanceType<typeof NetworkError>
/** `timeout`: a token or revocation request took longer than `timeoutSeconds`. */
export const TimeoutError = kind('timeout', 'TimeoutError')
export type TimeoutError = InstanceType<typeof TimeoutError>
/** `no_session`: there is no session to use: never signed in, or signed out (in any tab) meanwhile. */
export const NoSessionError = kind('no_session', 'NoSessionError')
export type NoSessionError = InstanceType<typeof NoSessionError>
/**
 * `login_error`: the authorization redirect could not be used: unknown or reused `state`, no `code`,
 * or the authorization server reported an error (then `error` and `description` carry it).
 */
export const LoginError = kind('login_error', 'LoginError')
export type LoginError = InstanceType<typeof LoginError>
/**
 * `retry_later`: a refresh was needed while this client holds back its token requests (the
 * server's `Retry-After`, or the backoff after failed refreshes, in any tab); no request was sent.
 * `retryAfter` says in how many milliseconds a token request goes out again.
 */
export const RetryLaterError = kind('retry_later', 'RetryLaterError')
export type RetryLaterError = InstanceType<typeof RetryLaterError>

/** Every kind of {@link LatchkeyError}, for code that rebuilds one from its `code` (worker mode). */
export const errorKinds: LatchkeyErrorClass<LatchkeyErrorCode>[] = [
  ResponseError,
  OAuthError,
  SessionExpiredError,
  DPoPProofError,
  NetworkError,
  TimeoutError,
  NoSessionError,
  LoginError,
  RetryLaterError,
]

/**
 * Tells whether `value` is a latchkey error, optionally of one `code`. Works across realms (iframes)
 * and across copies of the library, where `instanceof` does not.
 *
 * @example
 * ```ts
 * try { await tm.fetch(url) } catch (e) { if (isLatchkeyError(e, 'session_expired')) showLogin() }
 * ```
 */
export function isLatchkeyError<C extends LatchkeyErrorCode>(
  value: unknown,
  code?: C,
): value is LatchkeyError & { code: C } {
  return !!value && (value as Record<symbol, unknown>)[brand] === true && (!code || (value as LatchkeyError).code === code)
}
