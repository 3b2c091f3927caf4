// The session state machine of one token manager: the tokens in memory, where they stand among
// the tabs (generation, logout epoch), and every transition: adopt, commit, expire, log out.
import type { SharedCounters, SharedSession, SharedToken, TabMessage } from './crosstab.js'
import { NoSessionError, SessionExpiredError, type LatchkeyError } from './errors.js'
import type { TokenSet } from './oauth.js'
import type { Context } from './options.js'
import type { SessionInfo, TokenManagerEvents } from './types.js'
import { now } from './util.js'
import type { StoredSession } from './vault.js'

/** The tokens in memory (see {@link SharedSession} for the wire names), and where they stand among all tabs. */
export interface Session extends TokenSet {
  /** Counts the token sets of this client across all tabs: each login or refresh makes the next. */
  generation: number
  /** The logout epoch the session was born in: a logout advances the epoch and ends every older session. */
  logoutEpoch: number
}

type TokensReason = TokenManagerEvents['tokens']['reason']

/** The access token for requests to `origin`: its own with `resources`, else the session's. */
export const tokenFor = (s: Session | undefined, origin?: string): SharedToken | undefined => (origin ? s?.res?.[origin] : s)

/** The session holds an access token (one read from the vault holds only a refresh token). */
export const holdsAccessToken = (s: Session | undefined) => !!(s?.at || s?.res)

export const tokenInfo = (t: SharedToken, generation: number, origin?: string): SessionInfo => ({
  expiresAt: t.exp,
  tokenType: t.type,
  scope: t.scope,
  generation,
  origin,
})

/**
 * Due for a refresh: no access token, or within `leeway` ms of expiry. The leeway is capped at a
 * quarter of the token's lifetime, or short-lived tokens would be refreshed on every call.
 */
export const isDue = (t: SharedToken | undefined, leeway: number) => !t?.at || (!!t.exp && now() >= t.exp - Math.min(leeway, (t.life ?? 0) / 4))

export const isExpired = (t: SharedToken | undefined) => isDue(t, 0)

/** How many token values `redact` remembers: the current ones and several rotated-out generations. */
const REMEMBERED = 64

export type SessionState = ReturnType<typeof createSessionState>

