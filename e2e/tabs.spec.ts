import type { BrowserContext, Page } from 'playwright/test'
import { expect, test, type CapturedTokens, type Demo } from './fixtures.js'
import { dumpOriginStorage, findTokens, press, runAction, scanProfile, signIn } from './helpers.js'

// Several tabs of one origin = several pages of one persistent Chromium profile. They share one
// session over BroadcastChannel, refresh under one Web Lock, and log out together.

// Every test starts its own servers and profile, so the tests of this file may run side by side.
test.describe.configure({ mode: 'parallel' })

const TABS = 4
const BATCH = 50

/** The authorization server's counters that a token request would move. */
const asCounts = (demo: Demo) => {
  const { authorizationCode, refreshToken, invalidGrant, useDpopNonce } = demo.as.counts
  return { authorizationCode, refreshToken, invalidGrant, useDpopNonce }
}

/** Milliseconds from the page's navigation start until its status pill first shows `state`. */
async function msUntil(page: Page, state: 'in' | 'out'): Promise<number> {
  const handle = await page
    .waitForFunction(
      (want) => document.getElementById('status-pill')?.dataset['state'] === want && performance.now(),
      state,
      { polling: 10, timeout: 5_000 },
    )
    .catch(async () => {
      throw new Error(`the tab never showed signed ${state}; it shows ${await page.locator('#status-pill').textContent()}`)
    })
  return (await handle.jsonValue()) as number
}

/** How long `tm.restore()` took at the tab's startup, as the app logs it. */
async function restoreMs(page: Page): Promise<number> {
  const entry = page.locator('#events li').filter({ hasText: /restore|adopted/ }).last()
  const match = /(\d+) ms/.exec((await entry.textContent()) ?? '')
  if (!match) throw new Error('the app logged no restore time')
  return Number(match[1])
}

/**
 * Opens one more tab of the app and waits until its startup decided signed in or out. Returns the
 * tab, how long that took from navigation start, how long `restore()` itself took, and every
 * request the tab sent to the authorization server on the way.
 */
async function openTab(context: BrowserContext, demo: Demo, expected: 'in' | 'out') {
  const page = await context.newPage()
  const toAS: string[] = []
  page.on('request', (request) => {
    if (new URL(request.url()).origin === demo.as.issuer) toAS.push(`${request.method()} ${request.url()}`)
  })
  await page.goto(demo.appUrl)
  const ms = await msUntil(page, expected)
  await expect(page.locator('#events')).toContainText(expected === 'in' ? 'session adopted from another tab' : 'no session to restore')
  return { page, ms, restoreMs: await restoreMs(page), toAS }
}

/** Switches the demo's "Keep me signed in after a reload" preference (the page reloads). */
async function setPersist(page: Page, demo: Demo, on: boolean): Promise<void> {
  await page.goto(demo.appUrl)
  const toggle = page.locator('#persist')
  await expect(toggle).toBeVisible()
  if ((await toggle.isChecked()) !== on) {
    await Promise.all([page.waitForEvent('load'), press(toggle)])
  }
  await expect(page.locator('#persist')).toBeChecked({ checked: on })
}

type Held = 'decrypt' | 'exportKey' | 'query'

/**
 * Holds back Web API calls in one tab from its first document on, to force a race between tabs into
 * one order: each call of a held method runs at once, but its result reaches the caller only after
 * the test calls `open(name)`. Nothing else about the page changes.
 */
