// The latchkey demo page: sign in at a real authorization server, call a DPoP-checking API,
// force an expiry, call a third-party origin, and watch storage stay empty of tokens.

import { createTokenManager, isLatchkeyError, type Measurement, type TokenManagerOptions } from '../../src/index.js'
import { connectTokenManager } from '../../src/worker.js'
import { inspectStorage } from './storage.js'

interface DemoConfig {
  clientId: string
  authorizationEndpoint: string
  tokenEndpoint: string
  revocationEndpoint: string
  redirectUri: string
  scope: string
  apiOrigin: string
  billingOrigin: string
  thirdPartyOrigin: string
}

const MAX_LOG_ENTRIES = 80
const MAX_BATCH_SIZE = 200
// A preference, not a secret: whether this browser keeps the session across reloads of the last tab.
const PERSIST_PREFERENCE = 'latchkey-demo:persist'

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`#${id} is missing from index.html`)
  return element as T
}

/** Builds an element with text content only: nothing from a server is ever parsed as HTML. */
function el(tag: string, attributes: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value)
  element.append(...children)
  return element
}

function errorText(error: unknown): string {
  if (isLatchkeyError(error)) return `${error.code}: ${error.message}${error.retryAfter == null ? '' : ` (retry in ${Math.ceil(error.retryAfter / 1000)} s)`}`
  return error instanceof Error ? error.message : String(error)
}

const config = (await (await fetch('/config.json')).json()) as DemoConfig

// Worker mode refuses persist: its key would sit in IndexedDB, in this page's reach.
const persist = new URLSearchParams(location.search).get('mode') !== 'worker' && localStorage.getItem(PERSIST_PREFERENCE) === 'on'

const options: TokenManagerOptions = {
  clientId: config.clientId,
  tokenEndpoint: config.tokenEndpoint,
  revocationEndpoint: config.revocationEndpoint,
  // One token per API (RFC 8707): each is good at its own API only.
  resources: {
    [config.apiOrigin]: config.apiOrigin,
    [config.billingOrigin]: { resource: config.billingOrigin, scope: 'billing:read' },
  },
  dpop: true,
  persist,
  // In the page only: the worker cannot be handed a function, and uses its own fetch.
  fetch: observedFetch,
}

// Worker mode (/?mode=worker): the same app and the same options (all but `fetch` and `persist`),
// with the session in auth-worker.js, which reads them from its URL; this page gets a handle and
// never a token. A SharedWorker holds one session for every tab in worker mode; where there is
// none (or with &worker=dedicated) each tab has a dedicated Worker and a session of its own. The
// nonce challenges the worker answers are not shown in this mode.
const query = new URLSearchParams(location.search)
const workerMode = query.get('mode') === 'worker'
const shared = workerMode && query.get('worker') !== 'dedicated' && typeof SharedWorker === 'function'
const home = workerMode ? `/?mode=worker${shared ? '' : '&worker=dedicated'}` : '/'
const redirectUri = workerMode ? `${config.redirectUri}${home.slice(1)}` : config.redirectUri

function connectWorker() {
  const { fetch: _inPageOnly, persist: _refusedInWorkers, ...workerOptions } = options
  const script = `/auth-worker.js?${new URLSearchParams({ options: JSON.stringify(workerOptions) })}`
  // extendedLifetime (read by Chromium only; userAgentData is Chromium's too) keeps the
  // SharedWorker, and so its key, alive while this tab visits the authorization server: the code
  // can then be bound to the key (dpop_jkt). Elsewhere PKCE binds the code.
  const workerOutlivesLogin = 'userAgentData' in navigator
  if (shared) return connectTokenManager(new SharedWorker(script, { type: 'module', name: 'latchkey', extendedLifetime: true } as WorkerOptions), { workerOutlivesLogin })
  return connectTokenManager(new Worker(script, { type: 'module' }))
}

const tm = workerMode ? connectWorker() : createTokenManager(options)

