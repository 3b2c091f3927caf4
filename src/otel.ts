/**
 * OpenTelemetry metrics and traces of a token manager, from its measurements (`tm.on('measure')`):
 * token requests by grant, reason and outcome, their duration, refreshes joined, DPoP nonce and
 * 401 retries, token requests held back, the server clock's offset; and a CLIENT span per token
 * request, a child of the span that was active when the call that caused it was made.
 *
 * @module
 */
import { context, metrics, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type MeterProvider, type TracerProvider } from '@opentelemetry/api'
import type { Measurement, TokenManager } from './index.js'

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /** Where the meter named `latchkey` comes from. @default the global meter provider */
  meterProvider?: MeterProvider
  /** Where the tracer named `latchkey` comes from. @default the global tracer provider */
  tracerProvider?: TracerProvider
}

/**
 * Records the measurements of `tm` as OpenTelemetry metrics and spans; returns the function that
 * stops recording. In worker mode, instrument the manager that `serveTokenManager` returns, inside
 * the worker: that is where the work happens.
 *
 * Instruments (meter `latchkey`): `latchkey.token_requests` (counter; `oauth.grant_type`,
 * `latchkey.reason`, `latchkey.outcome`), `latchkey.token_request.duration` (histogram, s, same
 * attributes), `latchkey.refresh.joined`, `latchkey.dpop.nonce_retries` (`latchkey.server`: `as` |
 * `api`), `latchkey.unauthorized_retries`, `latchkey.held_back` (`latchkey.cause`: `retry_after` |
 * `backoff`), `latchkey.clock.offset` (gauge, s), and `latchkey.refresh.wait` (histogram, s: from a
 * refresh's start to its token request, the wait for the cross-tab lock), `latchkey.worker.connections`
 * (gauge). Spans (tracer `latchkey`): `latchkey token
 * request`, CLIENT, with `http.request.method`, `server.address`, `http.response.status_code`,
 * `oauth.grant_type`, `latchkey.outcome`. No attribute ever holds a token, a code, a proof, a
 * header value or a URL.
 *
 * The parent of a token request's span is the context active when latchkey began the refresh or
 * the code exchange: synchronously inside `tm.fetch()`, `tm.refresh()`, `tm.getAccessToken()` or
 * `tm.exchangeCode()`, so no context manager has to carry it across an await. A refresh that
 * begins after an await inside latchkey (after a 401, in `restore()`, `handleRedirect()`) takes the
 * context active then, which only a context manager that follows promises (AsyncLocalStorage in
 * Node, zone.js in browsers) makes the caller's.
 *
 * @example
 * ```ts
 * import { instrument } from 'latchkey/otel'
 * const stop = instrument(tm)            // the global providers, as the OpenTelemetry SDK registered them
 * ```
 */
export function instrument(tm: TokenManager, { meterProvider = metrics.getMeterProvider(), tracerProvider = trace.getTracerProvider() }: InstrumentOptions = {}): () => void {
  const meter = meterProvider.getMeter('latchkey')
  const tracer = tracerProvider.getTracer('latchkey')
  // Descriptions live in the README: every byte here is paid by every app.
  const requests = meter.createCounter('latchkey.token_requests')
  // The SDK's default buckets are made for milliseconds: a token request takes 0.05 s to 10 s.
  const durations = meter.createHistogram('latchkey.token_request.duration', { unit: 's', advice: { explicitBucketBoundaries: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] } })
  const joined = meter.createCounter('latchkey.refresh.joined')
  const nonces = meter.createCounter('latchkey.dpop.nonce_retries')
  const unauthorized = meter.createCounter('latchkey.unauthorized_retries')
  const held = meter.createCounter('latchkey.held_back')
  const offset = meter.createGauge('latchkey.clock.offset', { unit: 's' })
  // Beyond the fixed names (README, Monitoring): from a refresh's start to its token request (or to the adoption of
  // another tab's tokens), the wait for the cross-tab lock.
  const waits = meter.createHistogram('latchkey.refresh.wait', { unit: 's', advice: { explicitBucketBoundaries: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5] } })
  // Beyond the fixed names too: pages connected to the worker that serves the session.
  const connections = meter.createGauge('latchkey.worker.connections')
  // Each start's parent context, reason and time, keyed by the measurement object (it comes back as its token_request).
  const starts = new WeakMap<Measurement, [Context, string, number]>()
  // `latchkey.reason`: `resource` is the first token of a `resources` origin (it has none yet, at
  // the start); a refresh on resuming or restoring replaces an expired (or absent) token.
  const reasonOf = ({ reason, origin }: Measurement) =>
    reason == 'expiry' && origin && !tm.status(origin) ? 'resource' : reason == 'resume' || reason == 'restore' ? 'expiry' : reason!

  const record = (m: Measurement) => {
    const { name, reason, host, outcome = 'ok' } = m
    if (name == 'start') {
      if (!starts.has(m)) starts.set(m, [context.active(), reasonOf(m), Date.now()])
    } else if (name == 'token_request') {
      const start = starts.get(m)
      const [parent, why] = start ?? [context.active(), reasonOf(m)]
      // No wait before a login's request; none known for a start before instrument() was called.
      if (start && reason != 'login') waits.record((m.time! - start[2]) / 1000)
      const grant = reason == 'login' ? 'authorization_code' : host ? 'refresh_token' : 'custom'
      const attributes: Attributes = { 'oauth.grant_type': grant, 'latchkey.reason': why, 'latchkey.outcome': outcome }
      requests.add(1, attributes)
      durations.record(m.duration! / 1000, attributes)
      const span = tracer.startSpan(
        'latchkey token request',
        {
          kind: SpanKind.CLIENT,
          startTime: m.time!,
          attributes: {
            'http.request.method': host && 'POST',
            'server.address': host,
            'http.response.status_code': m.status,
            'oauth.grant_type': grant,
            'latchkey.outcome': outcome,
          },
        },
        parent,
      )
      if (m.outcome) span.setStatus({ code: SpanStatusCode.ERROR })
      span.end(m.time! + m.duration!)
    } else if (name == 'joined') joined.add(1)
    else if (name == 'adopted') {
      joined.add(1)
      const start = starts.get(m)
      if (start) waits.record((Date.now() - start[2]) / 1000)
    } else if (name == 'nonce') nonces.add(1, { 'latchkey.server': m.server! })
    else if (name == 'unauthorized') unauthorized.add(1)
    else if (name == 'held_back') held.add(1, { 'latchkey.cause': m.backoff ? 'backoff' : 'retry_after' })
    else if (name == 'clock_offset') offset.record(m.offset! / 1000)
    else if (name == 'worker_connection') connections.record(m.connections!)
  }
  return tm.on('measure', record)
}
