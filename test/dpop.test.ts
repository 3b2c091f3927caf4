import { randomBytes } from 'node:crypto'
import { calculateJwkThumbprint } from 'jose'
import { describe, expect, it, vi } from 'vitest'
import {
  createTokenManager,
  DPoPProofError,
  isLatchkeyError,
  LatchkeyError,
  OAuthError,
  ResponseError,
  type TokenManager,
  type TokenManagerEvents,
  type TokenManagerOptions,
} from '../src/index.js'
import { json, serve, startApi, startTokenServer, type TokenServer } from './support/servers.js'
import { cleanups, manager, setup } from './support/harness.js'
import { ath, attemptsByPath, checkProof, decodeProof, expectNoSecret, login, payloadOf, recordingKeyStore, startRecorder } from './support/dpop-helpers.js'

const REDIRECT = 'http://127.0.0.1/cb'

const servers = (asOptions: Parameters<typeof startTokenServer>[0] = {}, apiOptions: Parameters<typeof startApi>[1] = {}) =>
  setup({ dpop: true, ...asOptions }, apiOptions)

const secrets = (as: TokenServer) => [...as.accessTokens.keys(), ...as.refreshTokens.keys(), ...as.rotatedOut]

/** Counts the ECDSA key generations from now on (the spy passes every call through). */
function countKeyGenerations() {
  const spy = vi.spyOn(crypto.subtle, 'generateKey')
  return () => spy.mock.calls.filter(([alg]) => (alg as Algorithm).name === 'ECDSA').length
}