async function holdBack(page: Page, names: Held[]) {
  await page.addInitScript((held: string[]) => {
    const targets: Record<string, object> = {
      decrypt: SubtleCrypto.prototype,
      exportKey: SubtleCrypto.prototype,
      query: LockManager.prototype,
    }
    const state: Record<string, { calls: number; returned: number; open(): void }> = {}
    for (const name of held) {
      const target = targets[name] as Record<string, (...args: unknown[]) => Promise<unknown>>
      const original = target[name]!
      let open!: () => void
      const gate = new Promise<void>((resolve) => (open = resolve))
      const entry = { calls: 0, returned: 0, open }
      state[name] = entry
      target[name] = async function (this: unknown, ...args: unknown[]) {
        entry.calls += 1
        const result = original.apply(this, args)
        await gate
        const value = await result
        entry.returned += 1
        return value
      }
    }
    Object.defineProperty(globalThis, '__e2eHeld', { value: state })
  }, names)
  type State = Record<Held, { calls: number; returned: number; open(): void }>
  return {
    /** Waits until `name` has been called `n` times (and is being held). */
    called: (name: Held, n = 1) =>
      page.waitForFunction(([k, count]) => (globalThis as unknown as { __e2eHeld: State }).__e2eHeld[k].calls >= count, [name, n] as const),
    /** Waits until `n` results of `name` have reached their callers. */
    returned: (name: Held, n = 1) =>
      page.waitForFunction(([k, count]) => (globalThis as unknown as { __e2eHeld: State }).__e2eHeld[k].returned >= count, [name, n] as const),
    open: (name: Held) => page.evaluate((k) => (globalThis as unknown as { __e2eHeld: State }).__e2eHeld[k].open(), name),
  }
}

/**
 * No token the authorization server handed out so far is anywhere in the origin's storage, and
 * every tab's own storage inspector agrees. `tokens` comes from the token endpoint's responses.
 */
async function expectCleanStorage(tabs: Page[], tokens: CapturedTokens): Promise<void> {
  await tokens.settled()
  const all = [...tokens.access, ...tokens.refresh]
  expect(all.length).toBeGreaterThanOrEqual(2)
  for (const tab of tabs) {
    const { text, idbValues } = await dumpOriginStorage(tab)
    expect(idbValues).toBeGreaterThanOrEqual(1) // at least the DPoP key: the reader saw the SDK's store
    expect(findTokens(text, all)).toEqual([])
    expect(findTokens(tab.url(), all)).toEqual([])
    await expect(tab.locator('#storage-verdict')).toHaveAttribute('data-state', 'ok')
  }
}

/** Waits until every tab's access token has expired by the page's own clock. */
async function waitForExpiry(tabs: Page[]): Promise<void> {
  for (const tab of tabs) {
    await expect(tab.locator('#session .countdown')).toHaveAttribute('data-state', 'due', { timeout: 10_000 })
  }
}

/** Starts a batch of `size` concurrent calls in every tab at once; resolves with each tab's result text. */
async function stormAllTabs(tabs: Page[], size: number): Promise<string[]> {
  for (const tab of tabs) await tab.locator('#batch-size').fill(String(size))
  // One CDP round trip per tab, all sent together: the batches start within a few milliseconds.
  await Promise.all(tabs.map((tab) => tab.locator('#call-many').dispatchEvent('click')))
  const texts: string[] = []
  for (const tab of tabs) {
    await expect(tab.locator('#call-many')).toBeEnabled({ timeout: 20_000 })
    texts.push((await tab.locator('#result').textContent()) ?? '')
  }
  return texts
}

/** Each tab's own count of refreshes (the session panel's "Refreshes"). */
const refreshCounts = (tabs: Page[]) =>
  Promise.all(tabs.map(async (tab) => Number(await tab.locator('#refresh-count').textContent())))

/** Signs in in the first tab, then opens the others, each adopting the session from the first. */
async function signInWithTabs(page: Page, context: BrowserContext, demo: Demo): Promise<Page[]> {
  await signIn(page, demo)
  const before = asCounts(demo)
  const tabs = [page]
  for (let i = 1; i < TABS; i++) {
    const tab = await openTab(context, demo, 'in')
    expect(tab.ms, 'navigation start to signed in').toBeLessThan(1_000)
    expect(tab.toAS).toEqual([])
    tabs.push(tab.page)
  }
  expect(asCounts(demo)).toEqual(before)
  const generations = await Promise.all(tabs.map((tab) => tab.locator('#generation').textContent()))
  expect(new Set(generations).size).toBe(1)
  return tabs
}

