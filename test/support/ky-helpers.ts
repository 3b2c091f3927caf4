// A Bearer resource server for the ky tests that records every header, and can answer an attempt
// with a status of its choosing (a 503 before a 200, say) or slowly, before it checks the token.
import type { IncomingHttpHeaders } from 'node:http'
import { json, serve } from './servers.js'
import type { TokenServer } from './servers.js'

export interface Recorded {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: string
  status: number
  /** The client went away before the answer was complete. */
  aborted?: boolean
}

export interface ResourceOptions {
  /** Called for each attempt (counted per path from 1); a status short-circuits the token check. */
  plan?: (attempt: number, path: string) => number | void
  /** Answer this late, ms. */
  delayMs?: number
}

export async function startResource(tokens: TokenServer, options: ResourceOptions = {}) {
  const requests: Recorded[] = []
  const attempts = new Map<string, number>()
  const served = await serve(async (req, res) => {
    const path = req.url!
    const record: Recorded = { method: req.method!, path, headers: req.headers, body: req.body, status: 0 }
    requests.push(record)
    res.on('close', () => void (res.writableFinished || (record.aborted = true)))
    const attempt = (attempts.get(path) ?? 0) + 1
    attempts.set(path, attempt)
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs))
    if (res.destroyed) return
    const planned = options.plan?.(attempt, path)
    if (planned) return void json(res, (record.status = planned), { error: 'planned' })
    const [scheme, at] = (req.headers.authorization ?? '').split(' ')
    const issued = at ? tokens.accessTokens.get(at) : undefined
    if (scheme !== 'Bearer' || !issued || issued.revoked || issued.expiresAt <= Date.now())
      return void json(res, (record.status = 401), { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })
    json(res, (record.status = 200), { ok: true, method: req.method, path, body: req.body })
  })
  const of = (path: string) => requests.filter((r) => r.path === path)
  return { ...served, requests, of }
}
