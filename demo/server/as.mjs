// The demo's authorization server: oidc-provider with DPoP (nonces), refresh-token rotation,
// revocation and resource indicators switched on, one public SPA client and one demo account.
// Sign-in is one click; nothing here is a real credential.

import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { exportJWK, generateKeyPair } from 'jose'
import Provider, { errors, interactionPolicy } from 'oidc-provider'
import { close, listen } from './http.mjs'
import { MARK_SVG, PAGE_CSS, escapeHtml } from './ui.mjs'

const ACCOUNT_ID = 'demo'
const RESOURCE_SCOPE = 'api:read'
const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]{1,128})(\/login)?$/

/** @param {string} alg */
async function signingKey(alg) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true })
  return { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}` }
}

function signInPage({ uid, scopes }) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · latchkey demo</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main class="card">
  <div class="brand">${MARK_SVG} latchkey demo</div>
  <h1>Sign in</h1>
  <p>This authorization server has one account and no passwords. The demo app asks for:</p>
  <ul>${scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>
  <form method="post" action="/interaction/${escapeHtml(uid)}/login">
    <button type="submit">Continue as demo user</button>
  </form>
  <p class="fine">oidc-provider on loopback · DPoP-bound tokens</p>
</main>
</body>
</html>`
}

/** What a used or expired sign-in page shows (the browser's Back button after sign-in lands here). */
function endedPage(appUrl) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in ended · latchkey demo</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main class="card">
  <div class="brand">${MARK_SVG} latchkey demo</div>
  <h1>This sign-in has ended</h1>
  <p>It was completed or has expired. A sign-in page works once, so there is nothing to do here.</p>
  ${appUrl ? `<p><a href="${escapeHtml(appUrl)}">Back to the demo app</a></p>` : ''}
  <p class="fine">oidc-provider on loopback</p>