test.describe('with 8-second access tokens', () => {
  // Short enough to wait for, long enough that 200 calls on a busy two-core machine finish well
  // within the new token's life (due 2 s before expiry): a second refresh would then be legitimate.
  test.use({ demoOptions: { accessTokenTTL: 8 } })

  for (const persist of [false, true]) {
    test(`${TABS} tabs × ${BATCH} concurrent calls right after expiry: one refresh, no invalid_grant, all 200${persist ? ' (persistence on)' : ''}`, async ({ page, context, demo, tokens, userDataDir }) => {
      if (persist) await setPersist(page, demo, true)
      const tabs = await signInWithTabs(page, context, demo)

      // One call per tab first, so each tab holds the API's DPoP nonce and only the refresh is under test.
      for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
      await expectCleanStorage(tabs.slice(-1), tokens)
      await waitForExpiry(tabs)
      // On a busy machine the warm-up may already have refreshed once; the storm is measured on its own.
      const as = { ...demo.as.counts }
      const api = { ...demo.api.counts, unauthorized: { ...demo.api.counts.unauthorized } }
      const refreshesBefore = await refreshCounts(tabs)
      const generation = Number(await page.locator('#generation').textContent())

      const results = await stormAllTabs(tabs, BATCH)

      // Counted at the servers: one refresh_token grant, no rotated token presented twice, every call 200.
      expect({
        refreshTokenGrants: demo.as.counts.refreshToken - as.refreshToken,
        invalidGrants: demo.as.counts.invalidGrant,
        grantsRevoked: demo.as.counts.grantsRevoked,
        apiCallsOk: demo.api.counts.ok - api.ok,
      }).toEqual({ refreshTokenGrants: 1, invalidGrants: 0, grantsRevoked: 0, apiCallsOk: TABS * BATCH })
      for (const text of results) expect(text).toContain(`${BATCH} × GET /api/items`)
      for (const text of results) expect(text).toContain(`Responses: ${BATCH} × 200`)
      // Every request went out once, with a fresh token: no 401 and no retry anywhere.
      expect(demo.api.counts.requests - api.requests).toBe(TABS * BATCH)
      expect(demo.api.counts.unauthorized.invalid_token).toBe(api.unauthorized.invalid_token)

      // One tab refreshed; the three others took its tokens, and all tabs hold the same generation.
      const refreshes = (await refreshCounts(tabs)).map((n, i) => n - refreshesBefore[i]!)
      expect(refreshes.reduce((a, b) => a + b)).toBe(1)
      const adopted = await Promise.all(tabs.map((tab) =>
        tab.locator('#events .text').filter({ hasText: new RegExp(`^tab · DPoP · .* · generation ${generation + 1}$`) }).count()))
      expect(adopted.map((n, i) => n + refreshes[i]!)).toEqual(tabs.map(() => 1))
      const generations = await Promise.all(tabs.map((tab) => tab.locator('#generation').textContent()))
      expect(new Set(generations)).toEqual(new Set([String(generation + 1)]))
      for (const tab of tabs) await expect(tab.locator('#status-pill')).toHaveText('Signed in')
      await expectCleanStorage(tabs, tokens)

      if (persist) {
        // The refresh stored the rotated refresh token: with only the first tab left, its reload
        // restores the session from it (a second refresh), and no old token is ever presented.
        for (const tab of tabs.slice(1)) await tab.close()
        await page.reload()
        await expect(page.locator('#status-pill')).toHaveText('Signed in')
        await expect(page.locator('#events')).toContainText("session restored from this browser's encrypted refresh token")
        expect(demo.as.counts.refreshToken - as.refreshToken).toBe(2)
        expect(demo.as.counts.invalidGrant).toBe(0)
        expect(demo.as.counts.authorizationCode).toBe(1)
        expect((await runAction(page, 'call-api')).state).toBe('ok')
        await expectCleanStorage([page], tokens)

        // Nor on disk, where the encrypted refresh token lives between sessions.
        await tokens.settled()
        await context.close()
        const scan = await scanProfile(userDataDir, [...tokens.access, ...tokens.refresh])
        expect(scan.files).toBeGreaterThan(10)
        expect(scan.hits).toEqual([])
      }
    })
  }
})

