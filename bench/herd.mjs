// The herd: 10 000 clients in one process against one loopback token endpoint (invariant 10),
// side by side with a naive client (no jitter, no Retry-After, no backoff) in the same run.
//
//   (i)  tokens issued in the same instant: when do their proactive refreshes reach the server?
//        The largest share of all refreshes that lands in one 100 ms slice, and the spread.
//   (ii) a 60 s outage answering 503 with `Retry-After: 10`: token requests per client.
//   (iii) (i) with 60 s tokens, whose refresh window is capped at a quarter of their lifetime.
//   (iv) an API that answers 401 to every token: token requests per client over 60 s of calls.
//
// Time is simulated: `Date.now` is the bench's clock, moved in steps; at each step every client makes
// one call and the step ends when all of them have settled. Real timers (request timeouts) keep
// running, so nothing here depends on how fast the machine is. Results go to bench/results/.
//
//   npm run bench:herd                       10 000 clients (naive outage baseline: 500)
//   npm run bench:herd -- --clients 2000     fewer, for a smoke run

import { mkdir, writeFile } from 'node:fs/promises'
import http, { createServer } from 'node:http'
import os from 'node:os'
import { describeMachine, ensureBuilt } from './build.mjs'

const WATCHDOG_MS = 600_000
const watchdog = setTimeout(() => {
  console.error(`herd: still running after ${WATCHDOG_MS / 1000} s; stopped`)
  process.exit(2)
}, WATCHDOG_MS)
watchdog.unref()

const arg = (name, fallback) => {
  const i = process.argv.indexOf('--' + name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const CLIENTS = arg('clients', 10_000)
// The naive client sends a token request on every call of the outage: a twentieth of the clients
// gives the same figure per client with a twentieth of the requests.
const NAIVE_OUTAGE_CLIENTS = Math.max(1, Math.round(CLIENTS / 20))
const LEEWAY_S = 30
const LIFETIME_S = 300
const OUTAGE_S = 60
const RETRY_AFTER_S = 10
const SHORT_LIFETIME_S = 60
/** (iv) runs a tenth of the clients (each one's figure is its own), the naive baseline a hundredth. */
const REFUSED_CLIENTS = Math.max(1, Math.round(CLIENTS / 10))
const NAIVE_REFUSED_CLIENTS = Math.max(1, Math.round(CLIENTS / 100))
const REFUSED_S = 60
/** Token requests in flight at once through the shared fetch (its connection pool). */
const CONCURRENCY = 64

await ensureBuilt('dist/index.js', ({ esm }) => esm)
const { createTokenManager } = await import('../dist/index.js')

// ---- the simulated clock ---------------------------------------------------------------------------
const realNow = Date.now.bind(Date)
let clock = realNow()
Date.now = () => clock
const T0 = clock

// ---- the token endpoint: every request recorded with the simulated time ------------------------------
/** @type {{ kind: string, client: string, at: number, status: number }[]} */
const seen = []
let outageUntil = 0
let issued = 0
const server = createServer((req, res) => {
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    // (iv): the API refuses every token.
    if (req.url.startsWith('/api')) return void res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end()
    const form = new URLSearchParams(body)
    const [kind, client] = (form.get('refresh_token') ?? '').split(':')
    const status = clock < outageUntil ? 503 : 200
    seen.push({ kind, client, at: clock, status })
    if (status == 503) return void res.writeHead(503, { 'content-type': 'text/html', 'retry-after': String(RETRY_AFTER_S) }).end('<html>busy</html>')
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(JSON.stringify({ access_token: `at-${++issued}`, token_type: 'Bearer', expires_in: LIFETIME_S, refresh_token: `${kind}:${client}:${issued}` }))
  })
})
server.keepAliveTimeout = 60_000
await new Promise((r) => server.listen(0, '127.0.0.1', r))
const origin = `http://127.0.0.1:${server.address().port}`
const tokenEndpoint = `${origin}/token`

