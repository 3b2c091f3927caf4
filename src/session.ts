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

/** However short a token's lifetime says it is, it serves this long (ms) before a refresh is due. */
const MIN_REUSE = 1000

/**
 * Due for a refresh: no access token, or past its refresh time. The leeway is capped at a quarter
 * of the token's lifetime, or short-lived tokens would be refreshed on every call.
 *
 * Invariant 10, spread: each token's refresh time is drawn once, at random, inside the first half
 * of its window (the leeway, capped or not): between `expiry − window` and `expiry − window / 2`,
 * whatever the lifetime, so that clients whose tokens were issued together do not refresh together;
 * the last half stays a margin. Never sooner than {@link MIN_REUSE} after the token arrived.
 */
export const isDue = (t: SharedToken | undefined, leeway: number) => {
  if (!t?.at) return true
  const { exp, life = 0 } = t
  const window = Math.min(leeway, life / 4)
  return !!exp && now() >= (t.due ??= Math.max(exp - life + MIN_REUSE, exp - window + (Math.random() * window) / 2))
}

export const isExpired = (t: SharedToken | undefined) => !t?.at || (!!t.exp && now() >= t.exp)

/** How many token values `redact` remembers: the current ones and several rotated-out generations. */
const REMEMBERED = 64

/**
 * The session state machine of one token manager. Not exported from the package: the handle that
 * `createTokenManager` returns is the public face.
 */
export class SessionState {
  // The state, and what each value guards:
  #session: Session | undefined
  // Advances whenever this tab ends a session: work begun in an older local epoch is dropped.
  #localEpoch = 0
  // The highest logout epoch seen (shared with every tab): sessions of older epochs are dead.
  #logoutEpoch = 0
  // Logouts under way: no session may be installed until they are over.
  #logoutsInProgress = 0
  // Whoever waits for the session to change (a generation or a hand-over from another tab).
  #waiters = new Set<() => void>()
  // Every token value this tab has held, newest first, a bounded number: what `redact` removes.
  #known: (string | undefined)[] = []

  #context: Context
  #revoke: (refreshToken: string | undefined) => Promise<void>

  constructor(context: Context, revoke: (refreshToken: string | undefined) => Promise<void>) {
    this.#context = context
    this.#revoke = revoke
  }

  /** The tokens in memory now. */
  get session() {
    return this.#session
  }
  get localEpoch() {
    return this.#localEpoch
  }
  get logoutEpoch() {
    return this.#logoutEpoch
  }