</main>
</body>
</html>`
}

/**
 * Collects the token strings in a token endpoint response as it is written, before it leaves, so
 * that `issued` already holds them when the client reads them.
 * @param {import('node:http').ServerResponse} res
 * @param {Set<string>} issued
 */
function recordIssuedTokens(res, issued) {
  const chunks = []
  const { write, end } = res
  const keep = (chunk) => {
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk))
  }
  res.write = function (chunk, ...rest) {
    keep(chunk)
    return write.call(this, chunk, ...rest)
  }
  res.end = function (chunk, ...rest) {
    keep(chunk)
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      for (const name of ['access_token', 'refresh_token', 'id_token']) if (typeof body?.[name] === 'string') issued.add(body[name])
    } catch {
      // Not JSON: not a token response.
    }
    return end.call(this, chunk, ...rest)
  }
}

/**
 * Lets the SPA read the server's time from the `Date` header: latchkey dates its DPoP proofs by it,
 * and oidc-provider's CORS exposes only `DPoP-Nonce` and `WWW-Authenticate`.
 * @param {import('node:http').ServerResponse} res
 */
function exposeDate(res) {
  const { setHeader } = res
  res.setHeader = function (name, value) {
    if (String(name).toLowerCase() === 'access-control-expose-headers') value = [value, 'Date'].flat().join(', ')
    return setHeader.call(this, name, value)
  }
}

/**
 * Starts the demo authorization server on loopback.
 *
 * @param {object} [options]
 * @param {number} [options.port=0] 0 picks a free port
 * @param {string} [options.host='127.0.0.1']
 * @param {number} [options.accessTokenTTL=60] access token lifetime in seconds
 * @param {boolean} [options.requireNonce=true] demand a server nonce in DPoP proofs (RFC 9449 §8)
 * @param {string[]} [options.redirectUris] the SPA's redirect URIs
 * @param {string[]} [options.corsOrigins] SPA origins allowed to call the token and revocation endpoints
 * @param {string} options.resource the demo API's origin: resource indicator and access token `aud`
 * @param {Record<string, string>} [options.moreResources] more APIs: resource indicator (their origin, the
 *   tokens' `aud`) → the scope they grant, e.g. `{ [billing.origin]: 'billing:read' }`
 * @returns {Promise<{
 *   issuer: string, url: string, port: number, provider: Provider,
 *   counts: { authorizationCode: number, refreshToken: number, invalidGrant: number, useDpopNonce: number,
 *     revocations: number, grantsRevoked: number, other: number },
 *   issuedTokens(): string[], requests(): string[], setRequireNonce(value: boolean): void, setUnavailable(retryAfterSeconds: number): void, stop(): Promise<void> }>}
 * @example
 * const as = await startAuthServer({ resource: api.origin, redirectUris: [`${app}/`], corsOrigins: [app] })
 */
export async function startAuthServer({
  port = 0,
  host = '127.0.0.1',
  accessTokenTTL = 60,
  requireNonce = true,
  redirectUris = [],
  corsOrigins = [],
  resource,
  moreResources = {},
} = {}) {
  if (typeof resource !== 'string' || !URL.canParse(resource)) throw new TypeError('resource must be an absolute URL')
  // Each API's token is good at that API only: its `aud` is the API, its scope the API's own.
  const resourceScopes = { [resource]: RESOURCE_SCOPE, ...moreResources }
  const state = { requireNonce }
  const counts = {
    authorizationCode: 0, refreshToken: 0, invalidGrant: 0, useDpopNonce: 0, revocations: 0, grantsRevoked: 0, other: 0,
    /** Token requests answered 503 by `setUnavailable`. */
    unavailable: 0,
  }
  // Every request this server received, as "METHOD /path" (bounded), for tests that must see none.
  const requests = []
  // Seconds of Retry-After while the token endpoint plays unavailable (503); 0: it works.
  let unavailableFor = 0

  // Listen first: the issuer must carry the real port, and the provider needs the issuer up front.
  let handler = (req, res) => { res.statusCode = 503; res.end() }
  const server = createServer((req, res) => handler(req, res))
  const { port: actualPort, origin: issuer } = await listen(server, port, host)

  // Every authorization shows the sign-in page, even with a live session at the server, so that
  // "Sign out" followed by "Sign in" in the demo visibly goes through the server again.
  const policy = interactionPolicy.base()
  policy.get('login').checks.push(new interactionPolicy.Check(
    'demo_sign_in_every_time',
    'the demo asks for sign-in on every authorization',
    (ctx) => (ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT),
  ))

  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'spa',
      client_name: 'latchkey demo',
      token_endpoint_auth_method: 'none',
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      dpop_bound_access_tokens: true,
    }],
    jwks: { keys: [await signingKey('ES256'), await signingKey('RS256')] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access'],
    pkce: { required: () => true },
    responseTypes: ['code'],
    clientBasedCORS: (_ctx, origin) => corsOrigins.includes(origin),
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => state.requireNonce },
      revocation: {
        enabled: true,
        // A client may revoke only its own tokens; anything else is ignored (RFC 7009 §2.2 200).
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (!Object.hasOwn(resourceScopes, indicator)) throw new errors.InvalidTarget()
          return {
            scope: resourceScopes[indicator],
            audience: indicator,
            accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          }
        },
      },
    },
    // A public client gets a refresh token whenever it may use the grant: the SPA asks for
    // offline_access, but oidc-provider drops that scope unless prompt=consent is sent.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Refresh tokens outlive the server-side login session; sign-out is revocation, not a cookie.
    expiresWithSession: () => false,
    rotateRefreshToken: true,
    // Issue time in milliseconds: the demo API's "Expire now" must tell a token issued just before
    // the click from one refreshed just after it, which `iat` (whole seconds) cannot.
    extraTokenClaims: () => ({ iat_ms: Date.now() }),
    ttl: {
      AccessToken: accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 86_400,
      RefreshToken: 86_400,
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Consent is implied for the demo's own client: a new sign-in gets a fresh grant with the
    // demo scopes, which also keeps each sign-in's refresh-token family separate.
    async loadExistingGrant(ctx) {
      const { accountId } = ctx.oidc.session
      if (!accountId || !ctx.oidc.result?.login) return undefined
      const grant = new ctx.oidc.provider.Grant({ accountId, clientId: ctx.oidc.client.clientId })
      grant.addOIDCScope('openid offline_access')
      for (const [indicator, scope] of Object.entries(resourceScopes)) grant.addResourceScope(indicator, scope)
      await grant.save()
      return grant
    },
    findAccount: (_ctx, sub) => (sub === ACCOUNT_ID
      ? { accountId: sub, claims: () => ({ sub, name: 'Demo User' }) }
      : undefined),
  })

  provider.on('grant.success', (ctx) => {
    const grantType = ctx.oidc.params.grant_type
    if (grantType === 'authorization_code') counts.authorizationCode += 1
    else if (grantType === 'refresh_token') counts.refreshToken += 1
    else counts.other += 1
  })
  const countError = (_ctx, error) => {
    if (error.error === 'invalid_grant') counts.invalidGrant += 1
    else if (error.error === 'use_dpop_nonce') counts.useDpopNonce += 1
    else counts.other += 1
  }
  provider.on('grant.error', countError)
  provider.on('revocation.error', countError)
  provider.on('grant.revoked', () => { counts.grantsRevoked += 1 })

  const providerCallback = provider.callback()
  const redirectOrigins = [...new Set(redirectUris.map((uri) => new URL(uri).origin))].join(' ')
  const revocationPath = new URL(provider.urlFor('revocation')).pathname
  const tokenPath = new URL(provider.urlFor('token')).pathname
  // Every access, refresh and ID token of this run, for the demo page's storage inspector.
  const issued = new Set()

  /** A token endpoint under load: 503 with Retry-After, readable by the SPA's origin (CORS exposes it). */
  function unavailable(req, res) {
    counts.unavailable += 1
    const origin = req.headers.origin
    const cors = corsOrigins.includes(origin) ? { 'access-control-allow-origin': origin, 'access-control-expose-headers': 'Retry-After, Date' } : {}
    req.resume()
    res.writeHead(503, { 'content-type': 'text/html', 'retry-after': String(unavailableFor), ...cors }).end('<html>busy</html>')
  }

  async function interaction(req, res, uid, isLogin) {
    const details = await provider.interactionDetails(req, res)
    if (details.uid !== uid) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('Interaction mismatch')
      return
    }
    if (details.prompt.name !== 'login') {
      // Only a login prompt can come up (see loadExistingGrant); anything else is not the demo's flow.
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`Unexpected prompt: ${details.prompt.name}`)
      return
    }
    if (isLogin) {
      req.resume()
      await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID } }, { mergeWithLastSubmission: false })
      return
    }
    const scopes = [...new Set([...String(details.params.scope ?? '').split(' ').filter(Boolean), ...Object.values(resourceScopes)])]
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      // form-action covers the whole redirect chain, so the client's redirect origins must be listed.
      'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${redirectOrigins}; frame-ancestors 'none'; base-uri 'none'`,
      'referrer-policy': 'no-referrer',
    }).end(signInPage({ uid, scopes }))
  }

  handler = (req, res) => {
    const { pathname } = new URL(req.url, issuer)
    if (requests.length < 10_000) requests.push(`${req.method} ${pathname}`)
    const match = INTERACTION_PATH.exec(pathname)
    if (match && (match[2] ? req.method === 'POST' : req.method === 'GET')) {
      interaction(req, res, match[1], Boolean(match[2])).catch((error) => {
        // SessionNotFound and friends: the interaction was completed, expired or its cookie is gone
        // (the browser's Back button after sign-in comes here). Say so plainly.
        if (res.headersSent) return void res.end()
        if (error.statusCode >= 400 && error.statusCode < 500) {
          res.writeHead(error.statusCode, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
          res.end(endedPage(redirectUris[0]))
          return
        }
        res.writeHead(500, { 'content-type': 'text/plain' }).end('server error')
      })
      return
    }
    if (unavailableFor && req.method === 'POST' && pathname === tokenPath) return unavailable(req, res)
    exposeDate(res)
    if (req.method === 'POST' && pathname === tokenPath) recordIssuedTokens(res, issued)
    if (req.method === 'POST' && pathname === revocationPath) {
      // oidc-provider emits no success event for revocation; count what the client saw.
      res.once('finish', () => { if (res.statusCode === 200) counts.revocations += 1 })
    }
    providerCallback(req, res)
  }

  return {
    issuer,
    url: issuer,
    port: actualPort,
    provider,
    counts,
    /** Every access, refresh and ID token string this server has issued since it started. */
    issuedTokens: () => [...issued],
    /** Every request received so far, as "METHOD /path", oldest first (CORS preflights included). */
    requests: () => [...requests],
    /** @param {boolean} value */
    setRequireNonce(value) { state.requireNonce = Boolean(value) },
    /**
     * Makes the token endpoint answer every POST with 503 and `Retry-After: seconds`, as a server
     * under load does; 0 restores it.
     * @param {number} seconds
     */
    setUnavailable(seconds) { unavailableFor = seconds },
    stop: () => close(server),
  }
}
