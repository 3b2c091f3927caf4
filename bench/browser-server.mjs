// The loopback servers of the Chromium run, in a child process that bench/browser.mjs forks (see
// bench/README.md, "In Chromium"). Two origins on 127.0.0.1, each on a free port, so that every API
// request from the page is cross-origin, as an SPA's requests to its API usually are:
//
//   page origin   GET /                   the bench page
//                 GET /latchkey.min.js    the built package (dist/latchkey.min.js)
//                 GET /worker.min.js      worker mode's build (dist/worker.min.js)
//                 GET /bench-worker.mjs   the module worker of (w): serveTokenManager for ?api=
//                 GET /bench-floor-worker.mjs  the module worker of (w′): the core behind bare messages
//                 GET /lib.mjs            bench/lib.mjs, the same rounds and medians as in Node
//                 GET /perf_hooks.mjs     `performance` for lib.mjs (the page maps node:perf_hooks here)
//                 GET /browser-page.mjs   the figures, run inside the page
//                 GET /stats              counters { api, preflight }
//                 POST /result            a figure from a page launched without Playwright: passed
//                                         on to bench/browser.mjs over IPC
//   API origin    OPTIONS *               a CORS preflight: Authorization and DPoP allowed, cached
//                                         for the length of the run (Access-Control-Max-Age)
//                 anything else           200 with a small JSON body; no token check, as in Node:
//                                         verification is the server's cost, not the client's
//
// Tells the parent both ports over IPC, and exits when the parent disconnects.

import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const stats = { api: 0, preflight: 0 }

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>latchkey bench</title>
<script type="importmap">{ "imports": { "node:perf_hooks": "/perf_hooks.mjs" } }</script>
<script type="module" src="/browser-page.mjs"></script>
`
// The worker of (w): a token manager configured like the in-page one, its API from the URL.
const WORKER = `import { serveTokenManager } from '/worker.min.js'
const api = new URL(location.href).searchParams.get('api')
serveTokenManager({ clientId: 'bench-worker', tokenEndpoint: api + '/token', allowedOrigins: [api] })
`
// The worker of (w′), the floor of a worker-mode call: the same core (latchkey.min.js) in a module
// worker, behind the least messaging a worker-based client needs: one message in, one message out
// (status, headers, url and the body, transferred), with no call ids to check, no errors, aborts or
// streams handled. The page rebuilds the Response from it, as connectTokenManager does.
const FLOOR_WORKER = `import { createTokenManager } from '/latchkey.min.js'
const api = new URL(location.href).searchParams.get('api')
const tm = createTokenManager({ clientId: 'bench-floor', tokenEndpoint: api + '/token', allowedOrigins: [api] })
onmessage = async ({ data }) => {
  if (data.tokens) return postMessage(await tm.setTokens(data.tokens))
  const res = await tm.fetch(data)
  const b = await res.arrayBuffer()
  postMessage({ status: res.status, statusText: res.statusText, headers: [...res.headers], url: res.url, b }, [b])
}
`
const files = {
  '/': ['text/html; charset=utf-8', PAGE],
  '/latchkey.min.js': ['text/javascript', readFileSync(here('../dist/latchkey.min.js'))],
  '/worker.min.js': ['text/javascript', readFileSync(here('../dist/worker.min.js'))],
  '/bench-worker.mjs': ['text/javascript', WORKER],
  '/bench-floor-worker.mjs': ['text/javascript', FLOOR_WORKER],
  '/lib.mjs': ['text/javascript', readFileSync(here('lib.mjs'))],
  '/perf_hooks.mjs': ['text/javascript', 'export const performance = globalThis.performance\n'],
  '/browser-page.mjs': ['text/javascript', readFileSync(here('browser-page.mjs'))],
}

const page = createServer((req, res) => {
  const path = req.url.split('?')[0]
  if (path == '/result' && req.method == 'POST') {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c) => (body += c))
    req.on('end', () => (process.send({ result: JSON.parse(body) }), res.writeHead(204).end()))
    return
  }
  if (path == '/stats') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    return res.end(JSON.stringify(stats))
  }
  const file = files[path]
  if (!file) return res.writeHead(404).end()
  res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' })
  res.end(file[1])
})

const API_BODY = JSON.stringify({ ok: true, items: [1, 2, 3] })
let pageOrigin = ''

const api = createServer((req, res) => {
  const cors = { 'access-control-allow-origin': pageOrigin, vary: 'Origin' }
  if (req.method == 'OPTIONS') {
    stats.preflight++
    res.writeHead(204, {
      ...cors,
      'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
      'access-control-allow-headers': 'Authorization, DPoP, Content-Type',
      // Chromium caps this at 2 hours; the run takes about a minute.
      'access-control-max-age': '7200',
    })
    return res.end()
  }
  stats.api++
  req.resume()
  req.on('end', () => {
    res.writeHead(200, {
      ...cors,
      'access-control-expose-headers': 'DPoP-Nonce, WWW-Authenticate',
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': API_BODY.length,
    })
    res.end(API_BODY)
  })
})

for (const s of [page, api]) s.keepAliveTimeout = 60_000
const listen = (s) => new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s.address().port)))
const pagePort = await listen(page)
const apiPort = await listen(api)
pageOrigin = `http://127.0.0.1:${pagePort}`
process.send({ pagePort, apiPort })
process.on('disconnect', () => process.exit(0))