$('mode-name').textContent = workerMode ? (shared ? 'Worker mode (SharedWorker)' : 'Worker mode (dedicated Worker)') : 'In-page mode'
$('mode-switch').textContent = workerMode ? 'Switch to in-page mode' : 'Switch to worker mode'
$('mode-switch').setAttribute('href', workerMode ? '/' : '/?mode=worker')
$('mode-note').hidden = !workerMode
$('mode-where').textContent = shared ? 'a SharedWorker, one session for every tab in worker mode' : 'a dedicated worker, one session for this tab'

// The demo's own messages between its tabs (never a token): "Expire now" and storage changes.
const demoChannel = new BroadcastChannel('latchkey-demo')

// ---- DPoP nonce challenges ----

/**
 * Every request latchkey sends goes through here, so that the page can show the DPoP nonce
 * challenges (RFC 9449 §8 at the authorization server, §9 at the API) that latchkey answers with
 * one retry: a 400 or 401 with a `DPoP-Nonce` header and the error `use_dpop_nonce`. Only the
 * method, path, status and error code are logged; never a header value or a body.
 */
function observedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  return fetch(input, init).then((response) => {
    if ((response.status === 400 || response.status === 401) && response.headers.has('dpop-nonce')) noteNonceChallenge(input, init, response)
    return response
  })
}

function noteNonceChallenge(input: RequestInfo | URL, init: RequestInit | undefined, response: Response): void {
  const request = input instanceof Request ? input : undefined
  const method = (request?.method ?? init?.method ?? 'GET').toUpperCase()
  const url = new URL(request?.url ?? String(input))
  const server = url.origin === config.apiOrigin ? 'API' : url.origin === config.billingOrigin ? 'billing API' : 'authorization server'
  const where = `${server}: ${method} ${url.pathname}`
  const note = () => log('nonce', `${where} → ${response.status} use_dpop_nonce; latchkey retries once with the server's nonce`)
  // The API says so in WWW-Authenticate (RFC 9449 §9); the authorization server in its JSON body (§8).
  if (/\buse_dpop_nonce\b/.test(response.headers.get('www-authenticate') ?? '')) return note()
  // A clone, taken before latchkey reads the body.
  response.clone().json().then((body: { error?: unknown }) => body?.error === 'use_dpop_nonce' && note(), () => undefined)
}

// ---- Measurements panel ----

/**
 * The same measurements latchkey/otel records, counted here for the panel. In worker mode they
 * happen in the worker (instrument it there); the page's handle gets none.
 */
const measured = {
  outcomes: new Map<string, number>(),
  last: [] as string[],
  refreshes: 0,
  joined: 0,
  adopted: 0,
  nonces: { as: 0, api: 0 },
  unauthorized: 0,
  held: { retry_after: 0, backoff: 0 },
  offset: undefined as number | undefined,
}

function measure(m: Measurement): void {
  if (m.name == 'token_request') {
    const outcome = m.outcome ?? 'ok'
    measured.outcomes.set(outcome, (measured.outcomes.get(outcome) ?? 0) + 1)
    if (m.reason != 'login') measured.refreshes++
    measured.last = [`${m.reason} · ${outcome} · ${Math.round(m.duration!)} ms${m.status ? ` · HTTP ${m.status}` : ''}`, ...measured.last].slice(0, 5)
  } else if (m.name == 'joined') measured.joined++
  else if (m.name == 'adopted') measured.adopted++
  else if (m.name == 'nonce') measured.nonces[m.server!]++
  else if (m.name == 'unauthorized') measured.unauthorized++
  else if (m.name == 'held_back') measured.held[m.backoff ? 'backoff' : 'retry_after']++
  else if (m.name == 'clock_offset') measured.offset = m.offset
  else return
  renderMeasurements()
}

