// latchkey's whole flow against a second, independent authorization server: Glewlwyd 2.7.5
// (Debian's `glewlwyd`, a C OAuth 2 / OpenID Connect server), set up from nothing on loopback by
// scripts/glewlwyd.mjs: PKCE S256 required, DPoP with mandatory nonces that change every 5 uses,
// refresh tokens rotated on every use, RFC 8707 resource indicators, RFC 9207 `iss`. Two resource
// servers check its access tokens (HS256 JWTs, `aud`, `cnf.jkt`) and every DPoP proof. Where
// Glewlwyd departs from the RFCs, the tests pin what latchkey does.
import { randomBytes } from 'node:crypto'
import { jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDPoPVerifier, DPoPError } from '../demo/server/dpop.mjs'
import { startGlewlwyd } from '../scripts/glewlwyd.mjs'
import { createTokenManager, discover, isLatchkeyError, memoryKeyStore, type LatchkeyError, type TokenManager } from '../src/index.js'
import { json, serve, type Served } from './support/servers.js'

const REDIRECT = 'http://127.0.0.1/callback'
const TTL = 3

let glewlwyd: Awaited<ReturnType<typeof startGlewlwyd>>
const apis: (Served & { audiences: unknown[]; ok: number })[] = []

/** A resource server for Glewlwyd's tokens: the HS256 signature, its own `aud`, the DPoP binding and proof. */
async function resourceServer() {
  const verifier = createDPoPVerifier()
  const state = { audiences: [] as unknown[], ok: 0 }
  const served = await serve(async (req, res) => {
    const [scheme, token = ''] = (req.headers.authorization ?? '').split(' ')
    const deny = (error: string) => json(res, 401, { error }, { 'www-authenticate': `DPoP error="${error}"` })
    if (scheme != 'DPoP') return deny('invalid_token')
    let claims
    try {
      ;({ payload: claims } = await jwtVerify(token, new TextEncoder().encode(glewlwyd.accessTokenKey), { audience: served.origin }))
    } catch {
      return deny('invalid_token')
    }
    const jkt = (claims.cnf as { jkt?: string } | undefined)?.jkt
    try {
      await verifier.verify({ proof: req.headers.dpop, method: req.method!, url: served.url(req.url!), accessToken: token, jkt })
    } catch (e) {
      if (e instanceof DPoPError) return deny(e.error)
      throw e
    }
    state.ok++
    state.audiences.push(claims.aud)
    json(res, 200, { sub: claims.sub, aud: claims.aud, jkt })
  })
  return Object.assign(served, state)
}

beforeAll(async () => {
  apis.push(await resourceServer(), await resourceServer())
  // The tests fail, never skip, where Glewlwyd is not installed (.ci/run installs it).
  glewlwyd = await startGlewlwyd({ redirectUri: REDIRECT, resources: { api1: apis[0]!.origin, api2: apis[1]!.origin }, accessTokenTTL: TTL })
}, 30_000)
afterAll(async () => {
  await glewlwyd?.stop()
  for (const api of apis) await api.close()
})

/** Every token request latchkey makes, with the grant, the form and the answer. */
function recordingFetch() {
  const grants: { grant: string; form: URLSearchParams; status: number; body: Record<string, unknown> }[] = []
  const revocations: number[] = []
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const res = await globalThis.fetch(input, init)
    if (String(input) == glewlwyd.revocationEndpoint) revocations.push(res.status)
    if (String(input) == glewlwyd.tokenEndpoint) {
      const form = new URLSearchParams(String(init?.body))
      const text = await res.clone().text()
      grants.push({ grant: form.get('grant_type')!, form, status: res.status, body: text ? JSON.parse(text) : {} })
    }
    return res
  }
  return { fetch, grants, revocations }
}

