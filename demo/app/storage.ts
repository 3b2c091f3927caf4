// Reads everything this origin keeps in browser storage, the way any script on the page could,
// so a visitor can see for themselves that no token is there. Values are described, not dumped.

export interface StorageEntry {
  key: string
  value: string
}

export interface StorageArea {
  name: string
  entries: StorageEntry[]
}

export interface StorageReport {
  areas: StorageArea[]
  /** True when some stored string looks like a JWT (an access token would). */
  jwtFound: boolean
}

// Enough to show what is there without turning the panel into a dump.
const MAX_ENTRIES = 50
const MAX_DEPTH = 4
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/

function preview(text: string): string {
  return text.length > 24 ? `"${text.slice(0, 24)}…" (${text.length} chars)` : JSON.stringify(text)
}

function describeKey(key: CryptoKey): string {
  const algorithm = key.algorithm as KeyAlgorithm & { namedCurve?: string }
  const name = [algorithm.name, algorithm.namedCurve].filter(Boolean).join(' ')
  return `CryptoKey ${name}, ${key.type}, extractable: ${key.extractable}`
}

function describe(value: unknown, depth = 0): string {
  if (value instanceof CryptoKey) return describeKey(value)
  if (typeof value === 'string') return preview(value)
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return `${value.byteLength} bytes`
  if (value === null || typeof value !== 'object') return String(value)
  if (depth >= MAX_DEPTH) return '{…}'
  const record = value as Record<string, unknown>
  if (record['privateKey'] instanceof CryptoKey && record['publicKey'] instanceof CryptoKey) {
    return `CryptoKeyPair { private: ${describeKey(record['privateKey'])} }`
  }
  const parts = Object.entries(record).slice(0, 8).map(([k, v]) => `${k}: ${describe(v, depth + 1)}`)
  return Array.isArray(value) ? `[${parts.map((p) => p.replace(/^\d+: /, '')).join(', ')}]` : `{ ${parts.join(', ')} }`
}

function hasJwt(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return JWT_SHAPE.test(value)
  if (value === null || typeof value !== 'object' || value instanceof CryptoKey || depth >= MAX_DEPTH) return false
  return Object.values(value).some((v) => hasJwt(v, depth + 1))
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

async function readIndexedDB(found: { jwt: boolean }): Promise<StorageEntry[]> {
  if (!('indexedDB' in globalThis) || typeof indexedDB.databases !== 'function') return []
  const entries: StorageEntry[] = []
  for (const { name } of await indexedDB.databases()) {
    if (!name) continue
    const db = await request(indexedDB.open(name))
    // Never stand in the way of the SDK upgrading or deleting its database.
    db.onversionchange = () => db.close()
    try {
      for (const storeName of Array.from(db.objectStoreNames)) {
        const store = db.transaction(storeName, 'readonly').objectStore(storeName)
        const [keys, values] = await Promise.all([
          request(store.getAllKeys(null, MAX_ENTRIES)),
          request(store.getAll(null, MAX_ENTRIES)),
        ])
        if (keys.length === 0) entries.push({ key: `${name} › ${storeName}`, value: '(empty)' })
        keys.forEach((key, i) => {
          found.jwt ||= hasJwt(values[i])
          entries.push({ key: `${name} › ${storeName} › ${String(key)}`, value: describe(values[i]) })
        })
      }
    } finally {
      db.close()
    }
  }
  return entries
}

function readWebStorage(storage: Storage, found: { jwt: boolean }): StorageEntry[] {
  const entries: StorageEntry[] = []
  for (let i = 0; i < Math.min(storage.length, MAX_ENTRIES); i++) {
    const key = storage.key(i)
    if (key === null) continue
    const value = storage.getItem(key) ?? ''
    found.jwt ||= hasJwt(value)
    entries.push({ key, value: preview(value) })
  }
  return entries
}

async function readCacheStorage(): Promise<StorageEntry[]> {
  if (!('caches' in globalThis)) return []
  const entries: StorageEntry[] = []
  for (const name of await caches.keys()) {
    const requests = await (await caches.open(name)).keys()
    entries.push({ key: name, value: requests.length ? requests.slice(0, MAX_ENTRIES).map((r) => r.url).join(', ') : '(empty)' })
  }
  return entries
}

function readCookies(found: { jwt: boolean }): StorageEntry[] {
  if (!document.cookie) return []
  return document.cookie.split('; ').slice(0, MAX_ENTRIES).map((pair) => {
    const i = pair.indexOf('=')
    const value = i === -1 ? '' : pair.slice(i + 1)
    found.jwt ||= hasJwt(value)
    return { key: i === -1 ? pair : pair.slice(0, i), value: preview(value) }
  })
}

/** Reads localStorage, sessionStorage, IndexedDB, Cache Storage and the page's cookies. */
export async function inspectStorage(): Promise<StorageReport> {
  const found = { jwt: false }
  const areas: StorageArea[] = [
    { name: 'localStorage', entries: readWebStorage(localStorage, found) },
    { name: 'sessionStorage', entries: readWebStorage(sessionStorage, found) },
    { name: 'IndexedDB', entries: await readIndexedDB(found) },
    { name: 'Cache Storage', entries: await readCacheStorage() },
    { name: 'Cookies (document.cookie)', entries: readCookies(found) },
  ]
  return { areas, jwtFound: found.jwt }
}
