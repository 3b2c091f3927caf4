import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect, test } from './fixtures.js'

// What the engines themselves do differently, pinned so that a browser update that changes it shows
// up here, and so that latchkey's design can rest on it (README: browser support).

/** Serves `routes` (path → [content type, body]) on a free loopback port until `close()`. */
async function serve(routes: (origin: string) => Record<string, [string, string]>): Promise<{ origin: string; server: Server }> {
  let origin = ''
  const server = createServer((req, res) => {
    const route = routes(origin)[new URL(req.url ?? '/', origin).pathname]
    if (!route) return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': route[0], 'cache-control': 'no-store' }).end(route[1])
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { origin, server }
}

// Whether the worker that a page started is the one it finds after a same-tab round trip to the
// authorization server, by the way the page left: replace() (the demo's sign-in) or assign().
// Chromium keeps it because of `extendedLifetime` (read by Chromium only); WebKit keeps the page
// itself, worker connection included, in its back-forward cache when the page stays in history.
const KEPT = {
  replace: { chromium: true, firefox: false, webkit: false },
  assign: { chromium: true, firefox: false, webkit: true },
} as const

for (const how of ['replace', 'assign'] as const) test(`a SharedWorker through a same-tab sign-in redirect by location.${how}(): kept in ${Object.entries(KEPT[how]).filter(([, kept]) => kept).map(([name]) => name).join(' and ')} only`, async ({ tab, engine }) => {
  // The app's origin: a page that connects to a module SharedWorker, and the worker, which names
  // itself with a random id when it starts. The "authorization server": a page on another origin
  // that sends the tab straight back, as a one-click sign-in does.
  let appOrigin = ''
  const as = await serve(() => ({
    '/authorize': ['text/html', `<script>setTimeout(() => location.replace(${JSON.stringify(`${appOrigin}/?back`)}), 200)</script>`],
  }))
  const app = await serve(() => ({
    '/': ['text/html', `<script>
      const worker = new SharedWorker('/worker.js', { type: 'module', name: 'probe', extendedLifetime: true })
      worker.port.onmessage = (event) => { window.workerId = event.data }
      worker.port.start()
    </script>`],
    '/worker.js': ['text/javascript', `const id = crypto.randomUUID()
      onconnect = (event) => event.ports[0].postMessage(id)`],
  }))
  appOrigin = app.origin
  try {
    await tab.goto(`${app.origin}/`)
    const before = await tab.waitForFunction(() => (window as unknown as { workerId?: string }).workerId)
    await tab.evaluate(([method, url]) => void setTimeout(() => location[method](url)), [how, `${as.origin}/authorize`] as const)
    await tab.waitForFunction((origin) => location.origin === origin && location.search === '?back', app.origin)
    const after = await tab.waitForFunction(() => (window as unknown as { workerId?: string }).workerId)
    // With one tab, the worker had no other client while the tab was away.
    const kept = before === after
    expect({ engine: engine.name, kept }).toEqual({ engine: engine.name, kept: KEPT[how][engine.name] })
  } finally {
    as.server.close()
    app.server.close()
  }
})
