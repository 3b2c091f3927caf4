import { browserCrossTab, localCrossTab, type CrossTab, type SharedCounters, type SharedSession } from './crosstab.js'
import { createDPoP } from './dpop.js'
import {
  DPoPProofError,
  isLatchkeyError,
  NetworkError,
  NoSessionError,
  OAuthError,
  ResponseError,
  SessionExpiredError,
  TimeoutError,
  type LatchkeyError,
} from './errors.js'
import { indexedDBKeyStore, memoryKeyStore, type KeyStore } from './keystore.js'
import type {
  RefreshReason,
  SessionInfo,
  TokenManager,
  TokenManagerEvents,
  TokenManagerOptions,
  RefreshContext,
} from './types.js'
import { authorizationRequest, redirectResult } from './login.js'
import { checkURL, encoder, invalid, isObject, now, sha256 } from './util.js'

interface Session extends SharedSession {
  gen: number
  epoch: number
  ath?: Promise<string>
}

type Fresh = Omit<Session, 'gen' | 'epoch'>

const MAX_LIFETIME = 366 * 86400

const here = () => globalThis.location?.href

/** The session is over (as opposed to a failure that may pass). */
const ended = (e: unknown) => /^(session_expired|no_session)$/.test((e as LatchkeyError | undefined)?.code!)

const discard = (res: Response) => void res.body?.cancel().catch(() => {})

const offline = () => (globalThis.navigator as Navigator | undefined)?.onLine === false

/**
 * Creates a token manager: tokens in memory, attached only to `allowedOrigins`, DPoP-bound by
 * default, refreshed before expiry and on 401 exactly once however many requests (and tabs) ask.
 *
 * @example
 * ```ts
 * const tm = createTokenManager({
 *   clientId: 'spa',
 *   tokenEndpoint: 'https://as.example/token',
 *   revocationEndpoint: 'https://as.example/revoke',
 *   allowedOrigins: ['https://api.example'],
 * })
 * const res = await tm.fetch('https://api.example/me')
 * ```
 * @see RFC 6749, RFC 6750, RFC 7009, RFC 9449, RFC 9700
 */
