import { LoginError } from './errors.js'
import type { AuthorizationParameters } from './types.js'
import { checkURL, invalid, random, sha256 } from './util.js'

const PREFIX = 'latchkey:login:'

/**
 * Where a login in progress waits between {@link authorizationRequest} and {@link redirectResult}:
 * the PKCE verifier and the redirect URI, keyed by `state`. Never a token. `sessionStorage` by default.
 */
export type LoginStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>

/** What the authorization response is checked against (RFC 9207). */
export interface IssuerCheck {
  /** The authorization server's issuer identifier. */
  issuer?: string | undefined
  /** The server always sends `iss` (its metadata says so): a response without it is refused. */
  issParameterRequired?: boolean | undefined
}

const loginStore = (store?: LoginStore): LoginStore => store ?? globalThis.sessionStorage ?? invalid('sessionStorage', 'missing')

/**
 * Builds an authorization code request URL (PKCE S256, `state`, `dpop_jkt` when `jkt` is given)
 * and keeps the verifier and redirect URI in `store` under the new `state`.
 */
export async function authorizationRequest(
  clientId: string,
  { authorizationEndpoint, redirectUri, scope, resource, extraParameters }: AuthorizationParameters,
  jkt: string | undefined,
  store?: LoginStore,
): Promise<string> {
  const url = checkURL(authorizationEndpoint, 'authorizationEndpoint')
  const verifier = random(32)
  const state = random(16)
  const q = url.searchParams
  const params: Record<string, string | undefined> = {
    ...extraParameters,
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: await sha256(verifier),
    code_challenge_method: 'S256',
    dpop_jkt: jkt,
  }
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v)
  for (const r of [resource ?? []].flat()) q.append('resource', r)
  loginStore(store).setItem(PREFIX + state, verifier + ' ' + redirectUri)
  return url.href
}

/**
 * Reads the authorization response at the redirect URI: a known, unused `state` (forgotten once
 * read), no `error`, the RFC 9207 `iss` when an issuer is known, and a `code`.
 */
export function redirectResult(input: string | URL, check: IssuerCheck = {}, store?: LoginStore) {
  const q = new URL(input, globalThis.location?.href).searchParams
  const key = PREFIX + q.get('state')
  const saved = loginStore(store).getItem(key)
  loginStore(store).removeItem(key)
  if (!saved) throw new LoginError('unknown state')
  // RFC 9207: a response from another server (mix-up attack) is refused before its error or code is used.
  const iss = q.get('iss')
  if (check.issuer && (iss ? iss != check.issuer : check.issParameterRequired)) throw new LoginError('wrong issuer')
  const error = q.get('error')
  if (error) throw new LoginError(error, { error, description: q.get('error_description') ?? undefined })
  const code = q.get('code')
  if (!code) throw new LoginError('no code')
  const [codeVerifier, redirectUri] = saved.split(' ') as [string, string]
  return { code, codeVerifier, redirectUri }
}
