import type { BrowserContext, Page } from 'playwright/test'
import { playwrightOf } from './engines/index.js'
import { expect, test } from './fixtures.js'
import { dumpOriginStorage, expectAttribute, expectContains, expectEnabled, expectText, expectVisible, isChecked, redact, runAction, signIn, text } from './helpers.js'
import { found, heapSnapshot, issuedTokens, workerUrl } from './worker-helpers.js'

// Worker mode in every engine against the real authorization server: the demo at /?mode=worker
// runs its token manager in a module worker (demo/app/auth-worker.ts), and the page holds a handle.

test.describe.configure({ mode: 'parallel' })

/**
 * A script that runs in the page before the app, as an injected script or a compromised
 * dependency would: it replaces fetch, Headers.prototype.set/append and XHR's setRequestHeader
 * and keeps every string they are given.
 */
async function spyOnRequests(context: BrowserContext) {
  await context.addInitScript(() => {
    const seen: string[] = []
    Object.defineProperty(globalThis, '__spied', { value: seen })
    const keep = (...values: unknown[]) => {
      for (const v of values) {
        if (typeof v === 'string') seen.push(v)
        else if (v instanceof Request) seen.push(v.url, ...[...v.headers].flat())
        else if (v && typeof v === 'object') {
          const headers = (v as RequestInit).headers
          if (headers) seen.push(...[...new Headers(headers)].flat())
          if (typeof (v as RequestInit).body === 'string') seen.push((v as RequestInit).body as string)
        }
      }
    }
    const original = globalThis.fetch
    globalThis.fetch = function (input: RequestInfo | URL, init?: RequestInit) {
      keep(input instanceof URL ? input.href : input, init)
      return original.call(this, input, init)
    }
    for (const name of ['set', 'append'] as const) {
      const method = Headers.prototype[name]
      Headers.prototype[name] = function (this: Headers, key: string, value: string) {
        keep(key, value)
        return method.call(this, key, value)
      }
    }
    // It also keeps every Worker the app starts, to talk to it itself.
    const workers: Worker[] = []
    Object.defineProperty(globalThis, '__workers', { value: workers })
    globalThis.Worker = class extends Worker {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options)
        workers.push(this)
      }
    }
    // And every SharedWorker, through a port of its own.
    const OriginalShared = SharedWorker
    globalThis.SharedWorker = class extends OriginalShared {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options)
        workers.push(new OriginalShared(url, options).port as unknown as Worker)
      }
    }
    const setRequestHeader = XMLHttpRequest.prototype.setRequestHeader
    XMLHttpRequest.prototype.setRequestHeader = function (this: XMLHttpRequest, key: string, value: string) {
      keep(key, value)
      return setRequestHeader.call(this, key, value)
    }
  })
  return (page: Page) => page.evaluate(() => (globalThis as unknown as { __spied: string[] }).__spied.join('\n'))
}

test('worker mode: sign in, call the API with DPoP, recover from a rejected token, sign out', async ({ tab, demo }) => {
  await signIn(tab, demo, workerUrl(demo))
  await expectText(tab, '#mode-name', 'Worker mode (SharedWorker)')
  await expectVisible(tab, '#mode-note')
  expect(demo.as.counts.authorizationCode).toBe(1)
  // Back at /?mode=worker, without the code and state.
  expect(new URL(await tab.url()).search).toBe('?mode=worker')
  await expectText(tab, '#token-type', 'DPoP')

  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  const me = JSON.parse((await text(tab, '#result pre')) ?? '{}')
  expect(me.sub).toBe('demo')
  expect(demo.api.counts.lastScheme).toBe('DPoP')
  // The key that signed the API's proofs is the worker's, the one the page shows.
  await expectText(tab, '#thumbprint', me.jkt)

  await runAction(tab, 'expire')
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect(demo.api.counts.unauthorized.invalid_token).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)
  await expectText(tab, '#refresh-count', '1')

  await tab.click('#sign-out')
  await expectText(tab, '#status-pill', 'Signed out')
  await expect.poll(() => demo.as.counts.revocations).toBe(1)
})

test.describe('with 4-second access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 4 } })

  test('worker mode: after the access token expires, the next call refreshes exactly once', { tag: '@once' }, async ({ tab, demo }) => {
    await signIn(tab, demo, workerUrl(demo))
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await expectAttribute(tab, '#session .countdown', 'data-state', 'due', { timeout: 10_000 })
    // (With one token per API, the first call itself got the API's token with a refresh_token grant.)
    const before = demo.as.counts.refreshToken
    const generation = Number(await text(tab, '#generation'))
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.refreshToken - before).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    await expectText(tab, '#generation', String(generation + 1))
  })
})

