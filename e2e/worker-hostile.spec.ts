import { playwrightOf } from './engines/index.js'
import { expect, test, type Demo } from './fixtures.js'
import { expectText, runAction, signIn, sleep } from './helpers.js'
import { found, heapSnapshot, issuedTokens, workerUrl } from './worker-helpers.js'

// A hostile script in the page (an XSS, a compromised dependency), running before the app, tries
// every way worker mode has been broken before: the BroadcastChannels latchkey uses (asking for the
// session with `hello`, offering a forged one), every record of every IndexedDB store (signing with
// every CryptoKey it finds), Cache Storage and Web Storage, and in SharedWorker mode a connection of
// its own to the worker, posting malformed messages. In-page mode is the control: the same script
// finds the session there, so a pass in worker mode is not a blind script's.
// In every engine: the demo's server puts the script in a <script> ahead of the app's (WebKit's
// driver here has no `addInitScript`). The V8 heap snapshot of the page, taken over the DevTools
// protocol, in Chromium only.

interface Loot {
  text: string
  databases: string[]
  keysFound: number
  keysUsable: number
  replies: string[]
  channelMessages: number
}

/** The hostile script, installed before any of the app's code runs (the app's page loads it first). */
function installHostileScript(demo: Demo, forge: boolean) {
  const hostile = ({ clientId, tokenEndpoint, forge }: { clientId: string; tokenEndpoint: string; forge: boolean }) => {
    const loot: string[] = []
    const replies: string[] = []
    let channelMessages = 0
    const text = (value: unknown) =>
      JSON.stringify(value, (_, v) => (v instanceof ArrayBuffer ? new TextDecoder().decode(v) : v instanceof ReadableStream ? '[stream]' : v)) ?? String(value)
    const forged = { type: 'tokens', epoch: 999, gen: 999, session: { at: 'forged-access-token', rt: 'forged-refresh-token', type: 'Bearer', exp: Date.now() + 3_600_000 } }

    // Every channel name latchkey uses, and any other the app opens.
    const Channel = BroadcastChannel
    const channels: BroadcastChannel[] = []
    const listen = (name: string) => {
      const channel = new Channel(name)
      channel.onmessage = (e) => (channelMessages++, loot.push(text(e.data)))
      channels.push(channel)
    }
    const names = ['latchkey:' + clientId + '@' + tokenEndpoint, 'latchkey-worker:' + clientId]
    names.forEach(listen)
    globalThis.BroadcastChannel = class extends Channel {
      constructor(name: string) {
        super(name)
        if (!names.includes(name)) names.push(name), listen(name)
      }
    }
    let rounds = 0
    const pester = setInterval(() => {
      for (const channel of channels) channel.postMessage({ type: 'hello' }), forge && channel.postMessage(forged)
      if (++rounds >= 100) clearInterval(pester)
    }, 100)

    // SharedWorker mode: a connection of its own to the app's worker, and malformed messages on it.
    const Shared = globalThis.SharedWorker
    if (Shared)
      globalThis.SharedWorker = class extends Shared {
        constructor(url: string | URL, options?: string | WorkerOptions) {
          super(url, options)
          const { port } = new Shared(url, options)
          port.onmessage = (e) => replies.push(text(e.data))
          let deep: unknown = 'bottom'
          for (let n = 0; n < 1000; n++) deep = { deep }
          const messages = [
            null,
            'a string',
            deep,
            { i: 1, m: 'getAccessToken', a: [] },
            { i: 2, m: '__proto__', a: [] },
            { i: 3, m: 'setTokens', a: [deep] },
            { i: 4, m: 'fetch', a: [{ url: 'x', init: { headers: [[1, 2]] } }] },
            { i: 5, m: 'restore', a: ['x'.repeat(32 * 1024 * 1024)] },
            forged,
            { type: 'hello' },
            { i: 6, m: 'dpopThumbprint', a: [] },
          ]
          for (const message of messages) port.postMessage(message)
        }
      }

    async function attack(): Promise<Loot> {
      const request = <T>(r: IDBRequest<T>) => new Promise<T>((resolve, reject) => ((r.onsuccess = () => resolve(r.result)), (r.onerror = () => reject(r.error))))
      const keys: CryptoKey[] = []
      const walk = (value: unknown, depth = 0): void => {
        if (depth > 10) return
        if (value instanceof CryptoKey) return void keys.push(value)
        if (typeof value == 'string') return void loot.push(value)
        if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return void loot.push(new TextDecoder().decode(value as ArrayBuffer))
        if (value && typeof value == 'object') for (const v of Object.values(value)) walk(v, depth + 1)
      }
      const databases = (await indexedDB.databases()).map((d) => d.name!).filter(Boolean)
      for (const name of databases) {
        const db = await request(indexedDB.open(name))
        for (const store of Array.from(db.objectStoreNames)) {
          const s = db.transaction(store, 'readonly').objectStore(store)
          walk(await request(s.getAllKeys()))
          walk(await request(s.getAll()))
        }
        db.close()
      }
      // Non-extractable stops an export, not a use: sign, encrypt, decrypt with whatever was found.
      let keysUsable = 0
      const data = new TextEncoder().encode('{"htm":"DELETE","htu":"https://api.example/admin"}')
      for (const key of keys) {
        if (key.type == 'public') continue
        const uses = [
          () => crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, data),
          () => crypto.subtle.sign('HMAC', key, data),
          () => crypto.subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, key, data),
        ]
        for (const use of uses) {
          if (await use().then(() => true, () => false)) {
            keysUsable++
            break
          }
        }
      }
      for (const name of await caches.keys()) {
        const cache = await caches.open(name)
        for (const r of await cache.keys()) loot.push(r.url, (await (await cache.match(r))?.text()) ?? '')
      }
      for (const storage of [localStorage, sessionStorage]) for (let i = 0; i < storage.length; i++) loot.push(storage.key(i)!, storage.getItem(storage.key(i)!)!)
      return { text: loot.join('\n'), databases, keysFound: keys.length, keysUsable, replies, channelMessages }
    }
    Object.defineProperty(globalThis, '__attack', { value: attack })
  }
  const arg = { clientId: demo.config['clientId']!, tokenEndpoint: demo.config['tokenEndpoint']!, forge }
  demo.setBeforeApp(`(${hostile.toString()})(${JSON.stringify(arg)})`)
}

