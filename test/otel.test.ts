// latchkey/otel against the OpenTelemetry SDK's in-memory exporters, after scripted scenarios on the
// loopback token server and API: exact counts, attributes and span parents; no token anywhere.
import { AsyncLocalStorage } from 'node:async_hooks'
import { generateKeyPairSync } from 'node:crypto'
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type ContextManager } from '@opentelemetry/api'
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterEach, describe, expect, it } from 'vitest'
import { isLatchkeyError, type Measurement, type TokenManager } from '../src/index.js'
import { instrument } from '../src/otel.js'
import { connectTokenManager, serveTokenManager } from '../src/worker.js'
import { advance, cleanups, manager, setup } from './support/harness.js'
import { json, type TokenServer } from './support/servers.js'
import { createTabsHub } from './support/tabs.js'

/**
 * The browser's situation: a context is active only while `with` runs its function, synchronously
 * (what the web SDK's default StackContextManager does); nothing follows an await.
 */
class SyncContextManager implements ContextManager {
  #active = ROOT_CONTEXT
  active = () => this.#active
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A) {
    const saved = this.#active
    this.#active = ctx
    try {
      return fn.call(thisArg, ...args)
    } finally {
      this.#active = saved
    }
  }
  bind<T>(_: Context, target: T) {
    return target
  }
  enable = () => this
  disable = () => this
}

/** Node's situation: the context follows promises (AsyncLocalStorage). */
class AsyncContextManager extends SyncContextManager {
  #storage = new AsyncLocalStorage<Context>()
  override active = () => this.#storage.getStore() ?? ROOT_CONTEXT
  override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A) {
    return this.#storage.run(ctx, () => fn.call(thisArg, ...args))
  }
}

afterEach(() => {
  context.disable()
})

/** An SDK with in-memory exporters, and `tm` instrumented with it. */
function sdk(tm: TokenManager, contextManager: ContextManager = new SyncContextManager()) {
  context.setGlobalContextManager(contextManager)
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  const spanExporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] })
  const stop = instrument(tm, { meterProvider, tracerProvider })
  const measurements: Measurement[] = []
  tm.on('measure', (m) => void measurements.push({ ...m }))
  cleanups.push(() => meterProvider.shutdown(), () => tracerProvider.shutdown())
  return {
    stop,
    measurements,
    tracer: tracerProvider.getTracer('app'),
    /** Every data point by instrument name: its attributes as `k=v,…` → value (a histogram's: its count). */
    async metrics() {
      await reader.forceFlush()
      const last = metricExporter.getMetrics().at(-1)
      const points: Record<string, Record<string, unknown>> = {}
      for (const scope of last?.scopeMetrics ?? [])
        for (const metric of scope.metrics) {
          expect(scope.scope.name).toBe('latchkey')
          const byAttributes = (points[metric.descriptor.name] ??= {})
          for (const p of metric.dataPoints as { attributes: Record<string, unknown>; value: unknown }[])
            byAttributes[Object.entries(p.attributes).map(([k, v]) => `${k}=${v}`).join(',')] =
              typeof p.value == 'object' ? (p.value as { count: number }).count : p.value
        }
      return points
    },
    /** A histogram's first data point, as last exported. */
    histogram: (name: string) =>
      metricExporter.getMetrics().at(-1)!.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name == name)!.dataPoints[0]!.value as {
        buckets: { boundaries: number[] }
        sum: number
      },
    spans: () => spanExporter.getFinishedSpans().filter((s) => s.name == 'latchkey token request'),
    all: () => spanExporter.getFinishedSpans(),
  }
}

/** `n` refreshes reached their token request: the wait before it (for the lock) is recorded. */
const waited = (n: number) => ({ 'latchkey.refresh.wait': { '': n } })

const tokenCounts = (grant: string, reason: string, outcome: string, n = 1) => ({
  'latchkey.token_requests': { [`oauth.grant_type=${grant},latchkey.reason=${reason},latchkey.outcome=${outcome}`]: n },
  'latchkey.token_request.duration': { [`oauth.grant_type=${grant},latchkey.reason=${reason},latchkey.outcome=${outcome}`]: n },
})

/** Every string that must never reach telemetry: tokens (current, rotated out), proofs. */
const secrets = (as: TokenServer) => [...as.accessTokens.keys(), ...as.refreshTokens.keys(), ...as.rotatedOut, ...as.counts.proofs].filter(Boolean)