/**
 * One fetch for every client, over node:http with at most CONCURRENCY keep-alive connections: it
 * costs the process less per request than the built-in fetch, so that 10 000 clients fit in minutes.
 * Enough of fetch for a token request: method, headers, a string body, and a Response.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
const sharedFetch = (input, init = {}) =>
  new Promise((resolve, reject) => {
    const headers = Object.fromEntries(new Headers(init.headers))
    const req = http.request(String(input), { method: init.method ?? 'GET', headers, agent }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers: res.headers })))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(init.body == null ? undefined : String(init.body))
  })

// ---- the naive client: refreshes at a fixed leeway before expiry and on every failed call ------------
function naiveClient() {
  let token
  let pending
  const refresh = async () => {
    const res = await sharedFetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'spa', refresh_token: token.refresh_token }),
    })
    if (!res.ok) throw (await res.text(), new Error('HTTP ' + res.status))
    adopt(await res.json())
  }
  const adopt = (t) => (token = { ...t, exp: Date.now() + t.expires_in * 1000 })
  const getAccessToken = async () => {
    if (Date.now() >= token.exp - LEEWAY_S * 1000) await (pending ??= refresh().finally(() => (pending = undefined)))
    return token.access_token
  }
  // A 401 buys a refresh and one retry, every time.
  const call = async (url, retried) => {
    const res = await sharedFetch(url, { headers: { authorization: 'Bearer ' + (await getAccessToken()) } })
    if (res.status != 401 || retried) return res
    await (pending ??= refresh().finally(() => (pending = undefined)))
    return call(url, true)
  }
  return { setTokens: async (t) => void adopt(t), getAccessToken, fetch: (url) => call(url) }
}

// The simulated clock stands still while requests wait in the shared pool, for as long as the
// machine needs: a request timeout (real time) would count the machine's load as server failures.
const latchkeyClient = () =>
  createTokenManager({
    clientId: 'spa',
    tokenEndpoint,
    allowedOrigins: [origin],
    dpop: false,
    crossTab: false,
    fetch: sharedFetch,
    refreshLeewaySeconds: LEEWAY_S,
    timeoutSeconds: 600,
  })

/** Clients of one kind, each signed in with tokens issued now. */
async function signIn(kind, make, n, lifetime) {
  const clients = Array.from({ length: n }, make)
  await Promise.all(clients.map((c, i) => c.setTokens({ access_token: 'at-seed', token_type: 'Bearer', expires_in: lifetime, refresh_token: `${kind}:${i}:0` })))
  return clients
}

/** From `from` to `to` seconds after `start`, every `step` s: every client makes one call; failures are counted, not thrown. */
async function drive(groups, start, from, to, step) {
  let failed = 0
  for (let t = from; t <= to + 1e-9; t += step) {
    clock = start + Math.round(t * 1000)
    for (const clients of groups) await Promise.all(clients.map((c) => c.getAccessToken().catch(() => void failed++)))
  }
  return failed
}

const started = realNow()
const load = os.loadavg()

// ---- (i) tokens issued in the same instant --------------------------------------------------------------
const spreadOf = (kind, start = T0) => {
  const times = seen.filter((r) => r.kind == kind).map((r) => r.at - start)
  const slices = new Map()
  for (const t of times) slices.set(Math.floor(t / 100), (slices.get(Math.floor(t / 100)) ?? 0) + 1)
  const sorted = [...times].sort((a, b) => a - b)
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] / 1000
  return {
    refreshes: times.length,
    largestSlice: Math.max(...slices.values()) / times.length,
    first: sorted[0] / 1000,
    last: sorted.at(-1) / 1000,
    p5: pct(5),
    p95: pct(95),
  }
}

console.log(`herd: ${CLIENTS} latchkey clients and ${CLIENTS} naive clients, tokens of ${LIFETIME_S} s issued at t = 0, leeway ${LEEWAY_S} s`)
const ours = await signIn('latchkey', latchkeyClient, CLIENTS, LIFETIME_S)
const naive = await signIn('naive', naiveClient, CLIENTS, LIFETIME_S)
// In 100 ms steps through the refresh window (expiry − leeway to expiry − leeway / 2), then in 1 s steps to expiry.
await drive([ours, naive], T0, LIFETIME_S - LEEWAY_S - 1, LIFETIME_S - LEEWAY_S / 2 + 1, 0.1)
await drive([ours, naive], T0, LIFETIME_S - LEEWAY_S / 2 + 5, LIFETIME_S, 5)
console.log(`herd: (i) done after ${((realNow() - started) / 1000).toFixed(0)} s (${(process.cpuUsage().user / 1e6).toFixed(1)} s CPU)`)
const spread = { latchkey: spreadOf('latchkey'), naive: spreadOf('naive') }

