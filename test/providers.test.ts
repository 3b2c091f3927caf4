// Hosted providers, replayed on loopback: each test plays a provider's token endpoint as its
// documentation describes the requests it takes and the responses it gives (the page is cited),
// and runs latchkey against it with the options the README's "Providers" table lists. Also the
// `resources` entry that hosted servers need: `{ resource?, scope?, params? }` (Auth0's `audience`,
// Entra ID's scope-only APIs).
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createDPoPVerifier, createNonceSource, DPoPError } from '../demo/server/dpop.mjs'
import { createTokenManager, isLatchkeyError, memoryKeyStore, type LatchkeyError, type TokenManagerOptions } from '../src/index.js'
import { served } from './support/harness.js'
import { json } from './support/servers.js'

const REDIRECT = 'http://127.0.0.1/callback'
const token = (prefix: string) => `${prefix}-${randomBytes(16).toString('hex')}`

interface Replay {
  /** Token endpoint path. */
  path: string
  /** DPoP: bound tokens, and a nonce demanded first (Okta, Keycloak with nonces). */
  dpop?: 'nonce' | true
  /** The documented answer to a spent or expired refresh token. */
  refused: { status: number; body: unknown }
  /** Revocation endpoint path and the documented answer; none where the provider has none. */
  revoke?: { path: string; status: number }
  /** Each refresh answers a new refresh token. */
  rotate: boolean
}

/** A provider's token endpoint as documented: grants recorded, refresh tokens rotated or not, refusals as the provider words them. */
async function replay(spec: Replay) {
  const nonces = createNonceSource()
  const verifier = createDPoPVerifier({ nonces: spec.dpop == 'nonce' ? nonces : undefined })
  const live = new Set<string>()
  const forms: URLSearchParams[] = []
  const revocations: string[] = []
  const server = await served(async (req, res) => {
    const form = new URLSearchParams(req.body)
    if (spec.revoke && req.url == spec.revoke.path) {
      revocations.push(form.get('token')!)
      live.delete(form.get('token')!)
      return void res.writeHead(spec.revoke.status).end()
    }
    if (req.url != spec.path) return json(res, 404, {})
    let jkt: string | undefined
    if (spec.dpop) {
      try {
        ;({ jkt } = await verifier.verify({ proof: req.headers.dpop, method: 'POST', url: server.url(spec.path) }))
      } catch (e) {
        if (!(e instanceof DPoPError)) throw e
        return json(res, 400, { error: e.error, error_description: e.description }, { 'dpop-nonce': nonces.current() })
      }
    }
    forms.push(form)
    const presented = form.get('refresh_token')
    if (form.get('grant_type') == 'refresh_token') {
      if (!live.has(presented!)) return json(res, spec.refused.status, spec.refused.body)
      if (spec.rotate) live.delete(presented!)
    }
    const rt = form.get('grant_type') == 'authorization_code' || spec.rotate ? token('rt') : undefined
    if (rt) live.add(rt)
    json(res, 200, {
      access_token: token('at'),
      token_type: jkt ? 'DPoP' : 'Bearer',
      expires_in: 3600,
      scope: form.get('scope') ?? 'openid',
      ...(rt && { refresh_token: rt }),
    })
  })
  const manager = (options: Partial<TokenManagerOptions>) => {
    const tm = createTokenManager({
      clientId: 'spa',
      tokenEndpoint: server.url(spec.path),
      ...(spec.revoke && { revocationEndpoint: server.url(spec.revoke.path) }),
      dpop: spec.dpop ? { keyStore: memoryKeyStore() } : false,
      crossTab: false,
      ...options,
    } as TokenManagerOptions)
    const events: string[] = []
    tm.on('session-expired', () => events.push('session-expired'))
    tm.on('warning', ({ code }) => events.push(code))
    return Object.assign(tm, { events })
  }
  /** Spends every refresh token: the next refresh is refused as the provider words it. */
  const expireAll = () => live.clear()
  return { server, forms, revocations, manager, expireAll }
}

/** Sign-in through latchkey: the authorization URL, then the code exchange (the user's part is not replayed). */
async function signIn(tm: ReturnType<Awaited<ReturnType<typeof replay>>['manager']>, scope: string, extraParameters?: Record<string, string>) {
  const url = new URL(await tm.authorizationUrl({ authorizationEndpoint: 'https://as.example/authorize', redirectUri: REDIRECT, scope, ...(extraParameters && { extraParameters }) }))
  const state = url.searchParams.get('state')!
  await tm.handleRedirect(`${REDIRECT}?code=${token('code')}&state=${state}`)
  return url.searchParams
}

const refusedEndsSession = async (tm: ReturnType<Awaited<ReturnType<typeof replay>>['manager']>, expireAll: () => void) => {
  expireAll()
  const error = (await tm.refresh().catch((e) => e)) as LatchkeyError
  expect(isLatchkeyError(error, 'session_expired')).toBe(true)
  expect(tm.events).toContain('session-expired')
  expect(tm.status()).toBeUndefined()
}

