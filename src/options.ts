import type { CrossTab } from './crosstab.js'
import type { DPoP } from './dpop.js'
import type { Emit } from './events.js'
import type { RefreshContext, RefreshEndpoint, TokenManagerOptions, TokenResponse } from './types.js'
import type { Vault } from './vault.js'
import { checkURL, invalid } from './util.js'

/** The options of one token manager, checked once and fixed: every module reads, none writes. */
export interface Config {
  clientId: string
  tokenEndpoint: string | undefined
  revocationEndpoint: string | undefined
  /** Invariant 2: the only origins whose requests ever get a token. */
  origins: Set<string>
  /** The app's own refresh endpoint, when refreshes go there instead of `tokenEndpoint`. */
  refreshEndpoint: RefreshEndpoint | undefined
  /** The app's own refresh function. */
  refreshFunction: ((context: RefreshContext) => Promise<TokenResponse>) | undefined
  /** Refresh is possible without a refresh token in memory (the app's own endpoint or function). */
  ownRefresh: boolean
  persist: boolean
  /** Milliseconds, like every duration inside. */
  leeway: number
  timeout: number
  /** Names this client in shared storage, locks and channels. */
  id: string
}

/** The config with the parts one token manager is assembled from; fixed once assembled. */
export interface Context extends Config {
  /** The fetch every request goes through. */
  send: typeof fetch
  tabs: CrossTab
  dpop: DPoP | undefined
  vault: Vault | undefined
  emit: Emit
  /** Invariant 6: takes every token value this client knows out of a server's text. */
  redact(text: string): string
}

/** Checks the options; a bad one throws a TypeError naming it. */
export function resolveOptions(options: TokenManagerOptions): Config {
  const { clientId, tokenEndpoint, revocationEndpoint, refresh: own, allowedOrigins } = options
  if (!clientId || typeof clientId != 'string') invalid('clientId')
  const origins = new Set(
    (Array.isArray(allowedOrigins) ? allowedOrigins : invalid('allowedOrigins')).map((o, i) => {
      const url = checkURL(o, `allowedOrigins[${i}]`)
      return url.href == url.origin + '/' ? url.origin : invalid(`allowedOrigins[${i}]`)
    }),
  )
  if (tokenEndpoint || !own) checkURL(tokenEndpoint, 'tokenEndpoint')
  if (revocationEndpoint) checkURL(revocationEndpoint, 'revocationEndpoint')
  const refreshEndpoint = typeof own == 'string' ? { url: own } : typeof own == 'object' ? own : undefined
  const persist = !!options.persist
  if (persist && !(options.dpop ?? true)) invalid('persist', 'needs dpop')
  const leeway = (options.refreshLeewaySeconds ?? 30) * 1000
  const timeout = (options.timeoutSeconds ?? 10) * 1000
  if (!(leeway >= 0 && timeout > 0)) invalid('refreshLeewaySeconds or timeoutSeconds')
  return {
    clientId,
    tokenEndpoint,
    revocationEndpoint,
    origins,
    refreshEndpoint,
    refreshFunction: typeof own == 'function' ? own : undefined,
    ownRefresh: !!own,
    persist,
    leeway,
    timeout,
    id: clientId + '@' + (tokenEndpoint ?? refreshEndpoint?.url ?? ''),
  }
}
