// Helpers for the invariant tests: a leak check that also reads what console.log would print, a
// cross-tab mechanism whose counter writes take time (as IndexedDB transactions do), and a resource
// server whose answers a test scripts per request.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { inspect } from 'node:util'
import { expect } from 'vitest'
import type { CrossTab } from '../../src/index.js'
import { json, serve, type TokenServer } from './servers.js'
import { createTabsHub } from './tabs.js'
import { sleep } from './harness.js'

export { sleep }

/** Every token value the token server ever issued or rotated out. */
export const tokensOf = (as: TokenServer) => [...as.accessTokens.keys(), ...as.refreshTokens.keys(), ...as.rotatedOut]

/** Everything an app could print of `value`: message, stack, JSON, String, the cause chain, and util.inspect. */
export function printable(value: unknown): string {
  const parts: string[] = [inspect(value, { depth: 8, showHidden: true })]
  try {
    parts.push(JSON.stringify(value))
  } catch {}
  for (let e = value, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    parts.push(String(e))
    if (e instanceof Error) parts.push(e.message, e.stack ?? '')
  }
  return parts.join('\n')
}

/** No token (nor any 10-character piece of one) in anything printable of `value`. */
export function expectNoToken(value: unknown, tokens: string[]) {
  const text = printable(value)
  for (const t of tokens) {
    expect(text).not.toContain(t)
    for (let i = 0; i + 10 <= t.length; i++) expect(text, `a piece of a token: ${t.slice(i, i + 10)}`).not.toContain(t.slice(i, i + 10))
  }
}

/**
 * One tab's coordination (no other tabs), whose counter writes take `writeMs`, like the IndexedDB
 * transaction of the browser mechanism. `nextWrite()` resolves when the next write starts.
 */
export function slowWriteCrossTab(writeMs: number) {
  const hub = createTabsHub()
  const base = hub.tab()
  let started: (() => void) | undefined
  const tab: CrossTab = {
    ...base,
    async write(value) {
      const s = started
      started = undefined
      s?.()
      await sleep(writeMs)
      await base.write(value)
    },
  }
  return { tab, counters: hub.counters, nextWrite: () => new Promise<void>((r) => (started = r)) }
}

export interface Recorded {
  path: string
  authorization: string | undefined
  dpop: string | undefined
  status: number
}

/**
 * A resource server that answers with `script(request, attempt)` (attempt counts from 1 per path).
 * The default answer checks the access token against the token server: 200 when valid, else 401.
 */
export async function scriptedApi(
  as: TokenServer,
  script?: (req: IncomingMessage, attempt: number, res: ServerResponse, valid: boolean) => void | Promise<void>,
) {
  const requests: Recorded[] = []
  const attempts = new Map<string, number>()
  const served = await serve(async (req, res) => {
    const path = req.url!
    const n = (attempts.get(path) ?? 0) + 1
    attempts.set(path, n)
    const record: Recorded = { path, authorization: req.headers.authorization, dpop: req.headers.dpop as string | undefined, status: 0 }
    requests.push(record)
    const at = (req.headers.authorization ?? '').split(' ')[1]
    const issued = at ? as.accessTokens.get(at) : undefined
    const valid = !!issued && !issued.revoked && issued.expiresAt > Date.now()
    const write = res.writeHead.bind(res)
    res.writeHead = ((status: number, ...rest: never[]) => ((record.status = status), write(status, ...rest))) as typeof res.writeHead
    if (script) return script(req, n, res, valid)
    if (valid) json(res, 200, { ok: true })
    else json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })
  })
  return { ...served, requests }
}
