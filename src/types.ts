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
 * token response as JSON. A 401, a 400 `invalid_grant`, or a 400 with no readable OAuth error ends
 * the session.
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

/**
 * Options of {@link createTokenManager}. Durations are in seconds throughout. The type asks for a
 * `tokenEndpoint` or a `refresh`, and for `allowedOrigins` or `resources`: a manager without one of
 * each could never refresh, or never attach a token.
 */
export type TokenManagerOptions = TokenManagerCommonOptions & (WithTokenEndpoint | WithRefresh) & (WithAllowedOrigins | WithResources)

/** Where tokens come from: the token endpoint (needed for logins through latchkey). */
export interface WithTokenEndpoint {
  /**
   * The authorization server's token endpoint, for the `authorization_code` and `refresh_token`
   * grants. Optional when `refresh` is given and no login goes through latchkey.
   * @example 'https://as.example/token'
   */
  tokenEndpoint: string
  refresh?: TokenManagerCommonOptions['refresh']
}

/** Where tokens come from: the app's own refresh endpoint or function. */
export interface WithRefresh {
  tokenEndpoint?: string | undefined
  refresh: NonNullable<TokenManagerCommonOptions['refresh']>
}

/** Which requests get a token: these origins'. */
export interface WithAllowedOrigins {
  /**
   * The exact origins (scheme, host, port) whose requests get the access token. Every other
   * request passes through `tm.fetch` untouched. `http:` is accepted for loopback hosts only.
   * Required unless `resources` names the origins.
   * @example ['https://api.example']
   */
  allowedOrigins: string[]
  resources?: TokenManagerCommonOptions['resources']
}

/** Which requests get a token: those to the `resources` origins, each with its own. */
export interface WithResources {
  allowedOrigins?: string[] | undefined
  resources: NonNullable<TokenManagerCommonOptions['resources']>
}