function renderMeasurements(): void {
  const { outcomes, last, refreshes, joined, adopted, nonces, unauthorized, held, offset } = measured
  $('m-outcomes').textContent = outcomes.size ? [...outcomes].map(([outcome, n]) => `${outcome}: ${n}`).join(' · ') : 'none yet'
  $('m-durations').replaceChildren(...(last.length ? last.map((line) => el('div', {}, line)) : ['–']))
  $('m-joins').textContent = refreshes ? `${(joined / refreshes).toFixed(1)} (${joined} calls)` : `– (${joined} calls)`
  $('m-adopted').textContent = String(adopted)
  $('m-nonces').textContent = `${nonces.as + nonces.api} (authorization server ${nonces.as}, API ${nonces.api})`
  $('m-unauthorized').textContent = String(unauthorized)
  $('m-held').textContent = `${held.retry_after + held.backoff} (Retry-After ${held.retry_after}, backoff ${held.backoff})`
  $('m-offset').textContent = offset === undefined ? 'not learnt' : `${(offset / 1000).toFixed(1)} s`
}

tm.on('measure', measure)
if (workerMode) $('measure-note').textContent = "In worker mode the measurements happen in the worker: instrument the worker's manager there (latchkey/otel). This page's handle gets none."

// ---- Event log ----

const events = $('events')

function log(kind: string, text: string): void {
  events.querySelector('.empty')?.remove()
  const time = new Date().toLocaleTimeString([], { hour12: false, hour: '2-digit', minute: '2-digit', second: '2-digit' })
  events.prepend(el('li', {}, el('time', {}, time), el('span', { class: 'kind', 'data-kind': kind }, kind), el('span', { class: 'text' }, text)))
  while (events.children.length > MAX_LOG_ENTRIES) events.lastElementChild?.remove()
  scheduleStorageScan()
}

$('clear-log').addEventListener('click', () => events.replaceChildren(el('li', { class: 'empty' }, 'Nothing yet.')))

const secondsLeft = (expiresAt: number | undefined): string =>
  expiresAt === undefined ? 'unknown lifetime' : `expires in ${Math.max(0, Math.round((expiresAt - Date.now()) / 1000))} s`

// ---- Session panel ----

let refreshCount = 0
// The generation of the session token the card shows: a billing API token is not a new session token.
let cardGeneration: number | undefined
// Token sets this tab took from another tab (its sign-in, refresh or restore).
let adoptedCount = 0
let lastTokensReason: string | undefined
let lifetimeMs: number | undefined
let thumbprint: string | undefined

/** The billing API's own token (RFC 8707), which the session card does not show. */
const isBilling = (origin: string | undefined) => origin === config.billingOrigin

tm.on('tokens', ({ reason, expiresAt, tokenType, generation, origin }) => {
  lastTokensReason = reason
  if (reason === 'tab') adoptedCount += 1
  if (isBilling(origin)) return log('tokens', `billing API token · ${tokenType} · ${secondsLeft(expiresAt)}`)
  cardGeneration = generation
  lifetimeMs = expiresAt === undefined ? undefined : expiresAt - Date.now()
  log('tokens', `${reason} · ${tokenType} · ${secondsLeft(expiresAt)} · generation ${generation}`)
  render()
})
// Token requests for the billing API since sign-in: its first is that API's first token, not a refresh.
let billingGrants = 0
tm.on('refresh', ({ reason, generation, origin }) => {
  if (isBilling(origin)) {
    const first = billingGrants++ === 0
    return log('refresh', first ? "billing API's first token: one token request with its resource" : `billing API token renewed: one token request (${reason})`)
  }
  refreshCount += 1
  log('refresh', `one token request (${reason}) · generation ${generation}`)
  render()
})
tm.on('refresh-error', ({ reason, error }) => log('refresh-error', `${reason}: ${errorText(error)}`))
tm.on('session-expired', ({ error }) => {
  log('session-expired', errorText(error))
  render()
})
tm.on('logout', ({ reason }) => {
  // The next sign-in starts over: new DPoP key, new refresh-token family.
  refreshCount = 0
  cardGeneration = undefined
  billingGrants = 0
  thumbprint = undefined
  log('logout', reason === 'tab' ? 'signed out in another tab' : 'signed out; refresh token revoked')
  render()
})
tm.on('warning', ({ code, message }) => log('warning', `${code}: ${message}`))

