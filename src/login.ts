import { LoginError } from './errors.js'
import type { AuthorizationParameters, LoginStore } from './types.js'
import { checkURL, here, invalid, random, sha256, type WebCrypto } from './util.js'

/** Where a login in progress waits in the login store: this, then its `state`. */
export const PREFIX = 'latchkey:login:'

/** What the authorization response is checked against (RFC 9207). */
export interface IssuerCheck {
  /** The authorization server's issuer identifier. */
  issuer?: string | undefined
  /** The server always sends `iss` (its metadata says so): a response without it is refused. */
  issParameterRequired?: boolean | undefined
}

/** What a login needs of the token manager's options. */
export interface LoginConfig extends IssuerCheck {
  crypto: WebCrypto
  clientId: string
  /** Where a login in progress waits; `sessionStorage` when not given. */
  loginStore?: LoginStore | undefined
}

/** The login store keys being read and removed right now, in this realm. */
const reading = new Set<string>()

const storeOf = ({ loginStore }: Pick<LoginConfig, 'loginStore'>): LoginStore =>
  loginStore ?? globalThis.sessionStorage ?? invalid('loginStore', 'missing')

/**
 * Builds an authorization code request URL (PKCE S256, `state`, `dpop_jkt` when `jkt` is given)
 * and keeps the verifier and redirect URI in the login store under the new `state`.
 */
export async function authorizationRequest(
  config: LoginConfig,
  { authorizationEndpoint, redirectUri, scope, resource, extraParameters }: AuthorizationParameters,
  jkt: string | undefined,
): Promise<string> {
  const { crypto } = config
  const url = checkURL(authorizationEndpoint, 'authorizationEndpoint')
  // RFC 7636 §4.1: a verifier of 32 random bytes (43 characters); RFC 6749 §10.12: an unguessable state.
  const verifier = random(crypto)
  const state = random(crypto, 16)
  const q = url.searchParams
  const params: Record<string, string | undefined> = {
    ...extraParameters,
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    // RFC 7636 §4.2: S256, never plain.
    code_challenge: await sha256(crypto, verifier),
    code_challenge_method: 'S256',
    // RFC 9449 §10: binds the authorization code to this client's DPoP key.
    dpop_jkt: jkt,
  }
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v)
  // RFC 8707 §2: one resource parameter per resource.
  for (const r of [resource ?? []].flat()) q.append('resource', r)
  await storeOf(config).setItem(PREFIX + state, verifier + ' ' + redirectUri)
  return url.href
}

/**
 * Reads the authorization response at the redirect URI: a known, unused `state` (forgotten once
 * read), no `error`, the RFC 9207 `iss` when an issuer is known, and a `code`.
 */
export async function redirectResult(input: string | URL, check: IssuerCheck & Pick<LoginConfig, 'loginStore'> = {}) {
  const q = new URL(input, here()).searchParams
  const key = PREFIX + q.get('state')
  const store = storeOf(check)
  // A redirect handled twice at once (a deep link delivered twice) must not find the verifier twice
  // while an async store reads and removes it, or its code is exchanged twice.
  let saved
  if (!reading.has(key)) {
    reading.add(key)
    try {
      saved = await store.getItem(key)
      await store.removeItem(key)
    } finally {
      reading.delete(key)
    }
  }
  // RFC 6749 §10.12: a state this client did not issue, or has used already, is refused (CSRF).
  if (!saved) throw new LoginError('unknown state')
  // RFC 9207 §2.4: a response from another server (mix-up attack) is refused before its error or code is used.
  const iss = q.get('iss')
  if (check.issuer && (iss ? iss != check.issuer : check.issParameterRequired)) throw new LoginError('wrong issuer')
  const error = q.get('error')
  if (error) throw new LoginError(error, { error, description: q.get('error_description') ?? undefined })
  const code = q.get('code')
  if (!code) throw new LoginError('no code')
  const [codeVerifier, redirectUri] = saved.split(' ') as [string, string]
  return { code, codeVerifier, redirectUri }
}
