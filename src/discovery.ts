/**
 * Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery 1.0).
 *
 * @module
 */
import { NetworkError, ResponseError, TimeoutError } from './errors.js'
import { isObject, readJSON, secureURL } from './util.js'

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
 * The two well-known locations, in the order they are tried: RFC 8414 §3.1 inserts its suffix
 * between the host and the issuer's path; OpenID Connect Discovery appends its suffix to the issuer.
 */
const wellKnown = ({ origin, pathname }: URL): [string, string] => {
  const path = pathname.replace(/\/$/, '')
  return [`${origin}/.well-known/oauth-authorization-server${path}`, `${origin}${path}/.well-known/openid-configuration`]
}

/** Metadata members (RFC 8414 §2) that become endpoint options: an absolute https (or loopback) URL each. */
const ENDPOINTS = {
  tokenEndpoint: 'token_endpoint',
  authorizationEndpoint: 'authorization_endpoint',
  revocationEndpoint: 'revocation_endpoint',
} as const

/** Validates a metadata document; `where` is the method and URL it came from. */
const parseMetadata = (json: unknown, issuer: string, where: string, response: Response): AuthorizationServer => {
  const invalid = (what: string): never => {
    throw new ResponseError(`${where}: ${what}`, { response })
  }
  if (!isObject(json)) return invalid('not a JSON object')
  // RFC 8414 §3.3: the issuer must be identical to the one the location was built from.
  if (json.issuer !== issuer) invalid('issuer does not match')
  const server: AuthorizationServer = { issuer, tokenEndpoint: '' }
  for (const [option, member] of Object.entries(ENDPOINTS) as [keyof typeof ENDPOINTS, string][]) {
    const value = json[member]
    if (value === undefined && option != 'tokenEndpoint') continue
    if (typeof value != 'string' || !secureURL(value)) invalid(`invalid ${member}`)
    server[option] = value as string
  }
  const iss = json.authorization_response_iss_parameter_supported
  if (iss !== undefined && typeof iss != 'boolean') invalid('invalid authorization_response_iss_parameter_supported')
  if (iss) server.issParameterRequired = true
  return server
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
 *   `ResponseError` (`invalid_response`) when neither location has valid metadata for `issuer`;
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
  // RFC 8414 §2: the issuer has no query or fragment.
  const url = typeof issuer == 'string' && !/[?#]/.test(issuer) && secureURL(issuer)
  if (!url) throw new TypeError('issuer: not https or loopback, or has a query or fragment')
  const { fetch: send = globalThis.fetch, timeoutSeconds = 10 } = options
  if (typeof send != 'function') throw new TypeError('options.fetch: invalid')
  if (!(typeof timeoutSeconds == 'number' && timeoutSeconds > 0 && timeoutSeconds < 2 ** 31 / 1000))
    throw new TypeError('options.timeoutSeconds: invalid')

  const signal = AbortSignal.timeout(timeoutSeconds * 1000)
  /** GETs one location and reads the whole body within the timeout. */
  const get = async (location: string) => {
    try {
      const response = await send(location, { headers: { accept: 'application/json' }, redirect: 'error', signal })
      return { response, json: await readJSON(response), where: 'GET ' + location }
    } catch {
      // No cause: a fetch failure (a refused redirect included) says no more than this message.
      throw signal.aborted ? new TimeoutError(`GET ${location} timed out`) : new NetworkError(`GET ${location} failed`)
    }
  }

  const [metadata, openid] = wellKnown(url)
  // In a browser a cross-origin 404 without CORS headers is a network error: fall back on it too.
  const first = await get(metadata).catch((e: unknown) => {
    if (signal.aborted) throw e
  })
  const { response, json, where } = first?.response.ok ? first : await get(openid)
  if (!response.ok) throw new ResponseError(`${where}: HTTP ${response.status}`, { response })
  return parseMetadata(json, issuer, where, response)
}
