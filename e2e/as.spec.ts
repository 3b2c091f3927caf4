import { decodeJwt } from 'jose'
import { expect, test } from './fixtures.js'
import { createNodeClient } from './helpers.js'

// The authorization server on its own, driven from Node: the guarantees the SDK relies on. No browser
// is involved: these run once, in the Chromium project (@once).

test('tokens are DPoP-bound JWTs for the API; refresh tokens rotate; reuse of an old one revokes the grant', { tag: '@once' }, async ({ demo }) => {
  const client = await createNodeClient(demo)
  const first = await client.signIn()
  expect(first['token_type']).toBe('DPoP')
  expect(typeof first['refresh_token']).toBe('string')
  const claims = decodeJwt(String(first['access_token']))
  expect(claims.aud).toBe(demo.api.origin)
  expect(claims.iss).toBe(demo.as.issuer)
  expect((claims['cnf'] as { jkt?: string }).jkt).toBe(client.jkt)
  expect(claims.scope).toBe('api:read')

  const second = await client.tokenRequest({ grant_type: 'refresh_token', refresh_token: String(first['refresh_token']) })
  expect(second.status).toBe(200)
  expect(second.body['refresh_token']).not.toBe(first['refresh_token'])
  expect(demo.as.counts.refreshToken).toBe(1)

  // Replaying the rotated-out token: refused, and the whole grant goes with it.
  const replay = await client.tokenRequest({ grant_type: 'refresh_token', refresh_token: String(first['refresh_token']) })
  expect(replay.body['error']).toBe('invalid_grant')
  expect(demo.as.counts.grantsRevoked).toBe(1)
  const afterReplay = await client.tokenRequest({ grant_type: 'refresh_token', refresh_token: String(second.body['refresh_token']) })
  expect(afterReplay.body['error']).toBe('invalid_grant')
  expect(demo.as.counts.invalidGrant).toBe(2)
})

test('a refresh token bound to one DPoP key is refused with another', { tag: '@once' }, async ({ demo }) => {
  const owner = await createNodeClient(demo)
  const tokens = await owner.signIn()
  const thief = await createNodeClient(demo)
  const stolen = await thief.tokenRequest({ grant_type: 'refresh_token', refresh_token: String(tokens['refresh_token']) })
  expect(stolen.body['error']).toBe('invalid_grant')
  const rightful = await owner.tokenRequest({ grant_type: 'refresh_token', refresh_token: String(tokens['refresh_token']) })
  expect(rightful.status).toBe(200)
})