test.describe('with 4-second access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 4 } })

  test(`coming back online with ${TABS} tabs and an expired token refreshes once across all tabs`, async ({ page, context, demo, tokens }) => {
    const tabs = await signInWithTabs(page, context, demo)
    await waitForExpiry(tabs)
    const before = demo.as.counts.refreshToken
    const generation = Number(await page.locator('#generation').textContent())

    // Every tab sees `online` at the same moment and asks for a refresh.
    await context.setOffline(true)
    await context.setOffline(false)
    // Each tab ends up with a live token, or signed out if its refresh failed.
    for (const tab of tabs) {
      await expect(tab.locator('#session:not([hidden]) .countdown[data-state="live"]').or(tab.locator('#status-pill[data-state="out"]'))).toBeVisible()
    }
    expect({ refreshTokenGrants: demo.as.counts.refreshToken - before, invalidGrants: demo.as.counts.invalidGrant })
      .toEqual({ refreshTokenGrants: 1, invalidGrants: 0 })
    for (const tab of tabs) await expect(tab.locator('#session .countdown')).toHaveAttribute('data-state', 'live')
    const generations = await Promise.all(tabs.map((tab) => tab.locator('#generation').textContent()))
    expect(new Set(generations)).toEqual(new Set([String(generation + 1)]))
    await expectCleanStorage(tabs, tokens)
  })

  test('logout in tab 1 wins over a refresh in flight in tab 2: no tab gets tokens back, the new refresh token is revoked', async ({ page, context, demo, tokens }) => {
    const tabs = await signInWithTabs(page, context, demo)
    for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await waitForExpiry(tabs)

    // Hold tab 2's refresh at the network until tab 1 has signed out.
    let seen!: () => void
    const refreshSent = new Promise<void>((resolve) => (seen = resolve))
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    await context.route(demo.config.tokenEndpoint, async (route) => {
      if (route.request().postData()?.includes('grant_type=refresh_token')) {
        seen()
        await released
      }
      await route.continue()
    })
    const second = tabs[1]!
    const apiRequests = demo.api.counts.requests
    const refreshGrants = demo.as.counts.refreshToken
    const generation = Number(await page.locator('#generation').textContent())
    await second.locator('#batch-size').fill(String(BATCH))
    await second.locator('#call-many').dispatchEvent('click')
    await refreshSent

    await press(page.locator('#sign-out'))
    for (const tab of tabs.slice(1)) await expect(tab.locator('#status-pill')).toHaveText('Signed out')
    release()
    await expect(page.locator('#status-pill')).toHaveText('Signed out')
    await expect(page.locator('#sign-out')).toBeEnabled()
    await expect(second.locator('#call-many')).toBeEnabled()
    await context.unroute(demo.config.tokenEndpoint)

    // The refresh did happen at the server, and tab 2 threw its result away: its calls never went out.
    await expect(second.locator('#result')).toContainText(`Responses: ${BATCH} × no_session`)
    expect(demo.api.counts.requests).toBe(apiRequests)
    expect(demo.as.counts.refreshToken - refreshGrants).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    await tokens.settled()
    for (const rt of tokens.refresh) {
      const stored = await demo.as.provider.RefreshToken.find(rt)
      expect(stored === undefined || Boolean(stored.consumed), 'every refresh token is revoked or spent').toBe(true)
    }
    // The one the held refresh brought back was revoked outright.
    expect(await demo.as.provider.RefreshToken.find([...tokens.refresh].at(-1)!)).toBeUndefined()

    // Nothing comes back later, in any tab, and no call goes out with a token.
    await page.waitForTimeout(1_000)
    for (const tab of tabs) {
      await expect(tab.locator('#status-pill')).toHaveText('Signed out')
      await expect(tab.locator('#events')).not.toContainText(`generation ${generation + 1}`)
    }
    expect(demo.api.counts.requests).toBe(apiRequests)
    await expectCleanStorage(tabs, tokens)
  })
})