describe('the DPoP key', () => {
  it('is ES256 on P-256 with a non-extractable private key that cannot be exported, and it signs the proofs', async () => {
    const { as, api } = await servers()
    const store = recordingKeyStore()
    const tm = manager(as, [api.origin], { dpop: { keyStore: store } })
    await login(tm, as)

    const stored = store.dpopSets()
    expect(stored).toHaveLength(1)
    const { privateKey, publicKey } = stored[0]!.value
    expect(privateKey.type).toBe('private')
    expect(privateKey.extractable).toBe(false)
    expect(privateKey.algorithm).toEqual({ name: 'ECDSA', namedCurve: 'P-256' })
    expect(privateKey.usages).toEqual(['sign'])
    expect(publicKey.algorithm).toEqual({ name: 'ECDSA', namedCurve: 'P-256' })
    await expect(crypto.subtle.exportKey('pkcs8', privateKey)).rejects.toThrow()
    await expect(crypto.subtle.exportKey('jwk', privateKey)).rejects.toThrow()
    // The store holds the CryptoKey objects themselves, never exported material.
    expect(store.sets.every((s) => !(typeof s.value == 'string'))).toBe(true)

    // The stored pair is the key that signs: its public half verifies the proof the server received.
    const jkt = await tm.dpopThumbprint()
    expect(await calculateJwkThumbprint(await crypto.subtle.exportKey('jwk', publicKey))).toBe(jkt)
    const [h, p, sig] = as.counts.proofs[0]!.split('.')
    const ok = await crypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' },
      publicKey,
      Buffer.from(sig!, 'base64url'),
      new TextEncoder().encode(h + '.' + p),
    )
    expect(ok).toBe(true)
  })

  it('with the default dpop: true in Node (no IndexedDB) keeps the key in memory and binds the tokens', async () => {
    const { as, api } = await servers()
    const tm = manager(as, [api.origin])
    await login(tm, as)
    const res = await tm.fetch(api.url('/me'))
    expect(res.status).toBe(200)
    expect(api.requests[0]!.authorization).toMatch(/^DPoP at-/)
    const jkt = await tm.dpopThumbprint()
    expect([...as.accessTokens.values()].map((t) => t.jkt)).toEqual([jkt])
  })

  it('one key per client: 50 concurrent first uses on a fresh manager create exactly one key', async () => {
    const { as, api } = await servers()
    const generated = countKeyGenerations()
    const store = recordingKeyStore()
    const tm = manager(as, [api.origin], { dpop: { keyStore: store } })
    const codes = Array.from({ length: 25 }, () => as.code())
    const results = await Promise.all([
      ...Array.from({ length: 25 }, () => tm.dpopThumbprint()),
      ...codes.map((code) => tm.exchangeCode({ code, codeVerifier: 'x', redirectUri: REDIRECT }).then(() => 'exchanged')),
    ])
    const jkt = results[0]!
    expect(new Set(results.slice(0, 25))).toEqual(new Set([jkt]))
    expect(results.slice(25)).toEqual(Array(25).fill('exchanged'))
    expect(generated()).toBe(1)
    expect(store.dpopSets()).toHaveLength(1)

    // Every proof the token server received was made with that one key, and every token is bound to it.
    expect(as.counts.proofs).toHaveLength(25)
    const jkts = await Promise.all(as.counts.proofs.map(async (p) => calculateJwkThumbprint((await decodeProof(p)).header.jwk)))
    expect(new Set(jkts)).toEqual(new Set([jkt]))
    expect(new Set([...as.refreshTokens.values()].map((t) => t.jkt))).toEqual(new Set([jkt]))

    // Another client (another client_id) sharing the store gets a key of its own.
    const other = manager(as, [api.origin], { clientId: 'other', dpop: { keyStore: store } })
    const otherJkt = await other.dpopThumbprint()
    expect(otherJkt).not.toBe(jkt)
    expect(store.dpopSets()).toHaveLength(2)
    expect(store.dpopSets()[1]!.key).not.toBe(store.dpopSets()[0]!.key)
    expect(generated()).toBe(2)
    // And the first client still uses its own.
    expect(await tm.dpopThumbprint()).toBe(jkt)
  })

  it('a store that cannot keep CryptoKeys (DataCloneError on set) still works for the session and warns key_not_persisted', async () => {
    const { as, api } = await servers()
    const generated = countKeyGenerations()
    const store = recordingKeyStore({ failSet: () => new DOMException('CryptoKey could not be cloned', 'DataCloneError') })
    const tm = manager(as, [api.origin], { dpop: { keyStore: store } })
    const warnings: TokenManagerEvents['warning'][] = []
    tm.on('warning', (w) => warnings.push(w))

    await login(tm, as)
    const jkt = await tm.dpopThumbprint()
    expect((await tm.fetch(api.url('/a'))).status).toBe(200)
    await tm.refresh()
    expect((await tm.fetch(api.url('/b'))).status).toBe(200)
    expect(await tm.dpopThumbprint()).toBe(jkt)
    expect(generated()).toBe(1)
    expect(store.dpopSets()).toHaveLength(1) // tried once, refused
    expect(store.map.size).toBe(0)
    expect(warnings).toEqual([{ code: 'key_not_persisted', message: expect.any(String) }])
    expectNoSecret(warnings, secrets(as))
  })

  it('a store that cannot be read (get rejects) still works for the session and warns', async () => {
    const { as, api } = await servers()
    const generated = countKeyGenerations()
    const store = recordingKeyStore({ failGet: () => new DOMException('The operation is insecure.', 'SecurityError') })
    const tm = manager(as, [api.origin], { dpop: { keyStore: store } })
    const warnings: TokenManagerEvents['warning'][] = []
    tm.on('warning', (w) => warnings.push(w))

    const jkts = await Promise.all(Array.from({ length: 10 }, () => tm.dpopThumbprint()))
    expect(new Set(jkts).size).toBe(1)
    await login(tm, as)
    expect((await tm.fetch(api.url('/a'))).status).toBe(200)
    await tm.refresh()
    expect((await tm.fetch(api.url('/b'))).status).toBe(200)
    expect(await tm.dpopThumbprint()).toBe(jkts[0])
    expect(generated()).toBe(1)
    expect(warnings).toEqual([{ code: 'key_store_unavailable', message: expect.any(String) }])
    expectNoSecret(warnings, secrets(as))
  })

  it('logout() deletes the key from the store; the next thumbprint is of a new key', async () => {
    const { as, api } = await servers()
    const store = recordingKeyStore()
    const tm = manager(as, [api.origin], { dpop: { keyStore: store } })
    await login(tm, as)
    const before = await tm.dpopThumbprint()
    const name = store.dpopSets()[0]!.key
    expect(store.map.has(name)).toBe(true)

    await tm.logout()
    expect(store.deletes).toContain(name)
    expect(store.map.has(name)).toBe(false)

    const after = await tm.dpopThumbprint()
    expect(after).not.toBe(before)
    expect(store.dpopSets()).toHaveLength(2)
    expect(store.map.get(name)).toBe(store.dpopSets()[1]!.value)
    // A new login binds to the new key and works.
    await login(tm, as)
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    const last = as.counts.proofs.at(-1)!
    expect(await calculateJwkThumbprint((await decodeProof(last)).header.jwk)).toBe(after)
  })
})