const modes = [
  { name: 'SharedWorker', url: (demo: Demo) => workerUrl(demo, 'shared'), worker: true },
  { name: 'dedicated Worker', url: (demo: Demo) => workerUrl(demo, 'dedicated'), worker: true },
  { name: 'in-page (the control)', url: (demo: Demo) => demo.appUrl, worker: false },
]

for (const mode of modes) {
  test(`a hostile page script, ${mode.name} mode: ${mode.worker ? 'no token, no usable key, and the app keeps working' : 'finds the tokens and signs with the key'}`, async ({ tab: page, engine, demo }) => {
    test.setTimeout(90_000)
    const tokens = issuedTokens(demo)
    // In the control, a forged session would be adopted by the page's own token manager (which has
    // no worker to protect it) and hide the one to be stolen: there the script only asks.
    installHostileScript(demo, mode.worker)
    await signIn(page, demo, mode.url(demo))
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    await runAction(page, 'expire')
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    expect(tokens.access.size).toBeGreaterThanOrEqual(2)
    expect(tokens.refresh.size).toBeGreaterThanOrEqual(2)
    // Let the hostile script keep asking and forging for a while.
    await sleep(1500)
    const loot = await page.evaluate(() => (globalThis as unknown as { __attack(): Promise<Loot> }).__attack())

    if (!mode.worker) {
      expect(found(loot.text, tokens.all()).length).toBeGreaterThan(0)
      expect(loot.keysUsable).toBeGreaterThan(0)
      return
    }
    expect(found(loot.text, tokens.all())).toEqual([])
    expect(found(loot.replies.join('\n'), tokens.all())).toEqual([])
    expect(loot.keysFound).toBe(0)
    expect(loot.keysUsable).toBe(0)
    if (mode.name == 'SharedWorker') {
      // Every malformed message got its typed error on the hostile script's own connection.
      const refused = loot.replies.filter((r) => r.includes('"code":"invalid_message"'))
      expect(refused.length).toBe(10)
      expect(loot.replies.some((r) => /"i":6,"r":"[\w-]{43}"/.test(r))).toBe(true)
    }

    // The app keeps working, on its own DPoP session: no forged Bearer token was adopted.
    await expectText(page, '#status-pill', 'Signed in')
    await expectText(page, '#token-type', 'DPoP')
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    expect(demo.api.counts.lastScheme).toBe('DPoP')
    expect(demo.api.counts.unauthorized['invalid_token'] ?? 0).toBeLessThanOrEqual(1)

    if (engine.name != 'chromium') return
    const heap = await heapSnapshot(playwrightOf(page))
    expect(heap.length).toBeGreaterThan(1_000_000)
    expect(found(heap, tokens.all())).toEqual([])
  })
}
