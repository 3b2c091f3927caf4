// The README's Vue example as an app would write it (README.md holds the same lines; test/readme.test.ts
// checks that they match). Compiled by `npm run typecheck` in test/types/consumer/tsconfig.frameworks.json.
declare const App: Component
declare const Billing: Component
import type { Component } from 'vue'

import { computed, createApp, defineComponent, h } from 'vue'
import { createRouter, createWebHistory } from 'vue-router'
import { createTokenManager } from 'latchkey'
import { latchkeyPlugin, requireSession, useSession, useTokenManager } from 'latchkey/vue'

// In the browser only: the session lives in this page's memory. Worker mode: connectTokenManager(…).
const tm = createTokenManager({
  clientId: 'spa',
  tokenEndpoint: 'https://as.example/token',
  allowedOrigins: ['https://api.example'],
})

async function signIn(path = '/') {
  sessionStorage.setItem('after-sign-in', path)
  location.assign(await tm.authorizationUrl({
    authorizationEndpoint: 'https://as.example/authorize',
    redirectUri: location.origin + '/',
    scope: 'openid offline_access api:read',
  }))
}

// Start-up before the router's first navigation, so that its guard sees the session.
if (new URLSearchParams(location.search).has('state')) {
  await tm.handleRedirect(location.href).catch(() => {})
  history.replaceState(null, '', sessionStorage.getItem('after-sign-in') ?? '/')
} else {
  await tm.restore()
}

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/billing', component: Billing, beforeEnter: requireSession(tm, (to) => signIn(to.fullPath)) },
  ],
})
createApp(App).use(latchkeyPlugin(tm)).use(router).mount('#app')

// In a component (the same two lines in <script setup>):
export const Account = defineComponent(() => {
  const session = useSession()     // Readonly<Ref<SessionInfo | undefined>>
  const tm = useTokenManager()
  const signedIn = computed(() => !!session.value)
  return () => (signedIn.value ? h('button', { onClick: () => tm?.logout() }, 'Sign out') : h('button', { onClick: () => signIn() }, 'Sign in'))
})
