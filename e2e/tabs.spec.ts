import { expect, test, type Demo, type EngineBrowser, type EnginePage, type IssuedTokens } from './fixtures.js'
import { playwrightOf } from './engines/index.js'
import {
  dumpOriginStorage, expectAttribute, expectContains, expectEnabled, expectText, expectVisible, findTokens,
  isChecked, runAction, scanProfile, signIn, sleep, text, texts,
} from './helpers.js'

// Several tabs of one origin = several tabs of one browser profile, in every engine. They share one
// session over BroadcastChannel, refresh under one Web Lock, and log out together.

// Every test starts its own servers and profile, so the tests of this file may run side by side;
// four tabs of Firefox or WebKit driven one command at a time take longer than one Chromium test.
test.describe.configure({ mode: 'parallel', timeout: 120_000 })

const TABS = 4
const BATCH = 50

/** The authorization server's counters that a token request would move. */
const asCounts = (demo: Demo) => {
  const { authorizationCode, refreshToken, invalidGrant, useDpopNonce } = demo.as.counts
  return { authorizationCode, refreshToken, invalidGrant, useDpopNonce }
}

/** How long `tm.restore()` took at the tab's startup, as the app logs it (measured in the page). */
async function restoreMs(tab: EnginePage): Promise<number> {
  const entries = (await texts(tab, '#events li')).filter((entry) => /restore|adopted/.test(entry))
  const match = /(\d+) ms/.exec(entries.at(-1) ?? '')
  if (!match) throw new Error('the app logged no restore time')
  return Number(match[1])
}

/** Texts of the event log's entries, only those holding a `[data-kind=kind]` element if `kind` is given. */
const events = (tab: EnginePage, kind?: string) =>
  tab.evaluate((k) => [...document.querySelectorAll('#events li')]
    .filter((li) => !k || li.querySelector(`[data-kind="${k}"]`))
    .map((li) => li.textContent?.replace(/\s+/g, ' ').trim() ?? ''), kind ?? '')

/**
 * Opens one more tab of the app and waits until its startup decided signed in or out. Returns the
 * tab, how long `restore()` took, and every request the authorization server received meanwhile.
 */
async function openTab(engine: EngineBrowser, demo: Demo, expected: 'in' | 'out') {
  const seen = demo.as.requests().length
  const tab = await engine.newPage()
  await tab.goto(demo.appUrl)
  await expectAttribute(tab, '#status-pill', 'data-state', expected)
  await expectContains(tab, '#events', expected === 'in' ? 'session adopted from another tab' : 'no session to restore')
  return { tab, restoreMs: await restoreMs(tab), toAS: demo.as.requests().slice(seen) }
}

/** Reloads (or navigates) with `act` and waits until the new document's app has started. */
async function untilRestarted(tab: EnginePage, act: () => Promise<void>): Promise<void> {
  await tab.evaluate(() => void Object.defineProperty(globalThis, '__e2eOldDocument', { value: true }))
  await act()
  await tab.waitForFunction(() =>
    !('__e2eOldDocument' in globalThis) && document.getElementById('status-pill')?.dataset['state'] !== 'loading', undefined, { timeout: 20_000 })
}

/** Switches the demo's "Keep me signed in after a reload" preference (the page reloads). */
async function setPersist(tab: EnginePage, demo: Demo, on: boolean): Promise<void> {
  await tab.goto(demo.appUrl)
  await expectVisible(tab, '#persist')
  await expectText(tab, '#status-pill', 'Signed out')
  if ((await isChecked(tab, '#persist')) !== on) await untilRestarted(tab, () => tab.click('#persist'))
  expect(await isChecked(tab, '#persist')).toBe(on)
}

type Held = 'decrypt' | 'exportKey' | 'query'

/**
 * Holds back Web API calls in one tab from its first document on, to force a race between tabs into
 * one order: each call of a held method runs at once, but its result reaches the caller only after
 * the test calls `open(name)`. Nothing else about the page changes. Needs an init script.
 */