/** The options of {@link createTokenManager} that need no other. */
export interface TokenManagerCommonOptions {
  /**
   * One access token per API (RFC 8707 resource indicators): exact origins, each with its resource
   * indicator (and optionally the scope to ask for). These origins are allowed origins too. Each
   * origin's token comes from a `refresh_token` grant with its `resource`, on the first request
   * that needs it; one refresh token serves all, and grants never overlap. `authorizationUrl()`
   * asks for every resource.
   * @example { 'https://api.example': 'https://api.example', 'https://billing.example': { resource: 'https://billing.example', scope: 'billing:read' } }
   * @example { 'https://api.example': { params: { audience: 'https://api.example' } } } // Auth0
   * @example { 'https://graph.microsoft.com': { scope: 'https://graph.microsoft.com/.default' } } // Entra ID
   */
  resources?: Record<string, string | ResourceOptions>
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
  /** The OAuth client_id (a public client: no secret). @example 'spa' */
  clientId: string
  /** RFC 7009 revocation endpoint; `logout()` revokes the refresh token there when set. */
  revocationEndpoint?: string
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

/**
 * How one API's token is asked for (an entry of the `resources` option): RFC 8707's `resource`, or
 * what a hosted server asks for instead. At least one of the three is required.
 */
export interface ResourceOptions {
  /** The RFC 8707 resource indicator, the token's audience; none for servers that name APIs by scope (Entra ID). */
  resource?: string
  /** The scope its `refresh_token` grants ask for: the API's own, or Entra ID's `api://…/.default`. */
  scope?: string
  /**
   * More parameters its `refresh_token` grants send; the first API's go with the authorization
   * request too (the login's token is its). Auth0 names an API with `audience`.
   * @example { audience: 'https://api.example' }
   */
  params?: Record<string, string>
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
  /** A measurement, for monitoring (`latchkey/otel` turns them into metrics and spans). */
  measure: Measurement
}

/**
 * What a {@link Measurement} measures:
 * - `start`: a token request may follow (a refresh began, or a code exchange); `reason`, and the
 *   `resources` origin whose token it is for. Emitted before latchkey awaits anything, in the call
 *   that caused it, so that a listener can read the caller's context (its trace span) and key it
 *   by the object. The same object comes again when its request goes out (still `start`) and
 *   when it ends (`token_request`); a refresh that sends none ends as `held_back` or `adopted`,
 *   or without a word when the session ended meanwhile.
 * - `token_request`: a request to the token endpoint or the app's own refresh endpoint or function
 *   ended: `reason`, `time`, `duration`, and when known `outcome`, `status`, `host`, `retryAfter`.
 * - `joined`: a call waited for the refresh already in flight in this tab.
 * - `adopted`: a refresh found, once it held the lock, that another tab (or call) had just
 *   refreshed: it took that token and sent no request. The object of its `start`, renamed.
 * - `held_back`: a refresh was needed while token requests are held back (`backoff` tells which
 *   wait: the backoff after failed refreshes, or the server's `Retry-After`); none was sent.
 * - `nonce`: a request was sent again with a new DPoP nonce (`server`).
 * - `unauthorized`: a request answered 401 is sent again after a refresh.
 * - `clock_offset`: the server's clock, as learnt, is `offset` ms ahead of the device's.
 * - `worker_connection`: a page connected to the worker that serves the session (`connections`).
 */
export type MeasurementName =
  | 'start'
  | 'token_request'
  | 'joined'
  | 'adopted'
  | 'held_back'
  | 'nonce'
  | 'unauthorized'
  | 'clock_offset'
  | 'worker_connection'

/**
 * One measurement (`tm.on('measure', …)`), as cheap as the core can make it: `latchkey/otel` turns
 * them into OpenTelemetry metrics and spans. Token-free by construction: fixed words, numbers and
 * a host name, never a token, code, verifier, proof, header value or URL. Times are in ms. The
 * object of a `start` changes as its request goes on: copy what you keep.
 */
export interface Measurement {
  name: MeasurementName
  /**
   * Why the token request: a login, or a refresh's reason. Refreshes through the `refresh` option's function send no request of
   * latchkey's: theirs have no `host`.
   */
  reason?: RefreshReason | 'login'
  /** The `resources` origin whose token the refresh is for. */
  origin?: string | undefined
  /** When the token request went out, ms since the epoch (local clock). */
  time?: number
  /** How long the token request took, ms. */
  duration?: number
  /** The HTTP status of the last token response. */
  status?: number
  /** The host name the token request went to. */
  host?: string
  /**
   * Why the token request failed: the server's OAuth `error` (`invalid_grant`, …), else latchkey's
   * error code (`timeout`, `invalid_response`, …), else `error`. Absent: it succeeded.
   */
  outcome?: string | undefined
  /** The wait a 429 or 503 asked for (`Retry-After`), ms. */
  retryAfter?: number | undefined
  /** `held_back`: the wait is the backoff after failed refreshes (else the server's `Retry-After`). */
  backoff?: boolean | undefined
  /** `nonce`: the authorization server, or an API. */
  server?: 'as' | 'api'
  /** `clock_offset`: server time minus device time, ms. */
  offset?: number
  /** `worker_connection`: pages connected now. */
  connections?: number
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
  /**
   * Completes the login on the redirect URI: checks `state`, exchanges the code with DPoP. Called
   * again with the same URL (React StrictMode runs effects twice), it returns the same promise:
   * one code exchange.
   */
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
   * `undefined` when signed out or when that token has not been fetched yet. The same object until
   * that token changes (a snapshot for `useSyncExternalStore`; see {@link TokenManager.subscribe}).
   */
  status(origin?: string): SessionInfo | undefined
  /**
   * Subscribes to every change of the session: new tokens (a login, a refresh, another tab), a
   * logout here or in another tab, a session the server ended. Calls `listener` at once with
   * `status()`, then after every change, and returns the function that unsubscribes: the token
   * manager is a Svelte store of `status()`. Read `status(origin)` in the listener for another
   * origin's token; `status()` returns the same object until the session changes, so a listener may
   * be called with a value it has seen. An access token that expires changes nothing until it is
   * refreshed (`expiresAt` says when). Works unbound (`useSyncExternalStore(tm.subscribe, …)`).
   *
   * @example
   * ```ts
   * const off = tm.subscribe((session) => render(session))
   * ```
   */
  subscribe(listener: (session: SessionInfo | undefined) => void): () => void
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
