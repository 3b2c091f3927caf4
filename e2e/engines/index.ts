import { launchChromium } from './chromium.js'
import { launchFirefox } from './firefox.js'
import type { EngineName, Launched, LaunchOptions } from './types.js'
import { launchWebKit } from './webkit.js'

export { playwrightOf } from './chromium.js'
export type { Cookie, EngineBrowser, EngineName, EnginePage, Launched } from './types.js'

const launchers = { chromium: launchChromium, firefox: launchFirefox, webkit: launchWebKit }

/**
 * Starts `name` (each Debian's build) with a fresh profile in `options.dataDir`. `close()` may be
 * called more than once: a test closes the browser to scan its profile, the fixture closes it again.
 */
export async function launch(name: EngineName, options: LaunchOptions): Promise<Launched> {
  const { engine, tab } = await launchers[name](options)
  let closed: Promise<void> | undefined
  return { engine: { ...engine, close: () => (closed ??= engine.close()) }, tab }
}