describe('proofs', () => {
  it('every claim of every real proof, at the token endpoint and at the API, with nonces on both', async () => {
    const { as, api } = await servers({ requireNonce: true }, { requireNonce: true })
    const tm = manager(as, [api.origin])
    await login(tm, as)
    const calls: [string, string, string | undefined][] = [
      ['GET', '/a/b?x=1&y=2#frag', undefined],
      ['post', '/p?q=1', 'posted'],
      ['PUT', '/u', 'put'],
      ['DELETE', '/d', undefined],
      ['PATCH', '/patch', 'patched'],
      ['GET', '/', undefined],
    ]
    for (const [method, path, body] of calls) {
      const res = await tm.fetch(api.url(path), { method, ...(body ? { body } : {}) })
      expect(res.status).toBe(200)
    }
    await tm.refresh()
    expect((await tm.fetch(api.url('/after-refresh?z#y'))).status).toBe(200)
    const jkt = await tm.dpopThumbprint()
    const asNonce = as.nonces.current()
    const apiNonce = api.nonces.current()
    expect(asNonce).not.toBe(apiNonce)

    // Token endpoint: the code exchange (challenged for a nonce, retried with it) and the refresh.
    expect(as.counts.proofs).toHaveLength(3)
    expect(as.counts.nonceChallenges).toBe(1)
    const jtis: unknown[] = []
    for (const [i, proof] of as.counts.proofs.entries()) {
      // No ath at the token endpoint; the nonce once the AS has given one.
      const { header, payload } = await checkProof(proof, { method: 'POST', htu: as.tokenEndpoint, nonce: i === 0 ? null : asNonce })
      expect(await calculateJwkThumbprint(header.jwk)).toBe(jkt)
      jtis.push(payload.jti)
    }

    // API: the first request met the nonce challenge and was retried once; the rest carried the nonce at once.
    expect(api.requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/a/b?x=1&y=2', 401],
      ['GET', '/a/b?x=1&y=2', 200],
      ['POST', '/p?q=1', 200],
      ['PUT', '/u', 200],
      ['DELETE', '/d', 200],
      ['PATCH', '/patch', 200],
      ['GET', '/', 200],
      ['GET', '/after-refresh?z', 200],
    ])
    for (const [i, r] of api.requests.entries()) {
      expect(r.authorization).toMatch(/^DPoP at-/)
      const at = r.authorization!.slice('DPoP '.length)
      expect(as.accessTokens.get(at)?.jkt).toBe(jkt)
      const { header, payload } = await checkProof(r.dpop, {
        method: r.method,
        htu: api.origin + r.path.split('?')[0],
        accessToken: at,
        nonce: i === 0 ? null : apiNonce,
      })
      expect(await calculateJwkThumbprint(header.jwk)).toBe(jkt)
      jtis.push(payload.jti)
    }
    expect(payloadOf(api.requests[1]!.dpop!).htu).toBe(api.origin + '/a/b')
    expect(payloadOf(api.requests[6]!.dpop!).htu).toBe(api.origin + '/')
    // After the refresh, ath follows the new access token.
    expect(api.requests.at(-1)!.authorization).not.toBe(api.requests.at(-2)!.authorization)
    expect(payloadOf(api.requests.at(-1)!.dpop!).ath).toBe(ath(api.requests.at(-1)!.authorization!.slice(5)))
    expect(new Set(jtis).size).toBe(jtis.length)

    // The thumbprint is RFC 7638 of the proof key and is what the server bound every token to (cnf.jkt).
    expect(new Set([...as.accessTokens.values()].map((t) => t.jkt))).toEqual(new Set([jkt]))
    expect(new Set([...as.refreshTokens.values()].map((t) => t.jkt))).toEqual(new Set([jkt]))
  })

  it('the proof checks here can fail: a tampered proof does not verify', async () => {
    const { as, api } = await servers()
    const tm = manager(as, [api.origin])
    await login(tm, as)
    const [h, , s] = as.counts.proofs[0]!.split('.')
    const forged = Buffer.from(JSON.stringify({ ...payloadOf(as.counts.proofs[0]!), htm: 'GET' })).toString('base64url')
    await expect(decodeProof(`${h}.${forged}.${s}`)).rejects.toThrow()
  })

  it('a nonce is kept per origin: one API’s nonce is never sent to another origin', async () => {
    const { as, api } = await servers({}, { requireNonce: true })
    const api2 = await startApi(as, { requireNonce: true })
    cleanups.push(api2.close)
    const tm = manager(as, [api.origin, api2.origin])
    await login(tm, as)
    expect((await tm.fetch(api.url('/one'))).status).toBe(200)
    expect((await tm.fetch(api2.url('/two'))).status).toBe(200)
    expect((await tm.fetch(api.url('/three'))).status).toBe(200)
    await tm.refresh()

    expect(api.requests.map((r) => r.status)).toEqual([401, 200, 200])
    expect(api2.requests.map((r) => r.status)).toEqual([401, 200])
    expect(payloadOf(api2.requests[0]!.dpop!)).not.toHaveProperty('nonce')
    expect(payloadOf(api2.requests[1]!.dpop!).nonce).toBe(api2.nonces.current())
    expect(payloadOf(api.requests[2]!.dpop!).nonce).toBe(api.nonces.current())
    // The token endpoint never gave a nonce, so its proofs carry none.
    for (const p of as.counts.proofs) expect(payloadOf(p)).not.toHaveProperty('nonce')
  })
})

