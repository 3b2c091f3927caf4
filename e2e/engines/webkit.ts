import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { remote } from 'webdriverio'
import { clickInPage, fillInPage } from './in-page.js'
import { pollUntil, type EngineBrowser, type EnginePage, type Launched, type LaunchOptions } from './types.js'

const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser'

/** A free loopback port for the driver (it has no "pick one" option). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Resolves once something accepts connections on the loopback `port`. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })

/**
 * WebKitGTK's MiniBrowser (`--automation`; it has no headless mode: Xvfb, started by the global setup,
 * is its display) through /usr/bin/WebKitWebDriver, one driver and one browser per test.
 *
 * WebDriver talks to one window at a time, so every command of a tab first switches to that tab's
 * window; a queue keeps the switch and the command together when tests drive several tabs at once.
 */
export async function launchWebKit({ dataDir }: LaunchOptions): Promise<Launched> {
  if (!process.env['DISPLAY']) throw new Error('WebKit needs a display: the e2e global setup starts Xvfb')
  const port = await freePort()
  // The automation session keeps website data (IndexedDB, local storage) in memory only; what the
  // browser writes anyway (caches, settings) goes under the test's own directory.
  const driver = spawn('/usr/bin/WebKitWebDriver', [`--port=${port}`, '--host=127.0.0.1'], {
    env: { ...process.env, XDG_DATA_HOME: dataDir, XDG_CACHE_HOME: dataDir, XDG_CONFIG_HOME: dataDir },
    stdio: 'ignore',
  })
  const exited = new Promise<void>((resolve) => driver.once('exit', () => resolve()))
  let browser: WebdriverIO.Browser
  try {
    await pollUntil(() => accepts(port), 15_000, 'WebKitWebDriver to listen')
    const capabilities = {
      // WebKitWebDriver speaks W3C WebDriver (classic) only.
      'wdio:enforceWebDriverClassic': true,
      'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
    }
    browser = await remote({ logLevel: 'error', hostname: '127.0.0.1', port, path: '/', capabilities })
  } catch (error) {
    driver.kill()
    throw error
  }

  let queue: Promise<unknown> = Promise.resolve()
  let current = await browser.getWindowHandle()
  /** Runs `command` with `handle`'s window as the current one, after every command queued before it. */
  const inWindow = <R>(handle: string, command: () => Promise<R>): Promise<R> => {
    const run = queue.then(async () => {
      if (current !== handle) {
        await browser.switchToWindow(handle)
        current = handle
      }
      return command()
    })
    queue = run.catch(() => undefined)
    return run
  }

  const wrap = (handle: string): EnginePage => {
    const evaluate = (fn: (arg: unknown) => unknown, arg?: unknown) =>
      inWindow(handle, () => browser.execute(fn as (arg: unknown) => unknown, arg))
    return {
      goto: (url) => inWindow(handle, () => browser.navigateTo(url)).then(() => undefined),
      reload: () => inWindow(handle, () => browser.refresh()),
      goBack: () => inWindow(handle, () => browser.back()),
      url: () => inWindow(handle, () => browser.getUrl()),
      evaluate: evaluate as EnginePage['evaluate'],
      waitForFunction: ((fn: (arg: unknown) => unknown, arg?: unknown, options?: { timeout?: number }) =>
        pollUntil(() => evaluate(fn, arg), options?.timeout ?? 10_000, 'a condition in the page')) as EnginePage['waitForFunction'],
      click: (selector) => inWindow(handle, async () => (await browser.$(selector)).click()),
      fill: (selector, value) => evaluate(fillInPage as (arg: unknown) => void, [selector, value]).then(() => undefined),
      dispatchClick: (selector) => evaluate(clickInPage as (arg: unknown) => void, selector).then(() => undefined),
      screenshot: ({ path }) => inWindow(handle, async () => writeFile(path, Buffer.from(await browser.takeScreenshot(), 'base64'))),
      cookies: () => inWindow(handle, () => browser.getAllCookies()),
      // WebDriver classic cannot run a script before the page's own.
      addInitScript: undefined,
      close: () => inWindow(handle, async () => {
        await browser.closeWindow()
        current = ''
      }),
    }
  }

  const capabilities = browser.capabilities as { browserVersion?: string }
  const engine: EngineBrowser = {
    name: 'webkit',
    version: capabilities.browserVersion ?? 'unknown',
    profileDir: dataDir,
    newPage: async () => {
      // After the current window closed, any open one can create the next.
      const from = current || (await browser.getWindowHandles())[0] || ''
      return wrap((await inWindow(from, () => browser.createWindow('tab'))).handle)
    },
    close: async () => {
      await queue
      await browser.deleteSession().catch(() => undefined)
      driver.kill()
      await exited
    },
  }
  return { engine, tab: wrap(current) }
}
