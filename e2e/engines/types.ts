/**
 * One browser engine, driven the way it can be driven here: Chromium through Playwright, Firefox ESR
 * through puppeteer-core over WebDriver BiDi, WebKitGTK through WebKitWebDriver (W3C WebDriver).
 *
 * How to write a test that runs in every engine
 * ---------------------------------------------
 * - Import `test` and `expect` from `../fixtures.js`; take the `tab` fixture (the first tab of a fresh
 *   profile), `engine` for more tabs (`await engine.newPage()`, same profile, so BroadcastChannel,
 *   Web Locks, IndexedDB and SharedWorkers are shared), and `demo` for the servers and their counts.
 * - Talk to a page only through `EnginePage`: `goto`, `reload`, `url`, `evaluate(fn, arg)`,
 *   `waitForFunction(fn, arg)`, `click`/`fill`/`dispatchClick` by CSS selector, `screenshot`,
 *   `cookies`, `close`. The functions given to `evaluate` and `waitForFunction` are serialised: they
 *   may use their one argument (JSON) and the page's globals, never a variable of the test.
 * - Assert on the page with the helpers in `../helpers.ts` (`expectText`, `expectAttribute`,
 *   `expectVisible`, `runAction`, `signIn`…), which poll through `evaluate`; assert on what happened
 *   with the servers' own counts (`demo.as.counts`, `demo.api.counts`) and the tokens they issued
 *   (the `tokens` fixture), never with the browser's network events: only Chromium reports those here.
 * - No wall-clock limits on the browser's speed: two workers and three engines share two cores.
 * - A test that needs what only some engines' drivers offer carries a tag, and the projects of
 *   `../playwright.config.ts` that cannot run it leave it out (`grepInvert`):
 *     `@cdp`          the Chrome DevTools Protocol (V8 heap snapshots): Chromium only
 *     `@intercept`    holding or rewriting requests in flight (`playwrightOf(tab)`): Chromium only
 *     `@offline`      switching the network off and on: Chromium only
 *     `@init-script`  `addInitScript` (a script before the page's own): Chromium and Firefox; WebDriver
 *                     classic, which drives WebKit here, has none
 *     `@once`         Chromium only, for the time budget of `npm test`: no browser at all, or more
 *                     of what the tests that run everywhere already cover. Leave it off a new test
 *                     unless the suite runs out of time; never put it on an engine difference.
 * - Where engines differ by design (not by driver), the test branches on `engine.name` and says so;
 *   the README's browser-support table lists those differences.
 * - A hostile script that must run before the app (a spy on fetch, a replaced Worker constructor):
 *   `tab.addInitScript(fn, arg)` before `tab.goto`, tag `@init-script`. What reads memory through
 *   the DevTools protocol (a heap snapshot) gets the Playwright page with `playwrightOf(tab)`, tag `@cdp`.
 * - Driver traits to know: WebKit's WebDriver drives one window at a time, so commands to several
 *   tabs queue (a `Promise.all` over tabs still works, one command after another); it takes no
 *   screenshot of a tab behind another (the command never answers); its tabs from `newPage()` open
 *   behind the first. Firefox's background tabs are `hidden` and their timers throttled.
 * - Run one engine: `npx playwright test -c e2e/playwright.config.ts --project=webkit e2e/x.spec.ts`.
 */
export type EngineName = 'chromium' | 'firefox' | 'webkit'

export interface Cookie {
  name: string
  value: string
}

export interface EnginePage {
  /** Navigates and waits for the load event. */
  goto(url: string): Promise<void>
  reload(): Promise<void>
  /** The history traversal "Back", waiting for the load event. */
  goBack(): Promise<void>
  url(): Promise<string>
  /** Runs `fn` in the page (awaiting a promise it returns) and returns its JSON-serialisable result. */
  evaluate<R>(fn: () => R | Promise<R>): Promise<R>
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>
  /** Polls `fn` in the page until it returns a truthy value (JSON: return no DOM node), and returns that value. */
  waitForFunction<R>(fn: () => R | Promise<R>, arg?: undefined, options?: { timeout?: number }): Promise<R>
  waitForFunction<R, A>(fn: (arg: A) => R | Promise<R>, arg: A, options?: { timeout?: number }): Promise<R>
  /** A real click (or tap, under a touch profile) through the driver, on the first match of `selector`. */
  click(selector: string): Promise<void>
  /** Replaces an input's value and fires `input` and `change`. */
  fill(selector: string, value: string): Promise<void>
  /** `element.click()` in the page: reaches hidden buttons, costs one round trip. */
  dispatchClick(selector: string): Promise<void>
  screenshot(options: { path: string }): Promise<void>
  /** Every cookie the browser would send to the current page's URL, HttpOnly ones included. */
  cookies(): Promise<Cookie[]>
  /** Runs `fn` in every document this tab loads from now on, before the page's scripts; `undefined` where the driver cannot. */
  addInitScript: (<A>(fn: (arg: A) => void, arg: A) => Promise<void>) | undefined
  close(): Promise<void>
}

export interface EngineBrowser {
  name: EngineName
  /** The engine's own version, e.g. "156.0.8078.129", "153.8.0esr", "2.50.6". */
  version: string
  /** Opens a new tab in the same profile (about:blank). */
  newPage(): Promise<EnginePage>
  /** The profile directory on disk, where the engine keeps one that can be scanned after `close()`. */
  profileDir: string | undefined
  close(): Promise<void>
}

export interface LaunchOptions {
  /** A fresh, empty directory for this browser's profile and data. */
  dataDir: string
  /** Chromium only (the phone project): Playwright's device emulation options. */
  device?: {
    viewport?: { width: number; height: number } | null
    isMobile?: boolean
    hasTouch?: boolean
    userAgent?: string
    deviceScaleFactor?: number
  }
}

/** A browser just started, and its first tab (about:blank). */
export interface Launched {
  engine: EngineBrowser
  tab: EnginePage
}

/** Polls `probe` (which may throw while a page navigates) until it returns a truthy value. */
export async function pollUntil<R>(probe: () => Promise<R>, timeout: number, what: string): Promise<R> {
  const deadline = Date.now() + timeout
  let lastError: unknown
  // Bounded by the deadline; 50 ms between probes keeps a two-core machine free for the browser.
  for (;;) {
    try {
      const value = await probe()
      if (value) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
