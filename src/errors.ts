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

const brand = Symbol.for('latchkey.error')

interface ErrorOptions {
  cause?: unknown
  response?: Response
  status?: number
}

/** Base class of every latchkey error. */
export class LatchkeyError extends Error {
  /** What went wrong, as a stable string. */
  readonly code: LatchkeyErrorCode
  /** The HTTP status of the response that caused the error, when there was one. */
  readonly status?: number
  /** The response that caused the error, when there was one (non-enumerable; its body is consumed). */
  declare readonly response?: Response

  constructor(code: LatchkeyErrorCode, name: string, message: string, options: ErrorOptions = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined)
    this.name = name
    this.code = code
    const status = options.response?.status ?? options.status
    if (status) this.status = status
    Object.defineProperties(this, {
      [brand]: { value: true },
      response: { value: options.response },
    })
  }
}

/**
 * A server answered with something that is not a valid response: not JSON, a missing or malformed
 * field, an unsupported `token_type`, an absurd `expires_in`, or an HTTP error without an OAuth
 * error body (an HTML 5xx page, say). Neither the body nor a parser message is ever included.
 */
export class ResponseError extends LatchkeyError {
  declare readonly code: 'invalid_response'
  constructor(message: string, options?: ErrorOptions) {
    super('invalid_response', 'ResponseError', message, options)
  }
}

/** The authorization server answered with an OAuth error response (RFC 6749 §5.2). */
export class OAuthError extends LatchkeyError {
  declare readonly code: 'oauth_error'
  /** The OAuth `error` value, such as `invalid_request`. */
  readonly error: string
  /** The server's `error_description`, when it sent one. */
  readonly description?: string
  constructor(message: string, error: string, description?: string, options?: ErrorOptions) {
    super('oauth_error', 'OAuthError', message, options)
    this.error = error
    if (description) this.description = description
  }
}

/**
 * The session cannot be continued: the refresh token was rejected (`invalid_grant`), the refresh
 * endpoint refused the session, or the access token expired with no way to refresh it.
 * Tokens have been cleared and `session-expired` emitted.
 */
export class SessionExpiredError extends LatchkeyError {
  declare readonly code: 'session_expired'
  constructor(message: string, options?: ErrorOptions) {
    super('session_expired', 'SessionExpiredError', message, options)
  }
}

/** A server rejected a DPoP proof (`invalid_dpop_proof`, RFC 9449 §5.2 and §7.1). */
export class DPoPProofError extends LatchkeyError {
  declare readonly code: 'invalid_dpop_proof'
  /** The server's description of what was wrong with the proof. */
  readonly description?: string
  constructor(message: string, description?: string, options?: ErrorOptions) {
    super('invalid_dpop_proof', 'DPoPProofError', message, options)
    if (description) this.description = description
  }
}

/** A request failed before any response arrived; `cause` holds the underlying error. */
export class NetworkError extends LatchkeyError {
  declare readonly code: 'network_error'
  constructor(message: string, options?: ErrorOptions) {
    super('network_error', 'NetworkError', message, options)
  }
}

/** A token or revocation request took longer than `timeoutSeconds`. */
export class TimeoutError extends LatchkeyError {
  declare readonly code: 'timeout'
  constructor(message: string) {
    super('timeout', 'TimeoutError', message)
  }
}

/** There is no session to use: never signed in, signed out (in any tab), or signed out meanwhile. */
export class NoSessionError extends LatchkeyError {
  declare readonly code: 'no_session'
  constructor(message = 'not signed in') {
    super('no_session', 'NoSessionError', message)
  }
}

/**
 * The authorization redirect could not be used: unknown or reused `state`, no `code`, or the
 * authorization server reported an error (then `error` and `description` carry it).
 */
export class LoginError extends LatchkeyError {
  declare readonly code: 'login_error'
  /** The OAuth `error` of an authorization error response, when there was one. */
  readonly error?: string
  /** The server's `error_description`, when it sent one. */
  readonly description?: string
  constructor(message: string, error?: string, description?: string) {
    super('login_error', 'LoginError', message)
    if (error) this.error = error
    if (description) this.description = description
  }
}

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
