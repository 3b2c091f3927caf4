// Size budgets of the published entry points, measured the way an app pays for them: the minified
// browser build (dependencies bundled, peers excluded), gzip level 9.
//
//   node scripts/size.mjs          prints the table for dist/*.min.js; exits 1 over budget
//   node scripts/size.mjs --json   the same figures as JSON

import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

// The goal is 9,216 B with everything wave 3 adds; the core is over it (README, Size, gives the
// arithmetic). This limit holds it where it is now, so that it cannot grow unnoticed.
const CORE_LIMIT = 9728

/**
 * Budgets in bytes of min+gzip. The core's is checked twice: on this minified browser build, and
 * as an app's bundler sees it (esbuild --bundle --minify of dist/index.js; test/size.test.ts).
 */
export const budgets = {
  // The whole entry, discover() included; an app that never imports discover pays `withoutDiscovery`.
  'latchkey.min.js': { entry: 'latchkey', limit: CORE_LIMIT },
  'ky.min.js': { entry: 'latchkey/ky', limit: 1000 },
  // The whole entry: the core (it runs in the worker) and both sides of the protocol. What a page
  // pays is `pageBudget`, below.
  'worker.min.js': { entry: 'latchkey/worker', limit: CORE_LIMIT + 2304 },
  // The framework bindings, the framework excluded: all they add to an app that has the core.
  'react.min.js': { entry: 'latchkey/react', limit: 512 },
  'vue.min.js': { entry: 'latchkey/vue', limit: 512 },
  // Its own code only: @opentelemetry/api is the app's, and the core's types are all it imports.
  'otel.min.js': { entry: 'latchkey/otel', limit: 1024 },
}

/**
 * The core entry as an app that does not import `discover` bundles it (test/size.test.ts builds
 * it): discovery tree-shakes away, so this is the core's budget from before discovery existed.
 */
export const withoutDiscovery = { entry: 'latchkey (no discover)', limit: CORE_LIMIT - 500 }

/**
 * What a page pays for worker mode: an app that imports only `connectTokenManager` from
 * `latchkey/worker`, bundled and minified like the entries above (measured by test/size.test.ts).
 */
export const pageBudget = { entry: 'latchkey/worker, page side (connectTokenManager)', limit: 2048 }

/** gzip level 9 size in bytes. */
export const gzipSize = (code) => gzipSync(Buffer.from(code), { level: 9 }).length

/**
 * Measures `{ fileName: code }` against the budgets.
 * @returns {{ file: string, entry: string, min: number, gzip: number, limit: number, ok: boolean }[]}
 */
export function measure(files) {
  return Object.entries(budgets)
    .filter(([file]) => file in files)
    .map(([file, { entry, limit }]) => {
      // The source map comment is not code: an app's bundler or CDN drops it.
      const code = files[file].replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '')
      const gzip = gzipSize(code)
      return { file, entry, min: Buffer.byteLength(code), gzip, limit, ok: gzip <= limit }
    })
}

const kb = (bytes) => (bytes / 1000).toFixed(2) + ' KB'

/** A Markdown table of the figures. */
export function table(rows) {
  const kib = (bytes) => (bytes / 1024).toFixed(2) + ' KiB'
  const lines = [
    '| entry | file | minified | min+gzip | budget |',
    '| --- | --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| \`${r.entry}\` | dist/${r.file} | ${kb(r.min)} | **${r.gzip} B** (${kb(r.gzip)}, ${kib(r.gzip)}) | ${r.limit} B${r.ok ? '' : ' **over by ' + (r.gzip - r.limit) + ' B**'} |`,
    ),
  ]
  return lines.join('\n')
}

/** A rollup plugin that prints the min+gzip figures of the chunks it writes (warns over budget). */
export function sizeReport() {
  return {
    name: 'latchkey-size-report',
    generateBundle(_, bundle) {
      const files = {}
      for (const [name, chunk] of Object.entries(bundle)) if (chunk.type == 'chunk') files[name] = chunk.code
      for (const r of measure(files)) {
        const line = `${r.entry.padEnd(12)} ${r.file.padEnd(16)} min ${kb(r.min).padStart(9)}  min+gzip ${kb(r.gzip).padStart(8)} (${r.gzip} B)  budget ${kb(r.limit)}${r.ok ? '' : '  OVER BUDGET by ' + (r.gzip - r.limit) + ' B'}`
        process.stderr.write(line + '\n')
      }
    },
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) == process.argv[1]) {
  const dist = new URL('../dist/', import.meta.url)
  const files = {}
  for (const file of Object.keys(budgets)) {
    try {
      files[file] = await readFile(new URL(file, dist), 'utf8')
    } catch {
      console.error(`dist/${file} is missing: run npm run build first`)
      process.exitCode = 1
    }
  }
  const rows = measure(files)
  console.log(process.argv.includes('--json') ? JSON.stringify(rows, null, 2) : table(rows))
  if (rows.some((r) => !r.ok)) {
    for (const r of rows.filter((r) => !r.ok)) console.error(`${r.entry}: ${r.gzip} B min+gzip, over its ${r.limit} B budget by ${r.gzip - r.limit} B`)
    process.exitCode = 1
  }
}