function expectNoSecret(o: ReturnType<typeof sdk>, points: unknown, as: TokenServer, extra: string[] = []) {
  const text = JSON.stringify([points, o.measurements, o.all().map((s) => [s.name, s.attributes, s.events, s.links, s.status])])
  const list = [...secrets(as), ...extra]
  expect(list.length).toBeGreaterThan(0)
  for (const secret of list) expect(text).not.toContain(secret)
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

describe('latchkey/otel: metrics and spans after scripted scenarios', () => {
  it('a storm of 100 calls after expiry: one token request, 99 joined; its span is a child of the span the calls were made in', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false })
    await tm.setTokens(as.seed({ expires_in: 60 }))
    const o = sdk(tm)
    advance(120)
    let appSpanId = ''
    const statuses = await o.tracer.startActiveSpan('load dashboard', (span) => {
      appSpanId = span.spanContext().spanId
      // Synchronously inside the span, as an app's handler does; the span is no longer active after the first await.
      const calls = Array.from({ length: 100 }, () => tm.fetch(api.url('/data')).then((r) => r.status))
      span.end()
      return Promise.all(calls)
    })
    expect(statuses).toEqual(Array(100).fill(200))
    expect(as.counts.refresh).toBe(1)
    const points = await o.metrics()
    expect(points).toEqual({ ...tokenCounts('refresh_token', 'expiry', 'ok'), ...waited(1), 'latchkey.refresh.joined': { '': 99 } })
    // Buckets in seconds (the SDK's defaults are made for milliseconds).
    expect(o.histogram('latchkey.token_request.duration').buckets.boundaries).toEqual([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    const [span, ...others] = o.spans()
    expect(others).toEqual([])
    expect(span!.kind).toBe(SpanKind.CLIENT)
    expect(span!.instrumentationScope.name).toBe('latchkey')
    expect(parentOf(span!)).toBe(appSpanId)
    expect(span!.spanContext().traceId).toBe(o.all().find((s) => s.name == 'load dashboard')!.spanContext().traceId)
    expect(span!.attributes).toEqual({
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'http.response.status_code': 200,
      'oauth.grant_type': 'refresh_token',
      'latchkey.outcome': 'ok',
    })
    expect(span!.status.code).toBe(SpanStatusCode.UNSET)
    expectNoSecret(o, points, as)
  })

  it('a 401 retried once: one unauthorized retry, one token request for reason unauthorized, parented through an async context manager', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false })
    const seed = as.seed()
    await tm.setTokens(seed)
    const o = sdk(tm, new AsyncContextManager())
    // The API stops accepting the token before it expires (revoked at the server).
    as.accessTokens.get(seed.access_token)!.revoked = true
    let appSpanId = ''
    const res = await o.tracer.startActiveSpan('save', async (span) => {
      appSpanId = span.spanContext().spanId
      const r = await tm.fetch(api.url('/save'), { method: 'POST', body: 'x' })
      span.end()
      return r
    })
    expect(res.status).toBe(200)
    expect(api.requests.map((r) => r.status)).toEqual([401, 200])
    const points = await o.metrics()
    expect(points).toEqual({ ...tokenCounts('refresh_token', 'unauthorized', 'ok'), ...waited(1), 'latchkey.unauthorized_retries': { '': 1 } })
    expect(parentOf(o.spans()[0]!)).toBe(appSpanId)
    expectNoSecret(o, points, as, [seed.access_token, seed.refresh_token])
  })

  it('DPoP nonce retries at the authorization server (login) and at an API; the login is an authorization_code request', async () => {
    const { as, api } = await setup({ dpop: true, requireNonce: true }, { requireNonce: true })
    const tm = manager(as, [api.origin])
    const o = sdk(tm)
    let appSpanId = ''
    await o.tracer.startActiveSpan('login', (span) => {
      appSpanId = span.spanContext().spanId
      const done = tm.exchangeCode({ code: as.code(), codeVerifier: 'v'.repeat(43), redirectUri: 'https://app.example/cb' })
      span.end()
      return done
    })
    expect((await tm.fetch(api.url('/me'))).status).toBe(200)
    expect(as.counts.nonceChallenges).toBe(1)
    const points = await o.metrics()
    expect(points).toEqual({
      ...tokenCounts('authorization_code', 'login', 'ok'),
      'latchkey.dpop.nonce_retries': { 'latchkey.server=as': 1, 'latchkey.server=api': 1 },
    })
    const [span] = o.spans()
    expect(parentOf(span!)).toBe(appSpanId)
    expect(span!.attributes).toMatchObject({ 'oauth.grant_type': 'authorization_code', 'http.response.status_code': 200, 'latchkey.outcome': 'ok' })
    expectNoSecret(o, points, as, [api.nonces.current(), as.nonces.current()])
  })

  it('a 503 with Retry-After, then three calls held back without a request', async () => {
    let busy = true
    const { as, api } = await setup({
      onRefresh: (res) => busy && (json(res, 503, { error: 'temporarily_unavailable' }, { 'retry-after': '30' }), true),
    })
    const tm = manager(as, [api.origin], { dpop: false })
    await tm.setTokens(as.seed({ expires_in: 60 }))
    const o = sdk(tm)
    advance(120)
    const codes: string[] = []
    for (let i = 0; i < 4; i++) await tm.fetch(api.url('/data')).catch((e) => codes.push(isLatchkeyError(e) ? (e.error ?? e.code) : 'other'))
    expect(codes).toEqual(['temporarily_unavailable', 'retry_later', 'retry_later', 'retry_later'])
    expect(as.counts.refresh).toBe(1)
    const points = await o.metrics()
    expect(points).toEqual({
      ...tokenCounts('refresh_token', 'expiry', 'temporarily_unavailable'),
      ...waited(1),
      'latchkey.held_back': { 'latchkey.cause=retry_after': 3 },
    })
    const [span] = o.spans()
    expect(span!.attributes['http.response.status_code']).toBe(503)
    expect(span!.status.code).toBe(SpanStatusCode.ERROR)
    expect(o.measurements.find((m) => m.name == 'token_request')!.retryAfter).toBe(30_000)
    busy = false
  })

  it('a refresh token the server refuses: outcome invalid_grant', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false })
    await tm.setTokens(as.seed())
    const o = sdk(tm)
    as.refreshTokens.clear()
    await expect(tm.refresh()).rejects.toMatchObject({ code: 'session_expired' })
    const points = await o.metrics()
    expect(points).toEqual({ ...tokenCounts('refresh_token', 'manual', 'invalid_grant'), ...waited(1) })
    expect(o.spans()[0]!.attributes).toMatchObject({ 'http.response.status_code': 400, 'latchkey.outcome': 'invalid_grant' })
  })

  it('a failure that is not latchkey\'s (a platform signer that fails) is outcome error, never ok', async () => {
    const { as, api } = await setup()
    const publicJwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' })
    const signer = { publicJwk, sign: () => Promise.reject(new Error('the keystore is locked')) }
    const tm = manager(as, [api.origin], { dpop: { signer } })
    await tm.setTokens(as.seed())
    const o = sdk(tm)
    await expect(tm.refresh()).rejects.toThrow('the keystore is locked')
    expect(await o.metrics()).toEqual({ ...tokenCounts('refresh_token', 'manual', 'error'), ...waited(1) })
  })

  it('a refresh through the app\'s own function is a custom grant, without HTTP attributes of latchkey\'s', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false, refresh: async () => as.seed() })
    const o = sdk(tm)
    await tm.refresh()
    expect(await o.metrics()).toEqual({ ...tokenCounts('custom', 'manual', 'ok'), ...waited(1) })
    expect(o.spans()[0]!.attributes).toEqual({ 'oauth.grant_type': 'custom', 'latchkey.outcome': 'ok' })
  })

  it('a refresh on restore() counts as expiry', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false, refresh: async () => as.seed() })
    const o = sdk(tm)
    expect(await tm.restore()).toBe(true)
    expect(await o.metrics()).toEqual({ ...tokenCounts('custom', 'expiry', 'ok'), ...waited(1) })
  })

  it('the first token of a resources origin is reason resource', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [], { dpop: false, resources: { [api.origin]: api.origin }, refresh: undefined })
    await tm.setTokens(as.seed())
    const o = sdk(tm)
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    expect(as.counts.resources).toEqual([api.origin])
    expect(await o.metrics()).toEqual({ ...tokenCounts('refresh_token', 'resource', 'ok'), ...waited(1) })
  })

  it('calls that need no refresh emit no measurement at all', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false })
    await tm.setTokens(as.seed())
    const o = sdk(tm)
    for (let i = 0; i < 20; i++) expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    expect(o.measurements).toEqual([])
    expect(await o.metrics()).toEqual({})
  })

  it('stop() stops recording', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false })
    await tm.setTokens(as.seed())
    const o = sdk(tm)
    await tm.refresh()
    o.stop()
    await tm.refresh()
    await tm.refresh()
    expect(as.counts.refresh).toBe(3)
    expect(await o.metrics()).toEqual({ ...tokenCounts('refresh_token', 'manual', 'ok'), ...waited(1) })
    expect(o.spans()).toHaveLength(1)
  })

  it('with no SDK registered (the no-op API), instrument() and everything after it throw nothing', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin], { dpop: false })
    await tm.setTokens(as.seed())
    const stop = instrument(tm)
    await tm.refresh()
    expect((await tm.fetch(api.url('/x'))).status).toBe(200)
    stop()
  })
})

