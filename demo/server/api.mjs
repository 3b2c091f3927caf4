// The demo resource server. It accepts only DPoP-bound JWT access tokens from the demo
// authorization server and checks every request's DPoP proof (RFC 9449 §4.3 and §7).

import { createServer } from 'node:http'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { DPoPError, createDPoPVerifier, createNonceSource } from './dpop.mjs'
import { close, listen, readBody, sendJson } from './http.mjs'

const ALGS = 'ES256'

const ITEMS = [
  { id: 1, name: 'Brass latch', stock: 12 },
  { id: 2, name: 'Deadbolt, satin', stock: 4 },
  { id: 3, name: 'Key blank, SC1', stock: 250 },
  { id: 4, name: 'Padlock, 40 mm', stock: 31 },
]

const INVOICES = [
  { id: 'INV-1041', total: '129.00 EUR', status: 'paid' },
  { id: 'INV-1042', total: '48.50 EUR', status: 'open' },
]

class Unauthorized extends Error {
  /**
   * @param {'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce' | undefined} error
   *   undefined when no credentials were sent at all (RFC 6750 §3.1)
   * @param {string} [description]
   */
  constructor(error, description) {
    super(description ?? 'authentication required')
    this.error = error
    this.description = description
  }
}

function challenge({ error, description }) {
  const params = [error && `error="${error}"`, description && `error_description="${description}"`, `algs="${ALGS}"`]
  return `DPoP ${params.filter(Boolean).join(', ')}`
}

/**
 * Starts the demo API on loopback.
 *
 * `issuer` may be left out and set later with `setIssuer()`: the authorization server needs the
 * API's origin as its resource indicator, so one of the two has to start first.
 *
 * @param {object} [options]
 * @param {number} [options.port=0] 0 picks a free port
 * @param {string} [options.host='127.0.0.1']
 * @param {string} [options.issuer] the authorization server's issuer
 * @param {string} [options.audience] expected `aud`; defaults to this server's origin
 * @param {boolean} [options.requireNonce=true] demand a server nonce in DPoP proofs
 * @param {number} [options.nonceRotateMs=300000] how often the API's nonce changes
 * @param {string[]} [options.corsOrigins] origins allowed to call the API from a browser
 * @returns {Promise<{ url: string, origin: string, port: number, counts: {
 *   requests: number, ok: number, unauthorized: Record<string, number>, lastScheme: string | null },
 *   expireAll(): void, setIssuer(issuer: string): void, setRequireNonce(value: boolean): void, stop(): Promise<void> }>}
 * @example
 * const api = await startApiServer({ corsOrigins: [appOrigin] })
 * const as = await startAuthServer({ resource: api.origin, ... })
 * api.setIssuer(as.issuer)
 */
