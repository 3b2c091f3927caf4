import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import { expect, type Demo, type EnginePage } from './fixtures.js'

/** Polls quickly at first: every probe is one round trip to the browser. */
const POLL = { intervals: [50, 100, 250, 500] }

/** A probe made while the tab may be navigating (the page's realm goes away): a miss, not a failure. */
const orElse = <R>(probe: Promise<R>, fallback: R): Promise<R> => probe.catch(() => fallback)

/** An element's text with whitespace collapsed (as Playwright's text assertions read it); null without one. */
export const text = (tab: EnginePage, selector: string): Promise<string | null> =>
  tab.evaluate((s) => document.querySelector(s)?.textContent?.replace(/\s+/g, ' ').trim() ?? null, selector)

export const attribute = (tab: EnginePage, selector: string, name: string): Promise<string | null> =>
  tab.evaluate(([s, n]) => document.querySelector(s)?.getAttribute(n) ?? null, [selector, name] as const)

/** Rendered with a box and not `visibility: hidden`, as Playwright's `toBeVisible` means it. */
export const isVisible = (tab: EnginePage, selector: string): Promise<boolean> =>
  tab.evaluate((s) => {
    const element = document.querySelector(s)
    return !!element && element.getClientRects().length > 0 && getComputedStyle(element).visibility !== 'hidden'
  }, selector)

export const isEnabled = (tab: EnginePage, selector: string): Promise<boolean> =>
  tab.evaluate((s) => {
    const element = document.querySelector(s)
    return !!element && !(element as HTMLButtonElement).disabled
  }, selector)

export const isChecked = (tab: EnginePage, selector: string): Promise<boolean> =>
  tab.evaluate((s) => (document.querySelector(s) as HTMLInputElement | null)?.checked ?? false, selector)

/** The texts (whitespace collapsed) of every element matching `selector`. */
export const texts = (tab: EnginePage, selector: string): Promise<string[]> =>
  tab.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent?.replace(/\s+/g, ' ').trim() ?? ''), selector)

/** Waits until the element's whole text is `expected` (or matches it). */
export async function expectText(tab: EnginePage, selector: string, expected: string | RegExp, options: { timeout?: number } = {}): Promise<void> {
  const poll = expect.poll(() => orElse(text(tab, selector), null), { ...POLL, ...options, message: `text of ${selector}` })
  await (typeof expected === 'string' ? poll.toBe(expected) : poll.toMatch(expected))
}

/** Waits until the element's text contains `expected` (or, with `not`, does not). */
export async function expectContains(tab: EnginePage, selector: string, expected: string | RegExp, options: { timeout?: number; not?: boolean } = {}): Promise<void> {
  const { not = false, ...rest } = options
  const matches = async () => {
    const value = await orElse(text(tab, selector), undefined)
    // A probe that missed (the tab navigating) counts against what is expected, either way.
    if (value === undefined) return not
    return typeof expected === 'string' ? (value ?? '').includes(expected) : expected.test(value ?? '')
  }
  await expect.poll(matches, { ...POLL, ...rest, message: `${selector} ${not ? 'without' : 'containing'} ${String(expected)}` }).toBe(!not)
}

export async function expectAttribute(tab: EnginePage, selector: string, name: string, expected: string, options: { timeout?: number } = {}): Promise<void> {
  await expect.poll(() => orElse(attribute(tab, selector, name), null), { ...POLL, ...options, message: `${selector}[${name}]` }).toBe(expected)
}

export async function expectVisible(tab: EnginePage, selector: string, visible = true, options: { timeout?: number } = {}): Promise<void> {
  await expect.poll(() => orElse(isVisible(tab, selector), !visible), { ...POLL, ...options, message: `${selector} ${visible ? 'visible' : 'hidden'}` }).toBe(visible)
}

export async function expectEnabled(tab: EnginePage, selector: string, options: { timeout?: number } = {}): Promise<void> {
  await expect.poll(() => orElse(isEnabled(tab, selector), false), { ...POLL, ...options, message: `${selector} enabled` }).toBe(true)
}

