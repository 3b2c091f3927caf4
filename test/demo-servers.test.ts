// The demo servers' switches that other apps rely on: DEMO_EXTRA_ORIGINS (CORS and redirect URIs
// for your own dev server), the API's preflight for the README's ky example, and the issued-token
// list the demo page's storage inspector checks against.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseExtraOrigin, startDemo } from '../demo/server/demo.mjs'
import { startStaticServer } from '../demo/server/static.mjs'

const EXTRA = 'http://localhost:5173'
const EXTRA_CALLBACK = 'http://127.0.0.1:3999/callback'
let demo: Awaited<ReturnType<typeof startDemo>>

beforeAll(async () => {
  demo = await startDemo({ requireNonce: false, extraOrigins: [EXTRA, EXTRA_CALLBACK] })
})
afterAll(() => demo?.stop())

const preflight = (url: string, origin: string, headers: string) =>
  fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers },
  })

describe('DEMO_EXTRA_ORIGINS', () => {
  it('parses origins and redirect URIs', () => {
    expect(parseExtraOrigin('http://localhost:5173')).toEqual({ origin: EXTRA, redirectUri: EXTRA + '/' })
    expect(parseExtraOrigin(EXTRA_CALLBACK)).toEqual({ origin: 'http://127.0.0.1:3999', redirectUri: EXTRA_CALLBACK })
    expect(() => parseExtraOrigin('localhost:5173')).toThrow(TypeError)
  })

  it('lets the extra origins call the API, with the headers latchkey and the README send', async () => {
    for (const origin of [EXTRA, 'http://127.0.0.1:3999']) {
      const res = await preflight(demo.api.origin + '/api/me', origin, 'authorization,dpop,x-request-id')
      expect(res.headers.get('access-control-allow-origin')).toBe(origin)
      expect(res.headers.get('access-control-allow-headers')?.toLowerCase().split(/,\s*/)).toEqual(
        expect.arrayContaining(['authorization', 'dpop', 'x-request-id']),
      )
    }
    const res = await fetch(demo.api.origin + '/api/me', { headers: { origin: EXTRA } })
    expect(res.headers.get('access-control-expose-headers')).toBe('DPoP-Nonce, WWW-Authenticate, Date')
    const other = await preflight(demo.api.origin + '/api/me', 'http://evil.example', 'authorization')
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('lets the extra origins call the token endpoint, and accepts their redirect URIs', async () => {
    const res = await preflight(demo.config.tokenEndpoint, EXTRA, 'dpop,content-type')
    expect(res.headers.get('access-control-allow-origin')).toBe(EXTRA)
    // The server's time is readable cross-origin: latchkey dates DPoP proofs by it.
    const token = await fetch(demo.config.tokenEndpoint, { method: 'POST', headers: { origin: EXTRA } })
    expect(token.headers.get('access-control-expose-headers')?.split(/,\s*/)).toContain('Date')
    const authorize = (redirectUri: string) => {
      const url = new URL(demo.config.authorizationEndpoint)
      const q = { client_id: 'spa', response_type: 'code', redirect_uri: redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's' }
      for (const [k, v] of Object.entries(q)) url.searchParams.set(k, v)
      return fetch(url, { redirect: 'manual' })
    }
    for (const uri of [EXTRA + '/', EXTRA_CALLBACK]) expect(new URL((await authorize(uri)).headers.get('location')!, demo.as.issuer).pathname).toMatch(/^\/interaction\//)
    expect((await authorize('http://127.0.0.1:4000/')).status).toBe(400)
  })
})

describe('/demo/issued-tokens', () => {
  // What it lists after a sign-in is checked in the browser (e2e/demo-truth.spec.ts).
  it('answers JSON that no cache keeps', async () => {
    const res = await fetch(new URL('/demo/issued-tokens', demo.appUrl))
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(await res.json()).toEqual({ tokens: [] })
  })
})

describe('the test-only script before the app', () => {
  it('is absent unless a test sets one; then index.html loads it ahead of the app, under the same CSP', async () => {
    // An app of its own (the demo's build may not exist yet: the e2e suite builds it).
    const root = await mkdtemp(join(tmpdir(), 'latchkey-before-app-'))
    await writeFile(join(root, 'index.html'), '<!doctype html><script type="module" src="/app.js"></script>')
    let source: string | undefined
    const app = await startStaticServer({ root, config: () => ({}), beforeApp: () => source })
    try {
      const page = () => fetch(app.url).then((r) => r.text())
      expect(await page()).not.toContain('before-app.js')
      expect((await fetch(new URL('/demo/before-app.js', app.url))).status).toBe(404)
      source = 'globalThis.__before = 1'
      const html = await page()
      expect(html.indexOf('<script src="/demo/before-app.js"></script>')).toBeGreaterThan(-1)
      expect(html.indexOf('/demo/before-app.js')).toBeLessThan(html.indexOf('<script type="module"'))
      const script = await fetch(new URL('/demo/before-app.js', app.url))
      expect(await script.text()).toBe('globalThis.__before = 1')
      expect(script.headers.get('content-security-policy')).toContain("default-src 'self'")
      source = undefined
      expect(await page()).not.toContain('before-app.js')
    } finally {
      await app.stop()
      await rm(root, { recursive: true, force: true })
    }
  })
})
