import type { CrossTab } from './crosstab.js'
import type { LatchkeyError } from './errors.js'
import type { DPoPSigner } from './dpop.js'
import type { KeyStore } from './keystore.js'
import type { WebCrypto } from './util.js'

/**
 * A token response (RFC 6749 §5.1) as JSON: what a token endpoint, a custom refresh endpoint or
 * a custom refresh function returns. Wire names, because it is the wire format.
 */
export interface TokenResponse {
  access_token: string
  /** `Bearer` or `DPoP`, case-insensitive. */
  token_type: string
  /** Lifetime of the access token in seconds; counted from the moment the response arrives. */
  expires_in?: number
  refresh_token?: string
  scope?: string
  [parameter: string]: unknown
}

/** What a custom refresh function receives. */
export interface RefreshContext {
  /** The refresh token held in memory, if any (none in the cookie pattern). */
  refreshToken?: string | undefined
  /** Aborts when the request times out or the session ends. */
  signal: AbortSignal
  /** Makes a DPoP proof for a request to `url` (when DPoP is on), for the function's own request. */
  dpopProof(method: string, url: string): Promise<string | undefined>
  /** The RFC 8707 resource whose token is asked for (with the `resources` option). */
  resource?: string | undefined
}

/**
 * A refresh endpoint of the app's own, when the refresh does not go to `tokenEndpoint`: a URL,
 * or the URL with request options. latchkey POSTs `grant_type=refresh_token` and `client_id` (plus
 * `refresh_token` when it holds one) as a form, with a DPoP proof when DPoP is on, and expects a
 * token response as JSON. A 401, or 400 `invalid_grant`, ends the session.
 */
export interface RefreshEndpoint {
  /** The endpoint's URL. */
  url: string
  /**
   * Send cookies: `'include'` for the pattern where the refresh token lives in an HttpOnly cookie
   * and never reaches JavaScript.
   * @default 'same-origin'
   */
  credentials?: RequestCredentials
  /** Extra request headers (a CSRF header, say). */
  headers?: Record<string, string>
}

