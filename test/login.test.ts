import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createTokenManager, isLatchkeyError, memoryKeyStore } from '../src/index.js'
import { setup } from './support/harness.js'

async function signInSetup() {
  const { as, api } = await setup({ dpop: true })
  const tm = createTokenManager({
    clientId: 'spa',
    tokenEndpoint: as.tokenEndpoint,
    allowedOrigins: [api.origin],
    dpop: { keyStore: memoryKeyStore() },
    crossTab: false,
  })
  return { as, api, tm }
}

const params = { authorizationEndpoint: 'https://as.example/authorize?tenant=a', redirectUri: 'https://app.example/cb' }

describe('authorization code + PKCE + dpop_jkt', () => {
  it('builds the request: S256 challenge, state, dpop_jkt, resource indicators, extra parameters', async () => {
    const { tm } = await signInSetup()
    const url = new URL(
      await tm.authorizationUrl({ ...params, scope: 'openid api', resource: ['https://api.example', 'https://b.example'], extraParameters: { prompt: 'login' } }),
    )
    const q = url.searchParams
    expect(url.origin + url.pathname).toBe('https://as.example/authorize')
    expect(q.get('tenant')).toBe('a')
    expect(q.get('response_type')).toBe('code')
    expect(q.get('client_id')).toBe('spa')
    expect(q.get('redirect_uri')).toBe(params.redirectUri)
    expect(q.get('scope')).toBe('openid api')
    expect(q.get('prompt')).toBe('login')
    expect(q.getAll('resource')).toEqual(['https://api.example', 'https://b.example'])
    expect(q.get('code_challenge_method')).toBe('S256')
    expect(q.get('code_challenge')).toMatch(/^[\w-]{43}$/)
    expect(q.get('state')).toMatch(/^[\w-]{22,}$/)
    expect(q.get('dpop_jkt')).toBe(await tm.dpopThumbprint())
    // two requests never share state or challenge
    const other = new URL(await tm.authorizationUrl(params)).searchParams
    expect(other.get('state')).not.toBe(q.get('state'))
    expect(other.get('code_challenge')).not.toBe(q.get('code_challenge'))
  })

  it('refuses an authorization endpoint over plain http', async () => {
    const { tm } = await signInSetup()
    await expect(tm.authorizationUrl({ ...params, authorizationEndpoint: 'http://as.example/authorize' })).rejects.toThrow(TypeError)
  })

  it('handleRedirect exchanges the code with a DPoP proof; the tokens stay in memory and work at the API', async () => {
    const { as, api, tm } = await signInSetup()
    const q = new URL(await tm.authorizationUrl(params)).searchParams
    await tm.handleRedirect(`${params.redirectUri}?code=${as.code()}&state=${q.get('state')}`)
    expect(as.counts.code).toBe(1)
    expect(as.counts.proofs).toHaveLength(1)
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(tm.status()?.tokenType).toBe('DPoP')
  })

  it('the verifier sent is the one whose S256 hash was the challenge', async () => {
    const { as } = await signInSetup()
    let form: URLSearchParams | undefined
    const tm = createTokenManager({
      clientId: 'spa',
      tokenEndpoint: as.tokenEndpoint,
      allowedOrigins: [],
      dpop: { keyStore: memoryKeyStore() },
      crossTab: false,
      fetch: async (input, init) => {
        form = new URLSearchParams(String(init?.body))
        return fetch(input, init)
      },
    })
    const q = new URL(await tm.authorizationUrl(params)).searchParams
    await tm.handleRedirect(`${params.redirectUri}?code=${as.code()}&state=${q.get('state')}`)
    const verifier = form!.get('code_verifier')!
    expect(verifier).toMatch(/^[\w-]{43,128}$/)
    expect(createHash('sha256').update(verifier).digest('base64url')).toBe(q.get('code_challenge'))
    expect(form!.get('redirect_uri')).toBe(params.redirectUri)
    expect(form!.get('grant_type')).toBe('authorization_code')
  })

  it('a state is used once; an unknown state is refused without a token request', async () => {
    const { as, tm } = await signInSetup()
    const q = new URL(await tm.authorizationUrl(params)).searchParams
    await tm.handleRedirect(`${params.redirectUri}?code=${as.code()}&state=${q.get('state')}`)
    const replay = await tm.handleRedirect(`${params.redirectUri}?code=${as.code()}&state=${q.get('state')}`).catch((e) => e)
    expect(isLatchkeyError(replay, 'login_error')).toBe(true)
    const forged = await tm.handleRedirect(`${params.redirectUri}?code=${as.code()}&state=forged`).catch((e) => e)
    expect(isLatchkeyError(forged, 'login_error')).toBe(true)
    expect(as.counts.code).toBe(1)
  })

  it('an authorization error response becomes a typed LoginError with error and description', async () => {
    const { as, tm } = await signInSetup()
    const q = new URL(await tm.authorizationUrl(params)).searchParams
    const error = await tm
      .handleRedirect(`${params.redirectUri}?error=access_denied&error_description=User+said+no&state=${q.get('state')}`)
      .catch((e) => e)
    expect(isLatchkeyError(error, 'login_error')).toBe(true)
    expect(error).toMatchObject({ error: 'access_denied', description: 'User said no' })
    expect(tm.status()).toBeUndefined()
    expect(as.counts.code).toBe(0)
  })

  it('a rejected code gives a typed oauth_error and installs nothing', async () => {
    const { tm } = await signInSetup()
    const q = new URL(await tm.authorizationUrl(params)).searchParams
    const error = await tm.handleRedirect(`${params.redirectUri}?code=nope&state=${q.get('state')}`).catch((e) => e)
    expect(isLatchkeyError(error, 'oauth_error')).toBe(true)
    expect(error.error).toBe('invalid_grant')
    expect(tm.status()).toBeUndefined()
  })
})
