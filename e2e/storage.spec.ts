import { expect, test } from './fixtures.js'
import { dumpOriginStorage, findTokens, redact, runAction, scanProfile, signIn } from './helpers.js'

test.use({ demoOptions: { accessTokenTTL: 4 } })

test('after a full session no token is in any storage, cookie, URL or profile file', async ({ page, context, demo, tokens, userDataDir }) => {
  // A session with every kind of token traffic: login, expiry refresh, concurrent calls, 401 refresh.
  await signIn(page, demo)
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  await page.waitForTimeout(4_500)
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect((await runAction(page, 'call-many')).state).toBe('ok')
  await runAction(page, 'expire')
  expect((await runAction(page, 'call-api')).state).toBe('ok')
  expect((await runAction(page, 'third-party')).state).toBe('ok')

  await tokens.settled()
  const all = [...tokens.access, ...tokens.refresh]
  // Login plus at least two refreshes, read from the token endpoint's real responses.
  expect(tokens.access.size).toBeGreaterThanOrEqual(3)
  expect(tokens.refresh.size).toBeGreaterThanOrEqual(3)

  // The reader itself can find a value: plant one in IndexedDB and look for it.
  const canary = `canary-${crypto.randomUUID()}`
  await page.evaluate(async (value) => {
    await new Promise<void>((resolve, reject) => {
      const open = indexedDB.open('e2e-canary')
      open.onupgradeneeded = () => open.result.createObjectStore('s')
      open.onerror = () => reject(open.error)
      open.onsuccess = () => {
        const tx = open.result.transaction('s', 'readwrite')
        tx.objectStore('s').put(new TextEncoder().encode(value).buffer, 'k')
        tx.oncomplete = () => { open.result.close(); resolve() }
      }
    })
  }, canary)
  expect(findTokens((await dumpOriginStorage(page)).text, [canary])).toEqual([redact(canary)])
  await page.evaluate(() => new Promise((resolve) => { indexedDB.deleteDatabase('e2e-canary').onsuccess = resolve }))

  // The app's origin, in the tab that ran the session.
  const app = await dumpOriginStorage(page)
  expect(app.idbValues).toBeGreaterThanOrEqual(1) // the DPoP key pair: the reader saw the SDK's store
  expect(findTokens(app.text, all)).toEqual([])
  expect(findTokens(page.url(), all)).toEqual([])

  // Cookies of every origin in the context.
  const cookies = await context.cookies()
  expect(findTokens(cookies.map((c) => `${c.name}=${c.value}`).join('\n'), all)).toEqual([])

  // The other origins this tab talked to.
  for (const origin of [demo.as.issuer, demo.api.origin, demo.thirdParty.origin]) {
    await page.goto(`${origin}/`)
    expect(findTokens((await dumpOriginStorage(page)).text, all), origin).toEqual([])
  }

  // Finally the profile on disk: LevelDB, SQLite (cookies, history), session restore, caches.
  // A localStorage canary proves the scan sees what the browser wrote.
  await page.goto(demo.appUrl)
  await page.evaluate((value) => localStorage.setItem('e2e-canary', value), canary)
  await context.close()
  const scan = await scanProfile(userDataDir, [...all, canary])
  expect(scan.files).toBeGreaterThan(10)
  const isCanary = (hit: string) => hit.endsWith(redact(canary))
  expect(scan.hits.some(isCanary)).toBe(true)
  expect(scan.hits.filter((hit) => !isCanary(hit))).toEqual([])
})
