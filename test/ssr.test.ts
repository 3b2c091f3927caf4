// Server rendering: the core and both bindings load and render in Node with no browser global
// defined (no window, document, sessionStorage, indexedDB, location, navigator.locks), and render
// the signed-out markup.
import { createElement } from 'react'
import { renderToString as renderReact } from 'react-dom/server'
import { createSSRApp, defineComponent, h } from 'vue'
import { renderToString as renderVue } from '@vue/server-renderer'
import { beforeAll, describe, expect, it } from 'vitest'

const BROWSER_GLOBALS = ['window', 'document', 'sessionStorage', 'localStorage', 'indexedDB', 'location', 'addEventListener']

// The setup file gives the unit tests a sessionStorage stand-in: this file runs without it, and
// imports latchkey only once no browser global is left.
delete (globalThis as { sessionStorage?: unknown }).sessionStorage
let createTokenManager: typeof import('../src/index.js').createTokenManager
let react: typeof import('../src/react.js')
let vue: typeof import('../src/vue.js')
beforeAll(async () => {
  for (const name of BROWSER_GLOBALS) expect(name in globalThis, name).toBe(false)
  expect((globalThis as { navigator?: { locks?: unknown } }).navigator?.locks).toBeUndefined()
  ;({ createTokenManager } = await import('../src/index.js'))
  react = await import('../src/react.js')
  vue = await import('../src/vue.js')
})

describe('server rendering in Node', () => {

  it('createTokenManager throws nothing; status() is undefined; subscribe tells undefined', async () => {
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: ['https://api.example'] })
    expect(tm.status()).toBeUndefined()
    const seen: unknown[] = []
    tm.subscribe((s) => seen.push(s))()
    expect(seen).toEqual([undefined])
    // Nothing of the manager keeps a server process alive.
    tm.dispose()
  })

  const Session = () => {
    const session = react.useSession()
    const billing = react.useSession('https://billing.example')
    return createElement('p', { id: 'session' }, session ? `Signed in (${session.tokenType})` : 'Signed out', billing ? ' + billing' : '')
  }

  it('react-dom/server renders the signed-out markup, with no provider and with a manager created on the server', () => {
    expect(renderReact(createElement(Session))).toBe('<p id="session">Signed out</p>')
    expect(renderReact(createElement(react.LatchkeyProvider, { tm: undefined }, createElement(Session)))).toBe('<p id="session">Signed out</p>')
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: ['https://api.example'] })
    const guarded = createElement(react.RequireSession, { signIn: () => expect.fail('no sign-in on a server'), fallback: 'Signing in' }, createElement(Session))
    expect(renderReact(createElement(react.LatchkeyProvider, { tm }, createElement(Session), guarded))).toBe('<p id="session">Signed out</p>Signing in')
    tm.dispose()
  })

  const VueSession = defineComponent({
    setup() {
      const session = vue.useSession()
      return () => h('p', { id: 'session' }, session.value ? `Signed in (${session.value.tokenType})` : 'Signed out')
    },
  })

  it('@vue/server-renderer renders the signed-out markup, without the plugin and with it', async () => {
    expect(await renderVue(createSSRApp(VueSession))).toBe('<p id="session">Signed out</p>')
    const tm = createTokenManager({ clientId: 'spa', tokenEndpoint: 'https://as.example/token', allowedOrigins: ['https://api.example'] })
    expect(await renderVue(createSSRApp(VueSession).use(vue.latchkeyPlugin(tm)))).toBe('<p id="session">Signed out</p>')
    tm.dispose()
  })
})
