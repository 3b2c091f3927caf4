// What both framework apps read from the demo's static server, and the one options object they
// give latchkey: the demo's authorization server, its API and its billing API.
import type { TokenManagerOptions } from 'latchkey'

export interface AppConfig {
  clientId: string
  authorizationEndpoint: string
  tokenEndpoint: string
  revocationEndpoint: string
  redirectUri: string
  scope: string
  apiOrigin: string
  billingOrigin: string
}

export const config = (await (await fetch('/config.json')).json()) as AppConfig

export const options: TokenManagerOptions = {
  clientId: config.clientId,
  tokenEndpoint: config.tokenEndpoint,
  revocationEndpoint: config.revocationEndpoint,
  resources: {
    [config.apiOrigin]: config.apiOrigin,
    [config.billingOrigin]: { resource: config.billingOrigin, scope: 'billing:read' },
  },
}

/** Start-up: the redirect back from the authorization server, or another tab's session. */
export async function start(tm: { handleRedirect(url: string): Promise<void>; restore(): Promise<boolean> }) {
  const here = new URL(location.href)
  if (!here.searchParams.has('code') && !here.searchParams.has('error')) return void (await tm.restore())
  try {
    await tm.handleRedirect(here.href)
  } finally {
    history.replaceState(null, '', '/')
  }
}

export const signInUrl = (tm: { authorizationUrl: (p: { authorizationEndpoint: string; redirectUri: string; scope: string }) => Promise<string> }) =>
  tm.authorizationUrl({ authorizationEndpoint: config.authorizationEndpoint, redirectUri: config.redirectUri, scope: config.scope })

/** Counts renders of the session components, for the test that they stay bounded. */
export const counters = ((globalThis as { latchkeyApp?: { renders: number; starts: number } }).latchkeyApp = { renders: 0, starts: 0 })
