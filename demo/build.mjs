// Builds the demo SPA with rollup's JS API, using demo/rollup.config.mjs.

import { rollup } from 'rollup'
import configs from './rollup.config.mjs'

/**
 * Builds demo/dist (the page and worker mode's worker). Rejects with rollup's error (type errors
 * included) if the build fails.
 * @returns {Promise<void>}
 */
export async function buildDemo() {
  for (const config of configs) {
    const bundle = await rollup(config)
    try {
      await bundle.write(config.output)
    } finally {
      await bundle.close()
    }
  }
}
