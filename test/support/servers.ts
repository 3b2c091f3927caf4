// Real loopback HTTP servers for the unit tests: an OAuth token endpoint that rotates refresh tokens
// and remembers every one it ever rotated out, and a resource server that checks tokens and DPoP
// proofs (with the same verifier the demo API uses).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { createDPoPVerifier, createNonceSource, DPoPError } from '../../demo/server/dpop.mjs'

export type Handler = (req: IncomingMessage & { body: string }, res: ServerResponse) => void | Promise<void>

export interface Served {
  origin: string
  url(path: string): string
  close(): Promise<void>
}

/** Starts an HTTP server on 127.0.0.1 at a free port. */
export async function serve(handler: Handler): Promise<Served> {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    Object.assign(req, { body: Buffer.concat(chunks).toString() })
    // These servers keep the test's time (tests move Date), and latchkey dates its DPoP proofs by the
    // server's Date header: Node's own would tell the real time.
    res.setHeader('date', new Date(Date.now()).toUTCString())
    try {
      await handler(req as IncomingMessage & { body: string }, res)
    } catch (e) {
      res.statusCode = 500
      res.end(String(e))
    }
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    url: (path) => origin + path,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

export const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

const token = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`

export interface IssuedToken {
  jkt?: string
  expiresAt: number
  revoked?: boolean
  /** The RFC 8707 resource the token was issued for (its audience), if one was asked for. */
  aud?: string
}

export interface TokenServerOptions {
  /** Bind tokens to the proof's key and answer token_type DPoP. */
  dpop?: boolean
  /** Demand a server nonce in every proof (400 use_dpop_nonce with a DPoP-Nonce header). */
  requireNonce?: boolean
  expiresIn?: number
  /** Issue a new refresh token on every refresh (default true). */
  rotate?: boolean
  /** Delay before answering a refresh, ms. */
  delayMs?: number
  /** Replace the answer to a refresh_token grant (after the refresh token was checked). */
  onRefresh?: (res: ServerResponse) => boolean | void
}

/** A token endpoint (authorization_code + refresh_token) and an RFC 7009 revocation endpoint. */
export async function startTokenServer(options: TokenServerOptions = {}) {
  const { dpop = false, expiresIn = 300, rotate = true } = options
  const nonces = createNonceSource()
  // The clock is read through Date on every call, so tests that move Date move the servers too.
  const clock = { now: () => Date.now() }
  const verifier = createDPoPVerifier(clock)
  const nonceVerifier = createDPoPVerifier({ nonces, ...clock })
  const accessTokens = new Map<string, IssuedToken>()
  const refreshTokens = new Map<string, { jkt?: string; scope: string }>()
  const rotatedOut = new Set<string>()
  const codes = new Map<string, { scope: string }>()
  const counts = {
    refresh: 0,
    code: 0,
    invalidGrant: 0,
    reuse: 0,
    nonceChallenges: 0,
    revoked: 0,
    proofs: [] as string[],
    /** The `resource` of each successful refresh_token grant, in order ('' for none). */
    resources: [] as string[],
  }
  const state = { requireNonce: !!options.requireNonce, options }

  const issue = (scope: string, jkt?: string, aud?: string) => {
    const at = token('at')
    accessTokens.set(at, { jkt, expiresAt: Date.now() + expiresIn * 1000, ...(aud && { aud }) })
    const body: Record<string, unknown> = { access_token: at, token_type: dpop ? 'DPoP' : 'Bearer', expires_in: expiresIn, scope }
    return body
  }

  const served = await serve(async (req, res) => {
    const form = new URLSearchParams(req.body)
    const url = served.url(req.url!.split('?')[0]!)
    if (req.url === '/revoke') {
      const t = form.get('token') ?? ''
      if (refreshTokens.delete(t) || accessTokens.has(t)) counts.revoked++
      const at = accessTokens.get(t)
      if (at) at.revoked = true
      return void res.writeHead(200).end()
    }
    if (req.url !== '/token') return void json(res, 404, { error: 'not_found' })
    let jkt: string | undefined
    if (dpop) {
      const proof = req.headers.dpop as string | undefined
      if (proof) counts.proofs.push(proof)
      try {
        ;({ jkt } = await (state.requireNonce ? nonceVerifier : verifier).verify({ proof, method: req.method!, url }))
      } catch (e) {
        if (e instanceof DPoPError) {
          if (e.error === 'use_dpop_nonce') counts.nonceChallenges++
          return void json(res, 400, { error: e.error, error_description: e.description }, { 'dpop-nonce': nonces.current() })
        }
        throw e
      }
    }
    const grant = form.get('grant_type')
    const nonceHeader: Record<string, string> = state.requireNonce ? { 'dpop-nonce': nonces.current() } : {}
    if (grant === 'authorization_code') {
      const code = codes.get(form.get('code') ?? '')
      codes.delete(form.get('code') ?? '')
      if (!code) return void json(res, 400, { error: 'invalid_grant' })
      counts.code++
      const rt = token('rt')
      refreshTokens.set(rt, { jkt, scope: code.scope })
      return void json(res, 200, { ...issue(code.scope, jkt, form.get('resource') ?? undefined), refresh_token: rt }, nonceHeader)
    }
    if (grant === 'refresh_token') {
      const presented = form.get('refresh_token') ?? ''
      const rt = refreshTokens.get(presented)
      if (!rt || (rt.jkt && rt.jkt !== jkt)) {
        counts.invalidGrant++
        if (rotatedOut.has(presented)) counts.reuse++
        return void json(res, 400, { error: 'invalid_grant', error_description: 'refresh token is invalid' }, nonceHeader)
      }
      counts.refresh++
      counts.resources.push(form.get('resource') ?? '')
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs))
      if (state.options.onRefresh?.(res)) return
      const body = issue(form.get('scope') ?? rt.scope, jkt, form.get('resource') ?? undefined)
      if (rotate) {
        refreshTokens.delete(presented)
        rotatedOut.add(presented)
        const next = token('rt')
        refreshTokens.set(next, rt)
        body.refresh_token = next
      }
      return void json(res, 200, body, nonceHeader)
    }
    json(res, 400, { error: 'unsupported_grant_type' })
  })

  return {
    ...served,
    tokenEndpoint: served.url('/token'),
    revocationEndpoint: served.url('/revoke'),
    counts,
    accessTokens,
    refreshTokens,
    rotatedOut,
    nonces,
    state,
    /** A code the next authorization_code grant accepts. */
    code(scope = 'api') {
      const c = token('code')
      codes.set(c, { scope })
      return c
    },
    /** A Bearer token response as if a login had happened (not DPoP-bound). */
    seed(overrides: Record<string, unknown> = {}) {
      const rt = token('rt')
      refreshTokens.set(rt, { scope: 'api' })
      return { ...issue('api'), refresh_token: rt, ...overrides } as { access_token: string; refresh_token: string; token_type: string; expires_in: number }
    },
  }
}

export type TokenServer = Awaited<ReturnType<typeof startTokenServer>>

export interface ApiOptions {
  /** Demand a DPoP nonce from the API (401 use_dpop_nonce). */
  requireNonce?: boolean
  /** Answer 401 invalid_token to everything. */
  alwaysUnauthorized?: boolean
  /** Accept only tokens issued for this resource (RFC 8707 audience). */
  audience?: string
}

/** A resource server: checks the access token against the token server and, for DPoP, the proof. */
export async function startApi(tokens: TokenServer, options: ApiOptions = {}) {
  const nonces = createNonceSource()
  const state = { ...options }
  // The clock is read through Date on every call, so tests that move Date move the servers too.
  const clock = { now: () => Date.now() }
  const verifier = createDPoPVerifier(clock)
  const nonceVerifier = createDPoPVerifier({ nonces, ...clock })
  const requests: { method: string; path: string; authorization?: string; dpop?: string; body: string; status: number; aud?: string }[] = []
  const served = await serve(async (req, res) => {
    const record = { method: req.method!, path: req.url!, authorization: req.headers.authorization, dpop: req.headers.dpop as string | undefined, body: req.body, status: 200 }
    requests.push(record)
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status
      if (state.requireNonce) headers['dpop-nonce'] ??= nonces.current()
      json(res, status, body, headers)
    }
    const [scheme, at] = (req.headers.authorization ?? '').split(' ')
    const issued = at ? tokens.accessTokens.get(at) : undefined
    if (issued?.aud) record.aud = issued.aud
    const challenge = (error: string) => ({ 'www-authenticate': `${issued?.jkt ? 'DPoP' : 'Bearer'} error="${error}"` })
    if (state.alwaysUnauthorized || !issued || issued.revoked || issued.expiresAt <= Date.now() || (state.audience && issued.aud !== state.audience))
      return reply(401, { error: 'invalid_token' }, challenge('invalid_token'))
    if (issued.jkt) {
      if (scheme !== 'DPoP') return reply(401, { error: 'invalid_token' }, challenge('invalid_token'))
      try {
        await (state.requireNonce ? nonceVerifier : verifier).verify({
          proof: req.headers.dpop,
          method: req.method,
          url: served.url(req.url!.split('?')[0]!),
          accessToken: at,
          jkt: issued.jkt,
        })
      } catch (e) {
        if (!(e instanceof DPoPError)) throw e
        return reply(401, { error: e.error }, { ...challenge(e.error), 'dpop-nonce': nonces.current() })
      }
    } else if (scheme !== 'Bearer') return reply(401, { error: 'invalid_token' }, challenge('invalid_token'))
    reply(200, { ok: true, method: req.method, path: req.url, body: req.body })
  })
  return { ...served, requests, nonces, state }
}

/** The most an {@link endless} body writes: a bound for a client that reads everything. */
const ENDLESS_BOUND = 64 * 2 ** 20

/**
 * Answers 200 with a JSON body that never ends (`head`, then an endless string), as fast as the
 * client reads it, until the client hangs up (or {@link ENDLESS_BOUND}). `written.bytes` counts
 * what was handed to the socket so far.
 */
export function endless(res: ServerResponse, written: { bytes: number }, head = '{"access_token":"') {
  const chunk = Buffer.alloc(64 * 1024, 'a')
  res.writeHead(200, { 'content-type': 'application/json' })
  res.write(head)
  const pump = () => {
    while (!res.destroyed && written.bytes < ENDLESS_BOUND) {
      written.bytes += chunk.length
      if (!res.write(chunk)) return void res.once('drain', pump)
    }
    if (!res.destroyed) res.end('"}')
  }
  pump()
}
