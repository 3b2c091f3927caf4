import { warner, type Emit } from './events.js'
import type { KeyStore } from './keystore.js'
import { b64u, b64uJSON, encoder, invalid, now, random, sha256, type WebCrypto } from './util.js'

/** @internal The DPoP machinery of one token manager. */
export interface DPoP {
  /** RFC 7638 thumbprint of the public key. */
  jkt(): Promise<string>
  /** A fresh proof for one request (RFC 9449 §4.2). */
  proof(method: string, url: URL | string, ath?: string): Promise<string>
  /**
   * Invariant 12: the server's clock minus the device's, in ms, as last learnt (0 until then).
   * Every proof is dated by it; this is the one place latchkey keeps the server's time.
   */
  offset: number
  /**
   * Learns from a response of an allowed origin: the `DPoP-Nonce` it carried (per origin), and the
   * server's time from the `iat` of a token in its body (an ID token, else a JWT access token) and
   * its `Date` header (readable cross-origin only when the server exposes it),
   * measured as `clock_offset` when it moved by a second or more (a device within a second of the
   * server never emits one).
   */
  learn(url: URL | string, response: Response, body?: { id_token?: unknown; access_token?: unknown }): void
  /** Forgets the key in memory; with `remove`, deletes it from the store too. */
  reset(remove?: boolean): Promise<void>
}

/**
 * A DPoP key held outside JavaScript (Secure Enclave, Android Keystore, an HSM), through a native
 * module: latchkey never sees its private part, only signs through it. `logout()` leaves the key
 * in place: it is the app's.
 *
 * @example
 * ```ts
 * // node:crypto, whose ECDSA signatures are raw with dsaEncoding 'ieee-p1363'
 * const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
 * const signer: DPoPSigner = {
 *   publicJwk: publicKey.export({ format: 'jwk' }),
 *   sign: async (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
 * }
 * createTokenManager({ ..., dpop: { signer } })
 * ```
 * @see RFC 9449 §4.2 (the proof), RFC 7518 §3.4 (the ES256 signature format)
 */
export interface DPoPSigner {
  /** The public P-256 key as a JWK (`kty` `EC`, `crv` `P-256`, `x`, `y`), or a promise of it. */
  publicJwk: JsonWebKey | PromiseLike<JsonWebKey>
  /**
   * Signs `data` with ES256 (ECDSA P-256, SHA-256): resolves with the raw signature, `r` then `s`,
   * 64 bytes (IEEE P1363), not the DER encoding most native APIs return.
   */
  sign(data: Uint8Array): Promise<ArrayBuffer | Uint8Array>
}

