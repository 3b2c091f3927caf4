// What a mistake in the options says at run time (the type already refuses them: test/types).
import { describe, expect, it } from 'vitest'
import { createTokenManager, type TokenManagerOptions } from '../src/index.js'

/** Options as plain JavaScript (or a cast) can pass them, past the type. */
const untyped = (options: object) => options as TokenManagerOptions

describe('missing options name themselves', () => {
  it.each([
    [{ clientId: 'spa', allowedOrigins: ['https://api.example'] }, 'tokenEndpoint is required'],
    [{ clientId: 'spa', tokenEndpoint: 'https://as.example/token' }, 'allowedOrigins is required'],
    [{ tokenEndpoint: 'https://as.example/token', allowedOrigins: [] }, 'clientId is required'],
    [{ clientId: 'spa', tokenEndpoint: 'http://as.example/token', allowedOrigins: [] }, 'tokenEndpoint: not https or loopback'],
    [{ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: 'https://api.example' }, 'allowedOrigins: invalid'],
    [{ clientId: 7, tokenEndpoint: 'https://as.example/token', allowedOrigins: [] }, 'clientId: invalid'],
  ])('%o: %s', (options, message) => {
    expect(() => createTokenManager(untyped(options))).toThrow(new TypeError(message))
  })

  it('a login with only a custom refresh says the token endpoint is required', async () => {
    const tm = createTokenManager({ clientId: 'spa', refresh: 'https://app.example/auth/refresh', allowedOrigins: [], crossTab: false })
    await expect(tm.exchangeCode({ code: 'c', codeVerifier: 'v', redirectUri: 'https://app.example/' })).rejects.toThrow(new TypeError('tokenEndpoint is required'))
    await expect(tm.authorizationUrl({ redirectUri: 'https://app.example/' })).rejects.toThrow(new TypeError('authorizationEndpoint is required'))
  })
})
