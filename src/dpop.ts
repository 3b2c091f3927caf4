import type { KeyStore } from './keystore.js'
import { b64u, b64uJSON, encoder, sha256 } from './util.js'

/** @internal The DPoP machinery of one token manager. */
export interface DPoP {
  /** RFC 7638 thumbprint of the public key. */
  jkt(): Promise<string>
  /** A fresh proof for one request (RFC 9449 §4.2). */
  proof(method: string, url: URL | string, ath?: string): Promise<string>
  /** Remembers the `DPoP-Nonce` a response carried, per origin. */
  nonce(url: URL | string, response: Response): void
  /** Forgets the key in memory; with `remove`, deletes it from the store too. */
  reset(remove?: boolean): Promise<void>
}

interface Key {
  pair: CryptoKeyPair
  header: string
  jkt: string
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGN = { name: 'ECDSA', hash: 'SHA-256' }

/**
 * One ES256 key per client: loaded from the store, or created once (under a cross-tab lock, so
 * concurrent first use in any number of tabs makes exactly one key) with a non-extractable private
 * part. Proofs are assembled by hand: one sign per proof, the header encoded once per key.
 */
export function createDPoP(
  store: KeyStore,
  id: string,
  lock: <T>(fn: () => Promise<T>) => Promise<T>,
  warn: (code: string) => void,
): DPoP {
  const nonces = new Map<string, string>()
  let key: Promise<Key> | undefined
  const load = async (): Promise<Key> => {
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
    const { x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey)
    const jwk = { crv: 'P-256', kty: 'EC', x, y }
    return {
      pair,
      header: b64uJSON({ typ: 'dpop+jwt', alg: 'ES256', jwk }),
      jkt: await sha256(JSON.stringify(jwk)),
    }
  }

  const get = () => (key ??= load().catch((e) => ((key = undefined), Promise.reject(e))))

  return {
    jkt: async () => (await get()).jkt,
    async proof(htm, url, ath) {
      const { pair, header } = await get()
      const u = new URL(url)
      // JSON leaves out the claims that are undefined (ath off the resource server, nonce unknown).
      const claims = { jti: crypto.randomUUID(), htm, htu: u.origin + u.pathname, iat: Math.floor(Date.now() / 1000), ath, nonce: nonces.get(u.origin) }
      const input = header + '.' + b64uJSON(claims)
      return input + '.' + b64u(await crypto.subtle.sign(SIGN, pair.privateKey, encoder.encode(input)))
    },
    nonce(url, response) {
      const value = response.headers.get('dpop-nonce')
      if (value) nonces.set(new URL(url).origin, value)
    },
    async reset(remove) {
      key = undefined
      nonces.clear()
      if (remove) await store.delete(id).catch(() => {})
    },
  }
}

/** The server asks for a (new) nonce (RFC 9449 §8, §9): answered by one retry, never by a refresh. */
export const isDPoPNonceError = (res: Response, error: string | undefined) => res.headers.has('dpop-nonce') && error == 'use_dpop_nonce'