export function createSessionState({ tabs, emit, dpop, vault, mainOrigin }: Context, revoke: (refreshToken: string | undefined) => Promise<void>) {
  // The state, and what each value guards:
  let session: Session | undefined
  // Advances whenever this tab ends a session: work begun in an older local epoch is dropped.
  let localEpoch = 0
  // The highest logout epoch seen (shared with every tab): sessions of older epochs are dead.
  let logoutEpoch = 0
  // Logouts under way: no session may be installed until they are over.
  let logoutsInProgress = 0
  // Whoever waits for the session to change (a generation or a hand-over from another tab).
  const waiters = new Set<() => void>()
  // Every token value this tab has held, newest first, a bounded number: what `redact` removes.
  let known: (string | undefined)[] = []

  const wake = () => waiters.forEach((w) => w())

  /** Resolves once `ok()` holds, or after `ms`. */
  const waitFor = (ok: () => boolean, ms: number) =>
    new Promise<void>((resolve) => {
      const check = () => ok() && done()
      const done = () => (clearTimeout(timer), waiters.delete(check), resolve())
      const timer = setTimeout(done, ms)
      waiters.add(check)
      check()
    })

  /**
   * Invariant 7, logout wins: throws `no_session` when this tab ended its session after
   * `epochAtStart`, while a logout is under way, or when the shared counters show a logout (in any
   * tab) newer than `basis`, the session the work started from. Every late result passes here.
   */
  const assertStillSignedIn = (epochAtStart: number, counters?: SharedCounters, basis = session) => {
    if (epochAtStart != localEpoch || logoutsInProgress || (counters && basis && counters.epoch > basis.logoutEpoch))
      throw new NoSessionError('signed out')
  }

  const end = () => {
    session = undefined
    localEpoch++
    tabs.hold(false)
    wake()
  }

  const expire = (error: LatchkeyError) => {
    if (!session) return
    end()
    // Like a logout for the other tabs: a new epoch ends every session of this one.
    tabs.post({ type: 'logout', epoch: ++logoutEpoch, expired: true })
    emit('session-expired', { error })
    void vault?.forget()
  }

  const remember = (s: SharedSession) => (known = [s.rt, s.at, ...Object.values(s.res ?? {}).map((t) => t.at), ...known].slice(0, REMEMBERED))

  /** Invariant 6: every token value this tab holds or held (within {@link REMEMBERED}) becomes `[redacted]`. */
  const redact = (text: string) => known.reduce<string>((t, v) => (v ? t.split(v).join('[redacted]') : t), text)

  const adopt = (s: Session, reason: TokensReason, origin = mainOrigin) => {
    session = s
    remember(s)
    logoutEpoch = Math.max(logoutEpoch, s.logoutEpoch)
    tabs.hold(true)
    // A login's token that is no API's own (from setTokens, or from another tab) is the session's.
    const token = tokenFor(s, origin) ?? s
    emit('tokens', { ...tokenInfo(token, s.generation, token == s ? undefined : origin), reason })
    wake()
    return s
  }

  const announce = async ({ generation, logoutEpoch, ...session }: Session) =>
    tabs.post({ type: 'tokens', epoch: logoutEpoch, gen: generation, jkt: await dpop?.jkt(), session })

  /**
   * Installs new tokens while holding the refresh lock: counters, persistence, other tabs,
   * listeners. `basis` is the session the grant started from (its refresh token was presented);
   * `origin`, the `resources` origin the new access token is for.
   */
  const commit = async (
    fresh: TokenSet,
    reason: TokensReason,
    counters: SharedCounters,
    epoch: number,
    epochAtStart: number,
    basis?: Session,
    origin?: string,
  ) => {
    const { rt, ...token } = fresh
    // One refresh token serves every resource: a grant for one keeps the other tokens.
    const tokens = origin ? { ...basis!, rt: rt ?? basis?.rt, res: { ...basis?.res, [origin]: token } } : { ...fresh, res: basis?.res }
    const s: Session = { ...tokens, generation: Math.max(counters.gen, session?.generation ?? 0) + 1, logoutEpoch: epoch }
    // A logout, here or in another tab, may land before or during these awaits: it wins, and a
    // refresh token issued meanwhile is revoked rather than left alive.
    const check = () => {
      try {
        assertStillSignedIn(epochAtStart, counters, basis)
      } catch (e) {
        if (fresh.rt != basis?.rt) void revoke(fresh.rt)
        throw e
      }
    }
    check()
    await tabs.write({ gen: s.generation, epoch })
    await vault?.save(s)
    await announce(s)
    check()
    return adopt(s, reason, origin)
  }

  /** Tokens from a login or `setTokens`: a new session, whatever the other tabs hold; `origin`, whose token it is. */
  const install = (fresh: TokenSet, reason: 'login' | 'set', epochAtStart = localEpoch, origin?: string) =>
    tabs.lock('refresh', async () => {
      const c = await tabs.read()
      await commit(fresh, reason, c, Math.max(c.epoch, logoutEpoch), epochAtStart, undefined, origin)
    })

  const onTabMessage = async (m: TabMessage) => {
    if (m.type == 'hello') {
      if (holdsAccessToken(session)) await announce(session!)
    } else if (m.type == 'logout') {
      logoutEpoch = Math.max(logoutEpoch, m.epoch)
      if (session && session.logoutEpoch < m.epoch) {
        end()
        void dpop?.reset()
        if (m.expired) emit('session-expired', { error: new SessionExpiredError('session ended') })
        else emit('logout', { reason: 'tab' })
      }
    } else {
      // A session read from storage (no access token) gives way to the same generation from a tab.
      const stale = () => m.epoch < logoutEpoch || (!!session && (m.gen < session.generation || (m.gen == session.generation && holdsAccessToken(session))))
      if (stale()) return
      // Tokens bound to another key (a tab without a shared key store) are useless here.
      if (m.jkt && ((await dpop?.jkt()) != m.jkt || stale())) return
      adopt({ ...m.session, generation: m.gen, logoutEpoch: m.epoch }, 'tab')
    }
  }

  /** Asks the other tabs for their session; resolves whether one arrived. */
  const askOtherTabs = async () => {
    if (!(await tabs.peers())) return false
    tabs.post({ type: 'hello' })
    await waitFor(() => !!session, 1000)
    return !!session
  }

  const logout = async () => {
    const s = session
    logoutsInProgress++
    end()
    // Before anything that may never finish (the lock, the revocation request, a closing tab).
    await vault?.forget()
    tabs.post({ type: 'logout', epoch: ++logoutEpoch })
    emit('logout', { reason: 'logout' })
    try {
      // Holding the lock means no refresh is in flight in any tab; the new epoch, written under it,
      // kills every session that predates this logout, also in tabs that missed the message.
      await tabs.lock('refresh', async () => {
        const c = await tabs.read()
        logoutEpoch = Math.max(c.epoch + 1, logoutEpoch)
        await tabs.write({ gen: c.gen, epoch: logoutEpoch })
        await revoke(s?.rt)
        await vault?.forget()
      })
      await dpop?.reset(true)
    } finally {
      // What started while this logout ran is dropped too.
      logoutsInProgress--
      localEpoch++
    }
  }

  return {
    get session() {
      return session
    },
    get localEpoch() {
      return localEpoch
    },
    get logoutEpoch() {
      return logoutEpoch
    },
    /** A refresh token read from the vault: a session without an access token, until a refresh. */
    adoptStored(stored: StoredSession) {
      remember(stored)
      session = stored
    },
    waitFor,
    redact,
    assertStillSignedIn,
    expire,
    commit,
    install,
    onTabMessage,
    askOtherTabs,
    logout,
  }
}
