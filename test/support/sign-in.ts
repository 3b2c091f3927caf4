// Plays the user at the demo authorization server (oidc-provider): a sign-in without a browser.
import { Worker } from 'node:worker_threads'

/**
 * Follows the authorization URL through the demo's one-click sign-in page (a POST to
 * /interaction/:uid/login) with a cookie jar, and returns the redirect back to `redirectUri`.
 */
export async function authorize(url: string, redirectUri: string): Promise<string> {
  const jar = new Map<string, string>()
  const go = async (to: URL, method = 'GET') => {
    const res = await fetch(to, { method, redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } })
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';')
      jar.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1))
    }
    return res
  }
  let at = new URL(url)
  for (let hop = 0; hop < 8; hop++) {
    if (at.href.startsWith(redirectUri)) return at.href
    let res = await go(at)
    if (res.status == 200) {
      const action = /action="([^"]+)"/.exec(await res.text())?.[1]
      if (!action) throw new Error('the sign-in page has no form')
      res = await go(new URL(action, at), 'POST')
    }
    const location = res.headers.get('location')
    if (!location) throw new Error(`expected a redirect from ${at.pathname}, got HTTP ${res.status}`)
    at = new URL(location, at)
  }
  throw new Error('too many redirects')
}

/** The demo servers' endpoints, as test/support/demo-servers-worker.mjs posts them. */
export interface DemoServers {
  issuer: string
  authorizationEndpoint: string
  tokenEndpoint: string
  revocationEndpoint: string
  apiOrigin: string
}
export type DemoCounts = { as: Record<string, number>; api: { ok: number; unauthorized: Record<string, number> } }

/** The demo servers in a worker thread (a realm and a clock of their own); `stop()` terminates it. */
export async function demoServersInWorker(workerData: { redirectUri: string; requireNonce?: boolean; accessTokenTTL?: number }) {
  const worker = new Worker(new URL('./demo-servers-worker.mjs', import.meta.url), { workerData })
  const demo = await new Promise<DemoServers>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const counts = () =>
    new Promise<DemoCounts>((resolve) => {
      worker.once('message', resolve)
      worker.postMessage('counts')
    })
  return { ...demo, counts, stop: () => worker.terminate() }
}
