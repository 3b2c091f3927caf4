// The figures of the Chromium run, inside the bench page (served by bench/browser-server.mjs, driven
// by bench/browser.mjs). Rounds and medians are bench/lib.mjs itself, the file the Node run uses.
// Every API request goes to another origin (another port), with the same headers on both sides of
// a ratio, so both sides pay the same CORS checks and the same (cached) preflight.

import { createTokenManager } from '/latchkey.min.js'
import { connectTokenManager } from '/worker.min.js'
import { sideBySide, timeConcurrent, timeSequential } from '/lib.mjs'

const subtle = crypto.subtle
const encoder = new TextEncoder()
const SIGN = { name: 'ECDSA', hash: 'SHA-256' }
const drain = async (res) => void (await res.arrayBuffer())

/** A token manager as an app makes one, against the bench API; `fetch` only for the probe. */
const manager = (api, dpop, fetch) =>
  createTokenManager({ clientId: 'bench', tokenEndpoint: api + '/token', allowedOrigins: [api], dpop, ...(fetch ? { fetch } : {}) })

const session = (at, type) => ({ access_token: at, token_type: type, expires_in: 3600 })

/** The DPoP session of (c) and (c′), set up once: its manager and a real proof of its key. */
let dpopState

const stats = async () => (await fetch('/stats', { cache: 'no-store' })).json()

const figures = {
  /** Sets up the DPoP session; resolves with one real proof for a GET to the API, to check in Node. */
  async setup({ api, at }) {
    const url = api + '/api/items'
    const tm = manager(api, true)
    await tm.setTokens(session(at, 'DPoP'))
    // A probe on the same key (same client id and endpoint, so the same IndexedDB entry) with a
    // canned fetch, to capture the headers latchkey sends.
    let headers
    const probe = manager(api, true, async (input, init) => ((headers = new Headers(init?.headers)), new Response(null)))
    await probe.setTokens(session(at, 'DPoP'))
    await probe.fetch(url)
    const proof = headers.get('dpop')
    // The floor's key: ES256, non-extractable, like latchkey's.
    const { privateKey } = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
    dpopState = { tm, url, at, proof, privateKey }
    return { url, proof, authorization: headers.get('authorization') }
  },

  /** (b): tm.fetch with a Bearer token vs raw fetch with the same Authorization header. */
  async b({ api, at, n, rounds }) {
    const url = api + '/api/items'
    const tm = manager(api, false)
    await tm.setTokens(session(at, 'Bearer'))
    const headers = { authorization: 'Bearer ' + at }
    return sideBySide({
      rounds,
      a: () => timeSequential(async () => drain(await tm.fetch(url)), n),
      b: () => timeSequential(async () => drain(await fetch(url, { headers })), n),
    })
  },

  /**
   * (b16): (b) with batches of 16 concurrent requests (Promise.all), the batches one after the
   * other; counts the refreshes meanwhile (the hour-long token set before timing makes it 0).
   */
  async b16({ api, at, concurrentRounds: rounds, width, batches }) {
    const url = api + '/api/items'
    const tm = manager(api, false)
    await tm.setTokens(session(at, 'Bearer'))
    let refreshes = 0
    tm.on('refresh', () => refreshes++)
    tm.on('refresh-error', () => refreshes++)
    const headers = { authorization: 'Bearer ' + at }
    // One request first: 16 at once to an origin with no cached preflight would send several.
    await drain(await fetch(url, { headers }))
    const r = await sideBySide({
      rounds,
      warmup: 10,
      a: () => timeConcurrent(async () => drain(await tm.fetch(url)), width, batches),
      b: () => timeConcurrent(async () => drain(await fetch(url, { headers })), width, batches),
    })
    tm.dispose()
    return { ...r, refreshes }
  },

  /** (c): tm.fetch with DPoP vs raw fetch sending the same two headers (a fixed, real proof). */
  async c({ n, rounds }) {
    const { tm, url, at, proof } = dpopState
    const headers = { authorization: 'DPoP ' + at, dpop: proof }
    return sideBySide({
      rounds,
      a: () => timeSequential(async () => drain(await tm.fetch(url)), n),
      b: () => timeSequential(async () => drain(await fetch(url, { headers })), n),
    })
  },

  /** (c′): tm.fetch with DPoP vs the floor: 1 digest + 1 sign, then raw fetch with those headers. */
  async "c'"({ n, rounds }) {
    const { tm, url, at, proof, privateKey } = dpopState
    const headers = { authorization: 'DPoP ' + at, dpop: proof }
    const signingInput = encoder.encode(proof.split('.').slice(0, 2).join('.'))
    const floor = async () => {
      await subtle.digest('SHA-256', encoder.encode(at))
      await subtle.sign(SIGN, privateKey, signingInput)
      await drain(await fetch(url, { headers }))
    }
    return sideBySide({
      rounds,
      a: () => timeSequential(async () => drain(await tm.fetch(url)), n),
      b: () => timeSequential(floor, n),
    })
  },

  /**
   * (w): worker mode's tm.fetch (the page's handle, the session in a module worker) vs tm.fetch of
   * a manager in the page, both with DPoP and the defaults an app gets, against the same API.
   */
  async w({ api, at, n, rounds }) {
    const url = api + '/api/items'
    const inPage = createTokenManager({ clientId: 'bench-page', tokenEndpoint: api + '/token', allowedOrigins: [api] })
    await inPage.setTokens(session(at, 'DPoP'))
    const worker = new Worker('/bench-worker.mjs?api=' + encodeURIComponent(api), { type: 'module' })
    const inWorker = connectTokenManager(worker)
    // (The bench's token is made up: handing it over from the page is fine here.)
    await inWorker.setTokens(session(at, 'DPoP'))
    try {
      return await sideBySide({
        rounds,
        a: () => timeSequential(async () => drain(await inWorker.fetch(url)), n),
        b: () => timeSequential(async () => drain(await inPage.fetch(url)), n),
      })
    } finally {
      worker.terminate()
    }
  },

  /**
   * (wd), (ws): worker mode's tm.fetch (a dedicated Worker, a SharedWorker) vs the floor (w′) beside
   * it in the same rounds: the same core in a worker behind one bare message each way. What the
   * ratio shows is connectTokenManager's and serveTokenManager's own work (goal ≤ 1.03×).
   */
  wd: (spec) => againstFloor(spec, (url) => new Worker(url, { type: 'module' })),
  ws: (spec) => againstFloor(spec, (url) => new SharedWorker(url, { type: 'module', name: 'bench-' + Math.random() })),

  /**
   * (w′): the floor under (w): the same core in a module worker behind the bare minimum of
   * messaging (one message each way, nothing checked), the Response rebuilt in the page, vs the
   * in-page tm.fetch. What (w) pays beyond this is connectTokenManager's own work.
   */
  async "w'"({ api, at, n, rounds }) {
    const url = api + '/api/items'
    const inPage = createTokenManager({ clientId: 'bench-page-floor', tokenEndpoint: api + '/token', allowedOrigins: [api] })
    await inPage.setTokens(session(at, 'DPoP'))
    const floor = await floorWorker(api, at)
    try {
      return await sideBySide({
        rounds,
        a: () => timeSequential(async () => drain(await floor.fetch(url)), n),
        b: () => timeSequential(async () => drain(await inPage.fetch(url)), n),
      })
    } finally {
      floor.terminate()
    }
  },
}