async function holdBack(tab: EnginePage, names: Held[]) {
  if (!tab.addInitScript) throw new Error('holdBack needs an init script: tag the test @init-script')
  await tab.addInitScript((held: string[]) => {
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
      tab.waitForFunction(([k, count]) => (globalThis as unknown as { __e2eHeld: State }).__e2eHeld[k].calls >= count, [name, n] as const),
    /** Waits until `n` results of `name` have reached their callers. */
    returned: (name: Held, n = 1) =>
      tab.waitForFunction(([k, count]) => (globalThis as unknown as { __e2eHeld: State }).__e2eHeld[k].returned >= count, [name, n] as const),
    open: (name: Held) => tab.evaluate((k) => (globalThis as unknown as { __e2eHeld: State }).__e2eHeld[k].open(), name),
  }
}

/**
 * No token the authorization server handed out so far is anywhere in the origin's storage, and
 * every tab's own storage inspector agrees. `tokens` are the ones the server issued.
 */
async function expectCleanStorage(tabs: EnginePage[], tokens: IssuedTokens): Promise<void> {
  const all = [...tokens.access, ...tokens.refresh]
  expect(all.length).toBeGreaterThanOrEqual(2)
  for (const tab of tabs) {
    const { text, idbValues } = await dumpOriginStorage(tab)
    expect(idbValues).toBeGreaterThanOrEqual(1) // at least the DPoP key: the reader saw the SDK's store
    expect(findTokens(text, all)).toEqual([])
    expect(findTokens(await tab.url(), all)).toEqual([])
    await expectAttribute(tab, '#storage-verdict', 'data-state', 'ok')
  }
}

/**
 * Closes the browser and scans its profile on disk for every token issued. WebKit's automation
 * session keeps website data in memory only (see storage.spec.ts), so there the scan finds nothing
 * of the page's at all.
 */
async function expectCleanProfile(engine: EngineBrowser, tokens: IssuedTokens): Promise<void> {
  await engine.close()
  const scan = await scanProfile(engine.profileDir!, [...tokens.access, ...tokens.refresh])
  if (engine.name !== 'webkit') expect(scan.files).toBeGreaterThan(10)
  expect(scan.hits).toEqual([])
}

/** Waits until every tab's access token has expired by the page's own clock. */
async function waitForExpiry(tabs: EnginePage[]): Promise<void> {
  for (const tab of tabs) await expectAttribute(tab, '#session .countdown', 'data-state', 'due', { timeout: 15_000 })
}

/** Starts a batch of `size` concurrent calls in every tab at once; resolves with each tab's result text. */
async function stormAllTabs(tabs: EnginePage[], size: number): Promise<string[]> {
  for (const tab of tabs) await tab.fill('#batch-size', String(size))
  // One round trip per tab, all sent together: the batches start within a few milliseconds.
  await Promise.all(tabs.map((tab) => tab.dispatchClick('#call-many')))
  const results: string[] = []
  // A generous ceiling: with two browsers on two busy cores, 200 calls can take a while.
  for (const tab of tabs) {
    await expectEnabled(tab, '#call-many', { timeout: 45_000 })
    results.push((await text(tab, '#result')) ?? '')
  }
  return results
}

/** Each tab's own count of refreshes (the session panel's "Refreshes"). */
const refreshCounts = (tabs: EnginePage[]) => Promise.all(tabs.map(async (tab) => Number(await text(tab, '#refresh-count'))))
const generationOf = async (tab: EnginePage) => Number(await text(tab, '#generation'))

/** Signs in in the first tab, then opens the others, each adopting the session from the first. */
async function signInWithTabs(tab: EnginePage, engine: EngineBrowser, demo: Demo): Promise<EnginePage[]> {
  await signIn(tab, demo)
  const before = asCounts(demo)
  const tabs = [tab]
  for (let i = 1; i < TABS; i++) {
    const opened = await openTab(engine, demo, 'in')
    // Signed in from the other tabs alone: not one request reached the authorization server.
    expect(opened.toAS).toEqual([])
    tabs.push(opened.tab)
  }
  expect(asCounts(demo)).toEqual(before)
  const generations = await Promise.all(tabs.map(generationOf))
  expect(new Set(generations).size).toBe(1)
  return tabs
}

test.describe('with 12-second access tokens', () => {
  // Short enough to wait for, long enough that 200 calls on a busy two-core machine (two browsers
  // at once) finish well within the new token's life (due 3 s before expiry): a second refresh
  // would then be legitimate.
  test.use({ demoOptions: { accessTokenTTL: 12 } })

  for (const persist of [false, true]) {
    test(`${TABS} tabs × ${BATCH} concurrent calls right after expiry: one refresh, no invalid_grant, all 200${persist ? ' (persistence on)' : ''}`, { tag: persist ? ['@once'] : [] }, async ({ tab: page, engine, demo, tokens }) => {
      if (persist) await setPersist(page, demo, true)
      const tabs = await signInWithTabs(page, engine, demo)

      // One call per tab first, so each tab holds the API's DPoP nonce and only the refresh is under test.
      for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
      await expectCleanStorage(tabs.slice(-1), tokens)
      await waitForExpiry(tabs)
      // On a busy machine the warm-up may already have refreshed once; the storm is measured on its own.
      const as = { ...demo.as.counts }
      const api = { ...demo.api.counts, unauthorized: { ...demo.api.counts.unauthorized } }
      const refreshesBefore = await refreshCounts(tabs)
      const generation = await generationOf(page)

      const results = await stormAllTabs(tabs, BATCH)

      // Counted at the servers: one refresh_token grant, no rotated token presented twice, every call 200.
      expect({
        refreshTokenGrants: demo.as.counts.refreshToken - as.refreshToken,
        invalidGrants: demo.as.counts.invalidGrant,
        grantsRevoked: demo.as.counts.grantsRevoked,
        apiCallsOk: demo.api.counts.ok - api.ok,
      }).toEqual({ refreshTokenGrants: 1, invalidGrants: 0, grantsRevoked: 0, apiCallsOk: TABS * BATCH })
      for (const result of results) expect(result).toContain(`${BATCH} × GET /api/items`)
      for (const result of results) expect(result).toContain(`Responses: ${BATCH} × 200`)
      // Every request went out once, with a fresh token: no 401 and no retry anywhere.
      expect(demo.api.counts.requests - api.requests).toBe(TABS * BATCH)
      expect(demo.api.counts.unauthorized.invalid_token).toBe(api.unauthorized.invalid_token)

      // One tab refreshed; the three others took its tokens, and all tabs hold the same generation.
      const refreshes = (await refreshCounts(tabs)).map((n, i) => n - refreshesBefore[i]!)
      expect(refreshes.reduce((a, b) => a + b)).toBe(1)
      const adopted = await Promise.all(tabs.map(async (tab) =>
        (await texts(tab, '#events .text')).filter((entry) => new RegExp(`^tab · DPoP · .* · generation ${generation + 1}$`).test(entry)).length))
      expect(adopted.map((n, i) => n + refreshes[i]!)).toEqual(tabs.map(() => 1))
      expect(new Set(await Promise.all(tabs.map(generationOf)))).toEqual(new Set([generation + 1]))
      for (const tab of tabs) await expectText(tab, '#status-pill', 'Signed in')
      await expectCleanStorage(tabs, tokens)

      if (persist) {
        // The refresh stored the rotated refresh token: with only the first tab left, its reload
        // restores the session from it (a second refresh), and no old token is ever presented.
        for (const tab of tabs.slice(1)) await tab.close()
        await untilRestarted(page, () => page.reload())
        await expectText(page, '#status-pill', 'Signed in')
        await expectContains(page, '#events', "session restored from this browser's encrypted refresh token")
        expect(demo.as.counts.refreshToken - as.refreshToken).toBe(2)
        expect(demo.as.counts.invalidGrant).toBe(0)
        expect(demo.as.counts.authorizationCode).toBe(1)
        expect((await runAction(page, 'call-api')).state).toBe('ok')
        await expectCleanStorage([page], tokens)

        // Nor on disk, where the encrypted refresh token lives between sessions.
        await expectCleanProfile(engine, tokens)
      }
    })
  }
})

test.describe('with 4-second access tokens', () => {
  test.use({ demoOptions: { accessTokenTTL: 4 } })

  test(`coming back online with ${TABS} tabs and an expired token refreshes once across all tabs`, { tag: '@offline' }, async ({ tab: page, engine, demo, tokens }) => {
    const tabs = await signInWithTabs(page, engine, demo)
    await waitForExpiry(tabs)
    const before = demo.as.counts.refreshToken
    const generation = await generationOf(page)

    // Every tab sees `online` at the same moment and asks for a refresh.
    const context = playwrightOf(page).context()
    await context.setOffline(true)
    await context.setOffline(false)
    // Each tab ends up with a live token, or signed out if its refresh failed.
    for (const tab of tabs) {
      await tab.waitForFunction(() =>
        document.querySelector('#session:not([hidden]) .countdown[data-state="live"], #status-pill[data-state="out"]') !== null)
    }
    expect({ refreshTokenGrants: demo.as.counts.refreshToken - before, invalidGrants: demo.as.counts.invalidGrant })
      .toEqual({ refreshTokenGrants: 1, invalidGrants: 0 })
    for (const tab of tabs) await expectAttribute(tab, '#session .countdown', 'data-state', 'live')
    expect(new Set(await Promise.all(tabs.map(generationOf)))).toEqual(new Set([generation + 1]))
    await expectCleanStorage(tabs, tokens)
  })

  test('logout in tab 1 wins over a refresh in flight in tab 2: no tab gets tokens back, the new refresh token is revoked', { tag: '@intercept' }, async ({ tab: page, engine, demo, tokens }) => {
    const tabs = await signInWithTabs(page, engine, demo)
    for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await waitForExpiry(tabs)

    // Hold tab 2's refresh at the network until tab 1 has signed out.
    const context = playwrightOf(page).context()
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
    const generation = await generationOf(page)
    await second.fill('#batch-size', String(BATCH))
    await second.dispatchClick('#call-many')
    await refreshSent

    await page.click('#sign-out')
    for (const tab of tabs.slice(1)) await expectText(tab, '#status-pill', 'Signed out')
    release()
    await expectText(page, '#status-pill', 'Signed out')
    await expectEnabled(page, '#sign-out')
    await expectEnabled(second, '#call-many')
    await context.unroute(demo.config.tokenEndpoint)

    // The refresh did happen at the server, and tab 2 threw its result away: its calls never went out.
    await expectContains(second, '#result', `Responses: ${BATCH} × no_session`)
    expect(demo.api.counts.requests).toBe(apiRequests)
    expect(demo.as.counts.refreshToken - refreshGrants).toBe(1)
    expect(demo.as.counts.invalidGrant).toBe(0)
    for (const rt of tokens.refresh) {
      const stored = await demo.as.provider.RefreshToken.find(rt)
      expect(stored === undefined || Boolean(stored.consumed), 'every refresh token is revoked or spent').toBe(true)
    }
    // The one the held refresh brought back was revoked outright.
    expect(await demo.as.provider.RefreshToken.find([...tokens.refresh].at(-1)!)).toBeUndefined()

    // Nothing comes back later, in any tab, and no call goes out with a token.
    await sleep(1_000)
    for (const tab of tabs) {
      await expectText(tab, '#status-pill', 'Signed out')
      await expectContains(tab, '#events', `generation ${generation + 1}`, { not: true })
    }
    expect(demo.api.counts.requests).toBe(apiRequests)
    await expectCleanStorage(tabs, tokens)
  })
})

test('a tab opened later is signed in at once, from the other tabs, without a token request', async ({ tab: page, engine, demo, tokens }) => {
  // Nobody signed in: a new tab knows at once (no tab holds a session lock), without waiting out
  // the one-second window in which other tabs could answer.
  const empty = await openTab(engine, demo, 'out')
  expect(empty.restoreMs, 'restore() did not wait for answers that cannot come').toBeLessThan(1_000)
  expect(empty.toAS).toEqual([])
  await empty.tab.close()

  await signIn(page, demo)
  // One rotation first, so the later tab must get the current generation, not the login's.
  await runAction(page, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(1)
  await expectText(page, '#generation', '2')
  const before = asCounts(demo)

  const later = await openTab(engine, demo, 'in')
  expect(later.toAS).toEqual([])
  expect(asCounts(demo)).toEqual(before)
  await expectText(later.tab, '#generation', '2')
  await expectText(later.tab, '#token-type', 'DPoP')

  // The adopted session works: same DPoP key, the API accepts the call, still nothing at the AS.
  const seen = demo.as.requests().length
  const ok = demo.api.counts.ok
  expect((await runAction(later.tab, 'call-api')).state).toBe('ok')
  expect(demo.api.counts.ok).toBe(ok + 1)
  expect(demo.as.requests().slice(seen)).toEqual([])
  await expectText(later.tab, '#thumbprint', (await text(page, '#thumbprint')) ?? '')
  await expectCleanStorage([page, later.tab], tokens)
})

test('a background tab\'s visibilityState, as each engine reports it', async ({ tab: first, engine, demo }) => {
  // Pinned per engine: latchkey must not depend on timers in hidden tabs (the storms above run in
  // every tab), and this says which engines throttle the first tab once a second one is open.
  await first.goto(demo.appUrl)
  const second = await engine.newPage()
  await second.goto(demo.appUrl)
  const states = await Promise.all([first, second].map((tab) => tab.evaluate(() => document.visibilityState)))
  // Chromium (under Playwright) shows every tab. Firefox shows the front tab, the one just opened.
  // WebKitGTK's MiniBrowser opens WebDriver's new tab behind the first, which stays in front.
  const expected = { chromium: ['visible', 'visible'], firefox: ['hidden', 'visible'], webkit: ['visible', 'hidden'] }
  expect(states).toEqual(expected[engine.name])
})

test(`a Retry-After learnt in one tab holds back all ${TABS} tabs: the others send no token request until it passes`, { tag: '@once' }, async ({ tab: page, engine, demo, tokens }) => {
  const RETRY_AFTER = 8
  const tabs = await signInWithTabs(page, engine, demo)
  // One call per tab first, so each tab holds the API's DPoP nonce and only the refresh is under test.
  for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
  const before = asCounts(demo)
  const tokenPath = new URL(demo.config.tokenEndpoint).pathname
  const tokenPosts = () => demo.as.requests().filter((request) => request === `POST ${tokenPath}`).length
  const postsBefore = tokenPosts()

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
  // Counted at the server: the first tab's one token request, and nothing from the others.
  expect(tokenPosts() - postsBefore).toBe(1)
  expect(demo.as.counts.unavailable).toBe(1)
  expect(asCounts(demo)).toEqual(before)

  // Once the wait is over, one refresh in one tab serves them all.
  demo.as.setUnavailable(0)
  await sleep(Math.max(0, learnt + RETRY_AFTER * 1500 + 100 - Date.now()))
  expect((await runAction(tabs[1]!, 'call-api')).state).toBe('ok')
  // (a nonce that changed during the wait costs the refresh one more request: use_dpop_nonce)
  expect(tokenPosts() - postsBefore).toBe(2 + demo.as.counts.useDpopNonce - before.useDpopNonce)
  expect(demo.as.counts.refreshToken).toBe(before.refreshToken + 1)
  for (const tab of tabs.slice(2)) expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect(demo.as.counts.refreshToken).toBe(before.refreshToken + 1)
  await expectCleanStorage(tabs, tokens)
})

test(`logout in tab 1 signs out all ${TABS} tabs; their next call sends no token`, async ({ tab: page, engine, demo, tokens }) => {
  const tabs = await signInWithTabs(page, engine, demo)
  // Every tab can call the API with the shared session before the logout.
  for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect(demo.api.counts.lastScheme).toBe('DPoP')
  await expectCleanStorage(tabs, tokens)

  await page.click('#sign-out')
  await expectVisible(page, '#signed-out')
  await expectText(page, '#events [data-kind="logout"]', 'logout')
  await expectContains(page, '#events', 'signed out; refresh token revoked')

  for (const tab of tabs.slice(1)) {
    await expectText(tab, '#status-pill', 'Signed out')
    await expectVisible(tab, '#signed-out')
    await expectVisible(tab, '#session', false)
    await expect.poll(async () => (await events(tab, 'logout')).join('\n')).toContain('signed out in another tab')
  }
  // The page shows the sign-out at once; the revocation request completes after.
  await expect.poll(() => demo.as.counts.revocations).toBe(1)

  // Their next call: the app's "Call API" handler runs (the button is hidden once signed out, so
  // the click is dispatched) and tm.fetch refuses without a session: nothing reaches the API.
  const requests = demo.api.counts.requests
  for (const tab of tabs.slice(1)) {
    await tab.dispatchClick('#call-api')
    await expect.poll(async () => (await events(tab, 'error'))[0] ?? '').toContain('no_session')
  }
  expect(demo.api.counts.requests).toBe(requests)
  expect(demo.as.counts.refreshToken).toBe(0)
  expect(demo.as.counts.invalidGrant).toBe(0)

  // A tab opened now does not find a session either.
  const later = await openTab(engine, demo, 'out')
  expect(later.toAS).toEqual([])
  await expectCleanStorage([...tabs, later.tab], tokens)
})

test.describe('persistence', () => {
  test('on: reloading the only tab keeps the session without visiting the authorization server', async ({ tab: page, engine, demo, tokens }) => {
    await setPersist(page, demo, true)
    await signIn(page, demo)
    await expectText(page, '#persistence', 'keeps the session')
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    expect(demo.as.counts.authorizationCode).toBe(1)

    // The encrypted refresh token is there, and neither it nor any other token reads as a token.
    const stored = await dumpOriginStorage(page)
    expect(stored.text).toMatch(/idb:[^\n]*rt:spa@/)
    await expectCleanStorage([page], tokens)

    // Twice: the second reload must find the refresh token the first one's rotation stored.
    for (let reload = 1; reload <= 2; reload++) {
      const seen = demo.as.requests().length
      await untilRestarted(page, () => page.reload())
      await expectText(page, '#status-pill', 'Signed in')
      // No page of the authorization server was loaded: the only requests there were token requests.
      expect(demo.as.requests().slice(seen).filter((request) => request.startsWith('GET '))).toEqual([])
      await expectContains(page, '#events', "session restored from this browser's encrypted refresh token")
      expect(demo.as.counts.authorizationCode).toBe(1)
      expect(demo.as.counts.refreshToken).toBe(reload)
      expect(demo.as.counts.invalidGrant).toBe(0)
      expect((await runAction(page, 'call-api')).state).toBe('ok')
      await expectCleanStorage([page], tokens)
    }

    // Signing out forgets it: the next reload asks for sign-in.
    await page.click('#sign-out')
    await expectVisible(page, '#signed-out')
    await expectEnabled(page, '#sign-out') // logout() has resolved: revoked and forgotten
    expect(demo.as.counts.revocations).toBe(1)
    await untilRestarted(page, () => page.reload())
    await expectText(page, '#status-pill', 'Signed out')
    expect((await dumpOriginStorage(page)).text).not.toMatch(/rt:spa@/)
    expect(demo.as.counts.refreshToken).toBe(2)
    expect(demo.as.counts.invalidGrant).toBe(0)

    // The profile on disk holds no token either (LevelDB, SQLite, caches).
    await expectCleanProfile(engine, tokens)
  })

  test('on: signing out forgets the stored refresh token at once, even if the tab goes away before the revocation answers', { tag: '@intercept' }, async ({ tab: page, demo }) => {
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await dumpOriginStorage(page)).text).toMatch(/idb:[^\n]*rt:spa@/)

    // The revocation request gets no answer: the user signs out and closes or reloads the tab at once.
    const context = playwrightOf(page).context()
    const held: Array<{ abort(): Promise<void> }> = []
    await context.route(demo.config.revocationEndpoint, (route) => void held.push(route))
    await page.click('#sign-out')
    await expectText(page, '#status-pill', 'Signed out')
    await untilRestarted(page, () => page.reload())
    await expectText(page, '#status-pill', 'Signed out')
    await Promise.all(held.map((route) => route.abort().catch(() => undefined)))
    await context.unroute(demo.config.revocationEndpoint)

    // Signed out, and nothing of that session is left at rest (the refresh token may still be
    // live at the server: its revocation never arrived).
    expect(demo.as.counts.revocations).toBe(0)
    expect((await dumpOriginStorage(page)).text).not.toMatch(/rt:spa@/)
  })

  test(`on: ${TABS} tabs opened at once after the last one closed restore the session with one refresh`, { tag: '@once' }, async ({ tab: page, engine, demo, tokens }) => {
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    // Like a browser restart that brings back several tabs: no tab holds the session any more.
    const blank = await engine.newPage()
    await page.close()
    const tabs = await Promise.all(Array.from({ length: TABS }, () => engine.newPage()))
    await Promise.all(tabs.map((tab) => tab.goto(demo.appUrl)))
    for (const tab of tabs) await expectText(tab, '#status-pill', 'Signed in')
    await blank.close()

    expect({
      authorizationCodeGrants: demo.as.counts.authorizationCode,
      refreshTokenGrants: demo.as.counts.refreshToken,
      invalidGrants: demo.as.counts.invalidGrant,
    }).toEqual({ authorizationCodeGrants: 1, refreshTokenGrants: 1, invalidGrants: 0 })
    expect(new Set(await Promise.all(tabs.map(generationOf))).size).toBe(1)
    for (const tab of tabs) expect((await runAction(tab, 'call-api')).state).toBe('ok')
    await expectCleanStorage(tabs, tokens)
  })

  test('on: a tab still reading the stored token when another tab restores adopts that session instead of refreshing again', { tag: ['@init-script', '@once'] }, async ({ tab: page, engine, demo, tokens }) => {
    // The same race as above, made deterministic: tab B reads the persisted refresh token slowly
    // (its AES-GCM decrypt is held back), and tab A restores the session meanwhile.
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    const blank = await engine.newPage()
    await page.close()

    const slow = await engine.newPage()
    const held = await holdBack(slow, ['decrypt'])
    await slow.goto(demo.appUrl)
    // Tab B has found no tab holding a session and is now reading the stored refresh token.
    await held.called('decrypt')

    const fast = await engine.newPage()
    await fast.goto(demo.appUrl)
    await expectText(fast, '#status-pill', 'Signed in')
    expect(demo.as.counts.refreshToken).toBe(1)
    // Tab B received tab A's session over BroadcastChannel while it was still reading.
    await expectText(slow, '#status-pill', 'Signed in')
    await expectText(slow, '#generation', '2')

    await held.open('decrypt')
    await expectContains(slow, '#events', /session (adopted from another tab|restored from this browser)/)
    expect({ refreshTokenGrants: demo.as.counts.refreshToken, invalidGrants: demo.as.counts.invalidGrant })
      .toEqual({ refreshTokenGrants: 1, invalidGrants: 0 })
    await expectText(slow, '#generation', '2')
    await expectText(fast, '#generation', '2')
    await blank.close()
    await expectCleanStorage([slow, fast], tokens)
  })

  test('on: a tab restoring from storage just after another tab did takes that tab\'s tokens instead of spending the stored refresh token again', { tag: ['@init-script', '@once'] }, async ({ tab: page, engine, demo, tokens }) => {
    // Forced order: tab B finds no tab holding a session; tab A restores (refresh, store, announce);
    // only then does B read the stored refresh token, which is now the one A's refresh stored, and B
    // learns of A's tokens only after that (its DPoP key loads slowly).
    await setPersist(page, demo, true)
    await signIn(page, demo)
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    const blank = await engine.newPage()
    await page.close()

    const late = await engine.newPage()
    const held = await holdBack(late, ['query', 'decrypt', 'exportKey'])
    await late.goto(demo.appUrl)
    await held.called('query') // B asked whether any tab holds a session: none did

    const first = await engine.newPage()
    await first.goto(demo.appUrl)
    await expectText(first, '#status-pill', 'Signed in')
    await expectContains(first, '#events', "session restored from this browser's encrypted refresh token")
    expect(demo.as.counts.refreshToken).toBe(1)
    const generation = (await text(first, '#generation')) ?? ''

    await held.open('decrypt')
    await held.open('query')
    // B has read and decrypted the stored refresh token; A's tokens still wait on B's DPoP key.
    await held.returned('decrypt')
    await held.open('exportKey')
    await expectText(late, '#status-pill', 'Signed in')
    await expectContains(late, '#events', /session (adopted from another tab|restored from this browser)/)

    expect({ refreshTokenGrants: demo.as.counts.refreshToken, invalidGrants: demo.as.counts.invalidGrant })
      .toEqual({ refreshTokenGrants: 1, invalidGrants: 0 })
    await expectText(late, '#generation', generation)
    await expectText(first, '#generation', generation)
    expect((await runAction(late, 'call-api')).state).toBe('ok')
    await blank.close()
    await expectCleanStorage([late, first], tokens)
  })

  test('off: reloading the only tab asks for sign-in', { tag: '@once' }, async ({ tab: page, demo, tokens }) => {
    await setPersist(page, demo, false)
    await signIn(page, demo)
    await expectText(page, '#persistence', 'signs you out')
    expect((await runAction(page, 'call-api')).state).toBe('ok')
    await expectCleanStorage([page], tokens)
    expect((await dumpOriginStorage(page)).text).not.toMatch(/rt:spa@/)

    await untilRestarted(page, () => page.reload())
    await expectText(page, '#status-pill', 'Signed out')
    await expectVisible(page, '#signed-out')
    expect(demo.as.counts.authorizationCode).toBe(1)
    expect(demo.as.counts.refreshToken).toBe(0)
    expect(demo.as.counts.invalidGrant).toBe(0)
    await expectCleanStorage([page], tokens)
  })
})