describe('latchkey/otel: measurements the core does not emit yet', () => {
  // The server clock's offset and the worker's connections are measured where those are learnt
  // (the server-time work and the shared worker, each landing on its own): here, a manager that
  // only passes measurements on shows what latchkey/otel makes of them.
  it('clock offset (ms → s) and worker connections become gauges', async () => {
    const listeners = new Set<(m: Measurement) => void>()
    const listener = (m: Measurement) => listeners.forEach((fn) => fn(m))
    const tm = { on: (_: 'measure', fn: (m: Measurement) => void) => (listeners.add(fn), () => listeners.delete(fn)), status: () => undefined } as unknown as TokenManager
    const o = sdk(tm)
    listener({ name: 'clock_offset', offset: -1500 })
    listener({ name: 'clock_offset', offset: 2500 })
    listener({ name: 'worker_connection', connections: 3 })
    expect(await o.metrics()).toEqual({ 'latchkey.clock.offset': { '': 2.5 }, 'latchkey.worker.connections': { '': 3 } })
  })
})

describe('latchkey/otel across tabs', () => {
  it('a tab that waited for the lock while another refreshed adopts its tokens: counted as joined, its wait recorded', async () => {
    const { as, api } = await setup({ delayMs: 300 })
    const hub = createTabsHub()
    const [a, b] = [hub.tab(), hub.tab()].map((crossTab) => manager(as, [api.origin], { dpop: false, crossTab }))
    await a!.setTokens(as.seed({ expires_in: 1 }))
    await expect.poll(() => b!.status()?.generation).toBe(1)
    const o = sdk(b!)
    // Real time (a faked Date stands still): the token has expired.
    await new Promise((r) => setTimeout(r, 1100))
    const first = a!.fetch(api.url('/a'))
    const second = b!.fetch(api.url('/b'))
    expect([(await first).status, (await second).status]).toEqual([200, 200])
    expect(as.counts.refresh).toBe(1)
    expect(await o.metrics()).toEqual({ 'latchkey.refresh.joined': { '': 1 }, ...waited(1) })
    expect(o.measurements.map((m) => m.name)).toEqual(['start', 'adopted'])
    // It waited for the other tab's token request, which the server held for 300 ms.
    expect(o.histogram('latchkey.refresh.wait').sum).toBeGreaterThan(0.25)
  })
})