describe('the resources entry: { resource?, scope?, params? }', () => {
  it('refuses an entry with none of the three, names it', () => {
    expect(() => createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', resources: { 'https://api.example': {} } })).toThrow(
      /^resources\[https:\/\/api.example\]: invalid/,
    )
  })
})

describe('Auth0', () => {
  // https://auth0.com/docs/secure/tokens/refresh-tokens/refresh-token-rotation (rotation, reuse detection),
  // https://support.auth0.com/center/s/article/troubleshoot-refresh-token-unknown-or-invalid-before-expiry-403-unknown-or-invalid-refresh-token
  // (403 invalid_grant "Unknown or invalid refresh token."), https://auth0.com/docs/secure/sender-constraining/demonstrating-proof-of-possession-dpop
  // (DPoP), https://auth0.com/docs/api/authentication#revoke-refresh-token (POST /oauth/revoke, 200).
  const spec: Replay = {
    path: '/oauth/token',
    dpop: true,
    rotate: true,
    refused: { status: 403, body: { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' } },
    revoke: { path: '/oauth/revoke', status: 200 },
  }

  it('an API named by audience: the login asks with it, each API\u2019s refresh grant sends its own audience and scope; 403 invalid_grant ends the session', async () => {
    const { manager, forms, revocations, expireAll } = await replay(spec)
    const tm = manager({
      resources: {
        'https://api.example': { params: { audience: 'https://api.example' } },
        'https://billing.example': { params: { audience: 'https://billing.example' }, scope: 'read:invoices' },
      },
    })
    const q = await signIn(tm, 'openid offline_access')
    // Auth0 names the API with `audience`, not RFC 8707's `resource`.
    expect(q.get('audience')).toBe('https://api.example')
    expect(q.getAll('resource')).toEqual([])
    expect(tm.status()?.tokenType).toBe('DPoP')
    await tm.getAccessToken('https://billing.example')
    const grant = forms.at(-1)!
    expect([grant.get('grant_type'), grant.get('audience'), grant.get('scope'), grant.get('resource')]).toEqual(['refresh_token', 'https://billing.example', 'read:invoices', null])
    await tm.logout()
    expect(revocations).toHaveLength(1)
    const again = manager({ resources: { 'https://api.example': { params: { audience: 'https://api.example' } } } })
    await signIn(again, 'openid offline_access')
    await refusedEndsSession(again, expireAll)
  })
})

describe('Microsoft Entra ID', () => {
  // https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow (SPA redirect URIs,
  // the refresh_token grant with `scope`, rotated refresh tokens for SPAs; invalid_grant on an expired one),
  // https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc (an API named by its scope, `.default`).
  const spec: Replay = {
    path: '/tenant/oauth2/v2.0/token',
    rotate: true,
    refused: {
      status: 400,
      body: { error: 'invalid_grant', error_description: 'AADSTS700084: The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended.', error_codes: [700084] },
    },
  }

  it('APIs named by scope only: each grant asks for its .default scope, never a resource; Bearer tokens; invalid_grant ends the session', async () => {
    const { manager, forms, expireAll } = await replay(spec)
    const tm = manager({
      resources: {
        'https://graph.microsoft.com': { scope: 'https://graph.microsoft.com/.default' },
        'https://api.contoso.example': { scope: 'api://contoso-api/.default' },
      },
    })
    const q = await signIn(tm, 'openid offline_access https://graph.microsoft.com/.default')
    expect(q.getAll('resource')).toEqual([])
    expect(forms.at(-1)!.get('resource')).toBeNull()
    await tm.getAccessToken('https://api.contoso.example')
    const grant = forms.at(-1)!
    expect([grant.get('grant_type'), grant.get('scope'), grant.get('resource')]).toEqual(['refresh_token', 'api://contoso-api/.default', null])
    expect(tm.status('https://api.contoso.example')).toMatchObject({ tokenType: 'Bearer', scope: 'api://contoso-api/.default' })
    await refusedEndsSession(tm, expireAll)
  })
})

describe('Okta', () => {
  // https://developer.okta.com/docs/guides/dpop/main/ (DPoP for public clients: a first token request
  // answered 400 use_dpop_nonce with a DPoP-Nonce header), https://developer.okta.com/docs/guides/refresh-tokens/main/
  // (rotation; a reused refresh token is invalid_grant), https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/tag/OrgAS/#tag/OrgAS/operation/revoke (200).
  const spec: Replay = {
    path: '/oauth2/default/v1/token',
    dpop: 'nonce',
    rotate: true,
    refused: { status: 400, body: { error: 'invalid_grant', error_description: 'The refresh token is invalid or expired.' } },
    revoke: { path: '/oauth2/default/v1/revoke', status: 200 },
  }

  it('DPoP with a nonce, rotation, revocation at logout, invalid_grant ends the session', async () => {
    const { manager, forms, revocations, expireAll } = await replay(spec)
    const tm = manager({ allowedOrigins: ['https://api.example'] })
    await signIn(tm, 'openid offline_access')
    expect(tm.status()?.tokenType).toBe('DPoP')
    const first = forms.at(-1)!
    await tm.refresh()
    await tm.refresh()
    const presented = forms.filter((f) => f.get('grant_type') == 'refresh_token').map((f) => f.get('refresh_token'))
    expect(new Set(presented).size).toBe(2)
    expect(first.get('grant_type')).toBe('authorization_code')
    await tm.logout()
    expect(revocations).toHaveLength(1)
    const again = manager({ allowedOrigins: ['https://api.example'] })
    await signIn(again, 'openid offline_access')
    await refusedEndsSession(again, expireAll)
  })
})

describe('Keycloak', () => {
  // https://www.keycloak.org/securing-apps/dpop (DPoP for public clients), https://www.keycloak.org/securing-apps/oidc-layers
  // (endpoints under /realms/{realm}/protocol/openid-connect: token, revoke; "Token is not active" for an expired refresh token).
  const spec: Replay = {
    path: '/realms/demo/protocol/openid-connect/token',
    dpop: true,
    rotate: true,
    refused: { status: 400, body: { error: 'invalid_grant', error_description: 'Token is not active' } },
    revoke: { path: '/realms/demo/protocol/openid-connect/revoke', status: 200 },
  }

  it('DPoP-bound tokens, rotation ("Revoke Refresh Token" on), RFC 8707 resource sent, revocation, invalid_grant ends the session', async () => {
    const { manager, forms, revocations, expireAll } = await replay(spec)
    const tm = manager({ resources: { 'https://api.example': 'https://api.example' } })
    const q = await signIn(tm, 'openid')
    expect(q.getAll('resource')).toEqual(['https://api.example'])
    expect(forms.at(-1)!.get('resource')).toBe('https://api.example')
    expect(tm.status()?.tokenType).toBe('DPoP')
    await tm.logout()
    expect(revocations).toHaveLength(1)
    const again = manager({ resources: { 'https://api.example': 'https://api.example' } })
    await signIn(again, 'openid')
    await refusedEndsSession(again, expireAll)
  })
})

describe('Amazon Cognito', () => {
  // https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html (POST /oauth2/token, 400 invalid_grant),
  // https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-refresh-token.html
  // (refresh token rotation is an app client option), https://docs.aws.amazon.com/cognito/latest/developerguide/revocation-endpoint.html.
  const spec: Replay = {
    path: '/oauth2/token',
    rotate: false,
    refused: { status: 400, body: { error: 'invalid_grant' } },
    revoke: { path: '/oauth2/revoke', status: 200 },
  }

  it('Bearer tokens, the refresh token kept when none is rotated, revocation, invalid_grant ends the session', async () => {
    const { manager, forms, revocations, expireAll } = await replay(spec)
    const tm = manager({ allowedOrigins: ['https://api.example'] })
    await signIn(tm, 'openid')
    const login = forms.length
    await tm.refresh()
    await tm.refresh()
    // Without rotation the same refresh token serves every grant.
    const presented = forms.slice(login).map((f) => f.get('refresh_token'))
    expect(new Set(presented).size).toBe(1)
    expect(tm.status()?.tokenType).toBe('Bearer')
    await tm.logout()
    expect(revocations).toEqual([presented[0]])
    const again = manager({ allowedOrigins: ['https://api.example'] })
    await signIn(again, 'openid')
    await refusedEndsSession(again, expireAll)
  })
})

describe('Google', () => {
  // https://developers.google.com/identity/protocols/oauth2/resources/dpop-adoption: Google's token endpoint
  // wants a client_secret, and a keyless SPA cannot use DPoP there; it advises a backend-for-frontend that
  // holds the secret and the refresh token. latchkey's `refresh` option is that pattern's browser half.
  it('through a backend-for-frontend: latchkey refreshes at the app\u2019s own endpoint; a 401 there ends the session', async () => {
    let refused = false
    const bff = await served((req, res) => {
      if (req.url != '/auth/refresh') return json(res, 404, {})
      if (refused) return json(res, 401, { error: 'unauthorized' })
      json(res, 200, { access_token: token('ya29'), token_type: 'Bearer', expires_in: 3599, scope: 'openid https://www.googleapis.com/auth/calendar.readonly' })
    })
    const tm = createTokenManager({ clientId: 'spa', refresh: { url: bff.url('/auth/refresh'), credentials: 'include' }, allowedOrigins: ['https://www.googleapis.com'], dpop: false, crossTab: false })
    const events: string[] = []
    tm.on('session-expired', () => events.push('session-expired'))
    expect(await tm.restore()).toBe(true)
    expect(tm.status()?.tokenType).toBe('Bearer')
    refused = true
    expect(((await tm.refresh().catch((e) => e)) as LatchkeyError).code).toBe('session_expired')
    expect(events).toEqual(['session-expired'])
  })
})
