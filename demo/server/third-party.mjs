// A stand-in for someone else's API: it records the headers of every request it receives, so the
// demo and the e2e suite can show that no token or DPoP proof ever reached it.
// CORS is wide open on purpose: if a client did attach credentials, the browser must still deliver
// the request here, or a leak would go unseen.

import { createServer } from 'node:http'
import { close, listen, sendJson } from './http.mjs'

const MAX_RECORDS = 1000

/**
 * Starts the third-party server on loopback.
 *
 * @param {{ port?: number, host?: string }} [options] `port` 0 (default) picks a free port
 * @returns {Promise<{ url: string, origin: string, port: number,
 *   requests: Array<{ method: string, path: string, headers: Record<string, string | string[] | undefined> }>,
 *   clear(): void, stop(): Promise<void> }>}
 */
export async function startThirdPartyServer({ port = 0, host = '127.0.0.1' } = {}) {
  const requests = []

  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://third-party.invalid')
    if (requests.length >= MAX_RECORDS) requests.shift()
    requests.push({ method: req.method, path: pathname, headers: { ...req.headers } })
    req.resume()

    const cors = {
      'access-control-allow-origin': req.headers.origin ?? '*',
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '*',
      'access-control-max-age': '0',
      vary: 'Origin',
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors).end()
      return
    }
    const last = requests.at(-1)
    // Tell the caller what arrived, header names only: the page shows it to the visitor.
    sendJson(res, 200, {
      receivedHeaders: Object.keys(last.headers).sort(),
      authorization: 'authorization' in last.headers,
      dpop: 'dpop' in last.headers,
    }, cors)
  })
  const { port: actualPort, origin } = await listen(server, port, host)

  return {
    url: origin,
    origin,
    port: actualPort,
    requests,
    clear() { requests.length = 0 },
    stop: () => close(server),
  }
}
