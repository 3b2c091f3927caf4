// The loopback servers of the benchmarks, run in a child process (bench/run.mjs forks this file) so
// that their work happens on the other core instead of on the measured thread. Binds 127.0.0.1 on a
// free port, tells the parent the port over IPC, and exits when the parent disconnects.
//
//   POST /seed?expires_in=N&type=Bearer|DPoP   a token response as if a login had happened
//   POST /token     refresh_token grant with rotation: each refresh token works once; a reused one
//                   is counted and answered 400 invalid_grant
//   GET  /stats     counters { token, reuse, api }
//   POST /config?expires_in=N   lifetime of the tokens /token issues from now on
//   anything else   the API: 200 with a small JSON body (no token check: server-side verification
//                   would add time to one side of a comparison that measures the client)

import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'

const live = new Set()
const used = new Set()
const stats = { token: 0, reuse: 0, api: 0 }
let expiresIn = 300

const token = (prefix) => prefix + '-' + randomBytes(18).toString('base64url')
const issue = (type, lifetime) => {
  const rt = token('rt')
  live.add(rt)
  return { access_token: token('at'), token_type: type, expires_in: lifetime, refresh_token: rt, scope: 'api' }
}
const json = (res, status, body) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
const API_BODY = JSON.stringify({ ok: true, items: [1, 2, 3] })

const server = createServer((req, res) => {
  const [path, query = ''] = req.url.split('?')
  const q = new URLSearchParams(query)
  if (req.method != 'POST') {
    if (path == '/stats') return json(res, 200, stats)
    stats.api++
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': API_BODY.length })
    return res.end(API_BODY)
  }
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    if (path == '/seed') return json(res, 200, issue(q.get('type') ?? 'Bearer', +(q.get('expires_in') ?? 300)))
    if (path == '/config') return (expiresIn = +q.get('expires_in')), json(res, 200, {})
    if (path != '/token') {
      stats.api++
      return json(res, 200, { ok: true })
    }
    const form = new URLSearchParams(body)
    const rt = form.get('refresh_token') ?? ''
    stats.token++
    if (!live.delete(rt)) {
      if (used.has(rt)) stats.reuse++
      return json(res, 400, { error: 'invalid_grant' })
    }
    used.add(rt)
    json(res, 200, issue(req.headers.dpop ? 'DPoP' : 'Bearer', expiresIn))
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
process.on('disconnect', () => process.exit(0))