/**
 * The floor worker: the core in a module worker behind one bare message each way (nothing checked),
 * the Response rebuilt in the page.
 */
async function floorWorker(api, at) {
  const worker = new Worker('/bench-floor-worker.mjs?api=' + encodeURIComponent(api), { type: 'module' })
  const call = (message) => new Promise((resolve) => ((worker.onmessage = ({ data }) => resolve(data)), worker.postMessage(message)))
  await call({ tokens: session(at, 'DPoP') })
  return {
    async fetch(url) {
      const r = await call(url)
      const res = new Response(r.b, r)
      Object.defineProperty(res, 'url', { value: r.url })
      return res
    },
    terminate: () => worker.terminate(),
  }
}

/** Worker mode's tm.fetch through the worker `start` makes vs the floor worker, side by side. */
async function againstFloor({ api, at, n, rounds }, start) {
  const url = api + '/api/items'
  const worker = start('/bench-worker.mjs?api=' + encodeURIComponent(api))
  const inWorker = connectTokenManager(worker)
  await inWorker.setTokens(session(at, 'DPoP'))
  const floor = await floorWorker(api, at)
  try {
    return await sideBySide({
      rounds,
      a: () => timeSequential(async () => drain(await inWorker.fetch(url)), n),
      b: () => timeSequential(async () => drain(await floor.fetch(url)), n),
    })
  } finally {
    inWorker.dispose()
    worker.terminate?.()
    floor.terminate()
  }
}

/**
 * Runs one figure (or the setup) and adds what the servers counted meanwhile: API requests and
 * CORS preflights (both sides share one cached preflight, so this should stay at 0 or 1).
 */
async function run(id, spec) {
  const before = await stats()
  const result = await figures[id](spec)
  const after = await stats()
  return { ...result, requests: after.api - before.api, preflight: after.preflight - before.preflight }
}

window.latchkeyBench = { run }

// Launched without Playwright (`?run=` + the spec as JSON): run every step in order and post each
// result to the page origin, which hands it to bench/browser.mjs.
const auto = new URLSearchParams(location.search).get('run')
if (auto) {
  const { steps, ...spec } = JSON.parse(auto)
  const post = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) })
  for (const id of steps) {
    try {
      await post({ id, result: await run(id, spec) })
    } catch (e) {
      await post({ id, error: String(e?.stack ?? e) })
      break
    }
  }
}