function render(): void {
  const status = tm.status()
  const signedIn = status !== undefined
  $('signed-out').hidden = signedIn
  $('session').hidden = !signedIn
  $('actions').hidden = !signedIn
  $('billing').hidden = !signedIn
  const pill = $('status-pill')
  pill.dataset['state'] = signedIn ? 'in' : 'out'
  pill.textContent = signedIn ? 'Signed in' : 'Signed out'
  if (!signedIn) return
  $('token-type').textContent = status.tokenType
  $('generation').textContent = String(cardGeneration ?? status.generation)
  $('scope').textContent = status.scope ?? '–'
  $('refresh-count').textContent = String(refreshCount)
  $('persistence').textContent = persist ? 'keeps the session' : 'signs you out'
  $('thumbprint').textContent = thumbprint ?? '…'
  if (thumbprint === undefined) {
    tm.dpopThumbprint().then((jkt) => {
      thumbprint = jkt
      $('thumbprint').textContent = jkt
    }, (error: unknown) => log('error', `thumbprint: ${errorText(error)}`))
  }
  tick()
}

// The generation whose access token "Expire now" made the API reject (in this tab or another).
let rejectedGeneration: number | undefined

function tick(): void {
  const status = tm.status()
  const expiresAt = status?.expiresAt
  const note = $('time-note')
  if (expiresAt === undefined) {
    $('time-left').textContent = '–'
    note.textContent = 'access token left'
    return
  }
  // latchkey refreshes on demand, not on a timer: an expired token stays until the next call.
  const rejected = status?.generation === rejectedGeneration
  const left = rejected ? 0 : Math.max(0, expiresAt - Date.now())
  const seconds = Math.ceil(left / 1000)
  $('time-left').textContent =
    left === 0 ? 'expired:' : seconds >= 60 ? `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}` : `${seconds} s`
  note.textContent = left > 0 ? 'access token left' : rejected ? 'the API rejects it; the next call refreshes' : 'the next call refreshes'
  const fraction = lifetimeMs ? Math.min(1, left / lifetimeMs) : 0
  $('time-bar').style.width = `${(fraction * 100).toFixed(1)}%`
  $('session').querySelector<HTMLElement>('.countdown')!.dataset['state'] = left === 0 ? 'due' : 'live'
}
setInterval(tick, 250)

// ---- Results ----

const result = $('result')

function showResult(state: 'ok' | 'bad' | 'busy', headline: (Node | string)[], ...details: Node[]): void {
  result.dataset['state'] = state
  result.replaceChildren(el('p', { class: 'headline' }, ...headline), ...details)
}

const tag = (text: string, state?: 'ok' | 'bad') => el('span', state ? { class: 'tag', 'data-state': state } : { class: 'tag' }, text)
const pre = (value: unknown) => el('pre', {}, JSON.stringify(value, null, 2))
const checks = (...items: [string, boolean][]) =>
  el('ul', { class: 'checks' }, ...items.map(([text, ok]) => el('li', ok ? {} : { 'data-state': 'bad' }, text)))

/** Runs one button's action with the button disabled, reporting any error in the result panel. */
function action(id: string, run: () => Promise<void>): void {
  const button = $<HTMLButtonElement>(id)
  button.addEventListener('click', async () => {
    button.disabled = true
    try {
      await run()
    } catch (error) {
      showResult('bad', [tag('error', 'bad'), errorText(error)])
      log('error', errorText(error))
    } finally {
      button.disabled = false
      render()
    }
  })
}

