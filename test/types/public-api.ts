// Type tests for the public surface: compiled by `npm run typecheck`, never run.
// Each @ts-expect-error line must fail to compile; if it stops failing, tsc reports it.
import ky from 'ky'
import {
  createTokenManager,
  discover,
  indexedDBKeyStore,
  isLatchkeyError,
  LatchkeyError,
  memoryKeyStore,
  SessionExpiredError,
  type AuthorizationServer,
  type KeyStore,
  type LatchkeyErrorCode,
  type SessionInfo,
  type TokenManager,
  type TokenResponse,
  type DPoPSigner,
  type LoginStore,
  type WebCrypto,
  type ResourceOptions,
} from '../../src/index.js'
import { kyHooks } from '../../src/ky.js'
import { connectTokenManager, serveTokenManager } from '../../src/worker.js'

const tm: TokenManager = createTokenManager({
  clientId: 'spa',
  tokenEndpoint: 'https://as.example/token',
  allowedOrigins: ['https://api.example'],
  dpop: { keyStore: indexedDBKeyStore() },
  refreshLeewaySeconds: 30,
})
createTokenManager({ clientId: 'spa', allowedOrigins: [], refresh: { url: '/auth/refresh', credentials: 'include' } })
createTokenManager({ clientId: 'spa', allowedOrigins: [], refresh: async ({ signal }) => (await fetch('/r', { signal })).json() })
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], dpop: { keyStore: memoryKeyStore() }, persist: true, crossTab: false })

// Other runtimes: an injected WebCrypto, a platform signer, a login store (sync or async).
const webCrypto: WebCrypto = globalThis.crypto
const signer: DPoPSigner = {
  publicJwk: Promise.resolve({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }),
  sign: async () => new Uint8Array(64),
}
const asyncStore: LoginStore = { getItem: async () => null, setItem: async () => {}, removeItem: async () => {} }
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], crypto: webCrypto, dpop: { keyStore: memoryKeyStore() }, crossTab: false, loginStore: asyncStore })
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], crypto: { subtle: crypto.subtle, getRandomValues: (a) => crypto.getRandomValues(a) }, dpop: { signer } })
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], dpop: { signer, keyStore: memoryKeyStore() }, persist: true, loginStore: sessionStorage })

// @ts-expect-error a WebCrypto needs subtle and getRandomValues
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], crypto: { subtle: crypto.subtle } })
// @ts-expect-error a platform signer needs sign
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], dpop: { signer: { publicJwk: { kty: 'EC' } } } })
// @ts-expect-error a login store's getItem gives a string, not an object
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], loginStore: { getItem: () => ({}), setItem() {}, removeItem() {} } })

// @ts-expect-error clientId is required
createTokenManager({ tokenEndpoint: 'https://as.example/token', allowedOrigins: [] })
// @ts-expect-error tokenEndpoint or refresh is required: without either, no token could ever be renewed
createTokenManager({ clientId: 'spa', allowedOrigins: ['https://api.example'] })
// @ts-expect-error allowedOrigins or resources is required: without either, no request would get a token
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token' })
// @ts-expect-error neither, with discovery's endpoints spread in but no origin
createTokenManager({ ...(await discover('https://as.example')), clientId: 'spa' })
// @ts-expect-error tokenEndpoint is a URL string
createTokenManager({ clientId: 'spa', tokenEndpoint: new URL('https://as.example/token'), allowedOrigins: [] })
// Either of each pair is enough.
createTokenManager({ clientId: 'spa', refresh: '/auth/refresh', resources: { 'https://api.example': 'https://api.example' } })
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', resources: { 'https://api.example': 'https://api.example' } })
createTokenManager({ ...(await discover('https://as.example')), clientId: 'spa', allowedOrigins: ['https://api.example'] })
// @ts-expect-error allowedOrigins is an array
createTokenManager({ clientId: 'spa', allowedOrigins: 'https://api.example' })
// @ts-expect-error durations are numbers of seconds
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], refreshLeewaySeconds: '30s' })
// @ts-expect-error a key store needs get, set and delete
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: [], dpop: { keyStore: { get: async () => undefined } } })