test('a tab opened later is signed in at once, from the other tabs, without a token request', async ({ page, context, demo, tokens }) => {
  // Nobody signed in: a new tab knows at once (no tab holds a session lock), without waiting for
  // answers that cannot come (that wait lasts a second).
  const empty = await openTab(context, demo, 'out')
  expect(empty.restoreMs, 'restore() with no other tab').toBeLessThan(500)
  expect(empty.toAS).toEqual([])
  await empty.page.close()

  await signIn(page, demo)
  // One rotation first, so the later tab must get the current generation, not the login's.
  await runAction(page, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(1)
  await expect(page.locator('#generation')).toHaveText('2')
  const before = asCounts(demo)

  const later = await openTab(context, demo, 'in')
  expect(later.ms, 'navigation start to signed in').toBeLessThan(1_000)
  expect(later.restoreMs, 'restore() answered by the other tab').toBeLessThan(500)
  expect(later.toAS).toEqual([])
  expect(asCounts(demo)).toEqual(before)
  await expect(later.page.locator('#generation')).toHaveText('2')
  await expect(later.page.locator('#token-type')).toHaveText('DPoP')

  // The adopted session works: same DPoP key, the API accepts the call.
  const ok = demo.api.counts.ok
  expect((await runAction(later.page, 'call-api')).state).toBe('ok')
  expect(demo.api.counts.ok).toBe(ok + 1)
  expect(later.toAS).toEqual([])
  await expect(later.page.locator('#thumbprint')).toHaveText((await page.locator('#thumbprint').textContent()) ?? '')
  await expectCleanStorage([page, later.page], tokens)
})

test(`a Retry-After learnt in one tab holds back all ${TABS} tabs: the others send no token request until it passes`, async ({ page, context, demo, tokens }) => {
  const RETRY_AFTER = 8
  const tabs = await signInWithTabs(page, context, demo)
  // One call per tab first, so each tab holds the API's DPoP nonce and only the refresh is under test.
  for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
  const tokenRequests = tabs.map(() => 0)
  tabs.forEach((tab, i) =>
    tab.on('request', (request) => void (request.url() === demo.config.tokenEndpoint && request.method() === 'POST' && tokenRequests[i]!++)))
  const before = asCounts(demo)

  // The API now rejects the shared token, and the token endpoint answers 503 with Retry-After.
  demo.as.setUnavailable(RETRY_AFTER)
  await runAction(page, 'expire')
  const first = await runAction(page, 'call-api')
  expect(first.state).toBe('bad')
  expect(first.text).toContain('invalid_response')
  const learnt = Date.now()
  expect(demo.as.counts.unavailable).toBe(1)

  // Every other tab needs a refresh too: each fails fast with retry_later and sends nothing.
  for (const tab of tabs.slice(1)) {
    const held = await runAction(tab, 'call-api')
    expect(held.state).toBe('bad')
    // Retry-After plus a spread of up to half of it
    expect(held.text).toMatch(/retry_later: .* \(retry in ([1-9]|1[0-2]) s\)/)
  }
  expect(Date.now() - learnt, 'the held-back calls ran inside the wait').toBeLessThan(RETRY_AFTER * 1000)
  expect(tokenRequests).toEqual([1, ...tabs.slice(1).map(() => 0)])
  expect(demo.as.counts.unavailable).toBe(1)
  expect(asCounts(demo)).toEqual(before)

  // Once the wait is over, one refresh in one tab serves them all.
  demo.as.setUnavailable(0)
  await page.waitForTimeout(Math.max(0, learnt + RETRY_AFTER * 1500 + 100 - Date.now()))
  expect((await runAction(tabs[1]!, 'call-api')).state).toBe('ok')
  // (a nonce that changed during the wait costs the refresh one more request: use_dpop_nonce)
  expect(tokenRequests).toEqual([1, 1 + demo.as.counts.useDpopNonce - before.useDpopNonce, ...tabs.slice(2).map(() => 0)])
  expect(demo.as.counts.refreshToken).toBe(before.refreshToken + 1)
  for (const tab of tabs.slice(2)) expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(before.refreshToken + 1)
  await expectCleanStorage(tabs, tokens)
})

test(`logout in tab 1 signs out all ${TABS} tabs; their next call sends no token`, async ({ page, context, demo, tokens }) => {
  const tabs = await signInWithTabs(page, context, demo)
  // Every tab can call the API with the shared session before the logout.
  for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect(demo.api.counts.lastScheme).toBe('DPoP')
  await expectCleanStorage(tabs, tokens)

  await press(page.locator('#sign-out'))
  await expect(page.locator('#signed-out')).toBeVisible()
  await expect(page.locator('#events [data-kind="logout"]').first()).toHaveText('logout')
  await expect(page.locator('#events')).toContainText('signed out; refresh token revoked')

  for (const tab of tabs.slice(1)) {
    await expect(tab.locator('#status-pill')).toHaveText('Signed out')
    await expect(tab.locator('#signed-out')).toBeVisible()
    await expect(tab.locator('#session')).toBeHidden()
    await expect(tab.locator('#events li').filter({ has: tab.locator('[data-kind="logout"]') })).toContainText('signed out in another tab')
  }
  // The page shows the sign-out at once; the revocation request completes after.
  await expect.poll(() => demo.as.counts.revocations).toBe(1)

  // Their next call: the app's "Call API" handler runs (the button is hidden once signed out, so
  // the click is dispatched) and tm.fetch refuses without a session: nothing reaches the API.
  const requests = demo.api.counts.requests
  for (const tab of tabs.slice(1)) {
    await tab.locator('#call-api').dispatchEvent('click')
    await expect(tab.locator('#events li').filter({ has: tab.locator('[data-kind="error"]') }).first()).toContainText('no_session')
  }
  expect(demo.api.counts.requests).toBe(requests)
  expect(demo.as.counts.refreshToken).toBe(0)
  expect(demo.as.counts.invalidGrant).toBe(0)

  // A tab opened now does not find a session either.
  const later = await openTab(context, demo, 'out')
  expect(later.toAS).toEqual([])
  await expectCleanStorage([...tabs, later.page], tokens)
})

test.describe('persistence', () => {
  test('on: reloading the only tab keeps the session without visiting the authorization server', async ({ page, context, demo, tokens, userDataDir }) => {
    await setPersist(page, demo, true)
    await signIn(page, demo)
    await expect(page.locator('#persistence')).toHaveText('keeps the session')
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.authorizationCode).toBe(1)

    // The encrypted refresh token is there, and neither it nor any other token reads as a token.
    const stored = await dumpOriginStorage(page)
    expect(stored.text).toMatch(/idb:[^\n]*rt:spa@/)
    await expectCleanStorage([page], tokens)

    // Twice: the second reload must find the refresh token the first one's rotation stored.
    for (let reload = 1; reload <= 2; reload++) {
      const navigations: string[] = []
      const onNavigate = (frame: { url(): string }) => void navigations.push(new URL(frame.url()).origin)
      page.on('framenavigated', onNavigate)
      await page.reload()
      await expect(page.locator('#status-pill')).toHaveText('Signed in')
      page.off('framenavigated', onNavigate)
      expect(navigations).not.toContain(demo.as.issuer)
      await expect(page.locator('#events')).toContainText("session restored from this browser's encrypted refresh token")
      expect(demo.as.counts.authorizationCode).toBe(1)
      expect(demo.as.counts.refreshToken).toBe(reload)
      expect(demo.as.counts.invalidGrant).toBe(0)
      expect((await runAction(page, 'call-api')).state).toBe('ok')
      await expectCleanStorage([page], tokens)
    }

    // Signing out forgets it: the next reload asks for sign-in.
    await press(page.locator('#sign-out'))
    await expect(page.locator('#signed-out')).toBeVisible()
    await expect(page.locator('#sign-out')).toBeEnabled() // logout() has resolved: revoked and forgotten
    expect(demo.as.counts.revocations).toBe(1)
    await page.reload()
    await expect(page.locator('#status-pill')).toHaveText('Signed out')
    expect((await dumpOriginStorage(page)).text).not.toMatch(/rt:spa@/)
    expect(demo.as.counts.refreshToken).toBe(2)
    expect(demo.as.counts.invalidGrant).toBe(0)

    // The profile on disk holds no token either (LevelDB, SQLite, caches).
    await tokens.settled()
    await context.close()
    const scan = await scanProfile(userDataDir, [...tokens.access, ...tokens.refresh])
    expect(scan.files).toBeGreaterThan(10)
    expect(scan.hits).toEqual([])
  })

  test('on: signing out forgets the stored refresh token at once, even if the tab goes away before the revocation answers', async ({ page, context, demo }) => {
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await dumpOriginStorage(page)).text).toMatch(/idb:[^\n]*rt:spa@/)

    // The revocation request gets no answer: the user signs out and closes or reloads the tab at once.
    const held: Array<{ abort(): Promise<void> }> = []
    await context.route(demo.config.revocationEndpoint, (route) => void held.push(route))
    await press(page.locator('#sign-out'))
    await expect(page.locator('#status-pill')).toHaveText('Signed out')
    await page.reload()
    await expect(page.locator('#status-pill')).toHaveText('Signed out')
    await Promise.all(held.map((route) => route.abort().catch(() => undefined)))
    await context.unroute(demo.config.revocationEndpoint)

    // Signed out, and nothing of that session is left at rest (the refresh token may still be
    // live at the server: its revocation never arrived).
    expect(demo.as.counts.revocations).toBe(0)
    expect((await dumpOriginStorage(page)).text).not.toMatch(/rt:spa@/)
  })

  test(`on: ${TABS} tabs opened at once after the last one closed restore the session with one refresh`, async ({ page, context, demo, tokens }) => {
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    // Like a browser restart that brings back several tabs: no tab holds the session any more.
    const blank = await context.newPage()
    await page.close()
    const tabs = await Promise.all(Array.from({ length: TABS }, () => context.newPage()))
    await Promise.all(tabs.map((tab) => tab.goto(demo.appUrl)))
    for (const tab of tabs) await expect(tab.locator('#status-pill')).toHaveText('Signed in')
    await blank.close()

    expect({
      authorizationCodeGrants: demo.as.counts.authorizationCode,
      refreshTokenGrants: demo.as.counts.refreshToken,
      invalidGrants: demo.as.counts.invalidGrant,
    }).toEqual({ authorizationCodeGrants: 1, refreshTokenGrants: 1, invalidGrants: 0 })
    const generations = await Promise.all(tabs.map((tab) => tab.locator('#generation').textContent()))
    expect(new Set(generations).size).toBe(1)
    for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await expectCleanStorage(tabs, tokens)
  })

  test('on: a tab still reading the stored token when another tab restores adopts that session instead of refreshing again', async ({ page, context, demo, tokens }) => {
    // The same race as above, made deterministic: tab B reads the persisted refresh token slowly
    // (its AES-GCM decrypt is held back), and tab A restores the session meanwhile.
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    const blank = await context.newPage()
    await page.close()

    const slow = await context.newPage()
    const held = await holdBack(slow, ['decrypt'])
    await slow.goto(demo.appUrl)
    // Tab B has found no tab holding a session and is now reading the stored refresh token.
    await held.called('decrypt')

    const fast = await context.newPage()
    await fast.goto(demo.appUrl)
    await expect(fast.locator('#status-pill')).toHaveText('Signed in')
    expect(demo.as.counts.refreshToken).toBe(1)
    // Tab B received tab A's session over BroadcastChannel while it was still reading.
    await expect(slow.locator('#status-pill')).toHaveText('Signed in')
    await expect(slow.locator('#generation')).toHaveText('2')

    await held.open('decrypt')
    await expect(slow.locator('#events')).toContainText(/session (adopted from another tab|restored from this browser)/)
    expect({ refreshTokenGrants: demo.as.counts.refreshToken, invalidGrants: demo.as.counts.invalidGrant })
      .toEqual({ refreshTokenGrants: 1, invalidGrants: 0 })
    await expect(slow.locator('#generation')).toHaveText('2')
    await expect(fast.locator('#generation')).toHaveText('2')
    await blank.close()
    await expectCleanStorage([slow, fast], tokens)
  })

  test('on: a tab restoring from storage just after another tab did takes that tab\'s tokens instead of spending the stored refresh token again', async ({ page, context, demo, tokens }) => {
    // Forced order: tab B finds no tab holding a session; tab A restores (refresh, store, announce);
    // only then does B read the stored refresh token, which is now the one A's refresh stored, and B
    // learns of A's tokens only after that (its DPoP key loads slowly).
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    const blank = await context.newPage()
    await page.close()

    const late = await context.newPage()
    const held = await holdBack(late, ['query', 'decrypt', 'exportKey'])
    await late.goto(demo.appUrl)
    await held.called('query') // B asked whether any tab holds a session: none did

    const first = await context.newPage()
    await first.goto(demo.appUrl)
    await expect(first.locator('#status-pill')).toHaveText('Signed in')
    await expect(first.locator('#events')).toContainText("session restored from this browser's encrypted refresh token")
    expect(demo.as.counts.refreshToken).toBe(1)
    const generation = await first.locator('#generation').textContent()

    await held.open('decrypt')
    await held.open('query')
    // B has read and decrypted the stored refresh token; A's tokens still wait on B's DPoP key.
    await held.returned('decrypt')
    await held.open('exportKey')
    await expect(late.locator('#status-pill')).toHaveText('Signed in')
    await expect(late.locator('#events')).toContainText(/session (adopted from another tab|restored from this browser)/)

    expect({ refreshTokenGrants: demo.as.counts.refreshToken, invalidGrants: demo.as.counts.invalidGrant })
      .toEqual({ refreshTokenGrants: 1, invalidGrants: 0 })
    await expect(late.locator('#generation')).toHaveText(generation ?? '')
    await expect(first.locator('#generation')).toHaveText(generation ?? '')
    expect((await runAction(late, 'call-api')).state).toBe('ok')
    await blank.close()
    await expectCleanStorage([late, first], tokens)
  })

  test('off: reloading the only tab asks for sign-in', async ({ page, demo, tokens }) => {
    await setPersist(page, demo, false)
    await signIn(page, demo)
    await expect(page.locator('#persistence')).toHaveText('signs you out')
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    await expectCleanStorage([page], tokens)
    expect((await dumpOriginStorage(page)).text).not.toMatch(/rt:spa@/)

    await page.reload()
    await expect(page.locator('#status-pill')).toHaveText('Signed out')
    await expect(page.locator('#signed-out')).toBeVisible()
    expect(demo.as.counts.authorizationCode).toBe(1)
    expect(demo.as.counts.refreshToken).toBe(0)
    expect(demo.as.counts.invalidGrant).toBe(0)
    await expectCleanStorage([page], tokens)
  })
})