test('worker mode refuses persistence: the toggle is off and disabled; the session lives on in the SharedWorker across a reload where the engine keeps the worker (Chromium), and nothing of it is stored', async ({ tab, engine, demo }) => {
  await tab.goto(demo.appUrl)
  // Chosen in in-page mode, the preference does not reach worker mode.
  await tab.evaluate(() => void Object.defineProperty(globalThis, '__e2eOldDocument', { value: true }))
  await tab.click('#persist')
  await tab.waitForFunction(() => !('__e2eOldDocument' in globalThis) && document.getElementById('status-pill')?.dataset['state'] === 'out')
  expect(await isChecked(tab, '#persist')).toBe(true)
  await signIn(tab, demo, workerUrl(demo))
  expect(await isChecked(tab, '#persist')).toBe(false)
  expect(await tab.evaluate(() => (document.getElementById('persist') as HTMLInputElement).disabled)).toBe(true)
  await expectContains(tab, '#reload-note', "the SharedWorker's memory only")
  // The demo says what this engine does with the worker at a reload.
  await expectContains(tab, '#reload-note', engine.name == 'chromium' ? 'outlives a reload' : 'a reload signs you out')
  await tab.reload()
  if (engine.name == 'chromium') {
    // extendedLifetime keeps the worker, and the session in its memory, through the reload.
    await expectText(tab, '#status-pill', 'Signed in')
  } else {
    // An engine difference: Firefox and WebKit ignore extendedLifetime, so the reload of the only
    // tab ends the worker, and the session in its memory with it (nothing was stored to restore).
    await expectText(tab, '#status-pill', 'Signed out')
  }
  expect(demo.as.counts.refreshToken).toBe(0)
  const stored = await dumpOriginStorage(tab)
  expect(stored.idbValues).toBe(0)
})

test('worker mode, two tabs: the second adopts the session, one refresh per storm, sign-out everywhere', async ({ tab: page, engine, demo }) => {
  await signIn(page, demo, workerUrl(demo))
  const second = await engine.newPage()
  await second.goto(workerUrl(demo))
  await expectText(second, '#status-pill', 'Signed in')
  await expectContains(second, '#events', 'session joined in the SharedWorker')
  expect(demo.as.counts.authorizationCode).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(0)
  const tabs = [page, second]
  for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')

  // The API rejects every token so far: both tabs' 30 calls each get a 401 at about the same time.
  await runAction(page, 'expire')
  const before = { ...demo.as.counts }
  for (const tab of tabs) await tab.fill('#batch-size', '30')
  await Promise.all(tabs.map((tab) => tab.dispatchClick('#call-many')))
  for (const tab of tabs) {
    await expectEnabled(tab, '#call-many', { timeout: 20_000 })
    await expectAttribute(tab, '#result', 'data-state', 'ok')
  }
  expect(demo.as.counts.refreshToken - before.refreshToken).toBe(1)
  expect(demo.as.counts.invalidGrant).toBe(0)
  expect(demo.as.counts.grantsRevoked).toBe(0)
  const generations = await Promise.all(tabs.map((tab) => text(tab, '#generation')))
  expect(new Set(generations).size).toBe(1)

  await second.click('#sign-out')
  for (const tab of tabs) await expectText(tab, '#status-pill', 'Signed out')
  // One session, one logout: every tab hears it as its own.
  await expectContains(page, '#events', 'signed out; refresh token revoked')
  await expect.poll(() => demo.as.counts.revocations).toBe(1)
})

for (const mode of ['worker', 'in-page'] as const) {
  // Chromium only: the heap snapshot comes over the DevTools protocol.
  test(`isolation, ${mode} mode: a heap snapshot of the page and a script that replaced fetch and Headers ${mode == 'worker' ? 'find no token' : 'find the access token'}`, { tag: '@cdp' }, async ({ tab, demo }) => {
    const page = playwrightOf(tab)
    const tokens = issuedTokens(demo)
    const spied = await spyOnRequests(page.context())
    await signIn(tab, demo, mode == 'worker' ? workerUrl(demo) : demo.appUrl)
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await runAction(tab, 'expire')
    expect((await runAction(tab, 'call-api')).state).toBe('ok')
    expect((await runAction(tab, 'call-many')).state).toBe('ok')
    expect(tokens.access.size).toBe(2)
    expect(tokens.refresh.size).toBe(2)

    // The hostile script talks to the app's worker itself, asking for a token every way it can.
    const answers = await page.evaluate(async (api) => {
      const [worker] = (globalThis as unknown as { __workers: Worker[] }).__workers
      if (!worker) return []
      const asks = ['getAccessToken', 'status', 'restore', 'dpopThumbprint', 'refresh', 'session', 'tokens', 'constructor', '__proto__', 'toString', 'issuer']
      const replies: unknown[] = []
      worker.addEventListener('message', (e: MessageEvent) => replies.push(e.data))
      ;(worker as unknown as MessagePort).start?.()
      asks.forEach((m, n) => worker.postMessage({ i: 1000 + n, m, a: [] }))
      worker.postMessage({ i: 2000, m: 'fetch', a: [{ url: api + '/api/me', init: { headers: [] } }] })
      await new Promise((r) => setTimeout(r, 2000))
      return replies.map((r) => JSON.stringify(r, (_, v) => (v instanceof ArrayBuffer ? new TextDecoder().decode(v) : v instanceof ReadableStream ? '[stream]' : v)))
    }, demo.api.origin)
    if (mode == 'worker') {
      expect(answers.length).toBeGreaterThanOrEqual(12)
      expect(answers.join('\n')).toContain('message refused: not a method')
      expect(found(answers.join('\n'), tokens.all())).toEqual([])
    }

    const heap = await heapSnapshot(page)
    const requests = await spied(page)
    // The spy is in place and saw the app's own requests.
    expect(requests).toContain('/config.json')
    expect(heap.length).toBeGreaterThan(1_000_000)
    if (mode == 'worker') {
      expect(found(heap, tokens.all())).toEqual([])
      expect(found(requests, tokens.all())).toEqual([])
    } else {
      // The same checks can fail: in the page, the current access token is in memory and in the header the spy saw.
      const current = [...tokens.access].at(-1)!
      expect(found(heap, [current])).toEqual([redact(current)])
      expect(found(requests, [current])).toEqual([redact(current)])
    }
  })
}
