import { chromium, type BrowserContext, type Page } from 'playwright/test'
import { pollUntil, type EngineBrowser, type EnginePage, type Launched, type LaunchOptions } from './types.js'

// Without the networking flags Chromium stalls on refused background connections here.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const pages = new WeakMap<EnginePage, Page>()

/** The Playwright page behind a Chromium tab, for what only Chromium offers here (CDP, request interception). */
export function playwrightOf(tab: EnginePage): Page {
  const page = pages.get(tab)
  if (!page) throw new Error('not a Chromium tab: this test needs Chromium (tag it @cdp, @intercept or @offline)')
  return page
}

function wrap(page: Page, context: BrowserContext, hasTouch: boolean): EnginePage {
  const tab: EnginePage = {
    goto: async (url) => void (await page.goto(url)),
    reload: async () => void (await page.reload()),
    goBack: async () => void (await page.goBack()),
    url: async () => page.url(),
    evaluate: ((fn: (arg: unknown) => unknown, arg?: unknown) => page.evaluate(fn, arg)) as EnginePage['evaluate'],
    waitForFunction: ((fn: (arg: unknown) => unknown, arg?: unknown, options?: { timeout?: number }) =>
      pollUntil(() => page.evaluate(fn, arg), options?.timeout ?? 10_000, `a condition in ${page.url()}`)) as EnginePage['waitForFunction'],
    click: (selector) => (hasTouch ? page.locator(selector).first().tap() : page.locator(selector).first().click()),
    fill: (selector, value) => page.locator(selector).first().fill(value),
    dispatchClick: (selector) => page.locator(selector).first().dispatchEvent('click'),
    screenshot: async ({ path }) => void (await page.screenshot({ path, fullPage: true })),
    cookies: () => context.cookies(page.url()),
    addInitScript: async (fn, arg) => void (await page.addInitScript(fn as (arg: unknown) => void, arg)),
    close: () => page.close(),
  }
  pages.set(tab, page)
  return tab
}

/** Debian's Chromium (/usr/bin/chromium) with a fresh persistent profile, through Playwright. */
export async function launchChromium({ dataDir, device = {} }: LaunchOptions): Promise<Launched> {
  const { viewport, isMobile, hasTouch = false, userAgent, deviceScaleFactor } = device
  const context = await chromium.launchPersistentContext(dataDir, {
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    ...(viewport !== undefined ? { viewport } : {}),
    ...(isMobile !== undefined ? { isMobile } : {}),
    hasTouch,
    ...(userAgent ? { userAgent } : {}),
    ...(deviceScaleFactor ? { deviceScaleFactor } : {}),
  })
  const first = context.pages()[0] ?? (await context.newPage())
  const cdp = await context.newCDPSession(first)
  const { product } = await cdp.send('Browser.getVersion')
  await cdp.detach()
  const engine: EngineBrowser = {
    name: 'chromium',
    version: product.replace(/^[^/]*\//, ''),
    profileDir: dataDir,
    newPage: async () => wrap(await context.newPage(), context, hasTouch),
    close: () => context.close(),
  }
  return { engine, tab: wrap(first, context, hasTouch) }
}
