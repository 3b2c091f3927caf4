// Other runtimes (React Native, Capacitor, Node): the whole DPoP flow against the real demo
// authorization server (oidc-provider) and the demo API (which checks every proof, RFC 9449 §4.3),
// in a realm without the browser's globals, with injected parts only: `crypto`, a key store or a
// platform signer, a login store, no cross-tab mechanism.
import { createHash, generateKeyPairSync, sign as nodeSign, verify, webcrypto } from 'node:crypto'
import { BroadcastChannel as NodeBroadcastChannel, Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTokenManager,
  discover,
  isLatchkeyError,
  memoryKeyStore,
  type DPoPSigner,
  type LoginStore,
  type TokenManager,
  type TokenManagerOptions,
  type WebCrypto,
} from '../src/index.js'
import { authorize } from './support/sign-in.js'

const REDIRECT = 'http://127.0.0.1/callback'

interface Demo {
  issuer: string
  authorizationEndpoint: string
  tokenEndpoint: string
  revocationEndpoint: string
  apiOrigin: string
}
type Counts = { as: Record<string, number>; api: { ok: number; unauthorized: Record<string, number> } }

let worker: Worker
let demo: Demo
const counts = () =>
  new Promise<Counts>((resolve) => {
    worker.once('message', resolve)
    worker.postMessage('counts')
  })

// Globals the injected parts replace: reading one at all is a failure (each read is recorded, and
// throws, in case the throw is swallowed somewhere). Globals latchkey feature-detects: absent.
const INJECTED = ['crypto', 'sessionStorage', 'localStorage', 'indexedDB', 'BroadcastChannel'] as const
const DETECTED = ['navigator', 'location', 'document', 'addEventListener', 'removeEventListener'] as const
const saved = new Map<string, PropertyDescriptor | undefined>()
const reads: string[] = []

function removeBrowserGlobals(injected: readonly string[]) {
  for (const name of [...INJECTED, ...DETECTED]) {
    saved.set(name, Object.getOwnPropertyDescriptor(globalThis, name))
    const forbidden = injected.includes(name)
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() {
        if (!forbidden) return undefined
        reads.push(name)
        throw new Error(`the global ${name} was read`)
      },
    })
  }
}

function restoreBrowserGlobals() {
  for (const [name, descriptor] of saved) {
    if (descriptor) Object.defineProperty(globalThis, name, descriptor)
    else delete (globalThis as Record<string, unknown>)[name]
  }
  saved.clear()
}

beforeAll(async () => {
  worker = new Worker(new URL('./support/demo-servers-worker.mjs', import.meta.url), { workerData: { redirectUri: REDIRECT } })
  demo = await new Promise<Demo>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
})
afterAll(async () => {
  restoreBrowserGlobals()
  await worker?.terminate()
})

/** The WebCrypto of node:crypto behind a counter of every call: what goes through the injected one. */
function countedCrypto({ randomUUID = false } = {}) {
  const calls: Record<string, number> = {}
  const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1)
  const subtle = new Proxy(webcrypto.subtle, {
    get: (target, name: string) => {
      const value = Reflect.get(target, name) as unknown
      return typeof value == 'function' ? (...args: unknown[]) => (count(name), value.apply(target, args)) : value
    },
  })
  // By default no randomUUID: React Native's WebCrypto implementations may lack it.
  const crypto: WebCrypto = {
    subtle,
    getRandomValues: <T extends ArrayBufferView | null>(array: T) => (count('getRandomValues'), webcrypto.getRandomValues(array as never) as T),
  }
  if (randomUUID) crypto.randomUUID = () => (count('randomUUID'), webcrypto.randomUUID())
  return { crypto, calls }
}

/** A login store whose methods answer with promises, like React Native's AsyncStorage. */
function asyncLoginStore(): LoginStore & { map: Map<string, string> } {
  const map = new Map<string, string>()
  return {
    map,
    getItem: async (k) => map.get(k) ?? null,
    setItem: async (k, v) => void map.set(k, v),
    removeItem: async (k) => void map.delete(k),
  }
}

/** A token manager for the demo servers with only injected parts. */
const native = (options: Partial<TokenManagerOptions>): TokenManager =>
  createTokenManager({
    clientId: 'spa',
    issuer: demo.issuer,
    tokenEndpoint: demo.tokenEndpoint,
    revocationEndpoint: demo.revocationEndpoint,
    authorizationEndpoint: demo.authorizationEndpoint,
    allowedOrigins: [demo.apiOrigin],
    crossTab: false,
    ...options,
  })

