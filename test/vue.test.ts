// latchkey/vue's logic in Node (Vue's reactivity needs no DOM): useSession follows the session and
// lets go of it when its scope ends; the route guard lets a navigation through only with a session.
import { createApp, effectScope, type Ref } from 'vue'
import { describe, expect, it, vi } from 'vitest'
import type { SessionInfo } from '../src/index.js'
import { latchkeyPlugin, requireSession, useSession, useTokenManager } from '../src/vue.js'
import { manager, setup } from './support/harness.js'

describe('latchkey/vue', () => {
  it('useSession is a readonly ref that follows login, refresh and logout, until its scope ends', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const app = createApp({}).use(latchkeyPlugin(tm))
    const scope = effectScope()
    const session = scope.run(() => app.runWithContext(() => useSession()))! as Ref<SessionInfo | undefined>
    expect(app.runWithContext(() => useTokenManager())).toBe(tm)
    expect(session.value).toBeUndefined()
    await tm.setTokens(as.seed())
    expect(session.value).toBe(tm.status())
    await tm.refresh()
    expect(session.value?.generation).toBe(2)
    // Readonly: a component cannot sign itself in or out by writing the ref (Vue warns).
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    session.value = undefined
    expect(session.value).toBe(tm.status())
    expect(warn).toHaveBeenCalledOnce()
    await tm.logout()
    expect(session.value).toBeUndefined()
    scope.stop()
    await tm.setTokens(as.seed())
    expect(session.value).toBeUndefined()
  })

  it('without the plugin (a server) useSession is undefined and useTokenManager is undefined', () => {
    const app = createApp({})
    const scope = effectScope()
    expect(scope.run(() => app.runWithContext(() => useSession()))!.value).toBeUndefined()
    expect(app.runWithContext(() => useTokenManager())).toBeUndefined()
    scope.stop()
  })

  it('requireSession cancels a navigation and signs in when signed out, and lets it through when signed in', async () => {
    const { as, api } = await setup()
    const tm = manager(as, [api.origin])
    const asked: string[] = []
    const guard = requireSession(tm, (to: { fullPath: string }) => asked.push(to.fullPath))
    expect(guard({ fullPath: '/billing' })).toBe(false)
    expect(asked).toEqual(['/billing'])
    await tm.setTokens(as.seed())
    expect(guard({ fullPath: '/billing' })).toBe(true)
    expect(asked).toEqual(['/billing'])
  })
})