action('call-api', async () => {
  showResult('busy', ['Calling GET /api/me…'])
  const started = performance.now()
  const response = await tm.fetch(`${config.apiOrigin}/api/me`)
  const ms = Math.round(performance.now() - started)
  const body: unknown = await response.json()
  showResult(response.ok ? 'ok' : 'bad', [tag(String(response.status), response.ok ? 'ok' : 'bad'), `GET /api/me · ${ms} ms`], pre(body))
  log('api', `GET /api/me → ${response.status}`)
})

action('call-billing', async () => {
  const response = await tm.fetch(`${config.billingOrigin}/api/invoices`)
  const body: unknown = await response.json()
  const token = tm.status(config.billingOrigin)
  const box = $('billing-result')
  box.dataset['state'] = response.ok ? 'ok' : 'bad'
  box.replaceChildren(
    el('p', {}, tag(String(response.status), response.ok ? 'ok' : 'bad'), ` GET /api/invoices · token scope ${token?.scope ?? '–'} · ${secondsLeft(token?.expiresAt)}`),
    pre(body),
  )
  log('api', `billing GET /api/invoices → ${response.status}`)
})

const batchInput = $<HTMLInputElement>('batch-size')

function batchSize(): number {
  const n = Math.round(batchInput.valueAsNumber)
  return Number.isFinite(n) ? Math.min(MAX_BATCH_SIZE, Math.max(1, n)) : 20
}

batchInput.addEventListener('input', () => {
  $('batch-label').textContent = String(batchSize())
})

action('call-both-many', async () => {
  const size = batchSize()
  const batch = (url: string) => Promise.all(Array.from({ length: size }, () => tm.fetch(url).then((r) => r.status)))
  const [api, billing] = await Promise.all([batch(`${config.apiOrigin}/api/items`), batch(`${config.billingOrigin}/api/invoices`)])
  const ok = (statuses: number[]) => statuses.filter((s) => s === 200).length
  const box = $('billing-result')
  box.dataset['state'] = ok(api) + ok(billing) === 2 * size ? 'ok' : 'bad'
  box.replaceChildren(el('p', {}, `API: ${ok(api)}/${size} OK · billing API: ${ok(billing)}/${size} OK · one token each, one grant per expired token`))
  log('api', `${size} + ${size} calls to the two APIs → ${ok(api) + ok(billing)} OK`)
})

action('call-many', async () => {
  const size = batchSize()
  showResult('busy', [`Sending ${size} requests at once…`])
  const refreshesBefore = refreshCount
  const adoptedBefore = adoptedCount
  const outcomes = await Promise.allSettled(
    Array.from({ length: size }, () => tm.fetch(`${config.apiOrigin}/api/items`).then((r) => r.status)),
  )
  const statuses = new Map<string, number>()
  for (const outcome of outcomes) {
    const key = outcome.status === 'fulfilled' ? String(outcome.value) : errorText(outcome.reason)
    statuses.set(key, (statuses.get(key) ?? 0) + 1)
  }
  const refreshes = refreshCount - refreshesBefore
  const adopted = adoptedCount - adoptedBefore
  const allOk = statuses.size === 1 && statuses.has('200')
  const summary = [...statuses].map(([status, n]) => `${n} × ${status}`).join(', ')
  showResult(allOk ? 'ok' : 'bad', [tag(allOk ? 'all 200' : 'mixed', allOk ? 'ok' : 'bad'), `${size} × GET /api/items`],
    checks(
      [`Responses: ${summary}`, allOk],
      [`Token refreshes during the batch: ${refreshes} (never more than one)`, refreshes <= 1],
      [`New tokens taken from another tab: ${adopted}`, true],
    ))
  log('api', `${size} concurrent calls → ${summary}; ${refreshes} refresh, ${adopted} from another tab`)
})

