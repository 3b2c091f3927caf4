// discover(): RFC 8414 / OpenID Connect Discovery against real loopback servers, and against the
// demo's oidc-provider.
import type { ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { startAuthServer } from '../demo/server/as.mjs'
import { createTokenManager, discover, isLatchkeyError, type AuthorizationServer } from '../src/index.js'
import { cleanups, served } from './support/harness.js'
import { endless, json } from './support/servers.js'

const RFC8414 = '/.well-known/oauth-authorization-server'
const OPENID = '/.well-known/openid-configuration'

/** Metadata naming `issuer`'s endpoints (under the server's own origin unless overridden). */
const metadata = (issuer: string, extra: Record<string, unknown> = {}) => ({
  issuer,
  token_endpoint: issuer + '/token',
  authorization_endpoint: issuer + '/authorize',
  revocation_endpoint: issuer + '/revoke',
  ...extra,
})

/**
 * A loopback authorization server that answers `documents[path]` (a function of its origin) and
 * 404 elsewhere; `paths` lists every path requested, in order.
 */
async function metadataServer(documents: Record<string, (origin: string) => unknown>) {
  const paths: string[] = []
  const s = await served((req, res) => {
    paths.push(req.url!)
    const document = documents[req.url!]
    if (document) json(res, 200, document(s.origin))
    else json(res, 404, { error: 'not_found' })
  })
  return { ...s, paths }
}

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise
  } catch (e) {
    return e as Error & { code?: string }
  }
  throw new Error('expected a rejection')
}

describe('discover: where it looks', () => {
  it('reads RFC 8414 metadata at the issuer root and maps it to token manager options', async () => {
    const as = await metadataServer({ [RFC8414]: (origin) => metadata(origin) })
    const found = await discover(as.origin)
    expect(found).toEqual({
      issuer: as.origin,
      tokenEndpoint: as.origin + '/token',
      authorizationEndpoint: as.origin + '/authorize',
      revocationEndpoint: as.origin + '/revoke',
    })
    expect(as.paths).toEqual([RFC8414])
  })

  it('inserts the well-known suffix before the issuer path (RFC 8414 §3.1)', async () => {
    const as = await metadataServer({ [RFC8414 + '/tenant/a']: (origin) => metadata(origin + '/tenant/a') })
    const found = await discover(as.origin + '/tenant/a')
    expect(found.issuer).toBe(as.origin + '/tenant/a')
    expect(found.tokenEndpoint).toBe(as.origin + '/tenant/a/token')
    expect(as.paths).toEqual([RFC8414 + '/tenant/a'])
  })

  it('falls back to OpenID Connect Discovery, appended to the issuer path', async () => {
    const root = await metadataServer({ [OPENID]: (origin) => metadata(origin) })
    expect((await discover(root.origin)).tokenEndpoint).toBe(root.origin + '/token')
    expect(root.paths).toEqual([RFC8414, OPENID])

    const tenant = await metadataServer({ ['/tenant/a' + OPENID]: (origin) => metadata(origin + '/tenant/a') })
    expect((await discover(tenant.origin + '/tenant/a')).issuer).toBe(tenant.origin + '/tenant/a')
    expect(tenant.paths).toEqual([RFC8414 + '/tenant/a', '/tenant/a' + OPENID])
  })

  it('falls back when the first location fails without a response (as a browser reports a 404 without CORS)', async () => {
    const s = await served((req, res) => {
      if (req.url === RFC8414) return void req.socket.destroy()
      json(res, 200, metadata(s.origin))
    })
    expect((await discover(s.origin)).tokenEndpoint).toBe(s.origin + '/token')
  })

  it('an issuer with a trailing slash keeps it; the well-known locations drop it', async () => {
    const as = await metadataServer({ [RFC8414 + '/tenant']: (origin) => metadata(origin + '/tenant/') })
    expect((await discover(as.origin + '/tenant/')).issuer).toBe(as.origin + '/tenant/')
    expect(as.paths).toEqual([RFC8414 + '/tenant'])
  })

  it('sets issParameterRequired only when the metadata says the server always sends iss', async () => {
    const on = await metadataServer({ [RFC8414]: (origin) => metadata(origin, { authorization_response_iss_parameter_supported: true }) })
    expect((await discover(on.origin)).issParameterRequired).toBe(true)
    const off = await metadataServer({ [RFC8414]: (origin) => metadata(origin, { authorization_response_iss_parameter_supported: false }) })
    expect(await discover(off.origin)).not.toHaveProperty('issParameterRequired')
  })

  it('leaves out the endpoints the server does not have (no undefined keys to spread)', async () => {
    const as = await metadataServer({ [RFC8414]: (origin) => ({ issuer: origin, token_endpoint: origin + '/token' }) })
    expect(Object.keys(await discover(as.origin)).sort()).toEqual(['issuer', 'tokenEndpoint'])
  })

  it('sends the requests through options.fetch, refusing redirects', async () => {
    const as = await metadataServer({ [RFC8414]: (origin) => metadata(origin) })
    const seen: RequestInit[] = []
    await discover(as.origin, { fetch: (input, init) => (seen.push(init!), fetch(input, init)) })
    expect(seen).toHaveLength(1)
    expect(seen[0]!.redirect).toBe('error')
  })
})