describe('latchkey/otel in worker mode', () => {
  it('a SharedWorker counts its pages as they connect and leave (worker_connection)', async () => {
    const { as, api } = await setup()
    const scope = Object.assign(new EventTarget(), { onconnect: null })
    const inWorker = serveTokenManager({ clientId: 'spa', tokenEndpoint: as.tokenEndpoint, allowedOrigins: [api.origin], dpop: false }, scope)
    const o = sdk(inWorker)
    const open = () => {
      const { port1, port2 } = new MessageChannel()
      cleanups.push(() => (port1.close(), port2.close()))
      scope.dispatchEvent(new MessageEvent('connect', { ports: [port1] }))
      return connectTokenManager(port2)
    }
    const pages = [open(), open(), open()]
    await Promise.all(pages.map((page) => page.restore()))
    pages[1]!.dispose()
    await expect.poll(() => o.measurements.length).toBe(4)
    expect(o.measurements).toEqual([1, 2, 3, 2].map((connections) => ({ name: 'worker_connection', connections })))
    expect(await o.metrics()).toEqual({ 'latchkey.worker.connections': { '': 2 } })
  })

  it('instrumented inside the worker, where the token requests are made', async () => {
    const { as, api } = await setup()
    const { port1, port2 } = new MessageChannel()
    cleanups.push(() => (port1.close(), port2.close()))
    const inWorker = serveTokenManager({ clientId: 'spa', tokenEndpoint: as.tokenEndpoint, allowedOrigins: [api.origin], crossTab: false, dpop: false }, port1)
    const o = sdk(inWorker)
    const page = connectTokenManager(port2)
    await page.setTokens(as.seed({ expires_in: 60 }))
    advance(120)
    const statuses = await Promise.all(Array.from({ length: 5 }, () => page.fetch(api.url('/data')).then((r) => r.status)))
    expect(statuses).toEqual([200, 200, 200, 200, 200])
    expect(await o.metrics()).toEqual({ ...tokenCounts('refresh_token', 'expiry', 'ok'), ...waited(1), 'latchkey.refresh.joined': { '': 4 } })
  })
})
