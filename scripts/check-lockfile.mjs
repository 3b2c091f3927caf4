// Fails when package-lock.json lacks an optional dependency of a locked package (e.g. another
// platform's rollup build). npm writes such lockfiles when it rewrites one over a node_modules that
// holds only this platform's builds, and `npm ci` on the other platforms then refuses the lockfile.
// The fix: `rm -rf node_modules && npm install`, which keeps the locked versions and adds the entries.
import { readFileSync } from 'node:fs'

const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'))
const packages = lock.packages ?? {}

/** Where npm would resolve `name` from the package at `path` (nearest node_modules upwards). */
function resolves(path, name) {
  let dir = path
  for (;;) {
    if (packages[`${dir ? `${dir}/` : ''}node_modules/${name}`]) return true
    if (!dir) return false
    const at = dir.lastIndexOf('/node_modules/')
    dir = at === -1 ? '' : dir.slice(0, at)
  }
}

const missing = []
for (const [path, entry] of Object.entries(packages)) {
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    if (!resolves(path, name)) missing.push(`${name} (optional dependency of ${path || 'the root'})`)
  }
}
if (missing.length > 0) {
  console.error(`package-lock.json lacks ${missing.length} optional package(s); \`npm ci\` fails on other platforms:`)
  for (const line of missing) console.error(`  ${line}`)
  console.error('Fix: rm -rf node_modules && npm install')
  process.exit(1)
}
console.log(`package-lock.json: all optional packages locked (${Object.keys(packages).length - 1} packages)`)