describe('discover: what it refuses', () => {
  it('an issuer that differs from the metadata in any character (RFC 8414 §3.3)', async () => {
    for (const other of [(o: string) => o + '/', (o: string) => o.replace('127.0.0.1', 'localhost'), () => undefined]) {
      const as = await metadataServer({ [RFC8414]: (origin) => metadata(origin, { issuer: other(origin) }) })
      const e = await rejection(discover(as.origin))
      expect(isLatchkeyError(e, 'invalid_response')).toBe(true)
      expect(e.message).toBe(`GET ${as.origin}${RFC8414}: issuer does not match`)
    }
  })

  it('plain http off loopback, for the issuer (a TypeError, nothing sent) and for every endpoint', async () => {
    await expect(discover('http://as.example')).rejects.toThrow(new TypeError('issuer: not https or loopback, or has a query or fragment'))
    for (const member of ['token_endpoint', 'authorization_endpoint', 'revocation_endpoint']) {
      const as = await metadataServer({ [RFC8414]: (origin) => metadata(origin, { [member]: 'http://as.example/x' }) })
      const e = await rejection(discover(as.origin))
      expect(isLatchkeyError(e, 'invalid_response')).toBe(true)
      expect(e.message).toBe(`GET ${as.origin}${RFC8414}: invalid ${member}`)
    }
  })

  it('bad arguments: a TypeError naming the parameter', async () => {
    for (const issuer of ['as.example', 'https://as.example?x=1', 'https://as.example/#', 'ftp://as.example', 42])
      await expect(discover(issuer as string)).rejects.toThrow(/^issuer: /)
    await expect(discover('https://as.example', { timeoutSeconds: 0 })).rejects.toThrow(new TypeError('options.timeoutSeconds: invalid'))
    await expect(discover('https://as.example', { fetch: 'x' as never })).rejects.toThrow(new TypeError('options.fetch: invalid'))
  })

  it('redirects: not followed, a NetworkError, and the target never asked', async () => {
    const target = await metadataServer({ [RFC8414]: (origin) => metadata(origin) })
    const as = await served((req, res) => void res.writeHead(302, { location: target.origin + req.url }).end())
    const e = await rejection(discover(as.origin))
    expect(isLatchkeyError(e, 'network_error')).toBe(true)
    expect(e.message).toBe(`GET ${as.origin}${OPENID} failed`)
    expect(target.paths).toEqual([])
  })

  it('malformed JSON: invalid_response whose message quotes nothing of the body', async () => {
    const body = '{"issuer": "secret-body-text-4711'
    const as = await served((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(body))
    const e = await rejection(discover(as.origin))
    expect(isLatchkeyError(e, 'invalid_response')).toBe(true)
    expect(e.message).toBe(`GET ${as.origin}${RFC8414}: not a JSON object`)
    expect(e.message + String(e.cause) + JSON.stringify(e)).not.toMatch(/secret|4711|JSON at|Unterminated/)
  })

  it('a body that is JSON but not an object', async () => {
    for (const body of ['[]', 'null', '"x"']) {
      const as = await served((_req, res) => void res.writeHead(200).end(body))
      expect((await rejection(discover(as.origin))).message).toMatch(/not a JSON object$/)
    }
  })

  it('a missing, relative or non-string token_endpoint, and non-string optional members', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ token_endpoint: undefined }, 'token_endpoint'],
      [{ token_endpoint: '/token' }, 'token_endpoint'],
      [{ token_endpoint: ['https://as.example/token'] }, 'token_endpoint'],
      [{ revocation_endpoint: 7 }, 'revocation_endpoint'],
      [{ authorization_endpoint: null }, 'authorization_endpoint'],
      [{ authorization_response_iss_parameter_supported: 'true' }, 'authorization_response_iss_parameter_supported'],
    ]
    for (const [extra, member] of cases) {
      const as = await metadataServer({ [RFC8414]: (origin) => metadata(origin, extra) })
      const e = await rejection(discover(as.origin))
      expect(isLatchkeyError(e, 'invalid_response'), member).toBe(true)
      expect(e.message).toBe(`GET ${as.origin}${RFC8414}: invalid ${member}`)
    }
  })

  it('an HTTP error at both locations: invalid_response with the status of the last', async () => {
    const as = await served((_req, res) => void res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>oops</h1>'))
    const e = await rejection(discover(as.origin))
    expect(isLatchkeyError(e, 'invalid_response')).toBe(true)
    expect(e.message).toBe(`GET ${as.origin}${OPENID}: HTTP 500`)
    expect((e as { status?: number }).status).toBe(500)
  })

  it('no server: a NetworkError', async () => {
    const as = await served(() => {})
    await as.close()
    const e = await rejection(discover(as.origin))
    expect(isLatchkeyError(e, 'network_error')).toBe(true)
  })

  it('a server that never answers: a TimeoutError after timeoutSeconds', async () => {
    const held: ServerResponse[] = []
    const as = await served((_req, res) => void held.push(res))
    cleanups.push(() => held.forEach((res) => res.destroy()))
    const started = performance.now()
    const e = await rejection(discover(as.origin, { timeoutSeconds: 0.3 }))
    expect(isLatchkeyError(e, 'timeout')).toBe(true)
    expect(e.message).toBe(`GET ${as.origin}${RFC8414} timed out`)
    expect(performance.now() - started).toBeLessThan(3000)
  })

  it('a 2 MB metadata document, valid JSON: invalid_response, not buffered', async () => {
    const as = await metadataServer({ [RFC8414]: (origin) => metadata(origin, { padding: 'p'.repeat(2_000_000) }) })
    const e = await rejection(discover(as.origin))
    expect(isLatchkeyError(e, 'invalid_response')).toBe(true)
    expect(e.message).toBe(`GET ${as.origin}${RFC8414}: not a JSON object`)
  })

  it('an endless metadata document: reading stops at 1 MiB, the rest is never sent', async () => {
    const written = { bytes: 0 }
    const as = await served((_req, res) => endless(res, written, '{"issuer":"'))
    const started = performance.now()
    const e = await rejection(discover(as.origin, { timeoutSeconds: 5 }))
    expect(isLatchkeyError(e, 'invalid_response')).toBe(true)
    expect(performance.now() - started).toBeLessThan(2000)
    expect(written.bytes).toBeLessThan(16 * 2 ** 20)
  })

  it('a body that stalls after the headers: a TimeoutError too', async () => {
    const as = await served((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).write('{"issuer":'))
    const e = await rejection(discover(as.origin, { timeoutSeconds: 0.3 }))
    expect(isLatchkeyError(e, 'timeout')).toBe(true)
  })
})

describe('discover against oidc-provider (the demo authorization server)', () => {
  it('finds its token, authorization and revocation endpoints, and spreads into createTokenManager', async () => {
    const server = await startAuthServer({ resource: 'http://127.0.0.1:9/' })
    cleanups.push(server.stop)
    const found: AuthorizationServer = await discover(server.issuer)
    expect(found).toEqual({
      issuer: server.issuer,
      tokenEndpoint: server.issuer + '/token',
      authorizationEndpoint: server.issuer + '/auth',
      revocationEndpoint: server.issuer + '/token/revocation',
      issParameterRequired: true,
    })
    expect(found.tokenEndpoint).toBe(server.provider.urlFor('token'))
    expect(found.revocationEndpoint).toBe(server.provider.urlFor('revocation'))
    const tm = createTokenManager({ ...found, clientId: 'spa', allowedOrigins: ['http://127.0.0.1:9'], crossTab: false })
    expect(await tm.restore()).toBe(false)
  })
})
