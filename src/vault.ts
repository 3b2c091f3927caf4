// Reload survival (opt-in `persist`): the DPoP-bound refresh token, AES-GCM encrypted under a
// non-extractable key, in the key store. Invariant 1: never an access token, never a plain string.
import type { KeyStore } from './keystore.js'
import { encoder, type WebCrypto } from './util.js'

/** A refresh token as the vault gives it back: no access token, its generation and logout epoch. */
export interface StoredSession {
  type: 'DPoP'
  rt: string
  generation: number
  logoutEpoch: number
}

interface Record {
  key: CryptoKey
  data: ArrayBuffer
  generation: number
  logoutEpoch: number
}

export type Vault = ReturnType<typeof createVault>

export function createVault(crypto: WebCrypto, store: KeyStore, id: string, warn: (code: string) => void) {
  const name = 'rt:' + id
  // Every save makes a new key, so the zero IV never meets the same key twice.
  const gcm = { name: 'AES-GCM', iv: new Uint8Array(12), additionalData: encoder.encode(id) }
  const forget = () => store.delete(name).catch(() => {})
  return {
    forget,
    /** Keeps the refresh token of `s`, if its tokens are DPoP-bound (`tokenType`); otherwise forgets. */
    async save(s: { rt?: string | undefined; generation: number; logoutEpoch: number }, tokenType: string) {
      try {
        if (!s.rt || tokenType != 'DPoP') return await forget()
        const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
        const data = await crypto.subtle.encrypt(gcm, key, encoder.encode(s.rt))
        await store.set(name, { key, data, generation: s.generation, logoutEpoch: s.logoutEpoch } satisfies Record)
      } catch {
        warn('session_not_persisted')
      }
    },
    async load(): Promise<StoredSession | undefined> {
      try {
        const r = (await store.get(name)) as Record | undefined
        if (r) return { type: 'DPoP', rt: new TextDecoder().decode(await crypto.subtle.decrypt(gcm, r.key, r.data)), generation: r.generation, logoutEpoch: r.logoutEpoch }
      } catch {
        await forget()
      }
    },
  }
}