/** authorizationUrl → the user signs in → handleRedirect; returns the authorization request's parameters. */
async function signIn(tm: TokenManager) {
  const url = await tm.authorizationUrl({ redirectUri: REDIRECT, scope: 'openid offline_access api:read', resource: demo.apiOrigin })
  await tm.handleRedirect(await authorize(url, REDIRECT))
  return new URL(url).searchParams
}

const me = async (tm: TokenManager) => {
  const res = await tm.fetch(demo.apiOrigin + '/api/me')
  expect(res.status).toBe(200)
  return (await res.json()) as { sub: string; jkt: string }
}

/** The DPoP proofs latchkey sent, by request. */
function recordingFetch() {
  const proofs: { url: string; proof: string }[] = []
  const fetch: typeof globalThis.fetch = (input, init) => {
    const proof = new Headers(init?.headers).get('dpop')
    if (proof) proofs.push({ url: String(input), proof })
    return globalThis.fetch(input, init)
  }
  return { fetch, proofs }
}

const part = (jwt: string, i: number) => JSON.parse(Buffer.from(jwt.split('.')[i]!, 'base64url').toString()) as Record<string, unknown>

/** RFC 7638 thumbprint of a P-256 JWK, computed here without latchkey. */
const thumbprint = ({ x, y }: JsonWebKey) => createHash('sha256').update(JSON.stringify({ crv: 'P-256', kty: 'EC', x, y })).digest('base64url')

/** Runs `fn` with the browser globals absent and only `crypto` forbidden: the defaults may look for the rest. */
async function withDetectedGlobalsOnly(fn: () => Promise<void>) {
  restoreBrowserGlobals()
  removeBrowserGlobals(['crypto'])
  try {
    await fn()
  } finally {
    restoreBrowserGlobals()
    removeBrowserGlobals(INJECTED)
  }
}

/** Signs in, calls the API, refreshes, calls it again, logs out: without a warning on the way. */
async function wholeFlow(tm: TokenManager) {
  const warnings: string[] = []
  tm.on('warning', ({ code }) => warnings.push(code))
  await signIn(tm)
  await me(tm)
  await tm.refresh()
  await me(tm)
  await tm.logout()
  expect(warnings).toEqual([])
  tm.dispose()
}

