/**
 * Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery 1.0).
 *
 * @module
 */
import { NetworkError, ResponseError, TimeoutError } from './errors.js'
import { invalid, isObject, readJSON, secureURL, timeoutOf } from './util.js'

/**
 * What {@link discover} found: the issuer and its endpoints, named as the token manager's options
 * so that the whole object spreads into them.
 */
export interface AuthorizationServer {
  /** The issuer identifier, exactly as the metadata and the argument to {@link discover} state it. */
  issuer: string
  /** `token_endpoint`: the `authorization_code` and `refresh_token` grants. */
  tokenEndpoint: string
  /** `authorization_endpoint`, when the server has one. */
  authorizationEndpoint?: string
  /** `revocation_endpoint` (RFC 7009), when the server has one. */
  revocationEndpoint?: string
  /**
   * `true` when the metadata says the server always sends the RFC 9207 `iss` parameter
   * (`authorization_response_iss_parameter_supported`): a redirect without it is then refused.
   */
  issParameterRequired?: true
}

/** Options of {@link discover}. */
export interface DiscoveryOptions {
  /**
   * The fetch the metadata requests go through.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch
  /**
   * How long the whole discovery (both well-known locations, bodies included) may take.
   * @default 10
   */
  timeoutSeconds?: number
}

/**
 * Metadata members (RFC 8414 §2) that become endpoint options, each an absolute https (or loopback)
 * URL; the option is the member's name in camel case (`token_endpoint` → `tokenEndpoint`).
 */
const ENDPOINTS = ['token_endpoint', 'authorization_endpoint', 'revocation_endpoint'] as const

/** RFC 9207 §3: the metadata member saying the server always sends `iss` in its authorization responses. */
const ISS_SUPPORTED = 'authorization_response_iss_parameter_supported'

/** Validates a metadata document; `where` is the method and URL it came from. */
function parseMetadata(json: unknown, issuer: string, where: string, response: Response): AuthorizationServer {
  const refuse = (what: string): never => {
    throw new ResponseError(`${where}: ${what}`, { response })
  }
  if (!isObject(json)) return refuse('not a JSON object')
  // RFC 8414 §3.3: the issuer must be identical to the one the location was built from.
  if (json.issuer !== issuer) refuse('issuer does not match')
  const server: Record<string, unknown> = { issuer }
  for (const member of ENDPOINTS) {
    const value = json[member]
    // RFC 8414 §2: token_endpoint is required unless the server only has the implicit grant,
    // which latchkey does not use; the others are optional.
    if (value === undefined && member != 'token_endpoint') continue
    if (typeof value != 'string' || !secureURL(value)) refuse('invalid ' + member)
    server[member.replace('_e', 'E')] = value
  }
  const iss = json[ISS_SUPPORTED]
  if (iss !== undefined && typeof iss != 'boolean') refuse('invalid ' + ISS_SUPPORTED)
  if (iss) server.issParameterRequired = true
  return server as unknown as AuthorizationServer
}

/**
 * Discovers an authorization server's endpoints from its metadata (RFC 8414), falling back to
 * OpenID Connect Discovery. The result spreads into the options of `createTokenManager`; with
 * `issuer` set, `handleRedirect` checks the RFC 9207 `iss` parameter.
 *
 * Fetches `/.well-known/oauth-authorization-server` (inserted before the issuer's path, RFC 8414
 * §3.1) and, when that answers with an HTTP error or fails (a browser reports a cross-origin 404
 * without CORS headers as a failure), `<issuer>/.well-known/openid-configuration`.
 * Redirects are refused. The metadata's `issuer` must equal `issuer` exactly, and every endpoint
 * must be an absolute https URL (http only on loopback hosts).
 *
 * @param issuer The issuer identifier: an https URL (http on loopback only) without query or fragment.
 * @throws `TypeError` naming the parameter for a bad `issuer` or option;
 *   `ResponseError` (`invalid_response`) when neither location has valid metadata for `issuer` (a
 *   body over 1 MiB is none);
 *   `NetworkError` (`network_error`) when a request fails, a redirect included;
 *   `TimeoutError` (`timeout`) after `timeoutSeconds`.
 *
 * @example
 * ```ts
 * import { createTokenManager, discover } from 'latchkey'
 *
 * const as = await discover('https://as.example')
 * const tm = createTokenManager({ ...as, clientId: 'spa', allowedOrigins: ['https://api.example'] })
 * ```
 *
 * @see {@link https://www.rfc-editor.org/rfc/rfc8414 RFC 8414}: OAuth 2.0 Authorization Server Metadata
 * @see {@link https://openid.net/specs/openid-connect-discovery-1_0.html OpenID Connect Discovery 1.0}
 * @see {@link https://www.rfc-editor.org/rfc/rfc9207 RFC 9207}: Authorization Server Issuer Identification
 */
export async function discover(issuer: string, options: DiscoveryOptions = {}): Promise<AuthorizationServer> {
  // RFC 8414 §2: the issuer is an https URL without query or fragment.
  const url =
    (typeof issuer == 'string' && !/[?#]/.test(issuer) && secureURL(issuer)) ||
    invalid('issuer', 'not https or loopback, or has a query or fragment')
  const { fetch: send = globalThis.fetch, timeoutSeconds = 10 } = options
  if (typeof send != 'function') invalid('options.fetch')
  const signal = AbortSignal.timeout(timeoutOf(timeoutSeconds, 'options.timeoutSeconds'))

  /** GETs `location` and reads the body (up to its bound) within the timeout; on failure tries `fallback`, if any. */
  const get = async (location: string, fallback?: string): Promise<AuthorizationServer> => {
    const where = 'GET ' + location
    /** Set once the whole body has been read. */
    let response: Response | undefined
    let json: unknown
    try {
      const sent = await send(location, { headers: { accept: 'application/json' }, redirect: 'error', signal })
      json = await readJSON(sent)
      response = sent
    } catch {
      // No cause: a fetch failure (a refused redirect included) says no more than the message.
      // In a browser a cross-origin 404 without CORS headers is a failure too: it falls back below.
      if (signal.aborted) throw new TimeoutError(where + ' timed out')
    }
    if (response?.ok) return parseMetadata(json, issuer, where, response)
    if (fallback) return get(fallback)
    throw response ? new ResponseError(`${where}: HTTP ${response.status}`, { response }) : new NetworkError(where + ' failed')
  }
  // The two well-known locations, in the order they are tried: RFC 8414 §3.1 inserts its suffix
  // between the host and the issuer's path; OpenID Connect Discovery appends its suffix to the issuer.
  const { origin, pathname } = url
  const path = pathname.replace(/\/$/, '')
  return get(`${origin}/.well-known/oauth-authorization-server${path}`, `${origin}${path}/.well-known/openid-configuration`)
}
