// Size budgets and bundle boundaries, on the real build (rollup.config.mjs, built in memory so that
// nothing races with a build writing dist/). Budgets are min+gzip (level 9) of the minified browser
// build, dependencies bundled and peers excluded: what an app pays for each entry point.
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { rollup, type OutputChunk, type RollupOptions } from 'rollup'
import { beforeAll, describe, expect, it } from 'vitest'
import { entries, esm, min, minNames, peers } from '../rollup.config.mjs'
import { budgets, gzipSize, measure, pageBudget, table, withoutDiscovery } from '../scripts/size.mjs'

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

/** esbuild --bundle --minify of `entry`, whose './…' imports are the npm build's files (built in memory). */
async function esbuildOf(entry: string): Promise<string> {
  const { build: esbuild } = await import('esbuild')
  const files = new Map((await build(esm)).map((c) => [c.fileName, c.code]))
  const result = await esbuild({
    stdin: { contents: entry, loader: 'js', resolveDir: root },
    bundle: true,
    minify: true,
    format: 'esm',
    external: peers,
    write: false,
    plugins: [
      {
        name: 'in-memory-build',
        setup(b) {
          b.onResolve({ filter: /^\.\// }, ({ path }) => ({ path: path.slice(2), namespace: 'dist' }))
          b.onLoad({ filter: /.*/, namespace: 'dist' }, ({ path }) => ({ contents: files.get(path)!, loader: 'js', resolveDir: root }))
        },
      },
    ],
  })
  return result.outputFiles[0]!.text
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
  it('builds every entry', () => {
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
    const code = await esbuildOf(`export * from './index.js'`)
    const gzip = gzipSize(code)
    const { limit } = budgets['latchkey.min.js']
    console.log(`latchkey as bundled by esbuild: ${code.length} B min, ${gzip} B min+gzip (budget ${limit} B)`)
    expect(gzip, `${gzip - limit} B over the ${limit} B budget`).toBeLessThanOrEqual(limit)
  }, 60_000)

  it.each([
    ['latchkey/react', './react.js', 'react.min.js'],
    ['latchkey/vue', './vue.js', 'vue.min.js'],
  ] as const)('esbuild of %s (the framework external): none of the core, within its budget', async (_, file, budget) => {
    const code = await esbuildOf(`export * from '${file}'`)
    for (const core of ['refresh_token', 'dpop+jwt', 'LatchkeyError']) expect(code).not.toContain(core)
    const gzip = gzipSize(code)
    const { entry, limit } = budgets[budget]
    console.log(`${entry} as bundled by esbuild: ${code.length} B min, ${gzip} B min+gzip (budget ${limit} B)`)
    expect(gzip).toBeLessThanOrEqual(limit)
  }, 60_000)

  it(`esbuild of an app importing only connectTokenManager from dist/worker.js: none of the core, within ${pageBudget.limit} B`, async () => {
    const code = await esbuildOf(`import { connectTokenManager } from './worker.js'; export const tm = connectTokenManager(new Worker('/auth-worker.js'))`)
    for (const core of ['refresh_token', 'grant_type', 'dpop+jwt', 'AES-GCM']) expect(code).not.toContain(core)
    const gzip = gzipSize(code)
    console.log(`latchkey/worker page side as bundled by esbuild: ${code.length} B min, ${gzip} B min+gzip (budget ${pageBudget.limit} B)`)
    expect(gzip).toBeLessThanOrEqual(pageBudget.limit)
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

  it('the npm build shares one chunk between the core and latchkey/worker, and imports no dependency (idb-keyval is bundled)', async () => {
    const chunks = await build(esm)
    const entryChunks = chunks.filter((c) => c.isEntry)
    expect(entryChunks.map((c) => c.fileName).sort()).toEqual(names.map((n) => n + '.js').sort())
    // One copy of the error classes for both entries, so that instanceof works on errors from a worker.
    const shared = chunks.filter((c) => !c.isEntry)
    expect(shared).toHaveLength(1)
    expect(modulesOf(shared[0]!)).toContain('src/errors.ts')
    for (const chunk of chunks) expect(chunk.imports.filter((id) => !peers.includes(id) && id != shared[0]!.fileName)).toEqual([])
    // The bindings import their framework and nothing of the core (its types only).
    for (const name of ['react', 'vue']) expect(chunks.find((c) => c.fileName == name + '.js')!.imports).toEqual([name])
    expect(chunks.filter((c) => c.imports.includes('@opentelemetry/api')).map((c) => c.fileName)).toEqual(['otel.js'])
  }, 60_000)

  it('latchkey/otel is its own code only: the OpenTelemetry API stays the app\'s, and nothing of the core comes along', () => {
    const otel = browser['otel.min.js']!
    expect(modulesOf(otel)).toEqual(['src/otel.ts'])
    expect(otel.imports).toEqual(['@opentelemetry/api'])
    for (const core of ['dpop+jwt', 'AES-GCM', 'LatchkeyError', 'invalid_token']) expect(otel.code).not.toContain(core)
  })

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

  it(`latchkey/worker, page side: an app importing only connectTokenManager gets none of the core, within ${pageBudget.limit} B`, async () => {
    const config = min[names.indexOf('worker')]!
    const entry = 'app:page'
    const [chunk] = await build({
      ...config,
      input: entry,
      plugins: [
        {
          name: 'virtual-entry',
          resolveId: (id) => (id == entry ? id : id == 'latchkey/worker' ? root + 'src/worker.ts' : null),
          load: (id) =>
            id == entry ? `import { connectTokenManager } from 'latchkey/worker'; export const tm = connectTokenManager(new Worker('/auth-worker.js', { type: 'module' }))` : null,
        },
        ...(config.plugins as []),
      ],
    })
    const modules = modulesOf(chunk!)
    for (const core of ['src/manager.ts', 'src/session.ts', 'src/refresh.ts', 'src/fetch.ts', 'src/oauth.ts', 'src/vault.ts', 'src/dpop.ts', 'src/crosstab.ts', 'src/keystore.ts', 'idb-keyval/dist/index.js']) expect(modules).not.toContain(core)
    // Neither the refresh, nor DPoP, nor persistence, nor the worker's side of the protocol.
    for (const core of ['refresh_token', 'grant_type', 'dpop+jwt', 'AES-GCM', 'message refused', 'getAccessToken()', 'pipeThrough']) expect(chunk!.code).not.toContain(core)
    const gzip = gzipSize(chunk!.code.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, ''))
    console.log(`| \`${pageBudget.entry}\` | ${chunk!.code.length} B min | **${gzip} B** min+gzip | budget ${pageBudget.limit} B |`)
    expect(gzip, `the page side is ${gzip - pageBudget.limit} B over its budget`).toBeLessThanOrEqual(pageBudget.limit)
  }, 60_000)
})