export async function usage() {
  const res: Response = await tm.fetch('https://api.example/me', { method: 'POST', body: '{}' })
  await tm.fetch(new Request('https://api.example/me'))
  await tm.fetch(new URL('https://api.example/me'))
  const token: string = await tm.getAccessToken()
  const info: SessionInfo | undefined = tm.status()
  const signedIn: boolean = await tm.restore()
  const url: string = await tm.authorizationUrl({ authorizationEndpoint: 'https://as.example/authorize', redirectUri: 'https://app.example/', resource: ['a', 'b'] })
  await tm.setTokens({ access_token: 'x', token_type: 'DPoP', expires_in: 60 } satisfies TokenResponse)
  // @ts-expect-error a token response has an access_token
  await tm.setTokens({ token_type: 'Bearer' })
  const off: () => void = tm.on('refresh', ({ reason, expiresAt, generation }) => {
    const r: 'expiry' | 'unauthorized' | 'manual' | 'resume' | 'restore' = reason
    void [r, expiresAt, generation]
  })
  tm.on('refresh-error', ({ error }) => {
    const code: LatchkeyErrorCode = error.code
    void code
  })
  // @ts-expect-error unknown events are refused
  tm.on('token', () => {})
  // @ts-expect-error an event's state has no token in it
  tm.on('tokens', ({ accessToken }) => accessToken)
  void [res, token, info, signedIn, url, off]
}

export function errors(e: unknown) {
  if (isLatchkeyError(e, 'session_expired')) {
    const code: 'session_expired' = e.code
    void code
  }
  if (e instanceof SessionExpiredError) {
    const base: LatchkeyError = e
    void base
  }
  // @ts-expect-error codes are a closed set
  isLatchkeyError(e, 'expired')
}

export const store: KeyStore = memoryKeyStore()
export const api = ky.create({ prefixUrl: 'https://api.example', hooks: kyHooks(tm) })
// @ts-expect-error kyHooks needs a token manager
kyHooks({})

export async function discovery() {
  const as: AuthorizationServer = await discover('https://as.example', { timeoutSeconds: 5, fetch })
  const issuer: string = as.issuer
  const token: string = as.tokenEndpoint
  const revocation: string | undefined = as.revocationEndpoint
  // the result spreads into the options
  createTokenManager({ ...as, clientId: 'spa', allowedOrigins: ['https://api.example'] })
  // @ts-expect-error the issuer is a string
  await discover(new URL('https://as.example'))
  // @ts-expect-error durations are numbers of seconds
  await discover('https://as.example', { timeoutSeconds: '5s' })
  // @ts-expect-error issParameterRequired is true or absent, never false
  const required: AuthorizationServer = { issuer, tokenEndpoint: token, issParameterRequired: false }
  void [revocation, required]
}

// Worker mode: the same options in the worker, the same interface in the page.
const inPage: TokenManager = connectTokenManager(new Worker(new URL('./auth-worker.js', import.meta.url), { type: 'module' }))
const inWorker: TokenManager = serveTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: ['https://api.example'] })
const channel = new MessageChannel()
serveTokenManager({ clientId: 'spa', allowedOrigins: [], refresh: '/auth/refresh' }, channel.port1)
connectTokenManager(channel.port2)
export const workerApi = ky.create({ hooks: kyHooks(inPage) })
void inWorker
// @ts-expect-error serveTokenManager takes the options of createTokenManager
serveTokenManager({ allowedOrigins: [] })
// @ts-expect-error connectTokenManager needs something that speaks postMessage
connectTokenManager('/auth-worker.js')

// Measurements and latchkey/otel.
import { instrument, type InstrumentOptions } from '../../src/otel.js'
import type { Measurement, MeasurementName } from '../../src/index.js'
import { metrics, trace } from '@opentelemetry/api'

tm.on('measure', (m: Measurement) => {
  const name: MeasurementName = m.name
  const seconds: number | undefined = m.duration === undefined ? undefined : m.duration / 1000
  if (m.name == 'nonce') {
    const server: 'as' | 'api' | undefined = m.server
    void server
  }
  void name, void seconds
})
// @ts-expect-error: not a measurement's name
tm.on('measure', (m) => m.name == 'token-request')
const stopRecording: () => void = instrument(tm)
instrument(tm, { meterProvider: metrics.getMeterProvider(), tracerProvider: trace.getTracerProvider() } satisfies InstrumentOptions)
// @ts-expect-error: a meter provider, not a meter
instrument(tm, { meterProvider: metrics.getMeterProvider().getMeter('x') })
stopRecording()
// Providers: a resources entry takes a resource, a scope, and more parameters (Auth0's audience).
const providerResources: NonNullable<Parameters<typeof createTokenManager>[0]['resources']> = {
  'https://api.example': { params: { audience: 'https://api.example' }, scope: 'read:items' },
  'https://graph.microsoft.com': { scope: 'https://graph.microsoft.com/.default' },
  'https://billing.example': { resource: 'https://billing.example' },
}
void providerResources
const auth0Entry: ResourceOptions = { params: { audience: 'https://api.example' } }
void auth0Entry
// @ts-expect-error params are strings
const badParams: ResourceOptions = { params: { audience: 1 } }
void badParams
// @ts-expect-error an entry is a string or an object, not an array
createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', resources: { 'https://api.example': ['https://api.example'] } })
