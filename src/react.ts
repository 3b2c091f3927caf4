// React bindings: the session as React state, on one `subscribe` and the stable `status()` snapshot.
import { createContext, createElement, useContext, useEffect, useRef, useSyncExternalStore, type ReactNode } from 'react'
import type { SessionInfo, TokenManager } from './index.js'

const Manager = /* @__PURE__ */ createContext<TokenManager | undefined>(undefined)

const noSubscription = () => () => {}

/**
 * Gives the components below it the token manager. Create the manager in the browser only (it holds
 * the session in memory); while rendering on a server, pass `undefined`: every `useSession()` is
 * then `undefined`, the signed-out markup.
 *
 * @example
 * ```tsx
 * createRoot(root).render(<StrictMode><LatchkeyProvider tm={tm}><App /></LatchkeyProvider></StrictMode>)
 * ```
 */
export function LatchkeyProvider(props: { tm: TokenManager | undefined; children?: ReactNode }): ReactNode {
  return createElement(Manager.Provider, { value: props.tm }, props.children)
}

/** The token manager of the nearest {@link LatchkeyProvider}; `undefined` while rendering on a server. */
export function useTokenManager(): TokenManager | undefined {
  return useContext(Manager)
}

/**
 * The session (`tm.status(origin)`): re-renders on every change of it (a login, a refresh, another
 * tab, a logout) and on nothing else. `undefined` when signed out, and while rendering on a server.
 *
 * @example
 * ```tsx
 * const session = useSession()
 * return session ? <Account /> : <SignIn />
 * ```
 */
export function useSession(origin?: string): SessionInfo | undefined {
  const tm = useTokenManager()
  return useSyncExternalStore(
    tm ? tm.subscribe : noSubscription,
    () => tm?.status(origin),
    () => undefined,
  )
}

/**
 * Renders `children` when signed in; otherwise renders `fallback` and calls `signIn` once (a
 * redirect to the authorization server, say) until a session arrives. Render it after start-up
 * (`handleRedirect` or `restore`) has settled, or it signs in before a session could be found.
 *
 * @example
 * ```tsx
 * <RequireSession signIn={() => signIn(location.pathname)} fallback={<p>Signing in…</p>}><Billing /></RequireSession>
 * ```
 */
export function RequireSession(props: { signIn: () => unknown; fallback?: ReactNode; children?: ReactNode }): ReactNode {
  const session = useSession()
  // StrictMode runs effects twice: one sign-in per absence of a session, not two.
  const started = useRef(false)
  useEffect(() => {
    if (session) started.current = false
    else if (!started.current) (started.current = true), props.signIn()
  }, [session])
  return session ? props.children : props.fallback
}
