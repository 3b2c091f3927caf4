// Reads everything this origin keeps in browser storage, the way any script on the page could,
// so a visitor can see for themselves that no token is there: every stored value (strings, bytes
// read as UTF-8, nested objects) is compared with every token the demo's authorization server
// issued. Values are described, not dumped.

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
  /** Where an issued token was found (`area › key`), if anywhere. Never the token itself. */
  tokensFound: string[]
}

/** Collects where any of the issued tokens occurs. */
interface Finder {
  tokens: string[]
  found: string[]
}

// Enough to show what is there without turning the panel into a dump.
const MAX_ENTRIES = 50
const MAX_DEPTH = 4
const decoder = new TextDecoder()

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

/** Every string in a stored value: strings, bytes decoded as UTF-8, and what objects hold. */
function strings(value: unknown, depth = 0): string[] {
  if (typeof value === 'string') return [value]
  if (value instanceof ArrayBuffer) return [decoder.decode(value)]
  if (ArrayBuffer.isView(value)) return [decoder.decode(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))]
  if (value === null || typeof value !== 'object' || value instanceof CryptoKey || depth >= MAX_DEPTH) return []
  const entries = value instanceof Map ? [...value.entries()].flat() : Object.values(value)
  return entries.flatMap((v) => strings(v, depth + 1))
}

function check(finder: Finder, where: string, value: unknown): void {
  const texts = strings(value)
  if (finder.tokens.some((token) => texts.some((text) => text.includes(token)))) finder.found.push(where)
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

async function readIndexedDB(finder: Finder): Promise<StorageEntry[]> {
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
          check(finder, `IndexedDB › ${name} › ${storeName} › ${String(key)}`, [key, values[i]])
          entries.push({ key: `${name} › ${storeName} › ${String(key)}`, value: describe(values[i]) })
        })
      }
    } finally {
      db.close()
    }
  }
  return entries
}

function readWebStorage(name: string, storage: Storage, finder: Finder): StorageEntry[] {
  const entries: StorageEntry[] = []
  for (let i = 0; i < Math.min(storage.length, MAX_ENTRIES); i++) {
    const key = storage.key(i)
    if (key === null) continue
    const value = storage.getItem(key) ?? ''
    check(finder, `${name} › ${key}`, [key, value])
    entries.push({ key, value: preview(value) })
  }
  return entries
}

async function readCacheStorage(finder: Finder): Promise<StorageEntry[]> {
  if (!('caches' in globalThis)) return []
  const entries: StorageEntry[] = []
  for (const name of await caches.keys()) {
    const cache = await caches.open(name)
    const requests = await cache.keys()
    for (const request of requests.slice(0, MAX_ENTRIES))
      check(finder, `Cache Storage › ${name}`, [request.url, await (await cache.match(request))?.text()])
    entries.push({ key: name, value: requests.length ? requests.slice(0, MAX_ENTRIES).map((r) => r.url).join(', ') : '(empty)' })
  }
  return entries
}

function readCookies(finder: Finder): StorageEntry[] {
  if (!document.cookie) return []
  return document.cookie.split('; ').slice(0, MAX_ENTRIES).map((pair) => {
    const i = pair.indexOf('=')
    const value = i === -1 ? '' : pair.slice(i + 1)
    check(finder, `document.cookie › ${i === -1 ? pair : pair.slice(0, i)}`, pair)
    return { key: i === -1 ? pair : pair.slice(0, i), value: preview(value) }
  })
}

/**
 * Reads localStorage, sessionStorage, IndexedDB, Cache Storage and the page's cookies, and says
 * where any of `tokens` (the issued token strings) occurs.
 */
export async function inspectStorage(tokens: string[]): Promise<StorageReport> {
  const finder: Finder = { tokens, found: [] }
  const areas: StorageArea[] = [
    { name: 'localStorage', entries: readWebStorage('localStorage', localStorage, finder) },
    { name: 'sessionStorage', entries: readWebStorage('sessionStorage', sessionStorage, finder) },
    { name: 'IndexedDB', entries: await readIndexedDB(finder) },
    { name: 'Cache Storage', entries: await readCacheStorage(finder) },
    { name: 'Cookies (document.cookie)', entries: readCookies(finder) },
  ]
  return { areas, tokensFound: finder.found }
}
