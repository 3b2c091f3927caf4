// What both framework apps read from the demo's static server, and the one options object they
// give latchkey: the demo's authorization server, its API and its billing API.
import type { TokenManagerOptions } from 'latchkey'
import { optionsFor, type AppConfig } from './options.js'

export type { AppConfig }

export const config = (await (await fetch('/config.json')).json()) as AppConfig

export const options: TokenManagerOptions = optionsFor(config)

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

/**
 * Worker mode (`?mode=worker`, kept for the tab through the sign-in redirect): the session lives in
 * a SharedWorker and the app holds connectTokenManager's handle; otherwise in the page.
 */
export const workerMode = (() => {
  if (new URLSearchParams(location.search).get('mode') == 'worker') sessionStorage.setItem('app:mode', 'worker')
  return sessionStorage.getItem('app:mode') == 'worker'
})()

/** Counts renders of the session components, for the test that they stay bounded. */
export const counters = ((globalThis as { latchkeyApp?: { renders: number; starts: number } }).latchkeyApp = { renders: 0, starts: 0 })