describe('no browser globals: crypto, sessionStorage, indexedDB, BroadcastChannel, navigator, location, document', () => {
  beforeAll(() => removeBrowserGlobals(INJECTED))
  afterAll(restoreBrowserGlobals)

  it('the globals are gone for this realm (the servers keep theirs in their worker)', () => {
    expect(() => globalThis.crypto).toThrow(/crypto was read/)
    expect(globalThis.navigator).toBeUndefined()
    expect(globalThis.location).toBeUndefined()
    expect(() => sessionStorage).toThrow(/sessionStorage was read/)
    expect(reads).toEqual(['crypto', 'sessionStorage'])
    reads.length = 0
  })

  it('the whole DPoP flow with injected parts only: login, API calls with nonces, refresh, logout with revocation', async () => {
    const { crypto, calls } = countedCrypto()
    const loginStore = asyncLoginStore()
    const keyStore = memoryKeyStore()
    const { fetch, proofs } = recordingFetch()
    // RFC 8414 discovery needs no browser global either; its result spreads into the options.
    const as = await discover(demo.issuer)
    expect(as).toMatchObject({ issuer: demo.issuer, tokenEndpoint: demo.tokenEndpoint, authorizationEndpoint: demo.authorizationEndpoint, revocationEndpoint: demo.revocationEndpoint })
    const tm = native({ ...as, crypto, dpop: { keyStore }, loginStore, fetch })
    const warnings: string[] = []
    tm.on('warning', ({ code }) => warnings.push(code))
    const before = await counts()

    // PKCE + state + dpop_jkt; the verifier waits in the injected store, and is gone once used.
    const q = await signIn(tm)
    expect(q.get('dpop_jkt')).toBe(await tm.dpopThumbprint())
    expect(q.get('code_challenge_method')).toBe('S256')
    expect(loginStore.map.size).toBe(0)

    // The demo API checks the token's binding and every proof; it asks for its nonce first.
    expect((await me(tm)).jkt).toBe(await tm.dpopThumbprint())
    await tm.refresh()
    const body = await me(tm)
    expect(body.sub).toBe('demo')
    const after = await counts()
    expect(after.as.authorizationCode - before.as.authorizationCode).toBe(1)
    expect(after.as.refreshToken - before.as.refreshToken).toBe(1)
    expect(after.as.useDpopNonce - before.as.useDpopNonce).toBeGreaterThanOrEqual(1)
    expect(after.api.unauthorized.use_dpop_nonce! - before.api.unauthorized.use_dpop_nonce!).toBe(1)
    expect(after.api.ok - before.api.ok).toBe(2)

    // Every proof was signed by the key in the injected store, through the injected crypto.
    const { publicKey } = (await keyStore.get('dpop:spa@' + demo.tokenEndpoint)) as CryptoKeyPair
    const jwk = await webcrypto.subtle.exportKey('jwk', publicKey as webcrypto.CryptoKey)
    expect(proofs.length).toBeGreaterThanOrEqual(5)
    for (const { proof } of proofs) {
      expect(part(proof, 0).jwk).toEqual({ crv: 'P-256', kty: 'EC', x: jwk.x, y: jwk.y })
      expect(part(proof, 1).jti).toMatch(/^[\w-]{22}$/)
    }
    expect(calls.generateKey).toBe(1)
    expect(calls.sign).toBe(proofs.length)
    expect(calls.digest).toBeGreaterThanOrEqual(3) // the thumbprint, the PKCE challenge, each token's ath
    expect(calls.getRandomValues).toBeGreaterThanOrEqual(2 + proofs.length) // verifier, state, each jti

    await tm.logout()
    const end = await counts()
    expect(end.as.revocations - after.as.revocations).toBe(1)
    await expect(tm.fetch(demo.apiOrigin + '/api/me')).rejects.toSatisfy((e) => isLatchkeyError(e, 'no_session'))
    expect(await keyStore.get('dpop:spa@' + demo.tokenEndpoint)).toBeUndefined()
    expect(warnings).toEqual([])
    expect(reads).toEqual([])
    tm.dispose()
  })

  it('one redirect handled twice at once (a deep link delivered twice) exchanges its code once, with an async login store', async () => {
    const { crypto } = countedCrypto()
    const tm = native({ crypto, dpop: { keyStore: memoryKeyStore() }, loginStore: asyncLoginStore() })
    const url = await tm.authorizationUrl({ redirectUri: REDIRECT, scope: 'openid offline_access api:read', resource: demo.apiOrigin })
    const redirect = await authorize(url, REDIRECT)
    const before = await counts()
    // The same URL twice is the same promise: one exchange, one outcome for both callers.
    const first = tm.handleRedirect(redirect)
    expect(tm.handleRedirect(redirect)).toBe(first)
    await first
    // A second exchange of the code would have made oidc-provider revoke the tokens of the first.
    const after = await counts()
    expect(after.as.authorizationCode - before.as.authorizationCode).toBe(1)
    expect(after.as.invalidGrant - before.as.invalidGrant).toBe(0)
    await me(tm)
    await tm.logout()
    expect(reads).toEqual([])
  })

  it('two managers use their own crypto, never each other\'s', async () => {
    const a = countedCrypto()
    const b = countedCrypto()
    const tmA = createTokenManager({ clientId: 'a', tokenEndpoint: demo.tokenEndpoint, allowedOrigins: [demo.apiOrigin], crypto: a.crypto, dpop: { keyStore: memoryKeyStore() }, crossTab: false })
    const tmB = createTokenManager({ clientId: 'b', tokenEndpoint: demo.tokenEndpoint, allowedOrigins: [demo.apiOrigin], crypto: b.crypto, dpop: { keyStore: memoryKeyStore() }, crossTab: false })
    await tmB.dpopThumbprint()
    expect(b.calls.generateKey).toBe(1)
    expect(a.calls).toEqual({})
    await tmA.dpopThumbprint()
    expect(a.calls.generateKey).toBe(1)
    expect(b.calls.generateKey).toBe(1)
    expect(reads).toEqual([])
  })

  it('a login without a login store says which option is missing; without crypto, so does the constructor', async () => {
    const { crypto } = countedCrypto()
    // sessionStorage is not even looked at when a login store is given (the test above); here it is, and is absent.
    restoreBrowserGlobals()
    removeBrowserGlobals(['crypto'])
    const tm = native({ crypto, dpop: { keyStore: memoryKeyStore() } })
    await expect(tm.authorizationUrl({ redirectUri: REDIRECT })).rejects.toThrow(new TypeError('loginStore: missing'))
    await expect(tm.handleRedirect(REDIRECT + '?code=x&state=y')).rejects.toThrow(new TypeError('loginStore: missing'))
    restoreBrowserGlobals()
    removeBrowserGlobals([])
    expect(() => native({})).toThrow(new TypeError('crypto: missing'))
    // Bearer needs no WebCrypto until a login asks for random values.
    expect(() => native({ dpop: false })).not.toThrow()
    restoreBrowserGlobals()
    removeBrowserGlobals(INJECTED)
    expect(reads).toEqual([])
  })

  it('the defaults degrade where the globals are missing: keys in memory, one tab, no listeners', async () => {
    const { crypto, calls } = countedCrypto()
    await withDetectedGlobalsOnly(() => wholeFlow(native({ crypto, crossTab: true, loginStore: asyncLoginStore() })))
    expect(calls.generateKey).toBe(1)
    expect(reads).toEqual([])
  })

  it('Web Locks and BroadcastChannel without IndexedDB (newer Node): the lock and channel are used, the shared counters stay at zero', async () => {
    const { crypto } = countedCrypto()
    // A Web Locks stand-in: one FIFO chain per name (shared holds never block here).
    const chains = new Map<string, Promise<unknown>>()
    const requested: string[] = []
    const locks = {
      request(name: string, ...args: unknown[]) {
        const fn = args.at(-1) as () => Promise<unknown>
        requested.push(name)
        if (args.length > 1) return fn()
        const run = (chains.get(name) ?? Promise.resolve()).then(fn, fn)
        chains.set(name, run.catch(() => {}))
        return run
      },
      query: async () => ({ held: [] }),
    }
    await withDetectedGlobalsOnly(() => {
      Object.defineProperty(globalThis, 'navigator', { configurable: true, get: () => ({ locks }) })
      Object.defineProperty(globalThis, 'BroadcastChannel', { configurable: true, value: NodeBroadcastChannel })
      return wholeFlow(native({ crypto, crossTab: true, loginStore: asyncLoginStore() }))
    })
    expect(requested.filter((name) => name.endsWith(':refresh')).length).toBeGreaterThanOrEqual(3) // login, refresh, logout
    expect(reads).toEqual([])
  })
})