describe('token endpoint', () => {
  it('exchangeCode and every refresh carry a proof; DPoP tokens go out as Authorization: DPoP, never Bearer', async () => {
    const { as, api } = await servers()
    const tm = manager(as, [api.origin])
    await login(tm, as)
    for (let i = 0; i < 5; i++) {
      await tm.refresh()
      expect((await tm.fetch(api.url('/r/' + i), { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'x' : null })).status).toBe(200)
    }
    expect(as.counts.code).toBe(1)
    expect(as.counts.refresh).toBe(5)
    expect(as.counts.invalidGrant).toBe(0)
    // One proof per token request: a request without one would have been refused.
    expect(as.counts.proofs).toHaveLength(6)
    for (const p of as.counts.proofs) await checkProof(p, { method: 'POST', htu: as.tokenEndpoint, nonce: null })
    expect(tm.status()?.tokenType).toBe('DPoP')
    expect(api.requests).toHaveLength(5)
    for (const r of api.requests) {
      expect(r.authorization).toMatch(/^DPoP at-/)
      expect(r.authorization).not.toMatch(/bearer/i)
      expect(r.dpop).toBeDefined()
    }
  })

  it('a token_type of "dpop" in any case is still sent with the DPoP scheme', async () => {
    let jkt = ''
    const issued: string[] = []
    const { as, api } = await servers({
      onRefresh: (res) => {
        const at = 'at-lower-' + randomBytes(8).toString('hex')
        issued.push(at)
        as.accessTokens.set(at, { jkt, expiresAt: Date.now() + 60_000 })
        json(res, 200, { access_token: at, token_type: 'dpop', expires_in: 60 })
        return true
      },
    })
    const tm = manager(as, [api.origin])
    await login(tm, as)
    jkt = await tm.dpopThumbprint()
    await tm.refresh()
    expect(tm.status()?.tokenType).toBe('DPoP')
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    expect(api.requests[0]!.authorization).toBe('DPoP ' + issued[0])
  })
})