// ---- (ii) a 60 s outage answering 503 with Retry-After ---------------------------------------------------
seen.length = 0
const T1 = (clock = T0 + 3_600_000)
console.log(`herd: every token expired, then a ${OUTAGE_S} s outage (503, Retry-After: ${RETRY_AFTER_S}); one call per client per second`)
const ours2 = await signIn('latchkey', latchkeyClient, CLIENTS, 60)
const naive2 = await signIn('naive', naiveClient, NAIVE_OUTAGE_CLIENTS, 60)
outageUntil = T1 + (61 + OUTAGE_S) * 1000
const failedCalls = await drive([ours2, naive2], T1, 61, 61 + OUTAGE_S + 30, 1)
const outageOf = (kind, n) => {
  const rows = seen.filter((r) => r.kind == kind)
  const perClient = new Map()
  for (const r of rows) perClient.set(r.client, (perClient.get(r.client) ?? 0) + 1)
  const counts = [...perClient.values()]
  const signedIn = new Set(rows.filter((r) => r.status == 200).map((r) => r.client)).size
  // The return: the token requests once the outage is over, by the 1 s step they were sent in.
  const after = rows.filter((r) => r.at >= outageUntil)
  const seconds = new Map()
  for (const r of after) seconds.set(Math.floor(r.at / 1000), (seconds.get(Math.floor(r.at / 1000)) ?? 0) + 1)
  const largestSecond = after.length ? Math.max(...seconds.values()) / after.length : 0
  return { requests: rows.length, perClient: rows.length / n, maxPerClient: Math.max(...counts), recovered: signedIn / n, largestSecond }
}
const outage = { latchkey: outageOf('latchkey', CLIENTS), naive: outageOf('naive', NAIVE_OUTAGE_CLIENTS) }
for (const c of [...ours, ...ours2, ...naive, ...naive2]) c.dispose?.()
ours.length = ours2.length = naive.length = naive2.length = 0

// ---- (iii) 60 s tokens issued in the same instant -------------------------------------------------------
seen.length = 0
const T2 = (clock = T0 + 7_200_000)
const window = Math.min(LEEWAY_S, SHORT_LIFETIME_S / 4)
console.log(`herd: ${CLIENTS} clients, tokens of ${SHORT_LIFETIME_S} s issued at t = 0 (refresh window capped at ${window} s)`)
const ours3 = await signIn('latchkey', latchkeyClient, CLIENTS, SHORT_LIFETIME_S)
const naive3 = await signIn('naive', naiveClient, CLIENTS, SHORT_LIFETIME_S)
// The naive clients refresh at expiry − leeway; latchkey's draws fall in the first half of the capped window.
await drive([naive3], T2, SHORT_LIFETIME_S - LEEWAY_S - 1, SHORT_LIFETIME_S - LEEWAY_S + 1, 0.1)
await drive([ours3], T2, SHORT_LIFETIME_S - window - 1, SHORT_LIFETIME_S - window / 2 + 1, 0.1)
const short = { latchkey: spreadOf('latchkey', T2), naive: spreadOf('naive', T2) }
for (const c of ours3) c.dispose()
ours3.length = naive3.length = 0

// ---- (iv) an API that refuses every token ------------------------------------------------------------------
seen.length = 0
const T3 = (clock = T0 + 10_800_000)
console.log(`herd: ${REFUSED_CLIENTS} clients (naive: ${NAIVE_REFUSED_CLIENTS}) call an API that answers 401 to every token, once a second for ${REFUSED_S} s`)
const ours4 = await signIn('latchkey', latchkeyClient, REFUSED_CLIENTS, LIFETIME_S)
const naive4 = await signIn('naive', naiveClient, NAIVE_REFUSED_CLIENTS, LIFETIME_S)
const refusedOutcomes = { latchkey: new Map(), naive: new Map() }
for (let t = 0; t < REFUSED_S; t++) {
  clock = T3 + t * 1000
  for (const [kind, clients] of [['latchkey', ours4], ['naive', naive4]]) {
    const outcomes = refusedOutcomes[kind]
    await Promise.all(
      clients.map((c) =>
        c.fetch(`${origin}/api/me`).then(
          (res) => (res.body?.cancel(), res.status),
          (e) => e.code ?? 'error',
        ).then((o) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1)),
      ),
    )
  }
}
const refusedOf = (kind, n) => {
  const perClient = new Map()
  for (const r of seen.filter((r) => r.kind == kind)) perClient.set(r.client, (perClient.get(r.client) ?? 0) + 1)
  const counts = [...perClient.values()]
  return { perClient: counts.reduce((a, b) => a + b, 0) / n, maxPerClient: Math.max(0, ...counts), outcomes: Object.fromEntries(refusedOutcomes[kind]) }
}
const refused = { latchkey: refusedOf('latchkey', REFUSED_CLIENTS), naive: refusedOf('naive', NAIVE_REFUSED_CLIENTS) }
for (const c of ours4) c.dispose()
agent.destroy()
server.closeAllConnections()
server.close()
clearTimeout(watchdog)