// The README's conversion, verbatim.
/** An ECDSA P-256 signature in DER (SEQUENCE of two INTEGERs) as the raw r || s that JOSE uses. */
function derToRaw(der: Uint8Array): Uint8Array {
  const raw = new Uint8Array(64)
  for (let i = 2, half = 0; half < 64; half += 32) {
    const length = der[i + 1]!
    const int = der.subarray(i + 2 + Math.max(0, length - 32), i + 2 + length) // drops a leading 0
    raw.set(int, half + 32 - int.length)
    i += 2 + length
  }
  return raw
}

/** An ES256 signer backed by node:crypto KeyObjects: the private key never becomes a CryptoKey, or leaves this closure. */
function keyObjectSigner(dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363') {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const signed: Uint8Array[] = []
  const signer: DPoPSigner = {
    publicJwk: Promise.resolve(publicKey.export({ format: 'jwk' })),
    sign: async (data) => (signed.push(data), nodeSign('sha256', data, { key: privateKey, dsaEncoding })),
  }
  return { signer, signed, publicKey }
}

describe('a platform signer (dpop.signer) instead of a WebCrypto key', () => {
  beforeAll(() => removeBrowserGlobals(INJECTED))
  afterAll(restoreBrowserGlobals)

  it('signs every proof; oidc-provider binds the tokens to its key and the demo API accepts its proofs', async () => {
    const { crypto, calls } = countedCrypto({ randomUUID: true })
    const { signer, signed, publicKey } = keyObjectSigner()
    const { fetch, proofs } = recordingFetch()
    const tm = native({ crypto, dpop: { signer }, loginStore: asyncLoginStore(), fetch })
    const jkt = thumbprint(publicKey.export({ format: 'jwk' }))
    expect(await tm.dpopThumbprint()).toBe(jkt)

    const before = await counts()
    expect((await signIn(tm)).get('dpop_jkt')).toBe(jkt)
    expect(part(await tm.getAccessToken(), 1).cnf).toEqual({ jkt })
    expect((await me(tm)).jkt).toBe(jkt)
    await tm.refresh()
    expect((await me(tm)).jkt).toBe(jkt)
    const after = await counts()
    expect(after.as.authorizationCode - before.as.authorizationCode).toBe(1)
    expect(after.as.refreshToken - before.as.refreshToken).toBe(1)

    // Each proof is the signer's work, verifiable with its public KeyObject; WebCrypto signed nothing.
    expect(signed).toHaveLength(proofs.length)
    for (const { proof } of proofs) {
      const [header, payload, signature] = proof.split('.') as [string, string, string]
      expect(Buffer.from(signature, 'base64url')).toHaveLength(64)
      expect(verify('sha256', Buffer.from(header + '.' + payload), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))).toBe(true)
    }
    expect(calls.sign).toBeUndefined()
    expect(calls.generateKey).toBeUndefined()
    // The injected crypto's randomUUID makes each jti, where it has one.
    expect(calls.randomUUID).toBe(proofs.length)
    for (const { proof } of proofs) expect(part(proof, 1).jti).toMatch(/^[\da-f]{8}-[\da-f]{4}-4[\da-f]{3}-[89ab][\da-f]{3}-[\da-f]{12}$/)
    expect(calls.exportKey).toBeUndefined()

    // Logout revokes and ends the session; the platform key stays the app's, and signs the next login.
    await tm.logout()
    expect((await counts()).as.revocations - after.as.revocations).toBe(1)
    await signIn(tm)
    expect((await me(tm)).jkt).toBe(jkt)
    expect(reads).toEqual([])
  })

  it('a signature in DER (what native APIs return) is refused by the server; converted as the README shows, accepted', async () => {
    const { crypto } = countedCrypto()
    const { signer, publicKey } = keyObjectSigner('der')
    const tm = native({ crypto, dpop: { signer }, loginStore: asyncLoginStore() })
    await expect(signIn(tm)).rejects.toSatisfy((e) => isLatchkeyError(e, 'invalid_dpop_proof'))
    expect(tm.status()).toBeUndefined()

    const converted: DPoPSigner = { publicJwk: signer.publicJwk, sign: async (data) => derToRaw(new Uint8Array(await signer.sign(data))) }
    const fixed = native({ crypto, dpop: { signer: converted }, loginStore: asyncLoginStore() })
    await signIn(fixed)
    expect((await me(fixed)).jkt).toBe(await fixed.dpopThumbprint())
    // r or s shorter than 32 bytes (about 1 signature in 128) must come back padded to 32.
    for (let n = 0; n < 1000; n++) {
      const data = new Uint8Array([n & 255, n >> 8])
      const raw = derToRaw(new Uint8Array(await signer.sign(data)))
      expect(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true)
    }
  })

  it('persist: the refresh token is kept (AES-GCM through the injected crypto) in the key store the signer comes with', async () => {
    const { crypto, calls } = countedCrypto()
    const { signer } = keyObjectSigner()
    const keyStore = memoryKeyStore()
    expect(() => native({ crypto, dpop: { signer }, persist: true })).toThrow(new TypeError('persist: needs a dpop key store'))

    const first = native({ crypto, dpop: { signer, keyStore }, persist: true, loginStore: asyncLoginStore() })
    await signIn(first)
    expect(calls.encrypt).toBe(1)
    first.dispose()
    // The app restarts: a new manager with the same platform key and store.
    const second = native({ crypto, dpop: { signer, keyStore }, persist: true })
    expect(await second.restore()).toBe(true)
    expect(calls.decrypt).toBe(1)
    expect((await me(second)).jkt).toBe(await second.dpopThumbprint())
    await second.logout()
    expect(await second.restore()).toBe(false)
    expect(reads).toEqual([])
  })

  it('a signer whose public key is not an EC JWK is refused, naming the option', async () => {
    const tm = native({ crypto: countedCrypto().crypto, dpop: { signer: { publicJwk: { kty: 'EC' }, sign: async () => new Uint8Array(64) } } })
    await expect(tm.dpopThumbprint()).rejects.toThrow(new TypeError('dpop.signer: invalid'))
  })
})