async function signedIn(keyStore = memoryKeyStore()) {
  const { fetch, grants, revocations } = recordingFetch()
  const [api1, api2] = apis as [Served, Served]
  const tm = createTokenManager({
    ...(await discover(glewlwyd.issuer)),
    clientId: 'spa',
    resources: {
      [api1.origin]: { resource: api1.origin, scope: 'api1' },
      [api2.origin]: { resource: api2.origin, scope: 'api2' },
    },
    dpop: { keyStore },
    crossTab: false,
    fetch,
  })
  const events: string[] = []
  for (const e of ['session-expired', 'logout', 'warning'] as const) tm.on(e, (s) => events.push(e + ('code' in s ? ':' + s.code : '')))
  // Glewlwyd requires an OpenID Connect nonce with the openid scope.
  const url = await tm.authorizationUrl({ redirectUri: REDIRECT, scope: 'openid api1 api2', extraParameters: { nonce: randomBytes(16).toString('hex') } })
  const redirect = await glewlwyd.authorize(url)
  // RFC 9207: the response names its issuer (handleRedirect checks it against discovery's).
  expect(new URL(redirect).searchParams.get('iss')).toBe(glewlwyd.issuer)
  await tm.handleRedirect(redirect)
  return { tm, grants, revocations, events, api1, api2 }
}

const call = async (tm: TokenManager, api: Served, path = '/me') => {
  const res = await tm.fetch(api.url(path))
  return { status: res.status, body: (await res.json()) as { aud: unknown; jkt: string } }
}
const expiry = () => new Promise((r) => setTimeout(r, TTL * 1000 + 200))
const ok = (grants: { status: number; grant: string }[], grant: string) => grants.filter((g) => g.grant == grant && g.status == 200)

describe('Glewlwyd 2.7.5: the whole flow', () => {
  it('discovery: the RFC 8414 path is missing, the OpenID one is read', async () => {
    expect((await fetch(new URL('/.well-known/oauth-authorization-server/api/oidc', glewlwyd.origin))).status).toBe(404)
    expect(await discover(glewlwyd.issuer)).toMatchObject({
      issuer: glewlwyd.issuer,
      tokenEndpoint: glewlwyd.tokenEndpoint,
      authorizationEndpoint: glewlwyd.authorizationEndpoint,
      revocationEndpoint: glewlwyd.revocationEndpoint,
    })
  })

  it('sign-in with PKCE S256 and RFC 9207 iss; DPoP-bound tokens, each API its own aud; nonces answered', async () => {
    const { tm, grants, api1, api2 } = await signedIn()
    const jkt = await tm.dpopThumbprint()
    const first = await call(tm, api1)
    expect(first).toMatchObject({ status: 200, body: { aud: api1.origin, jkt } })
    const second = await call(tm, api2)
    expect(second).toMatchObject({ status: 200, body: { aud: api2.origin, jkt } })
    // The code exchange asked for api1's token; api2's came from a refresh_token grant with its resource.
    expect(ok(grants, 'authorization_code')).toHaveLength(1)
    expect(ok(grants, 'authorization_code')[0]!.form.get('resource')).toBe(api1.origin)
    expect(ok(grants, 'refresh_token').map((g) => g.form.get('resource'))).toEqual([api2.origin])
    expect(ok(grants, 'authorization_code')[0]!.body.token_type).toBe('DPoP')
    // The mandatory nonce: the first token request is challenged, answered once.
    expect(grants[0]).toMatchObject({ status: 400, body: { error: 'use_dpop_nonce' } })
    for (let i = 1; i < grants.length; i++) expect(grants[i - 1]!.status == 400 && grants[i]!.status == 400).toBe(false)
    tm.dispose()
  })

  it('after expiry: one refresh, rotated; a storm of 50 calls costs exactly one grant', async () => {
    const { tm, grants, api1 } = await signedIn()
    expect((await call(tm, api1)).status).toBe(200)
    await expiry()
    const before = ok(grants, 'refresh_token').length
    const storm = await Promise.all(Array.from({ length: 50 }, () => tm.fetch(api1.url('/storm'))))
    expect(storm.map((r) => r.status)).toEqual(Array(50).fill(200))
    const refreshes = ok(grants, 'refresh_token')
    expect(refreshes.length - before).toBe(1)
    // Rotation: the grant presented the login's refresh token and answered a new one.
    const login = ok(grants, 'authorization_code')[0]!.body.refresh_token
    expect(refreshes.at(-1)!.form.get('refresh_token')).toBe(login)
    expect(refreshes.at(-1)!.body.refresh_token).toEqual(expect.any(String))
    expect(refreshes.at(-1)!.body.refresh_token).not.toBe(login)
    tm.dispose()
  })

  it('logout: the session ends here; Glewlwyd refuses RFC 7009 revocation from a public client (401), a warning says so', async () => {
    const { tm, api1, events, revocations } = await signedIn()
    expect((await call(tm, api1)).status).toBe(200)
    await tm.logout()
    expect(revocations).toEqual([401])
    expect(events).toEqual(['logout', 'warning:revocation_failed'])
    expect(tm.status()).toBeUndefined()
    expect(((await tm.fetch(api1.url('/me')).catch((e) => e)) as LatchkeyError).code).toBe('no_session')
  })

  it('a refused refresh (a rotated-out refresh token: HTTP 400, empty body) ends the session: session_expired', async () => {
    const keyStore = memoryKeyStore()
    const { tm, grants, api1, events } = await signedIn(keyStore)
    // Another manager with the same key spends the login's refresh token (as a lost rotation response would).
    const login = ok(grants, 'authorization_code')[0]!.body
    const other = createTokenManager({ clientId: 'spa', tokenEndpoint: glewlwyd.tokenEndpoint, allowedOrigins: [api1.origin], dpop: { keyStore }, crossTab: false })
    await other.setTokens(login as never)
    await other.refresh()
    await expiry()
    const error = (await tm.fetch(api1.url('/me')).catch((e) => e)) as LatchkeyError
    expect(isLatchkeyError(error, 'session_expired')).toBe(true)
    const refused = grants.at(-1)!
    expect(refused).toMatchObject({ grant: 'refresh_token', status: 400, body: {} })
    expect(events).toEqual(['session-expired'])
    expect(tm.status()).toBeUndefined()
    expect(((await tm.fetch(api1.url('/me')).catch((e) => e)) as LatchkeyError).code).toBe('no_session')
    other.dispose()
  })
})