describe('nonces', () => {
  it('a nonce from the AS is remembered: the first refresh after it carries it, and rotation is followed', async () => {
    const { as, api } = await servers({ requireNonce: true })
    const tm = manager(as, [api.origin])
    await login(tm, as)
    expect(as.counts.nonceChallenges).toBe(1) // the code exchange learned the nonce

    await tm.refresh()
    expect(as.counts.nonceChallenges).toBe(1) // the first refresh carried it on the first try
    expect(payloadOf(as.counts.proofs.at(-1)!).nonce).toBe(as.nonces.current())

    // One rotation: the held nonce is still accepted and the answer brings the new one, used next.
    const n1 = as.nonces.current()
    const n2 = as.nonces.rotate()
    await tm.refresh()
    expect(payloadOf(as.counts.proofs.at(-1)!).nonce).toBe(n1)
    await tm.refresh()
    expect(payloadOf(as.counts.proofs.at(-1)!).nonce).toBe(n2)
    expect(as.counts.nonceChallenges).toBe(1)

    // Two rotations: the held nonce is stale → one 400 use_dpop_nonce, one retry, no refresh token spent.
    as.nonces.rotate()
    const n4 = as.nonces.rotate()
    const before = as.counts.refresh
    await tm.refresh()
    expect(as.counts.nonceChallenges).toBe(2)
    expect(as.counts.refresh).toBe(before + 1)
    expect(as.counts.proofs.slice(-2).map((p) => payloadOf(p).nonce)).toEqual([n2, n4])
    expect(as.counts.invalidGrant).toBe(0)
    expect(as.counts.reuse).toBe(0)
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
  })

  it('a nonce from an allowed API: 401 use_dpop_nonce is retried once, the nonce remembered, rotation followed', async () => {
    const { as, api } = await servers({}, { requireNonce: true })
    const tm = manager(as, [api.origin])
    await login(tm, as)
    const statuses = () => attemptsByPath(api.requests)

    expect((await tm.fetch(api.url('/1'))).status).toBe(200)
    expect(statuses().get('/1')).toEqual([401, 200])
    expect(api.requests[0]!.status).toBe(401)
    expect(payloadOf(api.requests[1]!.dpop!).nonce).toBe(api.nonces.current())

    expect((await tm.fetch(api.url('/2'))).status).toBe(200)
    expect(statuses().get('/2')).toEqual([200])

    // One rotation: the previous nonce still passes; the answer's new nonce is used next.
    const n1 = api.nonces.current()
    const n2 = api.nonces.rotate()
    expect((await tm.fetch(api.url('/3'))).status).toBe(200)
    expect(statuses().get('/3')).toEqual([200])
    expect(payloadOf(api.requests.at(-1)!.dpop!).nonce).toBe(n1)
    expect((await tm.fetch(api.url('/4'))).status).toBe(200)
    expect(payloadOf(api.requests.at(-1)!.dpop!).nonce).toBe(n2)

    // Two rotations mid-stream: challenged once, retried once with the new nonce, body intact.
    api.nonces.rotate()
    const n4 = api.nonces.rotate()
    const res = await tm.fetch(api.url('/5'), { method: 'POST', body: 'payload' })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ body: 'payload' })
    const five = api.requests.filter((r) => r.path === '/5')
    expect(five.map((r) => [r.status, r.body, payloadOf(r.dpop!).nonce])).toEqual([
      [401, 'payload', n2],
      [200, 'payload', n4],
    ])
    // A nonce challenge is never answered with a refresh.
    expect(as.counts.refresh).toBe(0)
  })

  it('an API that demands a new nonce every time gets at most 2 attempts per request, and no refresh', async () => {
    const as = await startTokenServer({ dpop: true })
    cleanups.push(as.close)
    const seen: { path: string; dpop: string }[] = []
    const evil = await serve((req, res) => {
      seen.push({ path: req.url!, dpop: String(req.headers.dpop) })
      json(res, 401, { error: 'use_dpop_nonce' }, {
        'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"',
        'dpop-nonce': randomBytes(12).toString('base64url'),
      })
    })
    cleanups.push(evil.close)
    const tm = manager(as, [evil.origin])
    await tm.setTokens({ access_token: 'at-evil-secret', token_type: 'DPoP', refresh_token: 'rt-evil-secret', expires_in: 300 })

    const single = await tm.fetch(evil.url('/single'))
    expect(single.status).toBe(401)
    expect(seen.map((s) => s.path)).toEqual(['/single', '/single'])
    expect(payloadOf(seen[0]!.dpop)).not.toHaveProperty('nonce')
    expect(typeof payloadOf(seen[1]!.dpop).nonce).toBe('string')

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => tm.fetch(evil.url('/c/' + i))))
    expect(results.every((r) => r.status === 401)).toBe(true)
    for (let i = 0; i < 20; i++) expect(seen.filter((s) => s.path === '/c/' + i).length).toBeLessThanOrEqual(2)
    expect(as.counts.refresh).toBe(0)
    expect(as.counts.proofs).toHaveLength(0)
  })

  it('a token endpoint that always demands a nonce: at most 2 token requests per refresh and a typed error', async () => {
    const hits: { grant: string | null; nonce: unknown }[] = []
    const evil = await serve((req, res) => {
      hits.push({ grant: new URLSearchParams(req.body).get('grant_type'), nonce: payloadOf(String(req.headers.dpop)).nonce })
      json(res, 400, { error: 'use_dpop_nonce', error_description: 'Authorization server requires nonce in DPoP proof' }, {
        'dpop-nonce': randomBytes(12).toString('base64url'),
      })
    })
    cleanups.push(evil.close)
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: evil.url('/token'), allowedOrigins: [], crossTab: false })
    await tm.setTokens({ access_token: 'at-evil-secret', token_type: 'DPoP', refresh_token: 'rt-evil-secret', expires_in: 300 })
    const events: TokenManagerEvents['refresh-error'][] = []
    tm.on('refresh-error', (e) => events.push(e))

    const error = await tm.refresh().catch((e) => e)
    expect(hits).toHaveLength(2)
    expect(hits[0]!.nonce).toBeUndefined()
    expect(typeof hits[1]!.nonce).toBe('string')
    expect(error).toBeInstanceOf(OAuthError)
    expect(isLatchkeyError(error, 'oauth_error')).toBe(true)
    expect((error as OAuthError).error).toBe('use_dpop_nonce')
    expect((error as OAuthError).status).toBe(400)
    expect(events).toHaveLength(1)
    expect(tm.status()).toBeDefined() // the last good state stays
    expectNoSecret(error, ['at-evil-secret', 'rt-evil-secret'])
    expectNoSecret(events, ['at-evil-secret', 'rt-evil-secret'])

    // The same bound holds for the code exchange.
    const codeError = await tm.exchangeCode({ code: 'c', codeVerifier: 'x', redirectUri: REDIRECT }).catch((e) => e)
    expect(hits.filter((h) => h.grant === 'authorization_code')).toHaveLength(2)
    expect(isLatchkeyError(codeError, 'oauth_error')).toBe(true)
  })

  it('concurrent code exchanges meeting a nonce challenge at the token endpoint: each retried once, all succeed', async () => {
    const { as, api } = await servers({ requireNonce: true })
    const tm = manager(as, [api.origin])
    const codes = Array.from({ length: 5 }, () => as.code())
    const outcomes = await Promise.all(
      codes.map((code) => tm.exchangeCode({ code, codeVerifier: 'x', redirectUri: REDIRECT }).then(() => 'ok', (e: Error) => e.message)),
    )
    expect(outcomes).toEqual(Array(5).fill('ok'))
    expect(as.counts.nonceChallenges).toBe(5)
    expect(as.counts.code).toBe(5)
    expect(as.counts.proofs).toHaveLength(10)
  })

})

