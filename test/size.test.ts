// Size budgets and bundle boundaries, on the real build (rollup.config.mjs, built in memory so that
// nothing races with a build writing dist/). Budgets are min+gzip (level 9) of the minified browser
// build, dependencies bundled and peers excluded: what an app pays for each entry point.
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { rollup, type OutputChunk, type RollupOptions } from 'rollup'
import { beforeAll, describe, expect, it } from 'vitest'
import { entries, esm, min, minNames } from '../rollup.config.mjs'
import { budgets, gzipSize, measure, table, withoutDiscovery } from '../scripts/size.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

async function build(config: RollupOptions): Promise<OutputChunk[]> {
  const quiet = { ...config, plugins: (config.plugins as { name: string }[]).filter((p) => p.name != 'latchkey-size-report') }
  const bundle = await rollup(quiet as RollupOptions)
  try {
    const { output } = await bundle.generate(Array.isArray(config.output) ? config.output[0]! : config.output!)
    return output.filter((o): o is OutputChunk => o.type == 'chunk')
  } finally {
    await bundle.close()
  }
}

const modulesOf = (chunk: OutputChunk) =>
  Object.entries(chunk.modules)
    .filter(([, m]) => m.renderedLength > 0)
    .map(([id]) => relative(root, id).replace(/^.*node_modules\//, ''))
    .sort()

const names = Object.keys(entries) as (keyof typeof minNames)[]
const browser: Record<string, OutputChunk> = {}

beforeAll(async () => {
  for (const [i, name] of names.entries()) browser[minNames[name]] = (await build(min[i]!))[0]!
}, 120_000)

describe('size budgets (min+gzip)', () => {
  it('builds both entries', () => {
    expect(Object.keys(browser).sort()).toEqual(Object.keys(budgets).sort())
  })

  it.each(Object.entries(budgets))('%s stays within its budget', (file, { limit }) => {
    const [row] = measure({ [file]: browser[file]!.code })
    console.log(table([row!]))
    expect(row!.gzip, `${row!.entry} is ${row!.gzip - limit} B over its ${limit} B budget`).toBeLessThanOrEqual(limit)
  })
})

describe('as an app\'s bundler sees it', () => {
  it('esbuild --bundle --minify of dist/index.js (ky external) stays within the core budget', async () => {
    const { build: esbuild } = await import('esbuild')
    const index = (await build(esm)).find((c) => c.fileName == 'index.js')!
    const result = await esbuild({
      stdin: { contents: index.code, loader: 'js', resolveDir: root },
      bundle: true,
      minify: true,
      format: 'esm',
      external: ['ky'],
      write: false,
    })
    const code = result.outputFiles[0]!.text
    const gzip = gzipSize(code)
    const { limit } = budgets['latchkey.min.js']
    console.log(`latchkey as bundled by esbuild: ${code.length} B min, ${gzip} B min+gzip (budget ${limit} B)`)
    expect(gzip, `${gzip - limit} B over the ${limit} B budget`).toBeLessThanOrEqual(limit)
  }, 60_000)
})

describe('bundle boundaries', () => {
  it('the core bundles idb-keyval, imports nothing and holds no ky code', () => {
    const core = browser['latchkey.min.js']!
    expect(core.imports).toEqual([])
    expect(core.dynamicImports).toEqual([])
    const modules = modulesOf(core)
    expect(modules).toContain('idb-keyval/dist/index.js')
    expect(modules.filter((m) => m == 'src/ky.ts' || m.startsWith('ky/'))).toEqual([])
    for (const hook of ['beforeRequest', 'beforeRetry', 'afterResponse']) expect(core.code).not.toContain(hook)
  })

  it('latchkey/ky is its own code only: no copy of the core, and no import of it', () => {
    const ky = browser['ky.min.js']!
    expect(modulesOf(ky)).toEqual(['src/ky.ts'])
    // ky itself may be imported (a page maps it with an import map); the core never.
    expect(ky.imports.filter((id) => id != 'ky')).toEqual([])
    for (const core of ['dpop+jwt', 'refresh_token', 'invalid_grant', 'AES-GCM', 'LatchkeyError']) expect(ky.code).not.toContain(core)
  })

  it('the npm build has no shared chunk and no dependency imports (idb-keyval is bundled)', async () => {
    const chunks = await build(esm)
    expect(chunks.map((c) => c.fileName).sort()).toEqual(names.map((n) => n + '.js').sort())
    for (const chunk of chunks) expect(chunk.imports.filter((id) => id != 'ky')).toEqual([])
  }, 60_000)

  /** The core's browser build of an app whose only module is `code` (importing the core as `CORE`). */
  const app = async (code: string) => {
    const config = min[names.indexOf('index')]!
    const [chunk] = await build({
      ...config,
      input: 'latchkey:app',
      plugins: [
        {
          name: 'virtual-entry',
          resolveId: (id) => (id == 'latchkey:app' ? id : null),
          load: (id) => (id == 'latchkey:app' ? code.replaceAll('CORE', JSON.stringify(root + 'src/index.ts')) : null),
        },
        ...(config.plugins as []),
      ],
    })
    return chunk!
  }

  it('tree-shakes: an app importing only the error helpers gets none of the token manager', async () => {
    const chunk = await app(`import { isLatchkeyError } from CORE; export const check = (e) => isLatchkeyError(e, 'timeout')`)
    // A module-level `new X()` that rollup cannot prove pure stays in every app that imports anything.
    expect(modulesOf(chunk)).toEqual(['latchkey:app', 'src/errors.ts'])
    expect(chunk.code).not.toContain('dpop')
    expect(measure({ 'latchkey.min.js': chunk.code })[0]!.gzip).toBeLessThan(400)
  }, 60_000)

  it('tree-shakes: an app that uses everything but discover pays nothing for discovery', async () => {
    const all = browser['latchkey.min.js']!.exports
    expect(all).toContain('discover')
    const chunk = await app(`export { ${all.filter((name) => name != 'discover').join(', ')} } from CORE`)
    expect(modulesOf(chunk)).not.toContain('src/discovery.ts')
    expect(chunk.code).not.toContain('well-known')
    const [row] = measure({ 'latchkey.min.js': chunk.code })
    console.log(table([{ ...row!, ...withoutDiscovery, ok: row!.gzip <= withoutDiscovery.limit }]))
    expect(row!.gzip).toBeLessThanOrEqual(withoutDiscovery.limit)
  }, 60_000)
})