// ---- report --------------------------------------------------------------------------------------------
const pct = (x) => (x * 100).toFixed(2) + ' %'
const s = (x) => x.toFixed(1) + ' s'
const ratio = (a, b) => (a / b).toFixed(2) + '×'
const table = [
  '| figure | latchkey | naive | latchkey / naive | goal |',
  '| --- | ---: | ---: | ---: | ---: |',
  `| (i) largest 100 ms share of ${CLIENTS} refreshes | **${pct(spread.latchkey.largestSlice)}** | ${pct(spread.naive.largestSlice)} | ${ratio(spread.latchkey.largestSlice, spread.naive.largestSlice)} | ≤ 1 %${spread.latchkey.largestSlice <= 0.01 ? '' : ' (missed)'} |`,
  `| (i) spread of refresh times (first – last; 5th – 95th percentile), s after issue | ${s(spread.latchkey.first)} – ${s(spread.latchkey.last)}; ${s(spread.latchkey.p5)} – ${s(spread.latchkey.p95)} | ${s(spread.naive.first)} – ${s(spread.naive.last)} | — | — |`,
  `| (ii) token requests per client, ${OUTAGE_S} s outage with Retry-After: ${RETRY_AFTER_S} | **${outage.latchkey.perClient.toFixed(2)}** (max ${outage.latchkey.maxPerClient}) | ${outage.naive.perClient.toFixed(2)} | ${ratio(outage.latchkey.perClient, outage.naive.perClient)} | ≤ 7${outage.latchkey.perClient <= 7 ? '' : ' (missed)'} |`,
  `| (ii) largest 1 s share of the token requests after the outage | **${pct(outage.latchkey.largestSecond)}** | ${pct(outage.naive.largestSecond)} | ${ratio(outage.latchkey.largestSecond, outage.naive.largestSecond)} | — |`,
  `| (ii) clients signed in again 30 s after the outage | ${pct(outage.latchkey.recovered)} | ${pct(outage.naive.recovered)} | — | — |`,
  `| (iii) ${SHORT_LIFETIME_S} s tokens: largest 100 ms share of ${CLIENTS} refreshes | **${pct(short.latchkey.largestSlice)}** | ${pct(short.naive.largestSlice)} | ${ratio(short.latchkey.largestSlice, short.naive.largestSlice)} | ≤ 2 %${short.latchkey.largestSlice <= 0.02 ? '' : ' (missed)'} |`,
  `| (iii) spread of refresh times (first – last; 5th – 95th percentile), s after issue | ${s(short.latchkey.first)} – ${s(short.latchkey.last)}; ${s(short.latchkey.p5)} – ${s(short.latchkey.p95)} | ${s(short.naive.first)} – ${s(short.naive.last)} | — | — |`,
  `| (iv) token requests per client, an API that answers 401 to every token, a call a second for ${REFUSED_S} s | **${refused.latchkey.perClient.toFixed(2)}** (max ${refused.latchkey.maxPerClient}) | ${refused.naive.perClient.toFixed(2)} | ${ratio(refused.latchkey.perClient, refused.naive.perClient)} | ≤ 8${refused.latchkey.maxPerClient <= 8 ? '' : ' (missed)'} |`,
  `| (iv) what the calls got | ${Object.entries(refused.latchkey.outcomes).map(([k, v]) => `${k} × ${v}`).join(', ')} | ${Object.entries(refused.naive.outcomes).map(([k, v]) => `${k} × ${v}`).join(', ')} | — | — |`,
].join('\n')
const report = [
  `# Herd run, ${new Date(realNow()).toISOString()}`,
  '',
  describeMachine(load, `Node ${process.version}`),
  '',
  `${CLIENTS} latchkey clients (naive outage baseline: ${NAIVE_OUTAGE_CLIENTS} clients), one loopback token endpoint, ` +
    `simulated clock; ${((realNow() - started) / 1000).toFixed(0)} s of real time. Calls that failed (fast) during the outage: ${failedCalls}. ` +
    `(iv): ${REFUSED_CLIENTS} latchkey clients, ${NAIVE_REFUSED_CLIENTS} naive.`,
  '',
  table,
  '',
].join('\n')
console.log('\n' + table + '\n')
console.log(`(i) the naive clients' largest 100 ms slice holds ${ratio(spread.naive.largestSlice, spread.latchkey.largestSlice)} latchkey's; (ii) the naive client sends ${ratio(outage.naive.perClient, outage.latchkey.perClient)} latchkey's token requests`)
const dir = new URL('./results/', import.meta.url)
await mkdir(dir, { recursive: true })
const stamp = new Date(realNow()).toISOString().replace(/[:.]/g, '-')
await writeFile(new URL(`herd-${stamp}.md`, dir), report)
await writeFile(new URL(`herd-${stamp}.json`, dir), JSON.stringify({ clients: CLIENTS, naiveOutageClients: NAIVE_OUTAGE_CLIENTS, spread, outage, failedCalls, short, refused }, null, 2))
console.log(`written to bench/results/herd-${stamp}.md`)
if (spread.latchkey.refreshes != CLIENTS || short.latchkey.refreshes != CLIENTS || outage.latchkey.recovered < 1) {
  console.error('herd: not every client refreshed, or not every client recovered after the outage')
  process.exitCode = 1
}
