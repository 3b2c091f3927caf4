import { expect, test } from './fixtures.js'
import { runAction, signIn, text } from './helpers.js'

test('the DPoP private key cannot be exported from the page', async ({ tab, demo }) => {
  await signIn(tab, demo)
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  const shown = await text(tab, '#thumbprint')

  // Look in every IndexedDB store for private CryptoKeys (alone or in a CryptoKeyPair) and try
  // to export each one the ways WebCrypto offers.
  const keys = await tab.evaluate(async () => {
    const request = <T>(req: IDBRequest<T>) =>
      new Promise<T>((resolve, reject) => {
        req.onsuccess = () => resolve(req.result)
        req.onerror = () => reject(req.error)
      })
    const b64u = (bytes: ArrayBuffer) =>
      btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
    const found: { privateKey: CryptoKey; publicKey?: CryptoKey }[] = []
    for (const { name } of await indexedDB.databases()) {
      if (!name) continue
      const db = await request(indexedDB.open(name))
      for (const storeName of Array.from(db.objectStoreNames)) {
        const values = await request(db.transaction(storeName, 'readonly').objectStore(storeName).getAll())
        for (const value of values) {
          if (value instanceof CryptoKey && value.type === 'private') found.push({ privateKey: value })
          else if (value?.privateKey instanceof CryptoKey) found.push(value)
        }
      }
      db.close()
    }
    const report = []
    for (const { privateKey, publicKey } of found) {
      const attempts: Record<string, string> = {}
      for (const format of ['jwk', 'pkcs8', 'raw'] as const) {
        try {
          await crypto.subtle.exportKey(format, privateKey)
          attempts[format] = 'exported'
        } catch (error) {
          attempts[format] = (error as Error).name
        }
      }
      let thumbprint: string | undefined
      if (publicKey) {
        // RFC 7638: the required members in lexicographic order, SHA-256, base64url.
        const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', publicKey)
        thumbprint = b64u(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify({ crv, kty, x, y }))))
      }
      report.push({ extractable: privateKey.extractable, algorithm: privateKey.algorithm.name, usages: privateKey.usages, attempts, thumbprint })
    }
    return report
  })

  expect(keys.length).toBeGreaterThanOrEqual(1)
  for (const key of keys) {
    expect(key.extractable).toBe(false)
    expect(key.usages).toEqual(['sign'])
    expect(Object.values(key.attempts)).not.toContain('exported')
  }
  // The key that cannot be exported is the one the session is bound to.
  expect(keys.map((k) => k.thumbprint)).toContain(shown)
})