/** Waits until the tab's address is one that `predicate` accepts. */
export async function waitForURL(tab: EnginePage, predicate: (url: URL) => boolean, timeout = 10_000): Promise<URL> {
  await expect.poll(() => orElse(tab.url().then((url) => predicate(new URL(url))), false), { ...POLL, timeout, message: 'the tab\'s URL' }).toBe(true)
  return new URL(await tab.url())
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Signs in through the real authorization server: the demo's button, then the one-click page.
 * `appUrl` picks the mode (`demo.appUrl + '?mode=worker'` for worker mode).
 */
export async function signIn(tab: EnginePage, demo: Demo, appUrl = demo.appUrl): Promise<void> {
  await tab.goto(appUrl)
  // The app wires its buttons before its startup (restore) ends, which the status pill shows; the
  // load event can come first.
  await expectText(tab, '#status-pill', 'Signed out')
  await tab.click('#sign-in')
  await waitForURL(tab, (url) => url.origin === demo.as.issuer && url.pathname.startsWith('/interaction/'))
  await tab.waitForFunction(() => document.readyState === 'complete' && !!document.querySelector('button[type=submit]'))
  await tab.click('button[type=submit]')
  await expectVisible(tab, '#session')
  await expectText(tab, '#status-pill', 'Signed in')
}

/**
 * Clicks one of the demo's action buttons and waits until the action has finished
 * (the button is enabled again), returning the result panel's state and text.
 */
export async function runAction(tab: EnginePage, id: string, options: { timeout?: number } = {}): Promise<{ state: string | null; text: string }> {
  await tab.click(`#${id}`)
  await expectEnabled(tab, `#${id}`, options)
  return { state: await attribute(tab, '#result', 'data-state'), text: (await text(tab, '#result')) ?? '' }
}

/**
 * Reads everything the current origin holds in page-visible storage, serialised to one string:
 * localStorage, sessionStorage, every IndexedDB database/store (keys and values), Cache Storage
 * (request URLs and response bodies) and document.cookie. Bytes are decoded as UTF-8 so a token
 * stored as an ArrayBuffer is found too.
 */
export async function dumpOriginStorage(tab: EnginePage): Promise<{ text: string; idbValues: number; areas: Record<string, number> }> {
  return tab.evaluate(async () => {
    const parts: string[] = []
    const areas: Record<string, number> = {}
    const decoder = new TextDecoder()
    const serialise = (value: unknown, depth = 0): string => {
      if (depth > 8) return '…'
      if (typeof value === 'string') return value
      if (value instanceof CryptoKey) return `CryptoKey(${value.type},extractable=${value.extractable})`
      if (value instanceof ArrayBuffer) return decoder.decode(value)
      if (ArrayBuffer.isView(value)) return decoder.decode(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
      if (value instanceof Blob) return `Blob(${value.size})`
      if (value === null || typeof value !== 'object') return String(value)
      const entries = value instanceof Map ? [...value.entries()] : Object.entries(value)
      return entries.map(([k, v]) => `${serialise(k, depth + 1)}=${serialise(v, depth + 1)}`).join(';')
    }
    const request = <T>(req: IDBRequest<T>) =>
      new Promise<T>((resolve, reject) => {
        req.onsuccess = () => resolve(req.result)
        req.onerror = () => reject(req.error)
      })

    for (const [name, storage] of [['localStorage', localStorage], ['sessionStorage', sessionStorage]] as const) {
      areas[name] = storage.length
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i) ?? ''
        parts.push(`${name}:${key}=${storage.getItem(key)}`)
      }
    }

    let idbValues = 0
    for (const { name } of await indexedDB.databases()) {
      if (!name) continue
      const db = await request(indexedDB.open(name))
      for (const storeName of Array.from(db.objectStoreNames)) {
        const store = db.transaction(storeName, 'readonly').objectStore(storeName)
        const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())])
        idbValues += values.length
        parts.push(`idb:${name}/${storeName}:${serialise(keys)}=>${serialise(values)}`)
      }
      db.close()
    }
    areas['IndexedDB'] = idbValues

    let cached = 0
    for (const cacheName of await caches.keys()) {
      const cache = await caches.open(cacheName)
      for (const req of await cache.keys()) {
        cached += 1
        parts.push(`cache:${cacheName}:${req.url}=${(await (await cache.match(req))?.text()) ?? ''}`)
      }
    }
    areas['Cache Storage'] = cached

    parts.push(`cookie:${document.cookie}`)
    parts.push(`url:${location.href}`, `history.state:${serialise(history.state)}`)
    return { text: parts.join('\n'), idbValues, areas }
  })
}

/** A short label for a token in assertion output: enough to tell tokens apart, not to use one. */
export const redact = (token: string): string => `${token.slice(0, 4)}…${token.slice(-4)} (${token.length} chars)`

/** Labels (see `redact`) of the tokens that occur in `text`. */
export function findTokens(text: string, tokens: Iterable<string>): string[] {
  return [...tokens].filter((token) => text.includes(token)).map(redact)
}