describe('where Glewlwyd departs from the RFCs', () => {
  it('a rotated refresh token is narrowed to the last resource it was used for: the first API\u2019s next grant is refused (invalid_target), an oauth_error that keeps the session', async () => {
    const { tm, grants, api1, api2, events } = await signedIn()
    expect((await call(tm, api1)).status).toBe(200)
    expect((await call(tm, api2)).status).toBe(200)
    await expiry()
    const error = (await tm.fetch(api1.url('/me')).catch((e) => e)) as LatchkeyError
    expect(error).toMatchObject({ code: 'oauth_error', error: 'invalid_target', status: 400 })
    expect(grants.at(-1)).toMatchObject({ grant: 'refresh_token', status: 400 })
    expect(grants.at(-1)!.form.get('resource')).toBe(api1.origin)
    // Not a refusal of the session: it stays, and the API whose resource the token kept still works.
    expect(events).toEqual([])
    expect((await call(tm, api2)).status).toBe(200)
    tm.dispose()
  })

  it('a wrong PKCE verifier is answered 403 invalid_code (RFC 7636 §4.6 says invalid_grant): an oauth_error, no session', async () => {
    const tm = createTokenManager({ ...(await discover(glewlwyd.issuer)), clientId: 'spa', allowedOrigins: [apis[0]!.origin], dpop: { keyStore: memoryKeyStore() }, crossTab: false })
    const url = await tm.authorizationUrl({ redirectUri: REDIRECT, scope: 'openid api1', extraParameters: { nonce: 'n' } })
    const code = new URL(await glewlwyd.authorize(url)).searchParams.get('code')!
    const error = (await tm.exchangeCode({ code, codeVerifier: randomBytes(32).toString('base64url'), redirectUri: REDIRECT }).catch((e) => e)) as LatchkeyError
    expect(error).toMatchObject({ code: 'oauth_error', error: 'invalid_code', status: 403 })
    expect(tm.status()).toBeUndefined()
    tm.dispose()
  })
})
