// What every unit test file shares: servers closed after each test, the clock put back, and a
// token manager wired to the loopback token server.
import { afterEach, vi } from 'vitest'
import { createTokenManager, type TokenManager, type TokenManagerOptions } from '../../src/index.js'
import { serve, startApi, startTokenServer, type TokenServer } from './servers.js'

/** Run (last first) after each test of the file that imports this module. */
export const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  vi.useRealTimers()
  vi.restoreAllMocks()
  while (cleanups.length) await cleanups.pop()!()
})

/** A token server and an API that trusts it, both closed after the test. */
export async function setup(serverOptions: Parameters<typeof startTokenServer>[0] = {}, apiOptions: Parameters<typeof startApi>[1] = {}) {
  const as = await startTokenServer(serverOptions)
  const api = await startApi(as, apiOptions)
  cleanups.push(as.close, api.close)
  return { as, api }
}

/** A loopback server with `handler`, closed after the test. */
export async function served(handler: Parameters<typeof serve>[0]) {
  const s = await serve(handler)
  cleanups.push(s.close)
  return s
}

/** A single-tab manager for `as`, attaching tokens to `allowed`. */
export function manager(as: TokenServer, allowed: string[], options: Partial<TokenManagerOptions> = {}): TokenManager {
  return createTokenManager({
    clientId: 'spa',
    tokenEndpoint: as.tokenEndpoint,
    revocationEndpoint: as.revocationEndpoint,
    allowedOrigins: allowed,
    crossTab: false,
    ...options,
  })
}

/** Moves the clock (Date only: servers and timers keep running) `seconds` ahead. */
export function advance(seconds: number) {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + seconds * 1000 })
}

/**
 * A window stand-in for the events a manager listens to (`online`): Node has none. Put back after
 * the test; returns the target to dispatch on.
 */
export function windowEvents(): EventTarget {
  const target = new EventTarget()
  const g = globalThis as unknown as Record<string, unknown>
  const saved = [g.addEventListener, g.removeEventListener]
  g.addEventListener = target.addEventListener.bind(target)
  g.removeEventListener = target.removeEventListener.bind(target)
  cleanups.push(() => void ([g.addEventListener, g.removeEventListener] = saved))
  return target
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Waits until `ok()` holds (messages between tabs take a while on a loaded machine); bounded. */
export async function until(ok: () => boolean, ms = 5000) {
  for (const started = Date.now(); !ok(); await sleep(5)) if (Date.now() - started > ms) throw new Error('timed out waiting')
}