export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const { clientId, tokenEndpoint, revocationEndpoint, refresh: custom, allowedOrigins } = options
  if (!clientId || typeof clientId != 'string') invalid('clientId')
  const origins = new Set(
    (Array.isArray(allowedOrigins) ? allowedOrigins : invalid('allowedOrigins')).map((o, i) => {
      const url = checkURL(o, `allowedOrigins[${i}]`)
      return url.href == url.origin + '/' ? url.origin : invalid(`allowedOrigins[${i}]`)
    }),
  )
  if (tokenEndpoint || !custom) checkURL(tokenEndpoint, 'tokenEndpoint')
  if (revocationEndpoint) checkURL(revocationEndpoint, 'revocationEndpoint')
  const endpoint = typeof custom == 'string' ? { url: custom } : typeof custom == 'object' ? custom : undefined
  const dpopOption = options.dpop ?? true
  const persist = !!options.persist
  if (persist && !dpopOption) invalid('persist', 'needs dpop')
  const leeway = (options.refreshLeewaySeconds ?? 30) * 1000
  const timeout = (options.timeoutSeconds ?? 10) * 1000
  if (!(leeway >= 0 && timeout > 0)) invalid('refreshLeewaySeconds or timeoutSeconds')

  const send: typeof fetch = (input, init) => (options.fetch ?? globalThis.fetch)(input, init)
  const id = clientId + '@' + (tokenEndpoint ?? endpoint?.url ?? '')
  const tabs: CrossTab =
    typeof options.crossTab == 'object'
      ? options.crossTab
      : (options.crossTab !== false && browserCrossTab(id)) || localCrossTab()
  const keyStore: KeyStore =
    typeof dpopOption == 'object' ? dpopOption.keyStore : globalThis.indexedDB ? indexedDBKeyStore() : memoryKeyStore()

  const listeners = new Map<string, Set<(state: never) => void>>()
  const emit = <E extends keyof TokenManagerEvents>(type: E, state: TokenManagerEvents[E]) =>
    listeners.get(type)?.forEach((fn) => {
      try {
        ;(fn as (s: TokenManagerEvents[E]) => void)(state)
      } catch (e) {
        setTimeout(() => {
          throw e
        })
      }
    })
  const warn = (code: string, message = code.replace(/_/g, ' ')) => emit('warning', { code, message })
  const dpop = dpopOption ? createDPoP(keyStore, 'dpop:' + id, (fn) => tabs.lock('key', fn), warn) : undefined

  let session: Session | undefined
  // `era` advances whenever this tab ends a session: a result that started in an older era is dropped.
  let era = 0
  // The highest logout epoch seen: sessions from older epochs are dead in every tab.
  let floor = 0
  let pending: Promise<Session> | undefined
  // Logouts under way: no session may be installed until they are over.
  let leaving = 0
  const waiters = new Set<() => void>()
  const wake = () => waiters.forEach((w) => w())

  const info = (s: Session): SessionInfo => ({ expiresAt: s.exp, tokenType: s.type, scope: s.scope, generation: s.gen })
  const due = (s: Session, early = Math.min(leeway, (s.life ?? 0) / 4)) => !s.at || (!!s.exp && now() >= s.exp - early)
  const expired = (s: Session) => due(s, 0)
  // During a refresh the refresh token presented is the session's.
  const scrub = (text: string) => [session?.at, session?.rt].reduce<string>((t, v) => (v ? t.split(v).join('[redacted]') : t), text)

  const waitFor = (ok: () => boolean, ms: number) =>
    new Promise<void>((resolve) => {
      const check = () => ok() && done()
      const done = () => (clearTimeout(timer), waiters.delete(check), resolve())
      const timer = setTimeout(done, ms)
      waiters.add(check)
      check()
    })

  const end = () => {
    session = pending = undefined
    era++
    tabs.hold(false)
    wake()
  }

  const expire = (error: LatchkeyError) => {
    if (!session) return
    end()
    // Like a logout for the other tabs: a new epoch ends every session of this one.
    tabs.post({ type: 'logout', epoch: ++floor, expired: true })
    emit('session-expired', { error })
    if (persist) void forget()
  }

  /** Runs `fn` with a timeout; failures become typed errors. */
  const timed = async <T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const ctl = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      return await Promise.race([
        fn(ctl.signal),
        new Promise<never>((_, reject) => (timer = setTimeout(() => (ctl.abort(), reject(new TimeoutError(what + ' timed out'))), timeout))),
      ])
    } catch (e) {
      // No cause: an app's refresh function may fail with an error quoting a token (V8's JSON
      // errors quote the body); a fetch failure says no more than its message here does.
      throw isLatchkeyError(e) ? e : new (e instanceof SyntaxError ? ResponseError : NetworkError)(what + ' failed')
    } finally {
      clearTimeout(timer)
    }
  }

  /** POSTs a form; reads the whole body within the timeout. */
  const post = (url: string, form: Record<string, string>, init: RequestInit = {}) =>
    timed('POST ' + url, async (signal) => {
      const res = await send(url, {
        method: 'POST',
        ...init,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...init.headers },
        body: new URLSearchParams(form),
        signal,
      })
      const text = await res.text()
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        // The parser's message quotes the input: never keep it.
      }
      return { res, json }
    })

  const failure = (res: Response, json: unknown, where: string, refreshing: boolean) => {
    const o = isObject(json) ? json : {}
    const text = (v: unknown) => (typeof v == 'string' ? scrub(v) : undefined)
    const error = text(o.error)
    const description = text(o.error_description)
    const message = `${where}: ${error ?? 'HTTP ' + res.status} ${description ?? ''}`.trim()
    const Kind =
      refreshing && (error == 'invalid_grant' || (endpoint && res.status == 401 && !/dpop/.test(error!)))
        ? SessionExpiredError
        : error == 'invalid_dpop_proof'
          ? DPoPProofError
          : error
            ? OAuthError
            : ResponseError
    return new Kind(message, { response: res, error, description })
  }

  /** A token request with a DPoP proof; retried once when the server asks for a (new) nonce. */
  const grant = async (url: string, form: Record<string, string>, init: RequestInit, refreshing: boolean) => {
    for (let retried = false; ; retried = true) {
      const headers: Record<string, string> = { ...(init.headers as Record<string, string>) }
      if (dpop) headers.dpop = await dpop.proof('POST', url)
      const { res, json } = await post(url, form, { ...init, headers })
      // Requests in flight when the nonce changed all carry the old one: each may retry once.
      dpop?.nonce(url, res)
      if (res.ok) return { res, json }
      if (!retried && dpop && res.headers.has('dpop-nonce') && (json as { error?: unknown })?.error == 'use_dpop_nonce') continue
      throw failure(res, json, 'POST ' + url, refreshing)
    }
  }

  /** Validates a token response strictly (RFC 6749 §5.1); the lifetime counts from its arrival. */
  const parse = (json: unknown, where: string, prev?: Session, res?: Response): Fresh => {
    const o = isObject(json) ? json : {}
    const { access_token: at, token_type: tt, expires_in: ei, refresh_token: rt, scope } = o
    const t = typeof tt == 'string' && tt.toLowerCase()
    // A DPoP-bound token is useless without DPoP, and is never downgraded to Bearer.
    const type = t == 'dpop' && dpop ? 'DPoP' : t == 'bearer' ? 'Bearer' : undefined
    const wrong =
      o != json
        ? 'body'
        : typeof at != 'string' || !/^[\x20-\x7e]+$/.test(at)
          ? 'access_token'
          : !type
            ? 'token_type'
            : ei !== undefined && !(typeof ei == 'number' && ei > 0 && ei <= MAX_LIFETIME)
              ? 'expires_in'
              : rt !== undefined && (typeof rt != 'string' || !rt)
                ? 'refresh_token'
                : scope !== undefined && typeof scope != 'string' && 'scope'
    if (wrong) throw new ResponseError(`${where}: invalid ${wrong}`, { response: res })
    return {
      at: at as string,
      type: type!,
      exp: ei ? now() + (ei as number) * 1000 : undefined,
      life: ei ? (ei as number) * 1000 : undefined,
      rt: (rt as string | undefined) ?? prev?.rt,
      scope: (scope as string | undefined) ?? prev?.scope,
    }
  }

  const announce = async ({ gen, epoch, ath, ...session }: Session) =>
    tabs.post({ type: 'tokens', epoch, gen, jkt: await dpop?.jkt(), session })

  /** Installs a new session while holding the refresh lock: counters, persistence, other tabs, listeners. */
  const commit = async (fresh: Fresh, reason: TokenManagerEvents['tokens']['reason'], c: SharedCounters, epoch: number, e0: number) => {
    const s: Session = { ...fresh, gen: Math.max(c.gen, session?.gen ?? 0) + 1, epoch }
    // A logout, here or in another tab, may land before or during these awaits: it wins.
    const check = () => {
      if (e0 != era || leaving) throw (void revoke(fresh.rt), new NoSessionError('signed out'))
    }
    check()
    await tabs.write({ gen: s.gen, epoch })
    if (persist) await save(s)
    await announce(s)
    check()
    return adopt(s, reason)
  }

  const adopt = (s: Session, reason: TokenManagerEvents['tokens']['reason']) => {
    session = s
    floor = Math.max(floor, s.epoch)
    tabs.hold(true)
    emit('tokens', { ...info(s), reason })
    wake()
    return s
  }

  const install = (fresh: Fresh, reason: 'login' | 'set', e0 = era) =>
    tabs.lock('refresh', async () => {
      const c = await tabs.read()
      await commit(fresh, reason, c, Math.max(c.epoch, floor), e0)
    })

  // Reload survival (opt-in): the DPoP-bound refresh token, AES-GCM encrypted under a non-extractable
  // key. Every save makes a new key, so the zero IV never meets the same key twice.
  const gcm = { name: 'AES-GCM', iv: new Uint8Array(12), additionalData: encoder.encode(id) }
  const save = async (s: Session) => {
    try {
      if (!s.rt || s.type != 'DPoP') return await forget()
      const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
      const data = await crypto.subtle.encrypt(gcm, key, encoder.encode(s.rt))
      await keyStore.set('rt:' + id, { key, data, gen: s.gen, epoch: s.epoch })
    } catch {
      warn('session_not_persisted')
    }
  }
  const load = async (): Promise<Session | undefined> => {
    try {
      const b = (await keyStore.get('rt:' + id)) as { key: CryptoKey; data: ArrayBuffer; gen: number; epoch: number }
      if (b) return { type: 'DPoP', rt: new TextDecoder().decode(await crypto.subtle.decrypt(gcm, b.key, b.data)), gen: b.gen, epoch: b.epoch }
    } catch {
      await forget()
    }
  }
  const forget = () => keyStore.delete('rt:' + id).catch(() => {})

  const revoke = async (token: string | undefined) => {
    if (
      token &&
      revocationEndpoint &&
      !(await post(revocationEndpoint, { token, token_type_hint: 'refresh_token', client_id: clientId }).then(({ res }) => res.ok, () => 0))
    )
      warn('revocation_failed')
  }

  const run = (reason: RefreshReason): Promise<Session> => {
    const e0 = era
    const g0 = session?.gen ?? 0
    const at0 = session?.at
    const dropped = () => new NoSessionError('signed out')
    return tabs.lock('refresh', async () => {
      let c = await tabs.read()
      // Also a logout in another tab whose message has not arrived yet: drop this, the message follows.
      if (e0 != era || leaving || (session && c.epoch > session.epoch)) throw dropped()
      // The lock can be granted before the last holder's tokens reach this tab: wait for that generation.
      if (c.gen > (session?.gen ?? 0) && (session || (await tabs.peers()))) await waitFor(() => (session?.gen ?? 0) >= c.gen || e0 != era, 1000)
      if (e0 != era) throw dropped()
      if (persist && c.gen > (session?.gen ?? 0)) {
        const stored = await load()
        if (stored && stored.gen >= c.gen) session = stored
      }
      // A session read from storage has no access token: a tab holding this generation in memory hands it over.
      if (session && !session.at && session.gen >= c.gen && (await tabs.peers())) {
        tabs.post({ type: 'hello' })
        await waitFor(() => !!session?.at || e0 != era, 1000)
        if (e0 != era) throw dropped()
      }
      const s = session
      if (s && (s.gen > g0 || s.at != at0) && !due(s)) return s
      if (!s?.rt && !custom) throw new NoSessionError('not signed in')
      const rt = s?.rt
      let fresh: Fresh
      try {
        let json: unknown
        let res: Response | undefined
        let where = 'refresh'
        if (typeof custom == 'function') {
          const dpopProof = async (m: string, u: string) => dpop?.proof(m, u)
          json = await timed(where, (signal) => custom({ refreshToken: rt, signal, dpopProof } as RefreshContext))
        } else {
          // The token endpoint, or the app's own endpoint with its credentials and headers.
          const url = endpoint ? new URL(endpoint.url, here()).href : tokenEndpoint!
          const form = { grant_type: 'refresh_token', client_id: clientId, ...(rt ? { refresh_token: rt } : {}) }
          ;({ json, res } = await grant(url, form, { ...endpoint }, true))
          where = 'POST ' + url
        }
        fresh = parse(json, where, s, res)
      } catch (e) {
        const error = e as LatchkeyError
        if (e0 != era) throw dropped()
        if (error.code == 'session_expired') expire(error)
        else emit('refresh-error', { reason, error })
        throw error
      }
      c = await tabs.read()
      if (e0 != era || (s && c.epoch > s.epoch)) {
        if (fresh.rt != rt) void revoke(fresh.rt)
        throw dropped()
      }
      const next = await commit(fresh, 'refresh', c, s?.epoch ?? Math.max(c.epoch, floor), e0)
      emit('refresh', { ...info(next), reason })
      return next
    })
  }

  const refresh = (reason: RefreshReason) => {
    if (!pending) {
      const p = run(reason)
      const clear = () => {
        if (pending == p) pending = undefined
      }
      p.then(clear, clear)
      pending = p
    }
    return pending
  }

  /** The session to use now: refreshed first when due; a still-valid token survives a failed early refresh. */
  const current = async (): Promise<Session> => {
    const s = session
    if (s && !due(s) && !pending) return s
    if (pending || ((s?.rt || custom) && !offline())) {
      try {
        return await refresh('expiry')
      } catch (e) {
        if (s && s == session && !expired(s) && !ended(e)) return s
        throw e
      }
    }
    if (s && !expired(s)) return s
    if (!s) throw new NoSessionError('not signed in')
    if (s.rt || custom) throw new NetworkError('offline')
    const error = new SessionExpiredError('access token expired')
    expire(error)
    throw error
  }

  const ask = async () => {
    if (!(await tabs.peers())) return false
    tabs.post({ type: 'hello' })
    await waitFor(() => !!session, 1000)
    return !!session
  }

  const resume = () => {
    const s = session
    if (s && due(s) && !offline() && globalThis.document?.visibilityState != 'hidden')
      refresh('resume').catch(() => {})
  }
  globalThis.addEventListener?.('online', resume)
  globalThis.document?.addEventListener('visibilitychange', resume)

  tabs.listen(async (m) => {
    if (m.type == 'hello') {
      if (session?.at) await announce(session)
    } else if (m.type == 'logout') {
      floor = Math.max(floor, m.epoch)
      if (session && session.epoch < m.epoch) {
        end()
        void dpop?.reset()
        if (m.expired) emit('session-expired', { error: new SessionExpiredError('session ended') })
        else emit('logout', { reason: 'tab' })
      }
    } else {
      // A session read from storage (no access token) gives way to the same generation from a tab.
      const stale = () => m.epoch < floor || (!!session && (m.gen < session.gen || (m.gen == session.gen && !!session.at)))
      if (stale()) return
      // Tokens bound to another key (a tab without a shared key store) are useless here.
      if (m.jkt && ((await dpop?.jkt()) != m.jkt || stale())) return
      adopt({ ...m.session, gen: m.gen, epoch: m.epoch }, 'tab')
    }
  })

  const exchangeCode: TokenManager['exchangeCode'] = async ({ code, codeVerifier, redirectUri }) => {
    const url = tokenEndpoint ?? invalid('tokenEndpoint')
    // A logout that starts before this login is installed wins over it: its proof used the old key.
    const e0 = era
    const form = { grant_type: 'authorization_code', code, code_verifier: codeVerifier, redirect_uri: redirectUri, client_id: clientId }
    const { res, json } = await grant(url, form, {}, false)
    await install(parse(json, 'POST ' + tokenEndpoint, undefined, res), 'login', e0)
  }

  return {
    async restore() {
      if (session || (await ask())) return true
      const stored = persist ? await load() : undefined
      // Another tab may have restored or signed in while the stored token was being read: adopt, don't refresh again.
      if (session) return true
      if (!stored && !custom) return false
      session ??= stored
      try {
        await refresh('restore')
        return true
      } catch (e) {
        if (ended(e)) return false
        throw e
      }
    },

    authorizationUrl: async (parameters) => authorizationRequest(clientId, parameters, await dpop?.jkt()),

    handleRedirect: async (input) => exchangeCode(redirectResult(input)),

    async setTokens(response) {
      await install(parse(response, 'setTokens', undefined), 'set')
    },

    exchangeCode,

    dpopThumbprint: async () => (dpop ? dpop.jkt() : invalid('dpop', 'off')),

    async fetch(input, init) {
      // A Request is built only when the caller passed one: building one per call costs more than the rest.
      const request = input instanceof Request ? input : undefined
      const url = new URL(request ? request.url : String(input), here())
      if (!origins.has(url.origin)) return send(input, init)
      const base = request && init ? new Request(request, init) : request
      const replayable = !(typeof ReadableStream == 'function' && init?.body instanceof ReadableStream)
      // Sent upper-case, as the htm claim says (fetch itself would send a lower-case `patch` as is).
      const method = (base?.method ?? init?.method ?? 'GET').toUpperCase()
      let s = await current()
      let refreshed = false
      let nonced = false
      for (;;) {
        const headers = new Headers(base ? base.headers : init?.headers)
        headers.set('authorization', s.type + ' ' + s.at)
        if (s.type == 'DPoP') headers.set('dpop', await dpop!.proof(method, url, await (s.ath ??= sha256(s.at!))))
        const res = await (base ? send(new Request(base.clone(), { method, headers })) : send(url, { ...init, method, headers }))
        dpop?.nonce(url, res)
        if (res.status != 401 || !replayable) return res
        const challenge = res.headers.get('www-authenticate') ?? ''
        if (!nonced && s.type == 'DPoP' && res.headers.has('dpop-nonce') && /\buse_dpop_nonce\b/.test(challenge)) {
          nonced = true
        } else if (!refreshed && (!challenge || /\binvalid_token\b/.test(challenge)) && (s.rt || custom)) {
          refreshed = true
          discard(res)
          s = s.gen == session?.gen ? await refresh('unauthorized') : await current()
          continue
        } else return res
        discard(res)
      }
    },

    getAccessToken: async () => (await current()).at!,

    refresh: async () => void (await refresh('manual')),

    status: () => (session?.at ? info(session) : undefined),

    on(type, listener) {
      let set = listeners.get(type)
      if (!set) listeners.set(type, (set = new Set()))
      set.add(listener)
      return () => void set.delete(listener)
    },

    async logout() {
      const s = session
      leaving++
      end()
      // Before anything that may never finish (the lock, the revocation request, a closing tab).
      if (persist) await forget()
      tabs.post({ type: 'logout', epoch: ++floor })
      emit('logout', { reason: 'logout' })
      try {
        // Holding the lock means no refresh is in flight in any tab; the new epoch, written under it,
        // kills every session that predates this logout, also in tabs that missed the message.
        await tabs.lock('refresh', async () => {
          const c = await tabs.read()
          floor = Math.max(c.epoch + 1, floor)
          await tabs.write({ gen: c.gen, epoch: floor })
          await revoke(s?.rt)
          if (persist) await forget()
        })
        await dpop?.reset(true)
      } finally {
        // What started while this logout ran is dropped too.
        leaving--
        era++
      }
    },
  }
}
