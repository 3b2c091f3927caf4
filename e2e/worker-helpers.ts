// What the worker-mode specs share: the demo's worker-mode URLs, the tokens the authorization
// server issued (read on the server), and the authorization requests it received.
import type { Page } from 'playwright/test'
import type { Demo, EnginePage } from './fixtures.js'
export { issuedTokens } from './fixtures.js'
import { attribute, expectEnabled, expectText, redact, waitForURL } from './helpers.js'

export type WorkerKind = 'shared' | 'dedicated'

/** The demo in worker mode: a SharedWorker, or a dedicated Worker per tab. */
export const workerUrl = (demo: Demo, kind: WorkerKind = 'shared') => demo.appUrl + (kind == 'shared' ? '?mode=worker' : '?mode=worker&worker=dedicated')

/** The query of every authorization request the server receives from now on. */
export function authorizationRequests(demo: Demo): URLSearchParams[] {
  const seen: URLSearchParams[] = []
  // Accepted: the request's own parameters, also when the server resumes it after its sign-in page.
  demo.as.provider.on('authorization.accepted', (ctx: { oidc: { params: Record<string, unknown> } }) =>
    seen.push(new URLSearchParams(Object.entries(ctx.oidc.params).filter((e): e is [string, string] => typeof e[1] === 'string'))),
  )
  return seen
}

// V8 names a long string in a snapshot by its first 1024 characters or so: pieces from the start,
// the middle and (for shorter tokens) the end, each long enough never to match by chance.
function pieces(token: string): string[] {
  const size = 32
  if (token.length <= size) return [token]
  return [...new Set([Math.min(100, token.length - size), Math.floor((token.length - size) / 2), token.length - size])].map((at) => token.slice(at, at + size))
}

/** The tokens (labels only) of which some piece occurs in `text`. */
export const found = (text: string, tokens: string[]) => tokens.filter((t) => pieces(t).some((p) => text.includes(p))).map(redact)

/** A V8 heap snapshot of the page's JavaScript realm, taken over the DevTools protocol. */
export async function heapSnapshot(page: Page): Promise<string> {
  const cdp = await page.context().newCDPSession(page)
  const chunks: string[] = []
  cdp.on('HeapProfiler.addHeapSnapshotChunk', ({ chunk }) => chunks.push(chunk))
  await cdp.send('HeapProfiler.enable')
  await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
  await cdp.detach()
  return chunks.join('')
}

/**
 * Signs in where the authorization server may already know the user: its one-click page if it
 * shows one, else straight back to the app.
 */
export async function signInAgain(tab: EnginePage, demo: Demo, appUrl: string): Promise<void> {
  await tab.goto(appUrl)
  await expectText(tab, '#status-pill', 'Signed out')
  await tab.click('#sign-in')
  // Away from the app first: its sign-in page, or straight back with a code.
  const url = await waitForURL(tab, (url) => url.origin === demo.as.issuer || url.searchParams.has('code'))
  if (url.origin === demo.as.issuer) {
    await tab.waitForFunction(() => document.readyState === 'complete' && !!document.querySelector('button[type=submit]'))
    await tab.click('button[type=submit]')
  }
  await expectText(tab, '#status-pill', 'Signed in')
}

/** Runs the demo's "call many" action with `size` concurrent calls and waits until it is done. */
export async function callMany(tab: EnginePage, size: number): Promise<void> {
  await tab.fill('#batch-size', String(size))
  await tab.dispatchClick('#call-many')
}

/** Waits until a "call many" action has finished, and returns its result's state. */
export async function callManyDone(tab: EnginePage): Promise<string | null> {
  await expectEnabled(tab, '#call-many', { timeout: 30_000 })
  return attribute(tab, '#result', 'data-state')
}
