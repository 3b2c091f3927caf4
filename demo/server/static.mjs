// Serves the built SPA (demo/dist), its /config.json and /demo/issued-tokens, with the headers a
// token-holding page should have: a strict CSP (only the demo's own servers are reachable) and no
// Referer, so the authorization code in the redirect URL goes nowhere.

import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import { close, listen, sendJson } from './http.mjs'

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
  '.json': 'application/json',
}

/**
 * Starts the static server for the demo SPA on loopback.
 *
 * @param {object} options
 * @param {string} options.root directory with the built app (index.html, app.js, styles.css)
 * @param {() => Record<string, unknown>} options.config what /config.json returns; called per
 *   request because the other servers start after this one (the AS needs the app's origin)
 * @param {() => string[]} [options.connectOrigins] origins the page may fetch, for the CSP
 * @param {() => string[]} [options.issuedTokens] every token string the demo's authorization server
 *   issued, served at /demo/issued-tokens to loopback clients so that the page's storage inspector
 *   can look for the real values. A demo aid only: no real deployment serves its tokens back.
 * @param {() => string | undefined} [options.beforeApp] a test aid: the source of a script that
 *   index.html then loads (from /demo/before-app.js) before the app's own, as an injected script or a
 *   compromised dependency would run; none when it returns undefined (always, under `npm start`)
 * @param {number} [options.port=0] 0 picks a free port
 * @param {string} [options.host='127.0.0.1']
 * @returns {Promise<{ url: string, origin: string, port: number, stop(): Promise<void> }>}
 */
export async function startStaticServer({ root, config, connectOrigins = () => [], issuedTokens = () => [], beforeApp = () => undefined, port = 0, host = '127.0.0.1' }) {
  const base = normalize(root + sep)

  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://static.invalid')
    const security = {
      'content-security-policy': [
        "default-src 'self'",
        `connect-src 'self' ${connectOrigins().join(' ')}`,
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
      ].join('; '),
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (pathname === '/config.json') {
      sendJson(res, 200, config(), security)
      return
    }
    if (pathname === '/demo/issued-tokens') {
      // sendJson sends no-store: the list must not land in the browser's disk cache either.
      if (LOOPBACK.has(req.socket.remoteAddress)) sendJson(res, 200, { tokens: issuedTokens() }, security)
      else sendJson(res, 403, { error: 'loopback only' }, security)
      return
    }
    const before = beforeApp()
    if (pathname === '/demo/before-app.js' && before !== undefined) {
      res.writeHead(200, { 'content-type': TYPES['.js'], 'cache-control': 'no-store', ...security })
      res.end(req.method === 'HEAD' ? undefined : before)
      return
    }
    // Every other path is a file of the app; "/" (also with ?code=… on the way back from sign-in)
    // is index.html.
    try {
      const file = normalize(join(base, pathname === '/' ? 'index.html' : decodeURIComponent(pathname.slice(1))))
      if (!file.startsWith(base)) throw new Error('outside the app directory')
      let body = await readFile(file)
      // A classic script in the head runs before the app's module script, which is deferred.
      if (pathname === '/' && before !== undefined)
        body = Buffer.from(body.toString('utf8').replace('<script type="module"', '<script src="/demo/before-app.js"></script>\n<script type="module"'))
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
        ...security,
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain', ...security }).end('not found')
    }
  })
  const { port: actualPort, origin } = await listen(server, port, host)
  return { url: origin, origin, port: actualPort, stop: () => close(server) }
}
