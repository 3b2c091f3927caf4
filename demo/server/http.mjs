// Small HTTP helpers shared by the demo servers.

/**
 * Listens on a loopback port and returns the server with its origin.
 * @param {import('node:http').Server} server
 * @param {number} port 0 picks a free port
 * @param {string} host
 */
export async function listen(server, port, host) {
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const actualPort = server.address().port
  return { port: actualPort, origin: `http://${host}:${actualPort}` }
}

/**
 * Closes a server and any keep-alive connections it still holds, so stop() never hangs.
 * @param {import('node:http').Server} server
 */
export function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/**
 * Reads a request body up to a limit; larger bodies reject instead of buffering without end.
 * @param {import('node:http').IncomingMessage} req
 * @param {number} [limit=65536] bytes
 * @returns {Promise<string>}
 */
export function readBody(req, limit = 65_536) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (chunk) => {
      size += chunk.length
      if (size > limit) {
        reject(Object.assign(new Error('request body too large'), { status: 413 }))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
export function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}
