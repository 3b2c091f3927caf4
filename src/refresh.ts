// The refresh protocol: one refresh at a time per client, in this tab (a shared pending promise
// per token) and across tabs (a lock, then a wait for the generation the last holder wrote), with
// every late result checked against logout.
import type { CrossTab, SharedCounters, SharedToken } from './crosstab.js'
import { NetworkError, NoSessionError, RetryLaterError, SessionExpiredError, type LatchkeyError } from './errors.js'
import { measured, warner, type Emit } from './events.js'
import { parseTokenResponse, timed, tokenRequest, type TokenSet } from './oauth.js'
import type { Context } from './options.js'
import { holdsAccessToken, isDue, isExpired, tokenFor, tokenInfo, type Session, type SessionState } from './session.js'
import type { Measurement, RefreshReason } from './types.js'
import { here, now, offline } from './util.js'

/** The backoff after failed refreshes, ms: the first retry is free, then full jitter over 1 s, 2 s, 4 s, … up to 30 s. */
const BACKOFF_BASE = 1000
const BACKOFF_CAP = 30_000
/** A 401 this soon (ms) after the last refresh a 401 bought for the same API buys none (invariant 10). */
const RENEW_WINDOW = 10_000

/** The session is over (as opposed to a failure that may pass). */
export const sessionIsOver = (e: unknown) => /^(session_expired|no_session)$/.test((e as LatchkeyError | undefined)?.code!)

/** One grant: the refresh_token grant at the token endpoint (with the origin's resource, scope and params), or the app's own endpoint or function. */
async function grant(context: Context & { m: Measurement }, basis: Session | undefined, origin?: string): Promise<TokenSet> {
  const { clientId, refresh: own, refreshEndpoint, resourceOf, timeout, tokenEndpoint, dpop } = context
  const refreshToken = basis?.rt
  const { resource, scope, params } = resourceOf.get(origin!) ?? {}
  // A resource's token keeps nothing of the session's (its scope is its own).
  const prev = origin ? undefined : basis
  if (typeof own == 'function') {
    const dpopProof = async (method: string, url: string) => dpop?.proof(method, url)
    const json = await timed('refresh', timeout, (signal) => own({ refreshToken, signal, dpopProof, resource }))
    return parseTokenResponse(json, 'refresh', !!dpop, prev)
  }
  const url = refreshEndpoint ? new URL(refreshEndpoint.url, here()).href : tokenEndpoint!
  const form = { ...params, grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken, resource, scope }
  return tokenRequest({ ...context, prev }, url, form, { ...refreshEndpoint }, refreshEndpoint ? 'own' : 'token')
}

/**
 * Invariant 10, the authorization server is never stormed: no token request, from any tab, before
 * the time the shared counters hold; a refresh that is needed meanwhile fails fast.
 */
const holdBack = ({ wait = 0, backoff }: SharedCounters, emit: Emit) => {
  const retryAfter = wait - now()
  if (retryAfter > 0) {
    emit('measure', { name: 'held_back', backoff })
    throw new RetryLaterError('token requests held back', { retryAfter })
  }
}

/**
 * Invariant 10: after a failed refresh, the time before the next token request, for every tab:
 * the server's `Retry-After`, and from the second failure in a row a backoff with full jitter
 * (never past the expiry of a still-valid token, which is refreshed then). Clients told the same
 * `Retry-After` would all come back the moment it ends: each adds a random spread of up to half of
 * it (at most {@link BACKOFF_CAP}).
 */
const backOff = (tabs: CrossTab, counters: SharedCounters, token?: SharedToken, retryAfter = 0) => {
  // A failure during a wait (a refused 401, see `renew`) counts once, as a refresh held back sends
  // nothing; a failed request comes after the wait, which it does not shorten.
  if (counters.wait! > now()) return
  const fails = (counters.fails ?? 0) + 1
  let backoff = fails > 1 ? Math.random() * Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (fails - 2)) : 0
  if (!isExpired(token) && token!.exp) backoff = Math.min(backoff, token!.exp - now())
  const asked = retryAfter + Math.random() * Math.min(retryAfter / 2, BACKOFF_CAP)
  return tabs.write({ ...counters, fails, wait: now() + Math.max(asked, backoff), backoff: backoff > asked })
}

/**
 * The lock can be granted before the last holder's tokens reach this tab: wait for the generation
 * it wrote (invariant 4: a rotated refresh token is never presented twice), or read it from the
 * vault, or have a tab that holds it in memory hand over its access tokens.
 */
async function catchUp({ state, tabs, vault }: { state: SessionState } & Pick<Context, 'tabs' | 'vault'>, counters: SharedCounters, epochAtStart: number) {
  const behind = () => counters.gen > (state.session?.generation ?? 0)
  if (behind() && (state.session || (await tabs.peers())))
    await state.waitFor(() => !behind() || epochAtStart != state.localEpoch, 1000)
  state.assertStillSignedIn(epochAtStart)
  if (vault && behind()) {
    const stored = await vault.load()
    if (stored && stored.generation >= counters.gen) state.adoptStored(stored)
  }
  const s = state.session
  if (s && !holdsAccessToken(s) && s.generation >= counters.gen && (await tabs.peers())) {
    tabs.post({ type: 'hello' })
    await state.waitFor(() => holdsAccessToken(state.session) || epochAtStart != state.localEpoch, 1000)
    state.assertStillSignedIn(epochAtStart)
  }
}

