import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { clickInPage, fillInPage } from './in-page.js'
import { pollUntil, type EngineBrowser, type EnginePage, type Launched, type LaunchOptions } from './types.js'

function wrap(page: Page): EnginePage {
  return {
    goto: async (url) => void (await page.goto(url)),
    reload: async () => void (await page.reload()),
    goBack: async () => void (await page.goBack()),
    url: async () => page.url(),
    evaluate: ((fn: (arg: unknown) => unknown, arg?: unknown) => page.evaluate(fn, arg)) as EnginePage['evaluate'],
    waitForFunction: ((fn: (arg: unknown) => unknown, arg?: unknown, options?: { timeout?: number }) =>
      pollUntil(() => page.evaluate(fn, arg), options?.timeout ?? 10_000, `a condition in ${page.url()}`)) as EnginePage['waitForFunction'],
    click: (selector) => page.click(selector),
    fill: (selector, value) => page.evaluate(fillInPage, [selector, value] as [string, string]),
    dispatchClick: (selector) => page.evaluate(clickInPage, selector),
    screenshot: async ({ path }) => void (await page.screenshot({ path, fullPage: true })),
    cookies: () => page.cookies(),
    addInitScript: async (fn, arg) => void (await page.evaluateOnNewDocument(fn, arg)),
    close: () => page.close(),
  }
}

/** Debian's Firefox ESR (/usr/bin/firefox-esr), headless, with a fresh profile, through puppeteer-core over WebDriver BiDi. */
export async function launchFirefox({ dataDir }: LaunchOptions): Promise<Launched> {
  const browser: Browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: '/usr/bin/firefox-esr',
    headless: true,
    userDataDir: dataDir,
  })
  const first = (await browser.pages())[0] ?? (await browser.newPage())
  const engine: EngineBrowser = {
    name: 'firefox',
    version: (await browser.version()).replace(/^firefox\//, ''),
    profileDir: dataDir,
    newPage: async () => wrap(await browser.newPage()),
    close: () => browser.close(),
  }
  return { engine, tab: wrap(first) }
}
