import { expect, test } from './fixtures.js'
import { dumpOriginStorage, findTokens, redact, runAction, scanProfile, signIn, sleep } from './helpers.js'

test.use({ demoOptions: { accessTokenTTL: 4 } })

test('after a full session no token is in any storage, cookie, URL or profile file', async ({ tab, engine, demo, tokens }) => {
  // A session with every kind of token traffic: login, expiry refresh, concurrent calls, 401 refresh.
  await signIn(tab, demo)
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  await sleep(4_500)
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect((await runAction(tab, 'call-many')).state).toBe('ok')
  await runAction(tab, 'expire')
  expect((await runAction(tab, 'call-api')).state).toBe('ok')
  expect((await runAction(tab, 'third-party')).state).toBe('ok')

  const all = [...tokens.access, ...tokens.refresh]
  // Login plus at least two refreshes, as the authorization server issued them.
  expect(tokens.access.size).toBeGreaterThanOrEqual(3)
  expect(tokens.refresh.size).toBeGreaterThanOrEqual(3)

  // The reader itself can find a value: plant one in IndexedDB and look for it.
  const canary = `canary-${crypto.randomUUID()}`
  await tab.evaluate(async (value) => {
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
  expect(findTokens((await dumpOriginStorage(tab)).text, [canary])).toEqual([redact(canary)])
  await tab.evaluate(() => new Promise((resolve) => { indexedDB.deleteDatabase('e2e-canary').onsuccess = resolve }))

  // The app's origin, in the tab that ran the session, and its cookies (HttpOnly ones too).
  const app = await dumpOriginStorage(tab)
  expect(app.idbValues).toBeGreaterThanOrEqual(1) // the DPoP key pair: the reader saw the SDK's store
  expect(findTokens(app.text, all)).toEqual([])
  expect(findTokens(await tab.url(), all)).toEqual([])
  const cookieText = async () => (await tab.cookies()).map((c) => `${c.name}=${c.value}`).join('\n')
  expect(findTokens(await cookieText(), all)).toEqual([])

  // The other origins this tab talked to; the authorization server's own cookies are there.
  for (const origin of [demo.as.issuer, demo.api.origin, demo.thirdParty.origin]) {
    await tab.goto(`${origin}/`)
    expect(findTokens((await dumpOriginStorage(tab)).text, all), origin).toEqual([])
    expect(findTokens(await cookieText(), all), origin).toEqual([])
  }

  // Finally the profile on disk: LevelDB or SQLite (storage, cookies, history), session restore,
  // caches. A localStorage canary proves the scan sees what the browser wrote.
  await tab.goto(demo.appUrl)
  await tab.evaluate((value) => localStorage.setItem('e2e-canary', value), canary)
  await engine.close()
  const scan = await scanProfile(engine.profileDir!, [...all, canary])
  if (engine.name === 'webkit') {
    // WebKitGTK's automation session keeps website data in memory (an ephemeral data store): nothing
    // the page stored reaches the disk, not even the canary. Pinned, so a change shows up here.
    expect(scan.hits).toEqual([])
    return
  }
  expect(scan.files).toBeGreaterThan(10)
  const isCanary = (hit: string) => hit.endsWith(redact(canary))
  expect(scan.hits.some(isCanary)).toBe(true)
  expect(scan.hits.filter((hit) => !isCanary(hit))).toEqual([])
})
