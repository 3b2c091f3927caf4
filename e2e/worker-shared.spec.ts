import { expect, test } from './fixtures.js'
import { expectAttribute, expectContains, expectText, runAction, signIn, text } from './helpers.js'
import { authorizationRequests, callMany, callManyDone, signInAgain, workerUrl } from './worker-helpers.js'

// Worker mode with a SharedWorker, against the real authorization server: one session for every
// tab, held in the worker's memory only. The first test runs in every engine; the deeper ones in
// Chromium only (`@once`), as e2e/worker.spec.ts covers their ground in every engine.

test('SharedWorker: sign in by same-tab redirect with the code bound to the worker key, call the API, and a new tab is signed in with no login', async ({ tab, engine, demo }) => {
  const authorizations = authorizationRequests(demo)
  await signIn(tab, demo, workerUrl(demo))
  await expectText(tab, '#mode-name', 'Worker mode (SharedWorker)')
  expect(new URL(await tab.url()).search).toBe('?mode=worker')
  expect(demo.as.counts.authorizationCode).toBe(1)
  expect(authorizations).toHaveLength(1)
  const jkt = authorizations[0]!.get('dpop_jkt')
  expect(authorizations[0]!.get('code_challenge_method')).toBe('S256')

  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  const me = JSON.parse((await text(tab, '#result pre')) ?? '{}')
  if (engine.name == 'chromium') {
    // extendedLifetime kept the worker (and its key) alive during the redirect: the code was bound to that key.
    await expectText(tab, '#thumbprint', jkt!)
    expect(me.jkt).toBe(jkt)
  } else {
    // An engine difference: Firefox and WebKit end the SharedWorker with the page's navigation
    // (they ignore extendedLifetime), so the demo asks for no dpop_jkt there; PKCE binds the code,
    // and the tokens are bound to the key of the worker that exchanged it.
    expect(jkt).toBeNull()
    await expectText(tab, '#thumbprint', me.jkt)
  }
  expect(demo.api.counts.lastScheme).toBe('DPoP')

  const second = await engine.newPage()
  await second.goto(workerUrl(demo))
  await expectText(second, '#status-pill', 'Signed in')
  await expectContains(second, '#events', 'session joined in the SharedWorker')
  expect(demo.as.counts.authorizationCode).toBe(1)
  expect(authorizations).toHaveLength(1)
  expect(demo.as.counts.refreshToken).toBe(0)
  await expectText(second, '#thumbprint', me.jkt)
  expect((await runAction(second, 'call-api')).state).toBe('ok')
})

test.describe('with 4-second access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 4 } })

  test('SharedWorker: after expiry, 3 tabs × 20 concurrent calls make exactly one token request', { tag: '@once' }, async ({ tab: page, engine, demo }) => {
    await signIn(page, demo, workerUrl(demo))
    const tabs = [page, await engine.newPage(), await engine.newPage()]
    for (const tab of tabs.slice(1)) {
      await tab.goto(workerUrl(demo))
      await expectText(tab, '#status-pill', 'Signed in')
    }
    // Each tab's first call (the API's own token needs a refresh_token grant with its resource), then the expiry.
    for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await expectAttribute(page, '#session .countdown', 'data-state', 'due', { timeout: 10_000 })
    const before = demo.as.counts.refreshToken
    await Promise.all(tabs.map((tab) => callMany(tab, 20)))
    for (const tab of tabs) expect(await callManyDone(tab)).toBe('ok')
    expect(demo.as.counts.refreshToken - before).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    const generations = await Promise.all(tabs.map((tab) => text(tab, '#generation')))
    expect(new Set(generations).size).toBe(1)
  })
})

test('SharedWorker: a token the API rejects is refreshed once; logout in one tab signs out every tab and revokes the refresh token', { tag: '@once' }, async ({ tab: page, engine, demo }) => {
  await signIn(page, demo, workerUrl(demo))
  const second = await engine.newPage()
  await second.goto(workerUrl(demo))
  await expectText(second, '#status-pill', 'Signed in')
  await runAction(page, 'expire')
  expect((await runAction(second, 'call-api')).state).toBe('ok')
  expect(demo.api.counts.unauthorized.invalid_token).toBe(1)
  expect(demo.as.counts.refreshToken).toBe(1)

  await second.click('#sign-out')
  for (const tab of [page, second]) await expectText(tab, '#status-pill', 'Signed out')
  await expect.poll(() => demo.as.counts.revocations).toBe(1)
  // Signed out for good: a reload of either tab finds no session in the worker.
  await page.reload()
  await expectText(page, '#status-pill', 'Signed out')
  await signInAgain(page, demo, workerUrl(demo))
})

test('SharedWorker: the connection of every closed page is released (10 pages of the app opened and closed)', { tag: ['@once', '@init-script'] }, async ({ tab: page, demo }) => {
  test.setTimeout(120_000)
  // Where the app's SharedWorker is, as the app itself names it.
  await page.addInitScript!(() => {
    const Original = SharedWorker
    globalThis.SharedWorker = class extends Original {
      constructor(url: string | URL, options?: string | WorkerOptions) {
        super(url, options)
        Object.assign(globalThis, { __sharedWorkerUrl: String(url) })
      }
    }
  }, undefined)
  await page.goto(workerUrl(demo))
  await expectContains(page, '#events', 'no session to restore')
  const script = await page.evaluate(() => (globalThis as unknown as { __sharedWorkerUrl: string }).__sharedWorkerUrl)
  // Frames of the app itself, each connecting to the same SharedWorker and then removed; a bare
  // connection afterwards hears how many connections the worker still serves.
  const served = await page.evaluate(
    async ({ url, app }) => {
      const hello = () =>
        new Promise<number>((resolve) => {
          setTimeout(() => resolve(-1), 5000)
          const { port } = new SharedWorker(url, { type: 'module', name: 'latchkey', extendedLifetime: true } as WorkerOptions)
          port.onmessage = ({ data }) => typeof data?.h == 'number' && (resolve(data.h), port.close())
        })
      const open = async () => {
        const frame = document.createElement('iframe')
        frame.src = app
        document.body.append(frame)
        // The app has connected and asked the worker once restore() answered.
        for (let n = 0; n < 400 && !frame.contentDocument?.querySelector('#events')?.textContent?.includes('no session to restore'); n++)
          await new Promise((r) => setTimeout(r, 25))
        frame.remove()
      }
      const before = await hello()
      const started = Date.now()
      for (let round = 0; round < 2; round++) await Promise.all(Array.from({ length: 5 }, open))
      const took = Date.now() - started
      await new Promise((r) => setTimeout(r, 1000))
      return { before, took, after: await hello() }
    },
    { url: script, app: workerUrl(demo) },
  )
  // This page's own connection and the bare ones that asked: none of the 10 closed pages.
  expect(served.before).toBe(2)
  expect(served.after).toBe(3)
})
