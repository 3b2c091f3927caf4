import { browserCrossTab, localCrossTab, type CrossTab } from './crosstab.js'
import { createDPoP, type DPoPSigner } from './dpop.js'
import { createEvents, measured, warner } from './events.js'
import { createAuthorizedFetch } from './fetch.js'
import { indexedDBKeyStore, memoryKeyStore, type KeyStore } from './keystore.js'
import { authorizationRequest, redirectResult } from './login.js'
import { parseTokenResponse, revokeToken, tokenRequest } from './oauth.js'
import { resolveOptions, type Context } from './options.js'
import { createRefresh, sessionIsOver } from './refresh.js'
import { isDue, SessionState, tokenFor, tokenInfo, type Session } from './session.js'
import type { Measurement, SessionInfo, TokenManager, TokenManagerOptions } from './types.js'
import { here, invalid, offline } from './util.js'
import { createVault } from './vault.js'

/**
 * Creates a token manager: tokens in memory, attached only to `allowedOrigins`, DPoP-bound by
 * default, refreshed before expiry and on 401 exactly once however many requests (and tabs) ask.
 *
 * @example
 * ```ts
 * const tm = createTokenManager({
 *   clientId: 'spa',
 *   tokenEndpoint: 'https://as.example/token',
 *   revocationEndpoint: 'https://as.example/revoke',
 *   allowedOrigins: ['https://api.example'],
 * })
 * const res = await tm.fetch('https://api.example/me')
 * ```
 * @see RFC 6749, RFC 6750, RFC 7009, RFC 9449, RFC 9700
 */
