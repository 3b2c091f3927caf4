// Rebuilds one rollup output of the package when it is missing or older than src/, so a bench
// always measures the code an app gets.
import { readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const newest = (dir) => Math.max(...readdirSync(dir).map((f) => statSync(dir + '/' + f).mtimeMs))

/**
 * @param {string} file the output to check, relative to the repository root (e.g. 'dist/index.js')
 * @param {(configs: typeof import('../rollup.config.mjs')) => import('rollup').RollupOptions} pick
 *   the rollup configuration that writes it
 */
export async function ensureBuilt(file, pick) {
  let stale
  try {
    stale = statSync(here('../' + file)).mtimeMs < newest(here('../src'))
  } catch {
    stale = true
  }
  if (!stale) return
  console.log(`${file} is missing or older than src/: building…`)
  const { rollup } = await import('rollup')
  const config = pick(await import('../rollup.config.mjs'))
  const bundle = await rollup(config)
  await bundle.write(/** @type {import('rollup').OutputOptions} */ (config.output))
  await bundle.close()
}
