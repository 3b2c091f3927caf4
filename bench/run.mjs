// `npm run bench`: latchkey's cost, each figure a ratio measured side by side in this one process
// against the least a correct client must do. See bench/README.md for the method of each figure.
//
//   node --expose-gc bench/run.mjs [--quick] [--only a,b,b16,c,d,e,o] [--update]
//
// Runs the built package (dist/index.js; rebuilt first when older than src/). Prints a Markdown
// table and, after a full run, writes it with the machine it ran on to bench/results/last-run.md;
// with --update also to the tracked bench/last-run.md.

import { fork, spawnSync } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { describeMachine, ensureBuilt, resultTable, saveReport } from './build.mjs'
import { b64u, median, quartiles, sideBySide, sleep, timeConcurrent, timeSequential } from './lib.mjs'

if (typeof globalThis.gc != 'function') {
  // (e) needs a collector it can call: start again with one.
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const figures = ['a', 'b', 'b16', 'c', 'd', 'e', 'o']
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : figures
const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const started = performance.now()
const load = os.loadavg()

// --- the built package -------------------------------------------------------------------------
await ensureBuilt('dist/index.js', ({ esm }) => esm)
const { createTokenManager } = await import('../dist/index.js')

// --- the loopback servers, in a child process --------------------------------------------------
const child = fork(here('server.mjs'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const { port } = await new Promise((resolve, reject) => (child.once('message', resolve), child.once('error', reject)))
const origin = `http://127.0.0.1:${port}`
const API = origin + '/api/items'
const TOKEN = origin + '/token'
const post = async (path) => (await fetch(origin + path, { method: 'POST' })).json()
const stats = async () => (await fetch(origin + '/stats')).json()
const drain = async (res) => void (await res.arrayBuffer())

const subtle = globalThis.crypto.subtle
const encoder = new TextEncoder()
const ES256 = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGN = { name: 'ECDSA', hash: 'SHA-256' }

/** A token manager against the bench servers; `api` replaces fetch for everything but /token. */
function manager({ dpop, api }) {
  return createTokenManager({
    clientId: 'bench',
    tokenEndpoint: TOKEN,
    allowedOrigins: [origin],
    dpop,
    crossTab: false,
    fetch: api ? (input, init) => (String(input) == TOKEN ? fetch(input, init) : api(input, init)) : undefined,
  })
}

const results = []
const record = (id, what, ratio, goal, detail) => {
  results.push({ id, what, ratio, goal, detail })
  const mark = goal == null ? '' : ratio <= goal ? '  (goal ≤ ' + goal + '×: met)' : '  (goal ≤ ' + goal + '×: MISSED)'
  console.log(`(${id}) ${what}: ${ratio.toFixed(3)}×${mark}\n     ${detail}`)
}
const us = (ms, n) => ((ms / n) * 1000).toFixed(1) + ' µs'

/** The floor's key: a raw WebCrypto ES256 key pair, like the one latchkey makes. */
const { privateKey, publicKey } = await subtle.generateKey(ES256, false, ['sign', 'verify'])

/** A real proof made by latchkey for the session `seed`, for a GET to the API. */
async function sampleProof(seed) {
  let proof = ''
  const capture = (input, init) => (init?.headers ? new Headers(init.headers) : input.headers).get('dpop')
  const probe = manager({ dpop: true, api: (input, init) => ((proof = capture(input, init)), Promise.resolve(new Response(null))) })
  await probe.setTokens(seed)
  await probe.fetch(API)
  return proof
}

// --- (e) heap after 100 000 calls vs after 1 000 -----------------------------------------------
// First, while the heap holds little else: what the other figures leave behind (a warm pool of
// 1000 sockets after (d), say) would dilute the ratio.
if (only.includes('e')) {
  const total = quick ? 20_000 : 100_000
  const batch = 100
  // Fresh Response objects from a canned fetch for the API (so nothing but latchkey holds memory),
  // the real token endpoint for refreshes: tokens live 2 s, so the run refreshes every ~1.5 s.
  const api = () => Promise.resolve(new Response('{"ok":true}', { status: 200, headers: { 'content-type': 'application/json' } }))
  await post('/config?expires_in=2')
  // Warm-up on a throwaway manager first: compiled code and inline caches are the engine's, not
  // state that latchkey keeps, and would otherwise show up as growth between the two readings.
  const spare = manager({ dpop: true, api })
  await spare.setTokens(await post('/seed?type=DPoP&expires_in=2'))
  for (let i = 0; i < 50; i++) await Promise.all(Array.from({ length: batch }, () => spare.fetch(API).then(drain)))
  await spare.refresh()
  const tm = manager({ dpop: true, api })
  await tm.setTokens(await post('/seed?type=DPoP&expires_in=2'))
  let refreshes = 0
  tm.on('refresh', () => refreshes++)
  // The lowest of three readings, each after four full collections and with no refresh in flight:
  // garbage that survives a collection by chance (a socket being set up) is not state.
  const heap = async () => {
    await tm.getAccessToken()
    const readings = []
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 4; i++) globalThis.gc(), await sleep(10)
      readings.push(process.memoryUsage().heapUsed)
      await sleep(50)
    }
    return Math.min(...readings)
  }
  let calls = 0
  const runTo = async (target) => {
    while (calls < target) {
      await Promise.all(Array.from({ length: batch }, () => tm.fetch(API).then(drain)))
      calls += batch
    }
  }
  const t0 = performance.now()
  await runTo(1000)
  const h1 = await heap()
  await runTo(total / 2)
  const hm = await heap()
  await runTo(total)
  const h2 = await heap()
  await post('/config?expires_in=300')
  record('e', `heap after ${total.toLocaleString('en')} tm.fetch (DPoP) vs after 1,000`, h2 / h1, 1.1,
    `${(h1 / 2 ** 20).toFixed(2)} MiB → ${(hm / 2 ** 20).toFixed(2)} MiB (half-way) → ${(h2 / 2 ** 20).toFixed(2)} MiB; ${refreshes} refreshes on the way; ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

// --- (a) DPoP proof vs the floor ---------------------------------------------------------------
if (only.includes('a')) {
  // A canned response, returned at once: no I/O, so the batch times are the client's work only.
  const canned = new Response(null, { status: 200 })
  const cannedFetch = () => Promise.resolve(canned)
  const tm = manager({ dpop: true, api: cannedFetch })
  const seed = await post('/seed?type=DPoP&expires_in=86400')
  await tm.setTokens(seed)
  const at = seed.access_token

  // The floor: the same canned call, plus one raw ES256 sign of an input as long as a real proof's
  // header.payload, plus one SHA-256 digest (the ath of the access token).
  const proof = await sampleProof(seed)
  const signingInput = encoder.encode(proof.split('.').slice(0, 2).join('.'))
  const floor = async () => {
    await subtle.digest('SHA-256', encoder.encode(at))
    await subtle.sign(SIGN, privateKey, signingInput)
    await cannedFetch(API, { headers: { authorization: 'DPoP ' + at } })
  }

  // The proof is a real one: check it with the demo API's RFC 9449 verifier once.
  const { createDPoPVerifier } = await import('../demo/server/dpop.mjs')
  await createDPoPVerifier().verify({ proof, method: 'GET', url: API, accessToken: at })

  const n = quick ? 200 : 400
  const rounds = quick ? 9 : 21
  const r = await sideBySide({ rounds, a: () => timeSequential(() => tm.fetch(API), n), b: () => timeSequential(floor, n) })
  record('a', 'DPoP proof per request (tm.fetch, canned response) vs floor (1 sign + 1 digest)', r.ratio, 1.1,
    `tm.fetch ${us(r.a, n)} per call, floor ${us(r.b, n)}; ${rounds} rounds × ${n} calls`)

  // The proof alone, without ath: the public RefreshContext.dpopProof vs one raw sign.
  let dpopProof
  const custom = createTokenManager({
    clientId: 'bench', allowedOrigins: [origin], crossTab: false,
    refresh: async (ctx) => ((dpopProof = ctx.dpopProof), { access_token: 'x', token_type: 'DPoP', expires_in: 86400 }),
  })
  await custom.refresh()
  const sign = () => subtle.sign(SIGN, privateKey, signingInput)
  const r2 = await sideBySide({ rounds, a: () => timeSequential(() => dpopProof('POST', TOKEN), n), b: () => timeSequential(sign, n) })
  record("a'", 'DPoP proof alone (RefreshContext.dpopProof, no ath) vs 1 raw sign', r2.ratio, 1.1,
    `proof ${us(r2.a, n)}, raw sign ${us(r2.b, n)}`)

  // For calibration against the figures in the issue: jose's SignJWT, same floor.
  const { SignJWT, exportJWK } = await import('jose')
  const { x, y } = await exportJWK(publicKey)
  const jwk = { kty: 'EC', crv: 'P-256', x, y }
  const jose = async () => {
    const ath = b64u(await subtle.digest('SHA-256', encoder.encode(at)))
    const jwt = await new SignJWT({ htm: 'GET', htu: API, ath, jti: b64u(crypto.getRandomValues(new Uint8Array(16))) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .setIssuedAt()
      .sign(privateKey)
    await cannedFetch(API, { headers: { authorization: 'DPoP ' + at, dpop: jwt } })
  }
  const r3 = await sideBySide({ rounds, a: () => timeSequential(jose, n), b: () => timeSequential(floor, n) })
  record("a''", "for calibration: jose SignJWT proof with ath vs the same floor", r3.ratio, null, `jose ${us(r3.a, n)}, floor ${us(r3.b, n)}`)
}

// --- (b), (c) tm.fetch vs raw fetch over loopback HTTP -----------------------------------------
for (const [id, dpop, goal] of [['b', false, 1.05], ['c', true, 1.45]]) {
  if (!only.includes(id)) continue
  const tm = manager({ dpop })
  const seed = await post(`/seed?type=${dpop ? 'DPoP' : 'Bearer'}&expires_in=86400`)
  await tm.setTokens(seed)
  const headers = { authorization: 'Bearer ' + seed.access_token }
  const n = quick ? 100 : 200
  const rounds = quick ? 9 : 21
  const r = await sideBySide({
    rounds,
    a: () => timeSequential(async () => drain(await tm.fetch(API)), n),
    b: () => timeSequential(async () => drain(await fetch(API, { headers })), n),
  })
  record(id, `tm.fetch with ${dpop ? 'DPoP' : 'a Bearer token'} vs raw fetch, loopback HTTP`, r.ratio, goal,
    `tm.fetch ${us(r.a, n)} per request, raw fetch ${us(r.b, n)}; ${rounds} rounds × ${n} sequential requests`)
  if (!dpop) continue
  // What part of (c) is DPoP itself: the same requests against the floor of a DPoP request, one raw
  // sign + one digest, then a raw fetch carrying a real proof's headers.
  const proof = await sampleProof(seed)
  const signingInput = encoder.encode(proof.split('.').slice(0, 2).join('.'))
  const dpopHeaders = { authorization: 'DPoP ' + seed.access_token, dpop: proof }
  const floor = async () => {
    await subtle.digest('SHA-256', encoder.encode(seed.access_token))
    await subtle.sign(SIGN, privateKey, signingInput)
    await drain(await fetch(API, { headers: dpopHeaders }))
  }
  const f = await sideBySide({ rounds, a: () => timeSequential(async () => drain(await tm.fetch(API)), n), b: () => timeSequential(floor, n) })
  record("c'", 'tm.fetch with DPoP vs the floor of a DPoP request (1 sign + 1 digest + raw fetch with the same headers)', f.ratio, null,
    `tm.fetch ${us(f.a, n)} per request, floor ${us(f.b, n)}`)
}

// --- (b16) (b) with 16 requests at a time ------------------------------------------------------
// Batches of 16 concurrent requests (Promise.all), as an app's page load sends them: the same
// session, URL, header and body handling as (b), with the batches one after the other.
if (only.includes('b16')) {
  const width = 16
  const tm = manager({ dpop: false })
  // A day-long token, set before timing: nothing inside the timed part may refresh.
  const seed = await post('/seed?type=Bearer&expires_in=86400')
  await tm.setTokens(seed)
  let refreshes = 0
  tm.on('refresh', () => refreshes++)
  tm.on('refresh-error', () => refreshes++)
  const headers = { authorization: 'Bearer ' + seed.access_token }
  // Short rounds, many of them: two batches a side (a few ms), so that both halves of a round see
  // the same machine, and 401 rounds for a steady median (see bench/README.md).
  const batches = 2
  const rounds = quick ? 101 : 401
  const n = width * batches
  const before = await stats()
  const r = await sideBySide({
    rounds,
    warmup: 20,
    a: () => timeConcurrent(async () => drain(await tm.fetch(API)), width, batches),
    b: () => timeConcurrent(async () => drain(await fetch(API, { headers })), width, batches),
  })
  const after = await stats()
  const tokens = after.token - before.token
  record('b16', 'tm.fetch with a Bearer token vs raw fetch, 16 concurrent requests, loopback HTTP', r.ratio, 1.05,
    `tm.fetch ${us(r.a, n)} per request, raw fetch ${us(r.b, n)}; per-round ratios ${quartiles(r.ratios)} (interquartile); ` +
      `${rounds} rounds × ${batches} batches of ${width} concurrent requests; ${after.api - before.api} API requests, ` +
      `${tokens} token requests and ${refreshes} refreshes while timing${tokens || refreshes ? ' (should be 0: FAILED)' : ''}`)
  if (tokens || refreshes) process.exitCode = 1
}

// --- (o) (b) with latchkey/otel attached ----------------------------------------------------------
// Two managers on the same session shape, one instrumented with the OpenTelemetry SDK (metrics and
// traces, in-memory exporters), one not; the same sequential requests side by side.
if (only.includes('o')) {
  await ensureBuilt('dist/otel.js', ({ esm }) => esm)
  const { instrument } = await import('../dist/otel.js')
  const { MeterProvider, PeriodicExportingMetricReader, InMemoryMetricExporter, AggregationTemporality } = await import('@opentelemetry/sdk-metrics')
  const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-base')
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] })
  const plain = manager({ dpop: false })
  const instrumented = manager({ dpop: false })
  const stop = instrument(instrumented, { meterProvider, tracerProvider })
  for (const tm of [plain, instrumented]) await tm.setTokens(await post('/seed?type=Bearer&expires_in=86400'))
  // Many short rounds, as (b16): the median of per-round ratios holds steady on a loaded machine.
  const n = 40
  const rounds = quick ? 51 : 201
  const r = await sideBySide({
    rounds,
    warmup: 10,
    a: () => timeSequential(async () => drain(await instrumented.fetch(API)), n),
    b: () => timeSequential(async () => drain(await plain.fetch(API)), n),
  })
  record('o', 'tm.fetch with a Bearer token and latchkey/otel attached vs the same without, loopback HTTP', r.ratio, 1.03,
    `instrumented ${us(r.a, n)} per request, plain ${us(r.b, n)}; per-round ratios ${quartiles(r.ratios)} (interquartile); ${rounds} rounds × ${n} sequential requests`)
  stop()
  await meterProvider.shutdown()
  await tracerProvider.shutdown()
}

// --- (d) a storm of 1000 calls after expiry ----------------------------------------------------
if (only.includes('d')) {
  const N = 1000
  const rounds = quick ? 3 : 7
  // Both sides start from the same warm connection pool.
  const warm = () => Promise.all(Array.from({ length: N }, () => fetch(origin + '/warm').then(drain)))
  const storms = []
  const baselines = []
  const literals = []
  const ratios = []
  const literalRatios = []
  const tokenRequests = []
  let reuse = 0
  await post('/config?expires_in=300')
  let baseRt = (await post('/seed')).refresh_token
  const rawRefresh = async () => {
    const res = await fetch(TOKEN, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: baseRt, client_id: 'bench' }),
    })
    const body = await res.json()
    baseRt = body.refresh_token
    return body.access_token
  }
  const t = () => performance.now()
  for (let i = -1; i < rounds; i++) {
    const tm = manager({ dpop: false })
    await tm.setTokens(await post('/seed?expires_in=1'))
    await sleep(1050) // expired, not merely due
    const storm = async () => {
      await warm()
      const before = await stats()
      const t0 = t()
      await Promise.all(Array.from({ length: N }, () => tm.fetch(API).then(drain)))
      const elapsed = t() - t0
      const after = await stats()
      return { elapsed, tokens: after.token - before.token, reuse: after.reuse - before.reuse }
    }
    const baseline = async () => {
      await warm()
      const t0 = t()
      const at = await rawRefresh()
      await Promise.all(Array.from({ length: N }, () => fetch(API, { headers: { authorization: 'Bearer ' + at } }).then(drain)))
      const all = t() - t0
      const t1 = t()
      const at2 = await rawRefresh()
      await drain(await fetch(API, { headers: { authorization: 'Bearer ' + at2 } }))
      return { all, one: t() - t1 }
    }
    let s, b
    if (i % 2 == 0) (s = await storm()), (b = await baseline())
    else (b = await baseline()), (s = await storm())
    if (i < 0) continue // warm-up round
    storms.push(s.elapsed)
    baselines.push(b.all)
    literals.push(b.one)
    ratios.push(s.elapsed / b.all)
    literalRatios.push(s.elapsed / b.one)
    tokenRequests.push(s.tokens)
    reuse += s.reuse
  }
  const exact = tokenRequests.every((c) => c == 1) && reuse == 0
  record('d', `storm of ${N} tm.fetch after expiry vs 1 raw refresh + the same ${N} requests raw`, median(ratios), 1.2,
    `storm ${median(storms).toFixed(1)} ms, raw ${median(baselines).toFixed(1)} ms; token requests per storm: ${tokenRequests.join(', ')}` +
      ` (${exact ? 'exactly one each, no refresh token reused' : 'NOT exactly one: FAILED'}); ${rounds} rounds`)
  record("d'", `same storm vs 1 raw refresh + ONE request (literal reading; see bench/README.md)`, median(literalRatios), null,
    `refresh + one request ${median(literals).toFixed(2)} ms`)
  if (!exact) process.exitCode = 1
}

child.disconnect()

// --- report ------------------------------------------------------------------------------------
const machine = describeMachine(load, `Node ${process.version}`)
const order = ['a', "a'", "a''", 'b', 'b16', 'c', "c'", 'd', "d'", 'e', 'o']
results.sort((x, y) => order.indexOf(x.id) - order.indexOf(y.id))
const table = resultTable(results)
const when = new Date().toISOString().slice(0, 10)
const text = `Measured ${when} with \`npm run bench\`${quick ? ' --quick' : ''} on: ${machine}.\n\n${table}\n\nDetails:\n\n${results.map((r) => `- (${r.id}) ${r.detail}`).join('\n')}\n`
console.log('\n' + text)
console.log(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s`)
if (!quick && figures.every((id) => only.includes(id))) saveReport('last-run.md', text, args)
