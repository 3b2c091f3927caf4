// Starts the whole demo: the SPA's static server, the API, the authorization server and the
// third-party server, wired to each other. Used by `npm start` and by the e2e suite.

import { fileURLToPath } from 'node:url'
import { startApiServer } from './api.mjs'
import { startAuthServer } from './as.mjs'
import { startStaticServer } from './static.mjs'
import { startThirdPartyServer } from './third-party.mjs'

export const DIST_DIR = fileURLToPath(new URL('../dist/', import.meta.url))

/**
 * Starts all demo servers on loopback. The SPA must already be built into `root`.
 *
 * @param {object} [options]
 * @param {string} [options.root] built SPA directory, default demo/dist
 * @param {number} [options.accessTokenTTL=60] seconds
 * @param {boolean} [options.requireNonce=true] DPoP nonces at both the AS and the API
 * @param {{ app?: number, as?: number, api?: number, billing?: number, thirdParty?: number }} [options.ports] 0 = free port
 * @param {string} [options.host='127.0.0.1']
 * @param {string[]} [options.extraOrigins] more apps that may use the demo's AS and API (your own dev
 *   server): each an origin (its redirect URI is `<origin>/`) or a full redirect URI; added to the
 *   AS's redirect URIs and to the CORS origins of the AS and the API
 * @returns {Promise<{ appUrl: string, as: Awaited<ReturnType<typeof startAuthServer>>,
 *   api: Awaited<ReturnType<typeof startApiServer>>, billing: Awaited<ReturnType<typeof startApiServer>>, thirdParty: Awaited<ReturnType<typeof startThirdPartyServer>>,
 *   config: Record<string, string>, setBeforeApp(source: string | undefined): void, stop(): Promise<void> }>}
 */
export async function startDemo({
  root = DIST_DIR,
  accessTokenTTL = 60,
  requireNonce = true,
  ports = {},
  host = '127.0.0.1',
  extraOrigins = [],
} = {}) {
  const extra = extraOrigins.map(parseExtraOrigin)
  const started = []
  let config = {}
  /** @type {string | undefined} */
  let beforeApp
  /** @type {Awaited<ReturnType<typeof startAuthServer>> | undefined} */
  let as
  try {
    // The app's origin comes first: the AS registers it as redirect URI and CORS origin.
    const app = await startStaticServer({
      root,
      host,
      port: ports.app ?? 0,
      config: () => config,
      connectOrigins: () => [config.issuer, config.apiOrigin, config.billingOrigin, config.thirdPartyOrigin].filter(Boolean),
      issuedTokens: () => as?.issuedTokens() ?? [],
      beforeApp: () => beforeApp,
    })
    started.push(app)
    const origins = [app.origin, ...extra.map((e) => e.origin)]
    const api = await startApiServer({ host, port: ports.api ?? 0, requireNonce, corsOrigins: origins })
    started.push(api)
    // A second API on its own origin with its own audience: its tokens are good there only.
    const billing = await startApiServer({ host, port: ports.billing ?? 0, requireNonce, corsOrigins: origins })
    started.push(billing)
    as = await startAuthServer({
      host,
      port: ports.as ?? 0,
      accessTokenTTL,
      requireNonce,
      resource: api.origin,
      moreResources: { [billing.origin]: 'billing:read' },
      // The same page in every mode: in-page (/), worker mode with a SharedWorker (/?mode=worker) or a dedicated one.
      redirectUris: [`${app.origin}/`, `${app.origin}/?mode=worker`, `${app.origin}/?mode=worker&worker=dedicated`, ...extra.map((e) => e.redirectUri)],
      corsOrigins: origins,
    })
    started.push(as)
    api.setIssuer(as.issuer)
    billing.setIssuer(as.issuer)
    const thirdParty = await startThirdPartyServer({ host, port: ports.thirdParty ?? 0 })
    started.push(thirdParty)

    config = {
      clientId: 'spa',
      issuer: as.issuer,
      authorizationEndpoint: as.provider.urlFor('authorization'),
      tokenEndpoint: as.provider.urlFor('token'),
      revocationEndpoint: as.provider.urlFor('revocation'),
      redirectUri: `${app.origin}/`,
      scope: 'openid offline_access api:read billing:read',
      apiOrigin: api.origin,
      billingOrigin: billing.origin,
      thirdPartyOrigin: thirdParty.origin,
    }

    return {
      appUrl: `${app.origin}/`,
      as,
      api,
      billing,
      thirdParty,
      config,
      // A test aid (see startStaticServer): a script for index.html to run before the app, or none.
      setBeforeApp: (source) => void (beforeApp = source),
      stop: () => Promise.all(started.map((s) => s.stop())).then(() => undefined),
    }
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.stop()))
    throw error
  }
}

/**
 * One entry of `extraOrigins`: an origin, or a full redirect URI whose origin is then allowed.
 * @param {string} entry
 * @returns {{ origin: string, redirectUri: string }}
 */
export function parseExtraOrigin(entry) {
  let url
  try {
    url = new URL(entry)
  } catch {
    throw new TypeError(`extra origin ${JSON.stringify(entry)} is not an absolute URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`extra origin ${entry} is not http(s)`)
  const bare = url.pathname === '/' && !url.search && !url.hash
  return { origin: url.origin, redirectUri: bare ? `${url.origin}/` : url.href }
}