  /** Resolves once `ok()` holds, or after `ms`. */
  waitFor(ok: () => boolean, ms: number) {
    return new Promise<void>((resolve) => {
      const check = () => ok() && done()
      const done = () => (clearTimeout(timer), this.#waiters.delete(check), resolve())
      const timer = setTimeout(done, ms)
      this.#waiters.add(check)
      check()
    })
  }

  /**
   * Invariant 7, logout wins: throws `no_session` when this tab ended its session after
   * `epochAtStart`, while a logout is under way, or when the shared counters show a logout (in any
   * tab) newer than `basis`, the session the work started from. Every late result passes here.
   */
  assertStillSignedIn(epochAtStart: number, counters?: SharedCounters, basis = this.#session) {
    if (epochAtStart != this.#localEpoch || this.#logoutsInProgress || (counters && basis && counters.epoch > basis.logoutEpoch))
      throw new NoSessionError('signed out')
  }

  /** Invariant 6: every token value this tab holds or held (within {@link REMEMBERED}) becomes `[redacted]`. */
  redact(text: string) {
    return this.#known.reduce<string>((t, v) => (v ? t.split(v).join('[redacted]') : t), text)
  }

  /** The server refused the session: it ends here and, like a logout, in every tab. */
  expire(error: LatchkeyError) {
    if (!this.#session) return
    this.#end()
    // A new epoch ends every session of this one in the other tabs.
    this.#context.tabs.post({ type: 'logout', epoch: ++this.#logoutEpoch, expired: true })
    this.#context.emit('session-expired', { error })
    void this.#context.vault?.forget()
  }

  /** A refresh token read from the vault: a session without an access token, until a refresh. */
  adoptStored(stored: StoredSession) {
    this.#remember(stored)
    this.#session = stored
  }

  /**
   * Installs new tokens while holding the refresh lock: counters, persistence, other tabs,
   * listeners. `basis` is the session the grant started from (its refresh token was presented);
   * `origin`, the `resources` origin the new access token is for.
   */
  async commit(fresh: TokenSet, reason: TokensReason, counters: SharedCounters, epoch: number, epochAtStart: number, basis?: Session, origin?: string) {
    const { tabs, vault } = this.#context
    const { rt, ...token } = fresh
    // One refresh token serves every resource: a grant for one keeps the other tokens.
    const tokens = origin ? { ...basis!, rt: rt ?? basis?.rt, res: { ...basis?.res, [origin]: token } } : { ...fresh, res: basis?.res }
    const s: Session = { ...tokens, generation: Math.max(counters.gen, this.#session?.generation ?? 0) + 1, logoutEpoch: epoch }
    // A logout, here or in another tab, may land before or during these awaits: it wins, and a
    // refresh token issued meanwhile is revoked rather than left alive.
    const check = () => {
      try {
        this.assertStillSignedIn(epochAtStart, counters, basis)
      } catch (e) {
        if (fresh.rt != basis?.rt) void this.#revoke(fresh.rt)
        throw e
      }
    }
    check()
    await tabs.write({ gen: s.generation, epoch })
    await vault?.save(s, fresh.type)
    await this.#announce(s)
    check()
    return this.#adopt(s, reason, origin)
  }

  /** Tokens from a login or `setTokens`: a new session, whatever the other tabs hold; `origin`, whose token it is. */
  install(fresh: TokenSet, reason: 'login' | 'set', epochAtStart = this.#localEpoch, origin?: string) {
    const { tabs } = this.#context
    return tabs.lock('refresh', async () => {
      const c = await tabs.read()
      await this.commit(fresh, reason, c, Math.max(c.epoch, this.#logoutEpoch), epochAtStart, undefined, origin)
    })
  }

  onTabMessage = async (m: TabMessage) => {
    const { dpop, emit } = this.#context
    const session = this.#session
    if (m.type == 'hello') {
      if (holdsAccessToken(session)) await this.#announce(session!)
    } else if (m.type == 'logout') {
      this.#logoutEpoch = Math.max(this.#logoutEpoch, m.epoch)
      if (session && session.logoutEpoch < m.epoch) {
        // Invariant 7: a refresh this tab finished before the logout reached it holds a refresh token
        // newer than the one the logging-out tab revokes: revoked here, or it stays alive at the server.
        if (session.generation > m.gen!) void this.#revoke(session.rt)
        this.#end()
        void dpop?.reset()
        if (m.expired) emit('session-expired', { error: new SessionExpiredError('session ended') })
        else emit('logout', { reason: 'tab' })
      }
    } else {
      // A session read from storage (no access token) gives way to the same generation from a tab.
      const stale = (s = this.#session) =>
        m.epoch < this.#logoutEpoch || (!!s && (m.gen < s.generation || (m.gen == s.generation && holdsAccessToken(s))))
      if (stale()) return
      // Tokens bound to another key (a tab without a shared key store) are useless here.
      if (m.jkt && ((await dpop?.jkt()) != m.jkt || stale())) return
      this.#adopt({ ...m.session, generation: m.gen, logoutEpoch: m.epoch }, 'tab')
    }
  }

  /** Asks the other tabs for their session; resolves whether one arrived. */
  async askOtherTabs() {
    const { tabs } = this.#context
    if (!(await tabs.peers())) return false
    tabs.post({ type: 'hello' })
    await this.waitFor(() => !!this.#session, 1000)
    return !!this.#session
  }

  logout = async () => {
    const { tabs, emit, vault, dpop } = this.#context
    const s = this.#session
    this.#logoutsInProgress++
    this.#end()
    // Before anything that may never finish (the lock, the revocation request, a closing tab).
    await vault?.forget()
    tabs.post({ type: 'logout', epoch: ++this.#logoutEpoch, gen: s?.generation ?? 0 })
    emit('logout', { reason: 'logout' })
    try {
      // Holding the lock means no refresh is in flight in any tab; the new epoch, written under it,
      // kills every session that predates this logout, also in tabs that missed the message.
      await tabs.lock('refresh', async () => {
        const c = await tabs.read()
        this.#logoutEpoch = Math.max(c.epoch + 1, this.#logoutEpoch)
        await tabs.write({ ...c, epoch: this.#logoutEpoch })
        await this.#revoke(s?.rt)
        await vault?.forget()
      })
      await dpop?.reset(true)
    } finally {
      // What started while this logout ran is dropped too.
      this.#logoutsInProgress--
      this.#localEpoch++
    }
  }

  #end() {
    this.#session = undefined
    this.#localEpoch++
    this.#context.tabs.hold(false)
    this.#wake()
  }

  #wake() {
    this.#waiters.forEach((w) => w())
  }

  #remember(s: SharedSession) {
    this.#known = [s.rt, s.at, ...Object.values(s.res ?? {}).map((t) => t.at), ...this.#known].slice(0, REMEMBERED)
  }

  #adopt(s: Session, reason: TokensReason, origin = this.#context.mainOrigin) {
    this.#session = s
    this.#remember(s)
    this.#logoutEpoch = Math.max(this.#logoutEpoch, s.logoutEpoch)
    this.#context.tabs.hold(true)
    // A login's token that is no API's own (from setTokens, or from another tab) is the session's.
    const token = tokenFor(s, origin) ?? s
    this.#context.emit('tokens', { ...tokenInfo(token, s.generation, token == s ? undefined : origin), reason })
    this.#wake()
    return s
  }

  async #announce({ generation, logoutEpoch, ...session }: Session) {
    this.#context.tabs.post({ type: 'tokens', epoch: logoutEpoch, gen: generation, jkt: await this.#context.dpop?.jkt(), session })
  }
}
