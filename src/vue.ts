// Vue bindings: the session as a readonly ref, on one `subscribe` and the stable `status()` snapshot.
import { inject, onScopeDispose, shallowReadonly, shallowRef, type App, type InjectionKey, type Ref } from 'vue'
import type { SessionInfo, TokenManager } from './index.js'

const key: InjectionKey<TokenManager> = /* @__PURE__ */ Symbol('latchkey')

/**
 * The plugin that gives every component the token manager. Install it in the browser only (the
 * manager holds the session in memory): without it, as on a server, `useSession()` is `undefined`.
 *
 * @example
 * ```ts
 * createApp(App).use(latchkeyPlugin(tm)).mount('#app')
 * ```
 */
export function latchkeyPlugin(tm: TokenManager): { install(app: App): void } {
  return { install: (app) => void app.provide(key, tm) }
}

/** The token manager given by {@link latchkeyPlugin}; `undefined` where none was installed (a server). */
export function useTokenManager(): TokenManager | undefined {
  return inject(key, undefined)
}

/**
 * The session (`tm.status(origin)`) as a readonly ref that follows every change of it (a login, a
 * refresh, another tab, a logout) until the component (or effect scope) ends. `undefined` when
 * signed out, and where no manager is installed (a server).
 *
 * @example
 * ```ts
 * const session = useSession()
 * const signedIn = computed(() => !!session.value)
 * ```
 */
export function useSession(origin?: string): Readonly<Ref<SessionInfo | undefined>> {
  const tm = useTokenManager()
  const session = shallowRef<SessionInfo>()
  if (tm) onScopeDispose(tm.subscribe(() => (session.value = tm.status(origin))))
  return shallowReadonly(session)
}

/**
 * A vue-router navigation guard for routes that need a session: lets the navigation through when
 * signed in; otherwise cancels it and calls `signIn` with the route asked for (to come back to it
 * after the login). Add it as the route's `beforeEnter`, or in `router.beforeEach` for routes with a
 * `meta` flag, after start-up (`handleRedirect` or `restore`) has settled.
 *
 * @example
 * ```ts
 * { path: '/billing', component: Billing, beforeEnter: requireSession(tm, (to) => signIn(to.fullPath)) }
 * ```
 */
export function requireSession<Route>(tm: TokenManager, signIn: (to: Route) => unknown): (to: Route) => boolean {
  return (to) => !!tm.status() || (signIn(to), false)
}
