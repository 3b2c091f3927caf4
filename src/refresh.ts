// The refresh protocol: one refresh at a time per client, in this tab (a shared pending promise)
// and across tabs (a lock, then a wait for the generation the last holder wrote), with every late
// result checked against logout.
import type { SharedCounters } from './crosstab.js'
import { NetworkError, NoSessionError, SessionExpiredError, type LatchkeyError } from './errors.js'
import { parseTokenResponse, timed, tokenRequest, type TokenSet } from './oauth.js'
import type { Context } from './options.js'
import { isDue, isExpired, sessionInfo, type Session, type SessionState } from './session.js'
import type { RefreshReason } from './types.js'
import { here, offline } from './util.js'

/** The session is over (as opposed to a failure that may pass). */
export const sessionIsOver = (e: unknown) => /^(session_expired|no_session)$/.test((e as LatchkeyError | undefined)?.code!)

export function createRefresh(context: Context, state: SessionState) {
  const { clientId, leeway, ownRefresh, refreshEndpoint, refreshFunction, timeout, tokenEndpoint, dpop, tabs, emit, vault } = context
  const { waitFor, assertStillSignedIn, expire, commit } = state
  // The refresh in flight in this tab, and the local epoch it belongs to: a session ended since
  // does not wait for it.
  let pending: Promise<Session> | undefined
  let pendingEpoch = -1

  const inFlight = () => (pendingEpoch == state.localEpoch ? pending : undefined)

  /** One grant: the refresh_token grant at the token endpoint, or the app's own endpoint or function. */
  const grant = async (basis: Session | undefined): Promise<TokenSet> => {
    const refreshToken = basis?.rt
    const own = refreshFunction
    if (own) {
      const dpopProof = async (method: string, url: string) => dpop?.proof(method, url)
      const json = await timed('refresh', timeout, (signal) => own({ refreshToken, signal, dpopProof }))
      return parseTokenResponse(json, 'refresh', !!dpop, basis)
    }
    const endpoint = refreshEndpoint
    const url = endpoint ? new URL(endpoint.url, here()).href : tokenEndpoint!
    const form = { grant_type: 'refresh_token', client_id: clientId, ...(refreshToken ? { refresh_token: refreshToken } : {}) }
    const { json, res } = await tokenRequest(context, url, form, { ...endpoint }, endpoint ? 'own' : 'token')
    return parseTokenResponse(json, 'POST ' + url, !!dpop, basis, res)
  }

  /**
   * The lock can be granted before the last holder's tokens reach this tab: wait for the generation
   * it wrote (invariant 4: a rotated refresh token is never presented twice), or read it from the
   * vault, or have a tab that holds it in memory hand over its access token.
   */
  const catchUp = async (counters: SharedCounters, epochAtStart: number) => {
    const behind = () => counters.gen > (state.session?.generation ?? 0)
    if (behind() && (state.session || (await tabs.peers())))
      await waitFor(() => !behind() || epochAtStart != state.localEpoch, 1000)
    assertStillSignedIn(epochAtStart)
    if (vault && behind()) {
      const stored = await vault.load()
      if (stored && stored.generation >= counters.gen) state.adoptStored(stored)
    }
    const s = state.session
    if (s && !s.at && s.generation >= counters.gen && (await tabs.peers())) {
      tabs.post({ type: 'hello' })
      await waitFor(() => !!state.session?.at || epochAtStart != state.localEpoch, 1000)
      assertStillSignedIn(epochAtStart)
    }
  }

  /** Invariant 4: one refresh at a time per client, in every tab: all of it runs under the lock. */
  const run = (reason: RefreshReason): Promise<Session> => {
    const epochAtStart = state.localEpoch
    const before = state.session
    return tabs.lock('refresh', async () => {
      let counters = await tabs.read()
      assertStillSignedIn(epochAtStart, counters)
      await catchUp(counters, epochAtStart)
      const basis = state.session
      // Another call or tab brought new tokens while this one waited.
      if (basis && basis != before && !isDue(basis, leeway)) return basis
      if (!basis?.rt && !ownRefresh) throw new NoSessionError('not signed in')
      let fresh: TokenSet
      try {
        fresh = await grant(basis)
      } catch (e) {
        const error = e as LatchkeyError
        assertStillSignedIn(epochAtStart)
        if (error.code == 'session_expired') expire(error)
        else emit('refresh-error', { reason, error })
        throw error
      }
      counters = await tabs.read()
      const epoch = basis?.logoutEpoch ?? Math.max(counters.epoch, state.logoutEpoch)
      const next = await commit(fresh, 'refresh', counters, epoch, epochAtStart, basis)
      emit('refresh', { ...sessionInfo(next), reason })
      return next
    })
  }

  /** Starts a refresh, or joins the one in flight (the single shared pending promise). */
  const refresh = (reason: RefreshReason) => {
    if (!inFlight()) {
      const p = run(reason)
      const clear = () => {
        if (pending == p) pending = undefined
      }
      p.then(clear, clear)
      pending = p
      pendingEpoch = state.localEpoch
    }
    return pending!
  }

  /** The session to use now: refreshed first when due; a still-valid token survives a failed early refresh. */
  const current = async (): Promise<Session> => {
    const s = state.session
    if (s && !isDue(s, leeway) && !inFlight()) return s
    if (inFlight() || ((s?.rt || ownRefresh) && !offline())) {
      try {
        return await refresh('expiry')
      } catch (e) {
        if (s && s == state.session && !isExpired(s) && !sessionIsOver(e)) return s
        throw e
      }
    }
    if (s && !isExpired(s)) return s
    if (!s) throw new NoSessionError('not signed in')
    if (s.rt || ownRefresh) throw new NetworkError('offline')
    const error = new SessionExpiredError('access token expired')
    expire(error)
    throw error
  }

  /** After a 401 on `used`: a refresh, unless newer tokens than those already arrived. */
  const renew = (used: Session) => (used.generation == state.session?.generation ? refresh('unauthorized') : current())

  return { refresh, current, renew }
}