/** Options of {@link createTokenManager}. Durations are in seconds throughout. */
export interface TokenManagerOptions {
  /** The OAuth client_id (a public client: no secret). @example 'spa' */
  clientId: string
  /**
   * The authorization server's token endpoint, for the `authorization_code` and `refresh_token`
   * grants. Optional when `refresh` is given and no login goes through latchkey.
   * @example 'https://as.example/token'
   */
  tokenEndpoint?: string
  /** RFC 7009 revocation endpoint; `logout()` revokes the refresh token there when set. */
  revocationEndpoint?: string
  /**
   * The exact origins (scheme, host, port) whose requests get the access token. Every other
   * request passes through `tm.fetch` untouched. `http:` is accepted for loopback hosts only.
   * Required unless `resources` names the origins.
   * @example ['https://api.example']
   */
  allowedOrigins?: string[]
  /**
   * One access token per API (RFC 8707 resource indicators): exact origins, each with its resource
   * indicator (and optionally the scope to ask for). These origins are allowed origins too. Each
   * origin's token comes from a `refresh_token` grant with its `resource`, on the first request
   * that needs it; one refresh token serves all, and grants never overlap. `authorizationUrl()`
   * asks for every resource.
   * @example { 'https://api.example': 'https://api.example', 'https://billing.example': { resource: 'https://billing.example', scope: 'billing:read' } }
   */
  resources?: Record<string, string | { resource: string; scope?: string }>
  /**
   * The authorization server's issuer identifier (`discover()` sets it). With it, `handleRedirect`
   * checks the RFC 9207 `iss` parameter when the server sends one.
   */
  issuer?: string
  /** The server always sends `iss` in authorization responses (RFC 9207): refuse a response without it. */
  issParameterRequired?: boolean
  /** The authorization endpoint, so that `authorizationUrl()` needs none. */
  authorizationEndpoint?: string | undefined
  /**
   * Bind tokens to a non-extractable ES256 key with DPoP (RFC 9449). `true` keeps the key in
   * IndexedDB where it exists (in memory elsewhere); `{ keyStore }` plugs in another store;
   * `{ signer }` signs with a key kept outside JavaScript (Secure Enclave, Android Keystore), which
   * `logout()` leaves in place; `false` uses plain Bearer tokens.
   * @default true
   * @example { signer: { publicJwk: await NativeKey.publicJwk(), sign: (data) => NativeKey.sign(data) } }
   */
  dpop?: boolean | { keyStore: KeyStore } | { signer: DPoPSigner; /** Where `persist` keeps its record; required with it. */ keyStore?: KeyStore }
  /**
   * The WebCrypto every cryptographic operation goes through: key generation, signatures, digests,
   * random values and UUIDs, the `persist` encryption. Inject one where there is no global
   * `crypto.subtle` (React Native, old WebViews) or to keep two managers apart. Required when DPoP
   * is on.
   * @default globalThis.crypto
   * @example (await import('node:crypto')).webcrypto
   */
  crypto?: WebCrypto
  /**
   * Where `authorizationUrl()` leaves the PKCE verifier for `handleRedirect()` (never a token).
   * Without `sessionStorage` (React Native), login through latchkey needs one.
   * @default globalThis.sessionStorage
   */
  loginStore?: LoginStore
  /**
   * Refresh through the app's own endpoint or function instead of the `refresh_token` grant at
   * `tokenEndpoint`.
   * @example { url: '/auth/refresh', credentials: 'include' }
   * @example async ({ signal }) => (await fetch('/auth/refresh', { method: 'POST', signal })).json()
   *
   * A function ends the session by throwing `new SessionExpiredError(message)`; any other error
   * counts as a failed refresh that keeps the session (and is reported without its message).
   */
  refresh?: string | RefreshEndpoint | ((context: RefreshContext) => Promise<TokenResponse>)
  /**
   * Refresh this long before the access token expires, at the latest half this long: each token's
   * refresh time is drawn at random in between, so that clients whose tokens were issued together
   * do not refresh together. Capped at a quarter of the token's lifetime so short-lived tokens are
   * not refreshed on every call (the time is then drawn in the first half of that quarter); a token
   * is used for at least a second whatever its lifetime.
   * @default 30
   */
  refreshLeewaySeconds?: number
  /**
   * Timeout of each token and revocation request: a positive number of seconds, at most 2,147,483
   * (what `setTimeout` holds); anything else throws a `TypeError` naming the option.
   * @default 10
   */
  timeoutSeconds?: number
  /**
   * Share one session, one refresh and one logout across the tabs of the origin (Web Locks +
   * BroadcastChannel). Degrades to single-tab where those are missing. A {@link CrossTab} object
   * replaces the browser mechanism (tests, other runtimes).
   * @default true
   */
  crossTab?: boolean | CrossTab
  /**
   * Keep the session across reloads of the last tab: the refresh token (DPoP-bound only) is stored
   * in IndexedDB encrypted with AES-GCM under a non-extractable key. Access tokens are never
   * stored. Throws a TypeError when DPoP is off, or with a `dpop.signer` and no `dpop.keyStore`.
   * @default false
   */
  persist?: boolean
  /** The fetch to use for every request. @default globalThis.fetch */
  fetch?: typeof fetch
}

/** What `tm.status()` and the `tokens` event tell about the session; never a token value. */
export interface SessionInfo {
  /** When the access token expires, in ms since the epoch by the local clock (`undefined`: unknown). */
  expiresAt: number | undefined
  tokenType: 'Bearer' | 'DPoP'
  scope: string | undefined
  /** Increases with every new set of tokens, in any tab. */
  generation: number
  /** The `resources` origin this token is for; `undefined` for the token of every other allowed origin. */
  origin?: string | undefined
}

/** Why a refresh ran. */
export type RefreshReason = 'expiry' | 'unauthorized' | 'manual' | 'resume' | 'restore'

/** Events of {@link TokenManager.on}; each listener gets one state object. */
export interface TokenManagerEvents {
  /** New tokens are in memory: from a login, `setTokens`, a refresh, or another tab. */
  tokens: SessionInfo & { reason: 'login' | 'set' | 'refresh' | 'tab' }
  /** This tab refreshed the tokens. */
  refresh: SessionInfo & { reason: RefreshReason }
  /** A refresh failed without ending the session (network, timeout, 5xx, bad response); the last good tokens stay. */
  'refresh-error': { reason: RefreshReason; error: LatchkeyError }
  /** The session ended because the server refused it; tokens are cleared. */
  'session-expired': { error: LatchkeyError }
  /** The session was ended by `logout()` here or in another tab. */
  logout: { reason: 'logout' | 'tab' }
  /** Something degraded without failing, e.g. the DPoP key could not be persisted. */
  warning: { code: string; message: string }
}

