import { expect, test } from './fixtures.js'
import { createNodeClient, expectText, expectVisible, runAction, signIn } from './helpers.js'

test('sign-out revokes the refresh token at the authorization server', async ({ tab, demo, tokens }) => {
  await signIn(tab, demo)
  await runAction(tab, 'expire')
  expect((await runAction(tab, 'call-api')).state).toBe('ok') // one rotation, so there is an old and a current token
  const refreshTokens = [...tokens.refresh]
  expect(refreshTokens).toHaveLength(2)
  const current = refreshTokens.at(-1)!

  const before = await demo.as.provider.RefreshToken.find(current)
  expect(before).toBeTruthy()
  const grantId = before!.grantId
  expect(await demo.as.provider.Grant.find(grantId)).toBeTruthy()

  await tab.click('#sign-out')
  await expectVisible(tab, '#signed-out')
  await expectText(tab, '#status-pill', 'Signed out')

  // The page shows the sign-out at once; the revocation request completes after.
  await expect.poll(() => demo.as.counts.revocations).toBe(1)
  expect(await demo.as.provider.RefreshToken.find(current)).toBeUndefined()
  expect(await demo.as.provider.Grant.find(grantId)).toBeUndefined()

  // Presenting it anyway, from outside the browser with a fresh DPoP proof, is refused.
  const replay = await (await createNodeClient(demo)).tokenRequest({ grant_type: 'refresh_token', refresh_token: current })
  expect(replay.status).toBe(400)
  expect(replay.body['error']).toBe('invalid_grant')
  expect(demo.as.counts.refreshToken).toBe(1)

  // Logout also deleted the DPoP key.
  const keysLeft = await tab.evaluate(async () => {
    let count = 0
    for (const { name } of await indexedDB.databases()) {
      if (!name) continue
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const open = indexedDB.open(name)
        open.onsuccess = () => resolve(open.result)
        open.onerror = () => reject(open.error)
      })
      for (const storeName of Array.from(db.objectStoreNames)) {
        const values = await new Promise<unknown[]>((resolve) => {
          const req = db.transaction(storeName, 'readonly').objectStore(storeName).getAll()
          req.onsuccess = () => resolve(req.result)
        })
        count += values.filter((v) => v instanceof CryptoKey || (v as { privateKey?: unknown })?.privateKey instanceof CryptoKey).length
      }
      db.close()
    }
    return count
  })
  expect(keysLeft).toBe(0)
})