interface Key {
  sign: DPoPSigner['sign']
  header: string
  jkt: string
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGN = { name: 'ECDSA', hash: 'SHA-256' }

/** The `iat` of a JWT in ms, read without checking it: the server's time is all it tells here. */
const iatOf = (jwt: unknown): number | undefined => {
  try {
    return JSON.parse(atob((jwt as string).split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).iat * 1000
  } catch {}
}

/**
 * One ES256 key per client: a platform signer, or a key loaded from the store, or created once
 * (under a cross-tab lock, so concurrent first use in any number of tabs makes exactly one key)
 * with a non-extractable private part. Proofs are assembled by hand: one sign per proof, the header
 * encoded once per key.
 */
export function createDPoP(
  crypto: WebCrypto,
  keys: KeyStore | DPoPSigner,
  id: string,
  lock: <T>(fn: () => Promise<T>) => Promise<T>,
  emit: Emit,
): DPoP {
  const warn = warner(emit)
  const nonces = new Map<string, string>()
  let key: Promise<Key> | undefined
  // The store's key pair, signing like a platform signer.
  const storeSigner = async (store: KeyStore): Promise<DPoPSigner> => {
    const pair =
      ((await store.get(id).catch(() => warn('key_store_unavailable'))) as CryptoKeyPair | undefined) ??
      (await lock(async () => {
        let p = (await store.get(id).catch(() => {})) as CryptoKeyPair | undefined
        if (!p) {
          // Invariant 3: the private key is never extractable; it is stored as a CryptoKey object only.
          p = await crypto.subtle.generateKey(ALG, false, ['sign', 'verify'])
          await store.set(id, p).catch(() => warn('key_not_persisted'))
        }
        return p
      }))
    return { publicJwk: crypto.subtle.exportKey('jwk', pair.publicKey), sign: (data) => crypto.subtle.sign(SIGN, pair.privateKey, data as BufferSource) }
  }
  const load = async (): Promise<Key> => {
    const { publicJwk, sign } = 'sign' in keys ? keys : await storeSigner(keys)
    const { x, y } = await publicJwk
    if (!x || !y) invalid('dpop.signer')
    const jwk = { crv: 'P-256', kty: 'EC', x, y }
    return {
      sign,
      header: b64uJSON({ typ: 'dpop+jwt', alg: 'ES256', jwk }),
      jkt: await sha256(crypto, JSON.stringify(jwk)),
    }
  }

  const get = () => (key ??= load().catch((e) => ((key = undefined), Promise.reject(e))))

  const dpop: DPoP = {
    offset: 0,
    jkt: async () => (await get()).jkt,
    async proof(htm, url, ath) {
      const { sign, header } = await get()
      const u = new URL(url)
      // JSON leaves out the claims that are undefined (ath off the resource server, nonce unknown).
      // jti: randomUUID is the fastest where there is one; 128 random bits are as unique elsewhere.
      const claims = { jti: crypto.randomUUID?.() ?? random(crypto, 16), htm, htu: u.origin + u.pathname, iat: Math.floor((now() + dpop.offset) / 1000), ath, nonce: nonces.get(u.origin) }
      const input = header + '.' + b64uJSON(claims)
      return input + '.' + b64u(await sign(encoder.encode(input)))
    },
    learn(url, response, body) {
      const value = response.headers.get('dpop-nonce')
      if (value) nonces.set(new URL(url).origin, value)
      // The `iat` of a token in the body (an ID token's, else a JWT access token's), then the Date
      // header where it is readable, which wins. To the second, rounded down: a proof may look up to
      // a second older. Expiry never uses this (it counts from arrival).
      for (const time of [iatOf(body?.id_token ?? body?.access_token), Date.parse(response.headers.get('date')!)]) {
        if (!(time! > 0)) continue
        const offset = time! - now()
        if (Math.abs(offset - dpop.offset) >= 1000) emit('measure', { name: 'clock_offset', offset })
        dpop.offset = offset
      }
    },
    async reset(remove) {
      key = undefined
      nonces.clear()
      // A platform signer's key is the app's: logout leaves it where it is.
      if (remove && !('sign' in keys)) await keys.delete(id).catch(() => {})
    },
  }
  return dpop
}

/**
 * Invariant 5: the DPoP retries of one request, once for each reason: the server asks for a (new)
 * nonce (RFC 9449 §8, §9; measured as `nonce` on `server`), or refused a proof (`invalid_dpop_proof`)
 * that the server's time, learnt since it was dated (`datedAt`: the offset then), says was more than
 * 5 s off. Never answered by a refresh: a refresh spent on a nonce burns a rotation for nothing.
 * The returned function tells whether to retry the refusal `res` (whose OAuth `error` is given).
 */
export function dpopRetries(dpop: DPoP, emit: Emit, server: 'as' | 'api') {
  const retried = new Set<string>()
  return (res: Response, error: string | undefined, datedAt: number) => {
    const why =
      (res.headers.has('dpop-nonce') && error == 'use_dpop_nonce') || (error == 'invalid_dpop_proof' && Math.abs(dpop.offset - datedAt) > 5000) ? error : undefined
    if (!why || retried.has(why)) return false
    retried.add(why)
    if (why == 'use_dpop_nonce') emit('measure', { name: 'nonce', server })
    return true
  }
}