export async function startApiServer({
  port = 0,
  host = '127.0.0.1',
  issuer,
  audience,
  requireNonce = true,
  nonceRotateMs = 300_000,
  corsOrigins = [],
} = {}) {
  const state = { requireNonce, issuer, jwks: undefined, expiredBefore: 0 }
  const counts = {
    requests: 0,
    ok: 0,
    unauthorized: { invalid_token: 0, invalid_dpop_proof: 0, use_dpop_nonce: 0, missing: 0 },
    lastScheme: null,
    /** The `aud` of every token this API accepted (each must be this API). */
    audiences: [],
  }
  const nonces = createNonceSource({ rotateEveryMs: nonceRotateMs })
  // One verifier (one replay cache) for both modes: switching nonces off only relaxes the nonce check.
  const verifier = createDPoPVerifier({
    algorithms: [ALGS],
    nonces: { isValid: (nonce) => !state.requireNonce || nonces.isValid(nonce) },
  })
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) sendJson(res, error.status ?? 500, { error: error.status ? 'invalid_request' : 'server_error' })
      else res.destroy()
    })
  })
  const { port: actualPort, origin } = await listen(server, port, host)
  const expectedAudience = audience ?? origin

  function jwks() {
    if (!state.issuer) throw new Unauthorized('invalid_token', 'the API has no issuer configured')
    // The issuer is oidc-provider, whose JWKS lives at a fixed path; discovery would add a request.
    state.jwks ??= createRemoteJWKSet(new URL('/jwks', state.issuer))
    return state.jwks
  }

  async function authenticate(req) {
    const authorization = req.headers.authorization
    if (!authorization) {
      counts.lastScheme = null
      throw new Unauthorized(undefined)
    }
    const space = authorization.indexOf(' ')
    const scheme = space === -1 ? authorization : authorization.slice(0, space)
    const token = space === -1 ? '' : authorization.slice(space + 1).trim()
    counts.lastScheme = scheme
    if (scheme.toLowerCase() === 'bearer') {
      // Every token this API accepts is DPoP-bound; as Bearer it would be a stolen-token replay.
      throw new Unauthorized('invalid_token', 'DPoP-bound access token presented with the Bearer scheme')
    }
    if (scheme.toLowerCase() !== 'dpop' || !token) throw new Unauthorized('invalid_token', 'DPoP authorization scheme required')

    let claims
    try {
      ({ payload: claims } = await jwtVerify(token, jwks(), {
        issuer: state.issuer,
        audience: expectedAudience,
        typ: 'at+jwt',
        algorithms: ['ES256'],
      }))
    } catch (error) {
      if (error instanceof Unauthorized) throw error
      throw new Unauthorized('invalid_token', error.code === 'ERR_JWT_EXPIRED' ? 'access token expired' : 'access token is invalid')
    }
    const jkt = claims.cnf?.jkt
    if (typeof jkt !== 'string') throw new Unauthorized('invalid_token', 'access token is not DPoP-bound')
    // The demo AS adds iat_ms; without it, a token counts as issued at the end of its iat second.
    const issuedAt = typeof claims.iat_ms === 'number' ? claims.iat_ms : (claims.iat + 1) * 1000
    if (issuedAt < state.expiredBefore) throw new Unauthorized('invalid_token', 'access token expired by the demo')

    try {
      await verifier.verify({
        proof: req.headers.dpop,
        method: req.method,
        url: `http://${req.headers.host}${req.url}`,
        accessToken: token,
        jkt,
      })
    } catch (error) {
      if (error instanceof DPoPError) throw new Unauthorized(error.error, error.description)
      throw error
    }
    return claims
  }

  function corsHeaders(req) {
    const requestOrigin = req.headers.origin
    if (!requestOrigin || !corsOrigins.includes(requestOrigin)) return { vary: 'Origin' }
    return {
      vary: 'Origin',
      'access-control-allow-origin': requestOrigin,
      // Date: latchkey dates its DPoP proofs by the server's time, which this API checks (within 60 s).
      'access-control-expose-headers': 'DPoP-Nonce, WWW-Authenticate, Date',
    }
  }

  async function handle(req, res) {
    const { pathname } = new URL(req.url, origin)
    const cors = corsHeaders(req)

    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors['access-control-allow-origin']
        ? {
            ...cors,
            'access-control-allow-methods': 'GET, POST',
            // X-Request-Id: the README's ky example sets it.
            'access-control-allow-headers': 'Authorization, DPoP, Content-Type, X-Request-Id',
            'access-control-max-age': '600',
          }
        : cors)
      res.end()
      return
    }

    if (req.method === 'POST' && pathname === '/demo/expire') {
      req.resume()
      expireAll()
      sendJson(res, 200, { expired: true }, cors)
      return
    }

    const route = `${req.method} ${pathname}`
    if (!['GET /api/me', 'GET /api/items', 'GET /api/invoices', 'POST /api/echo'].includes(route)) {
      sendJson(res, 404, { error: 'not_found' }, cors)
      return
    }

    counts.requests += 1
    const nonceHeader = state.requireNonce ? { 'dpop-nonce': nonces.current() } : {}
    let claims
    try {
      claims = await authenticate(req)
    } catch (error) {
      if (!(error instanceof Unauthorized)) throw error
      counts.unauthorized[error.error ?? 'missing'] += 1
      req.resume()
      sendJson(res, 401, { error: error.error ?? 'invalid_request', error_description: error.message }, {
        ...cors,
        ...nonceHeader,
        'www-authenticate': challenge(error),
      })
      return
    }

    let body
    if (route === 'GET /api/me') {
      body = {
        sub: claims.sub,
        clientId: claims.client_id,
        scope: claims.scope,
        jkt: claims.cnf.jkt,
        tokenIssuedAt: claims.iat,
        tokenExpiresAt: claims.exp,
      }
    } else if (route === 'GET /api/items') {
      body = { items: ITEMS }
    } else if (route === 'GET /api/invoices') {
      body = { aud: claims.aud, scope: claims.scope, invoices: INVOICES }
    } else {
      const text = await readBody(req)
      try {
        body = { echo: text ? JSON.parse(text) : null }
      } catch {
        sendJson(res, 400, { error: 'invalid_request', error_description: 'body must be JSON' }, { ...cors, ...nonceHeader })
        return
      }
    }
    counts.ok += 1
    counts.audiences.push(claims.aud)
    sendJson(res, 200, body, { ...cors, ...nonceHeader })
  }

  /** Makes every access token issued so far fail with 401 invalid_token. */
  function expireAll() {
    state.expiredBefore = Date.now()
  }

  return {
    url: origin,
    origin,
    port: actualPort,
    counts,
    expireAll,
    /** @param {string} value */
    setIssuer(value) {
      state.issuer = value
      state.jwks = undefined
    },
    /** @param {boolean} value */
    setRequireNonce(value) { state.requireNonce = Boolean(value) },
    stop: () => close(server),
  }
}