export function createRefresh(context: Context, state: SessionState) {
  const { leeway, mainOrigin, refresh: own, tabs, emit, vault } = context
  // The refresh in flight in this tab for each token, keyed by the local epoch it began in and the
  // token's origin: a session ended since does not wait for it.
  const pending = new Map<string, Promise<SharedToken>>()
  const keyOf = (origin?: string) => state.localEpoch + ' ' + origin
  // When a 401 last bought a refresh, per API (in this tab).
  const renewedAt = new Map<string | undefined, number>()
  // Most calls find nothing in flight: they skip building the key.
  const inFlight = (origin?: string) => (pending.size ? pending.get(keyOf(origin)) : undefined)

  /**
   * Invariant 4: one refresh at a time per client, in every tab: all of it runs under the lock, so
   * the grants of several resources never overlap and each presents the newest refresh token.
   */
  const run = (reason: RefreshReason, origin: string | undefined, m: Measurement): Promise<SharedToken> => {
    const epochAtStart = state.localEpoch
    const before = tokenFor(state.session, origin)?.at
    return tabs.lock('refresh', async () => {
      let counters = await tabs.read()
      state.assertStillSignedIn(epochAtStart, counters)
      await catchUp({ state, tabs, vault }, counters, epochAtStart)
      const basis = state.session
      const token = tokenFor(basis, origin)
      // Another call or tab brought a new token while this one waited.
      if (token?.at != before && !isDue(token, leeway)) {
        m.name = 'adopted'
        emit('measure', m)
        return token!
      }
      if (!basis?.rt && !own) throw new NoSessionError('not signed in')
      holdBack(counters, emit)
      let fresh: TokenSet
      try {
        fresh = await measured(emit, m, () => grant({ ...context, m }, basis, origin))
      } catch (e) {
        const error = e as LatchkeyError
        state.assertStillSignedIn(epochAtStart)
        if (error.code == 'session_expired') state.expire(error)
        else {
          await backOff(tabs, counters, token, error.retryAfter)
          emit('refresh-error', { reason, error })
        }
        throw error
      }
      counters = await tabs.read()
      const epoch = basis?.logoutEpoch ?? Math.max(counters.epoch, state.logoutEpoch)
      const next = await state.commit(fresh, 'refresh', counters, epoch, epochAtStart, basis, origin)
      const nextToken = tokenFor(next, origin)!
      emit('refresh', { ...tokenInfo(nextToken, next.generation, origin), reason })
      return nextToken
    })
  }

  /** Starts a refresh of `origin`'s token, or joins the one in flight (a single shared pending promise). */
  const refresh = (reason: RefreshReason, origin = mainOrigin) => {
    const key = keyOf(origin)
    let p = pending.get(key)
    // Before any await, in the call that caused it: a listener reads the caller's context here.
    const m: Measurement = p ? { name: 'joined' } : { name: 'start', reason, origin }
    emit('measure', m)
    if (!p) {
      const started = (p = run(reason, origin, m))
      const clear = () => {
        if (pending.get(key) == started) pending.delete(key)
      }
      started.then(clear, clear)
      pending.set(key, started)
    }
    return p
  }

  /** The access token for `origin` now: refreshed first when due; a still-valid one survives a failed early refresh. */
  const current = async (origin = mainOrigin): Promise<SharedToken> => {
    const s = state.session
    const t = tokenFor(s, origin)
    if (t && !isDue(t, leeway) && !inFlight(origin)) return t
    if (inFlight(origin) || ((s?.rt || own) && !offline())) {
      try {
        return await refresh('expiry', origin)
      } catch (e) {
        if (t && t == tokenFor(state.session, origin) && !isExpired(t) && !sessionIsOver(e)) return t
        throw e
      }
    }
    if (t && !isExpired(t)) return t
    if (!s) throw new NoSessionError('not signed in')
    if (s.rt || own) throw new NetworkError('offline')
    const error = new SessionExpiredError('access token expired')
    state.expire(error)
    throw error
  }

  /**
   * After a 401 on `used`: a refresh, unless a newer token than that already arrived. Invariant 10,
   * an API that refuses every token does not buy a refresh per call: within {@link RENEW_WINDOW} of
   * the last refresh a 401 bought for this API (whose token may be the one just refused), the 401
   * counts as a failed refresh toward the backoff instead, and stays the caller's (`undefined`).
   */
  const renew = async (used: SharedToken, origin = mainOrigin) => {
    if (tokenFor(state.session, origin)?.at != used.at) return current(origin)
    if (inFlight(origin) || !(now() - renewedAt.get(origin)! < RENEW_WINDOW)) {
      renewedAt.set(origin, now())
      return refresh('unauthorized', origin)
    }
    await tabs.lock('refresh', async () => backOff(tabs, await tabs.read(), used))
    warner(emit)('token_refused')
  }

  return { refresh, current, renew }
}