describe('errors', () => {
  it('invalid_dpop_proof from the token endpoint on refresh → DPoPProofError with the server’s description, no token', async () => {
    let description = 'DPoP proof signature is invalid'
    const { as, api } = await servers({
      onRefresh: (res) => (json(res, 400, { error: 'invalid_dpop_proof', error_description: description }), true),
    })
    const tm = manager(as, [api.origin])
    await login(tm, as)
    const events: TokenManagerEvents['refresh-error'][] = []
    tm.on('refresh-error', (e) => events.push(e))

    const error = await tm.refresh().catch((e) => e)
    expect(error).toBeInstanceOf(DPoPProofError)
    expect(error).toBeInstanceOf(LatchkeyError)
    expect(isLatchkeyError(error, 'invalid_dpop_proof')).toBe(true)
    expect(error).toMatchObject({ code: 'invalid_dpop_proof', name: 'DPoPProofError', status: 400, description })
    expect(error.message).toContain('POST ' + as.tokenEndpoint)
    expect(error.message).toContain(description)
    expect(events.map((e) => e.error)).toEqual([error])
    expectNoSecret(error, secrets(as))
    expectNoSecret(events, secrets(as))
    // The session stays: the token still works.
    expect(tm.status()).toBeDefined()
    expect((await tm.fetch(api.url('/still'))).status).toBe(200)

    // A server that echoes the presented tokens in its description: they never reach the error.
    const rt = [...as.refreshTokens.keys()][0]!
    const at = [...as.accessTokens.keys()][0]!
    description = `proof for refresh token ${rt} and access token ${at} rejected`
    const echoed = await tm.refresh().catch((e) => e)
    expect(isLatchkeyError(echoed, 'invalid_dpop_proof')).toBe(true)
    expect((echoed as DPoPProofError).description).toMatch(/^proof for refresh token .+ rejected$/)
    expectNoSecret(echoed, secrets(as))
    expectNoSecret(events, secrets(as))
  })

  it('invalid_dpop_proof on the code exchange → DPoPProofError, nothing installed', async () => {
    const evil = await serve((_req, res) =>
      json(res, 400, { error: 'invalid_dpop_proof', error_description: 'htu does not match the request URL' }),
    )
    cleanups.push(evil.close)
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: evil.url('/token'), allowedOrigins: [], crossTab: false })
    const error = await tm.exchangeCode({ code: 'c', codeVerifier: 'x', redirectUri: REDIRECT }).catch((e) => e)
    expect(error).toBeInstanceOf(DPoPProofError)
    expect(error).toMatchObject({ code: 'invalid_dpop_proof', description: 'htu does not match the request URL', status: 400 })
    expect(tm.status()).toBeUndefined()
  })

  it('dpop: false → plain Bearer, no DPoP header anywhere (token, refresh, revocation, API)', async () => {
    const as = await startTokenServer()
    cleanups.push(as.close)
    const api = await startApi(as)
    cleanups.push(api.close)
    const front = await startRecorder(as.origin)
    cleanups.push(front.close)
    const tm = createTokenManager({
      clientId: 'spa',
      tokenEndpoint: front.url('/token'),
      revocationEndpoint: front.url('/revoke'),
      allowedOrigins: [api.origin],
      dpop: false,
      crossTab: false,
    })
    await tm.exchangeCode({ code: as.code(), codeVerifier: 'x', redirectUri: REDIRECT })
    expect(tm.status()?.tokenType).toBe('Bearer')
    expect((await tm.fetch(api.url('/a'))).status).toBe(200)
    await tm.refresh()
    expect((await tm.fetch(api.url('/b'), { method: 'POST', body: 'x' })).status).toBe(200)
    await tm.logout()

    expect(front.requests.map((r) => r.path)).toEqual(['/token', '/token', '/revoke'])
    for (const r of front.requests) {
      expect(r.headers).not.toHaveProperty('dpop')
      expect(r.headers).not.toHaveProperty('authorization')
    }
    expect(api.requests).toHaveLength(2)
    for (const r of api.requests) {
      expect(r.authorization).toMatch(/^Bearer at-/)
      expect(r.dpop).toBeUndefined()
    }
    await expect(tm.dpopThumbprint()).rejects.toThrow(TypeError)
    const url = new URL(await tm.authorizationUrl({ authorizationEndpoint: 'https://as.example/authorize', redirectUri: REDIRECT }))
    expect(url.searchParams.has('dpop_jkt')).toBe(false)
  })

  it('dpop: false and a token_type DPoP answer → typed invalid_response; the last good state stays', async () => {
    const { as, api } = await servers(
      { dpop: false, onRefresh: (res) => (json(res, 200, { access_token: 'at-LEAKED-DPOP', token_type: 'DPoP', expires_in: 60 }), true) },
      {},
    )
    const tm = manager(as, [api.origin], { dpop: false })
    const seeded = as.seed()
    await tm.setTokens(seeded)
    const error = await tm.refresh().catch((e) => e)
    expect(error).toBeInstanceOf(ResponseError)
    expect(isLatchkeyError(error, 'invalid_response')).toBe(true)
    expectNoSecret(error, [...secrets(as), 'at-LEAKED-DPOP'])
    expect((await tm.fetch(api.url('/after'))).status).toBe(200)
    expect(api.requests.at(-1)!.authorization).toBe('Bearer ' + seeded.access_token)
    expect(api.requests.at(-1)!.dpop).toBeUndefined()

    // The same on the code exchange: nothing installed.
    const evil = await serve((_req, res) => json(res, 200, { access_token: 'at-LEAKED-DPOP', token_type: 'DPoP', expires_in: 60 }))
    cleanups.push(evil.close)
    const tm2 = createTokenManager({ clientId: 'spa', tokenEndpoint: evil.url('/token'), allowedOrigins: [], dpop: false, crossTab: false })
    const codeError = await tm2.exchangeCode({ code: 'c', codeVerifier: 'x', redirectUri: REDIRECT }).catch((e) => e)
    expect(isLatchkeyError(codeError, 'invalid_response')).toBe(true)
    expectNoSecret(codeError, ['at-LEAKED-DPOP'])
    expect(tm2.status()).toBeUndefined()
  })
})