/** Parameters of {@link TokenManager.authorizationUrl}. */
export interface AuthorizationParameters {
  /** Required unless given in the options. @example 'https://as.example/authorize' */
  authorizationEndpoint?: string | undefined
  redirectUri: string
  /** @example 'openid offline_access api:read' */
  scope?: string
  /** RFC 8707 resource indicator(s), besides those of the `resources` option. */
  resource?: string | string[]
  /** More authorization request parameters (`prompt`, `login_hint`, …). */
  extraParameters?: Record<string, string>
}

/** The handle returned by {@link createTokenManager}. */
export interface TokenManager {
  /**
   * At startup: adopts the session of another tab, or a persisted DPoP-bound refresh token, or (with
   * a custom refresh endpoint) the cookie session. Resolves `true` when signed in.
   */
  restore(): Promise<boolean>
  /** Builds an authorization code request URL with PKCE (S256), `state` and `dpop_jkt`. */
  authorizationUrl(parameters: AuthorizationParameters): Promise<string>
  /** Completes the login on the redirect URI: checks `state`, exchanges the code with DPoP. */
  handleRedirect(url: string | URL): Promise<void>
  /** Adopts a token response from any login; validates it strictly, keeping the old state on error. */
  setTokens(response: TokenResponse): Promise<void>
  /** Exchanges an authorization code (with a DPoP proof when DPoP is on). */
  exchangeCode(parameters: { code: string; codeVerifier: string; redirectUri: string }): Promise<void>
  /** The RFC 7638 thumbprint of the DPoP public key, for `dpop_jkt`. */
  dpopThumbprint(): Promise<string>
  /** `fetch`, with the access token (and a DPoP proof) on requests to `allowedOrigins`. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>
  /**
   * The current access token (of `origin`'s resource, with `resources`), refreshed first when due.
   * Prefer `fetch`. An `origin` that is not allowed gets none: a `TypeError`.
   */
  getAccessToken(origin?: string): Promise<string>
  /**
   * Refreshes now, or joins the refresh already running. It does not bypass a wait before token
   * requests (a server's `Retry-After`, or the backoff after failed refreshes, learnt in any tab):
   * meanwhile it rejects at once, without a request, with `retry_later` and `retryAfter` in ms.
   */
  refresh(): Promise<void>
  /**
   * The current access token without its value (of `origin`'s resource, with `resources`), or
   * `undefined` when signed out or when that token has not been fetched yet.
   */
  status(origin?: string): SessionInfo | undefined
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof TokenManagerEvents>(event: E, listener: (state: TokenManagerEvents[E]) => void): () => void
  /** Revokes the refresh token, clears memory, deletes the DPoP key (a `dpop.signer`'s key stays the app's) and signs out every tab. */
  logout(): Promise<void>
  /**
   * Removes the listeners this manager registered (`online`, `visibilitychange`) and leaves the
   * tab channel; for route changes that drop a manager, tests and other runtimes. The session is
   * not ended (use `logout()` for that); the manager is not to be used afterwards.
   */
  dispose(): void
}

/**
 * Where a login in progress waits between `authorizationUrl()` and `handleRedirect()`: the PKCE
 * verifier and the redirect URI, keyed by `state`; never a token. `sessionStorage` by default; in
 * React Native, a store such as AsyncStorage or MMKV (methods may return promises).
 *
 * @example
 * ```ts
 * import AsyncStorage from '@react-native-async-storage/async-storage'
 * createTokenManager({ ..., loginStore: AsyncStorage })
 * ```
 */
export interface LoginStore {
  /** The value under `key`, or `null`/`undefined`. */
  getItem(key: string): string | null | undefined | PromiseLike<string | null | undefined>
  setItem(key: string, value: string): void | PromiseLike<void>
  removeItem(key: string): void | PromiseLike<void>
}