action('expire', async () => {
  // A demo control on the API, not an OAuth call: plain fetch, no token needed.
  const response = await fetch(`${config.apiOrigin}/demo/expire`, { method: 'POST' })
  if (!response.ok) throw new Error(`POST /demo/expire answered ${response.status}`)
  markRejected(tm.status()?.generation)
  demoChannel.postMessage({ type: 'expired', generation: rejectedGeneration })
  showResult('ok', [tag('expired', 'ok'), 'The API now rejects the current access token.'],
    el('p', { class: 'muted small' }, 'Call the API: latchkey sees the 401, refreshes once, and retries the request.'))
  log('api', 'API told to reject every token issued so far')
})

action('third-party', async () => {
  showResult('busy', ['Calling the third-party origin…'])
  const response = await tm.fetch(`${config.thirdPartyOrigin}/data`)
  const body = (await response.json()) as { receivedHeaders: string[]; authorization: boolean; dpop: boolean }
  const clean = !body.authorization && !body.dpop
  showResult(clean ? 'ok' : 'bad', [tag(String(response.status), clean ? 'ok' : 'bad'), `GET ${config.thirdPartyOrigin}/data`],
    checks(['No Authorization header arrived', !body.authorization], ['No DPoP proof arrived', !body.dpop]),
    el('p', { class: 'muted small' }, `Headers it received: ${body.receivedHeaders.join(', ')}`))
  log('api', `third-party call → ${response.status}; ${clean ? 'no token, no proof' : 'CREDENTIALS LEAKED'}`)
})

action('sign-out', async () => {
  await tm.logout()
  // logout() resolves once the DPoP key is deleted: read storage again, here and in the other tabs.
  scheduleStorageScan()
  demoChannel.postMessage({ type: 'storage' })
  showResult('ok', ['Signed out.'])
})

function markRejected(generation: number | undefined): void {
  rejectedGeneration = generation
  tick()
}

demoChannel.addEventListener('message', ({ data }: MessageEvent<{ type: string; generation?: number }>) => {
  if (data.type === 'expired') markRejected(data.generation)
  else if (data.type === 'storage') scheduleStorageScan()
})

const persistToggle = $<HTMLInputElement>('persist')
persistToggle.checked = persist
persistToggle.addEventListener('change', () => {
  // The token manager reads the option once, at startup: apply the choice by reloading (signed out,
  // nothing is lost).
  if (persistToggle.checked) localStorage.setItem(PERSIST_PREFERENCE, 'on')
  else localStorage.removeItem(PERSIST_PREFERENCE)
  location.reload()
})
persistToggle.disabled = workerMode
$('reload-note').textContent = workerMode
  ? shared
    ? "The session lives in the SharedWorker's memory only (nothing of it in IndexedDB or any other storage): every tab in worker mode shares it, and it ends with the worker, which the browser stops once no tab has used it for a while. " +
      ('userAgentData' in navigator
        ? 'In this browser (Chromium) the worker outlives a reload of the last tab and the sign-in redirect, so the code is bound to its key (dpop_jkt).'
        : 'In this browser (Firefox or Safari) the worker ends when the last tab reloads or leaves for the sign-in page: a reload signs you out, and the sign-in is bound by PKCE and the code exchange\'s own proof.')
    : "The session lives in this tab's worker's memory only (nothing of it in IndexedDB or any other storage): another tab signs in on its own, and a sign-out in one signs out all."
  : persist
  ? 'This browser keeps the session: the DPoP-bound refresh token is stored encrypted under a non-extractable key, so reloading the last tab keeps you signed in. Access tokens stay in memory.'
  : "Tokens live in this tab's memory: reloading the last tab signs you out. A second tab joins the session without storing anything."

action('sign-in', async () => {
  const url = await tm.authorizationUrl({
    authorizationEndpoint: config.authorizationEndpoint,
    redirectUri,
    scope: config.scope,
  })
  // Replace, not assign: the Back button after sign-in then leaves the sign-in page out.
  location.replace(url)
})