export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const config = resolveOptions(options)
  const { clientId, tokenEndpoint, revocationEndpoint } = config
  const { emit, on } = createEvents()
  const warn = warner(emit)
  const send: typeof fetch = (input, init) => (options.fetch ?? globalThis.fetch)(input, init)
  const tabs: CrossTab =
    typeof options.crossTab == 'object'
      ? options.crossTab
      : (options.crossTab !== false && browserCrossTab(config.id)) || localCrossTab()
  const { crypto } = config
  const dpopOption = options.dpop ?? true
  const { keyStore, signer } = typeof dpopOption == 'object' ? (dpopOption as { keyStore?: KeyStore; signer?: DPoPSigner }) : {}
  const keys = signer ?? keyStore ?? (globalThis.indexedDB ? indexedDBKeyStore() : memoryKeyStore())
  const dpop = dpopOption ? createDPoP(crypto, keys, 'dpop:' + config.id, (fn) => tabs.lock('key', fn), emit) : undefined
  // With a signer, `persist` needs a key store of its own (checked with the options).
  const vault = config.persist ? createVault(crypto, keyStore ?? (keys as KeyStore), config.id, warn) : undefined

  const context: Context = { ...config, send, tabs, dpop, vault, emit, redact: (text) => state.redact(text) }
  const revoke = async (token: string | undefined) => {
    if (token && revocationEndpoint && !(await revokeToken(context, revocationEndpoint, token))) warn('revocation_failed')
  }
  const state = new SessionState(context, revoke)
  const { refresh, current, renew } = createRefresh(context, state)

  // Back online or visible: refresh the main token ahead of the next call if it is due.
  const resume = () => {
    const token = tokenFor(state.session, config.mainOrigin)
    if (token && isDue(token, config.leeway) && !offline() && globalThis.document?.visibilityState != 'hidden') refresh('resume').catch(() => {})
  }
  globalThis.addEventListener?.('online', resume)
  globalThis.document?.addEventListener('visibilitychange', resume)
  const unlisten = tabs.listen(state.onTabMessage)

  /**
   * The `resources` origin whose token serves requests to `url`'s origin (the main API's without
   * `url`), if it has one. With `refuse`, an origin that gets no token at all is a TypeError
   * (invariant 2: a token is handed out for an allowed origin only, as `fetch` attaches it).
   */
  const resourceOrigin = (url?: string, refuse?: boolean) => {
    const o = url ? new URL(url, here()).origin : config.mainOrigin
    if (refuse && url && !config.origins.has(o!)) invalid('origin', 'not allowed')
    return o && config.resourceOf.has(o) ? o : undefined
  }

  const exchangeCode: TokenManager['exchangeCode'] = async ({ code, codeVerifier, redirectUri }) => {
    const url = tokenEndpoint ?? invalid('tokenEndpoint', '')
    // A logout that starts before this login is installed wins over it: its proof used the old key.
    const epochAtStart = state.localEpoch
    // RFC 8707: with `resources` only, the login's token is the first API's.
    const { mainOrigin } = config
    const resource = config.resourceOf.get(mainOrigin!)?.resource
    const form = { grant_type: 'authorization_code', code, code_verifier: codeVerifier, redirect_uri: redirectUri, client_id: clientId, resource }
    const m: Measurement = { name: 'start', reason: 'login' }
    const tokens = await measured(emit, m, () => tokenRequest({ ...context, m }, url, form, {}, false))
    await state.install(tokens, 'login', epochAtStart, mainOrigin)
  }

  // Each redirect URL handled, and its outcome: the same URL twice (React StrictMode runs start-up
  // effects twice) is one code exchange, its `state` spent on the first call.
  const redirects: Record<string, Promise<void>> = {}

  const status = stableStatus(state, resourceOrigin)

  return {
    async restore() {
      if (state.session || (await state.askOtherTabs())) return true
      const stored = await vault?.load()
      // Another tab may have restored or signed in while the stored token was being read: adopt, don't refresh again.
      if (state.session) return true
      if (!stored && !config.refresh) return false
      if (stored) state.adoptStored(stored)
      try {
        await refresh('restore')
        return true
      } catch (e) {
        if (sessionIsOver(e)) return false
        throw e
      }
    },
    async authorizationUrl(parameters) {
      // RFC 8707: the grant covers every API; each token is then asked for one of them. The first
      // API's params (Auth0's audience) name the login's.
      const resource = [parameters.resource ?? [], ...[...config.resourceOf.values()].map((r) => r.resource ?? [])].flat()
      const authorizationEndpoint = parameters.authorizationEndpoint ?? config.authorizationEndpoint
      const extraParameters = { ...config.resourceOf.get(config.mainOrigin!)?.params, ...parameters.extraParameters }
      return authorizationRequest(config, { ...parameters, authorizationEndpoint, resource, extraParameters }, await dpop?.jkt())
    },
    handleRedirect: (input) => (redirects[String(input)] ??= redirectResult(input, config).then(exchangeCode)),
    setTokens: async (response) => state.install(parseTokenResponse(response, 'setTokens', !!dpop), 'set'),
    exchangeCode,
    dpopThumbprint: async () => (dpop ? dpop.jkt() : invalid('dpop', 'off')),
    fetch: createAuthorizedFetch(context, { current, renew, canRefresh: () => !!(state.session?.rt || config.refresh) }),
    getAccessToken: async (origin) => (await current(resourceOrigin(origin, true))).at!,
    refresh: async () => void (await refresh('manual')),
    status,
    on,
    subscribe(listener) {
      const run = () => listener(status())
      // Every event that changes what status() returns; the listener reads the snapshot itself.
      const offs = (['tokens', 'session-expired', 'logout'] as const).map((event) => on(event, run))
      run()
      return () => offs.forEach((off) => off())
    },
    logout: state.logout,
    dispose() {
      globalThis.removeEventListener?.('online', resume)
      globalThis.document?.removeEventListener('visibilitychange', resume)
      unlisten()
      tabs.close?.()
    },
  }
}

/**
 * `status()`: what it returned for each origin since the session last changed, the same object until
 * then, so that UI frameworks (useSyncExternalStore) can compare snapshots by identity. Every change
 * of the session makes a new session object (or none).
 */
function stableStatus(state: SessionState, resourceOrigin: (url?: string) => string | undefined): TokenManager['status'] {
  let snapshots: Record<string, SessionInfo> = {}
  let snapshotsOf: Session | undefined
  return (origin) => {
    const s = state.session
    const key = resourceOrigin(origin)
    if (s != snapshotsOf) (snapshots = {}), (snapshotsOf = s)
    // Before the main API's first token, the session's own (from setTokens) tells that one is signed in.
    const token = tokenFor(s, key) ?? (origin ? undefined : s)
    return s && token?.at ? (snapshots[key ?? ''] ??= tokenInfo(token, s.generation, token == s ? undefined : key)) : undefined
  }
}