// Chromium's LevelDB compresses blocks with snappy, which can split a long literal; short random
// fragments from several places in each token survive that and still cannot match by chance.
function fragments(token: string): string[] {
  const size = 20
  if (token.length <= size) return [token]
  return [0, Math.floor((token.length - size) / 2), token.length - size].map((start) => token.slice(start, start + size))
}

/**
 * Scans every file of a (closed) browser profile for fragments of the given tokens, as UTF-8
 * and as UTF-16LE (how Chromium keeps localStorage values). Returns `file: token-prefix` hits.
 */
export async function scanProfile(dir: string, tokens: Iterable<string>): Promise<{ files: number; hits: string[] }> {
  const needles = [...tokens].flatMap((token) =>
    fragments(token).flatMap((fragment) => [Buffer.from(fragment, 'utf8'), Buffer.from(fragment, 'utf16le')].map((bytes) => ({ token, bytes }))))
  const hits: string[] = []
  let files = 0
  // Bounded walk: a fresh profile holds a few hundred files, a few levels deep.
  const walk = async (path: string, depth: number): Promise<void> => {
    if (depth > 8 || files > 5000) return
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const full = join(path, entry.name)
      if (entry.isDirectory()) await walk(full, depth + 1)
      else if (entry.isFile() && (await stat(full)).size < 64 * 1024 * 1024) {
        files += 1
        const content = await readFile(full)
        for (const { token, bytes } of needles) {
          if (content.includes(bytes)) hits.push(`${relative(dir, full)}: ${redact(token)}`)
        }
      }
    }
  }
  await walk(dir, 0)
  return { files, hits: [...new Set(hits)] }
}

/** An OAuth client in Node with its own DPoP key, for talking to the demo AS from outside the browser. */
export async function createNodeClient(demo: Demo) {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = await exportJWK(publicKey)
  const jkt = await calculateJwkThumbprint(jwk)
  let nonce: string | undefined

  /** A token request with a fresh proof, answering at most one nonce challenge. */
  async function tokenRequest(params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const url = demo.config.tokenEndpoint
    for (let attempt = 0; attempt < 2; attempt++) {
      const proof = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: url, ...(nonce ? { nonce } : {}) })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
        .setIssuedAt()
        .sign(privateKey)
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
        body: new URLSearchParams({ client_id: demo.config.clientId, ...params }),
      })
      const body = (await response.json()) as Record<string, unknown>
      nonce = response.headers.get('dpop-nonce') ?? nonce
      if (body['error'] !== 'use_dpop_nonce') return { status: response.status, body }
    }
    throw new Error('the token endpoint kept asking for a DPoP nonce')
  }

  /** Authorization code + PKCE + dpop_jkt through the one-click sign-in page, with a cookie jar. */
  async function signIn(): Promise<Record<string, unknown>> {
    const verifier = randomBytes(32).toString('base64url')
    const authorize = new URL(demo.config.authorizationEndpoint)
    for (const [name, value] of Object.entries({
      client_id: demo.config.clientId,
      response_type: 'code',
      redirect_uri: demo.config.redirectUri,
      scope: demo.config.scope,
      state: randomUUID(),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: demo.config.apiOrigin,
      dpop_jkt: jkt,
    })) authorize.searchParams.set(name, value)

    const jar = new Map<string, string>()
    const go = async (url: URL, method = 'GET') => {
      const response = await fetch(url, { method, redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } })
      for (const cookie of response.headers.getSetCookie()) {
        const [pair = ''] = cookie.split(';')
        const i = pair.indexOf('=')
        jar.set(pair.slice(0, i), pair.slice(i + 1))
      }
      return response
    }
    let url = authorize
    // authorize → sign-in page → POST → resume → redirect_uri: a handful of hops, never a loop.
    for (let hop = 0; hop < 6; hop++) {
      if (url.href.startsWith(demo.config.redirectUri)) {
        const code = url.searchParams.get('code')
        if (!code) throw new Error(`no code in the redirect: ${url.search}`)
        const { status, body } = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: demo.config.redirectUri, code_verifier: verifier })
        if (status !== 200) throw new Error(`code exchange failed: ${String(body['error'])}`)
        return body
      }
      let response = await go(url)
      if (response.status === 200) {
        const action = /action="([^"]+)"/.exec(await response.text())?.[1]
        if (!action) throw new Error('the sign-in page has no form')
        response = await go(new URL(action, url), 'POST')
      }
      const location = response.headers.get('location')
      if (!location) throw new Error(`expected a redirect from ${url.pathname}, got ${response.status}`)
      url = new URL(location, url)
    }
    throw new Error('too many redirects')
  }

  return { jkt, tokenRequest, signIn }
}