// ---- Storage inspector ----

let scanning: Promise<void> | undefined
let rescan = false

function scheduleStorageScan(): void {
  if (scanning) {
    rescan = true
    return
  }
  scanning = scanStorage().finally(() => {
    scanning = undefined
    if (rescan) {
      rescan = false
      scheduleStorageScan()
    }
  })
}

/** Every token string the demo's authorization server issued in this run (a demo-only endpoint). */
async function issuedTokens(): Promise<string[]> {
  const response = await fetch('/demo/issued-tokens', { cache: 'no-store' })
  if (!response.ok) throw new Error(`GET /demo/issued-tokens answered ${response.status}`)
  return ((await response.json()) as { tokens: string[] }).tokens
}

async function scanStorage(): Promise<void> {
  const verdict = $('storage-verdict')
  try {
    const tokens = await issuedTokens()
    const report = await inspectStorage(tokens)
    // A newer scan is queued (storage changed meanwhile): show its result, not this one.
    if (rescan) return
    $('storage').replaceChildren(...report.areas.map(({ name, entries }) =>
      el('div', { class: 'area' },
        el('div', { class: 'area-head' }, el('span', {}, name), el('span', {}, entries.length ? `${entries.length} item${entries.length === 1 ? '' : 's'}` : 'empty')),
        ...(entries.length ? [el('ul', {}, ...entries.map(({ key, value }) => el('li', {}, el('b', {}, key), ` = ${value}`)))] : []))))
    const [found] = report.tokensFound
    verdict.dataset['state'] = found ? 'bad' : 'ok'
    verdict.textContent = found
      ? `Issued token stored: ${found}`
      : tokens.length === 0
        ? 'No token issued yet'
        : `None of the ${tokens.length} issued tokens stored`
    verdict.title = 'Compared with every access, refresh and ID token the demo authorization server issued'
  } catch (error) {
    verdict.dataset['state'] = 'warn'
    verdict.textContent = 'Could not read storage'
    log('warning', `storage inspector: ${errorText(error)}`)
  }
}

setInterval(scheduleStorageScan, 2000)

// ---- Start ----

/** What a failed sign-in redirect means, in words. */
function signInFailure(error: unknown): string {
  if (!isLatchkeyError(error, 'login_error')) return `Sign-in failed: ${errorText(error)}`
  if (error.error) return `The authorization server did not sign you in (${error.error}${error.description ? `: ${error.description}` : ''}). Sign in again.`
  return error.message === 'unknown state'
    ? 'This sign-in response was already used, or belongs to another tab or browser: nothing was signed in. Sign in again.'
    : `Sign-in failed: ${errorText(error)}. Sign in again.`
}

const here = new URL(location.href)
let redirected = here.searchParams.has('code') || here.searchParams.has('error')
if (redirected) {
  try {
    await tm.handleRedirect(here)
  } catch (error) {
    const message = $('signin-message')
    message.hidden = false
    message.dataset['state'] = 'bad'
    message.textContent = signInFailure(error)
    log('error', `sign-in: ${errorText(error)}`)
    // Another tab may still hold a session this tab can join.
    redirected = false
  } finally {
    // The code and state have done their job; keep them out of the address bar and history.
    history.replaceState(null, '', home)
  }
}
if (!redirected) {
  try {
    const started = performance.now()
    const restored = await tm.restore()
    const ms = Math.round(performance.now() - started)
    if (!restored) log('session', `no session to restore (${ms} ms)`)
    else if (lastTokensReason === 'tab') log('tokens', `session adopted from another tab in ${ms} ms`)
    else if (shared) log('tokens', `session joined in the SharedWorker in ${ms} ms`)
    else log('tokens', `session restored from this browser's encrypted refresh token in ${ms} ms`)
  } catch (error) {
    log('warning', `restore: ${errorText(error)}`)
  }
}
render()
scheduleStorageScan()
