import { createStore, promisifyRequest } from 'idb-keyval'

/**
 * Where latchkey keeps its CryptoKey objects (the DPoP key pair and, when `persist` is on, the
 * AES-GCM key and the encrypted refresh token). Values are structured-clonable; a store must keep
 * CryptoKey objects as objects, never as exported key material. A key the platform keeps (Secure
 * Enclave, Android Keystore) is plugged in as `dpop.signer` instead.
 *
 * @example
 * ```ts
 * const keyStore: KeyStore = { get: (k) => db.get(k), set: (k, v) => db.put(k, v), delete: (k) => db.del(k) }
 * createTokenManager({ ..., dpop: { keyStore } })
 * ```
 */
export interface KeyStore {
  /** Resolves with the value stored under `key`, or `undefined`. */
  get(key: string): Promise<unknown>
  /** Stores `value` under `key`. May reject (some private modes refuse CryptoKeys); latchkey then keeps the value in memory for the session and emits a `warning`. */
  set(key: string, value: unknown): Promise<void>
  /** Removes `key`. */
  delete(key: string): Promise<void>
}

/** A {@link KeyStore} in memory: keys last as long as the page (or the process). */
export function memoryKeyStore(): KeyStore {
  const map = new Map<string, unknown>()
  return {
    get: async (k) => map.get(k),
    set: async (k, v) => void map.set(k, v),
    delete: async (k) => void map.delete(k),
  }
}

/**
 * A {@link KeyStore} in IndexedDB (through idb-keyval), storing CryptoKey objects themselves, so a
 * non-extractable DPoP key survives reloads without its private part ever being readable.
 *
 * @param dbName IndexedDB database name. @default 'latchkey'
 */
export function indexedDBKeyStore(dbName = 'latchkey'): KeyStore {
  let db: ReturnType<typeof createStore> | undefined
  // Async, so that where there is no IndexedDB every call rejects (callers catch) rather than throws.
  const store = async (mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest | IDBTransaction) =>
    (db ??= createStore(dbName, 'keys'))(mode, (s) => promisifyRequest(fn(s)))
  return {
    get: (k) => store('readonly', (s) => s.get(k)),
    set: (k, v) => store('readwrite', (s) => (s.put(v, k), s.transaction)) as Promise<never>,
    delete: (k) => store('readwrite', (s) => (s.delete(k), s.transaction)) as Promise<never>,
  }
}
