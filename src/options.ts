import type { CrossTab } from './crosstab.js'
import type { DPoP } from './dpop.js'
import type { Emit } from './events.js'
import type { RefreshEndpoint, ResourceOptions, TokenManagerOptions } from './types.js'
import type { Vault } from './vault.js'
import { checkURL, invalid, timeoutOf, type WebCrypto } from './util.js'

/** The options of one token manager, checked once, with what follows from them; fixed from then on. */
export interface Config extends Omit<TokenManagerOptions, 'crypto'> {
  /** The WebCrypto every cryptographic operation of this manager goes through. */
  crypto: WebCrypto
  /** Invariant 2: the only origins whose requests ever get a token. */
  origins: Set<string>
  /** RFC 8707: the origins with a token of their own, and the `resource`, `scope` and `params` to ask for it with. */
  resourceOf: Map<string, ResourceOptions>
  /**
   * With `resources` only (no other allowed origin), the first of them: the login's token is
   * asked for its resource, and `status()`, `getAccessToken()` and `refresh()` mean its token.
   */
  mainOrigin: string | undefined
  /** The app's own refresh endpoint, when refreshes go there instead of `tokenEndpoint`. */
  refreshEndpoint: RefreshEndpoint | undefined
  /** Milliseconds, like every duration inside. */
  leeway: number
  timeout: number
  /** Names this client in shared storage, locks and channels. */
  id: string
}

/** The config with the parts one token manager is assembled from; fixed once assembled. */
export interface Context extends Omit<Config, 'dpop'> {
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
  const { clientId, tokenEndpoint, revocationEndpoint, refresh: own, allowedOrigins, resources = {} } = options
  if (!clientId || typeof clientId != 'string') invalid('clientId', clientId ? undefined : '')
  const origin = (o: string, name: string) => {
    const url = checkURL(o, name)
    return url.href == url.origin + '/' ? url.origin : invalid(name)
  }
  const resourceOf = new Map(
    Object.entries(resources).map(([o, r]) => {
      const entry = typeof r == 'string' ? { resource: r } : r
      if (!(entry?.resource || entry?.scope || entry?.params)) invalid(`resources[${o}]`)
      return [origin(o, `resources[${o}]`), entry]
    }),
  )
  const allowed = (Array.isArray(allowedOrigins) ? allowedOrigins : allowedOrigins || !resourceOf.size ? invalid('allowedOrigins', allowedOrigins ? undefined : '') : []).map((o, i) =>
    origin(o, `allowedOrigins[${i}]`),
  )
  const origins = new Set([...allowed, ...resourceOf.keys()])
  const mainOrigin = allowed.every((o) => resourceOf.has(o)) ? [...resourceOf.keys()][0] : undefined
  if (tokenEndpoint || !own) checkURL(tokenEndpoint, 'tokenEndpoint')
  if (revocationEndpoint) checkURL(revocationEndpoint, 'revocationEndpoint')
  const refreshEndpoint = typeof own == 'string' ? { url: own } : typeof own == 'object' ? own : undefined
  const dpop = options.dpop ?? true
  const crypto = options.crypto ?? globalThis.crypto
  if (dpop && !crypto?.subtle) invalid('crypto', 'missing')
  // The vault lives in a key store: a platform signer brings none of its own.
  if (options.persist && !(dpop === true || (dpop && dpop.keyStore))) invalid('persist', 'needs a dpop key store')
  const leeway = (options.refreshLeewaySeconds ?? 30) * 1000
  if (!(leeway >= 0)) invalid('refreshLeewaySeconds')
  const timeout = timeoutOf(options.timeoutSeconds ?? 10, 'timeoutSeconds')
  return { ...options, crypto, origins, resourceOf, mainOrigin, refreshEndpoint, leeway, timeout, id: clientId + '@' + (tokenEndpoint ?? refreshEndpoint?.url ?? '') }
}
