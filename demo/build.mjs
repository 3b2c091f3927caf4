// Builds the demo SPA with rollup's JS API, using demo/rollup.config.mjs.

import { rollup } from 'rollup'
import config from './rollup.config.mjs'

/**
 * Builds demo/dist. Rejects with rollup's error (type errors included) if the build fails.
 * @returns {Promise<void>}
 */
export async function buildDemo() {
  const bundle = await rollup(config)
  try {
    await bundle.write(config.output)
  } finally {
    await bundle.close()
  }
}
