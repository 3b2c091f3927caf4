// Builds the published package into dist/:
//   index.js, ky.js           ESM for bundlers and Node (idb-keyval bundled, ky left to the app)
//   index.d.ts, ky.d.ts       bundled declarations (rollup-plugin-dts)
//   latchkey.min.js, ky.min.js  minified, self-contained ES modules for <script type="module">
//   react.js, vue.js          the framework bindings (the framework left to the app)
// and prints the min+gzip size of each entry against its budget (scripts/size.mjs).

import { fileURLToPath } from 'node:url'
import nodeResolve from '@rollup/plugin-node-resolve'
import terser from '@rollup/plugin-terser'
import typescript from '@rollup/plugin-typescript'
import { dts } from 'rollup-plugin-dts'
import { sizeReport } from './scripts/size.mjs'

const here = (path) => fileURLToPath(new URL(path, import.meta.url))

/** Entry points: name in dist/ → source. */
export const entries = { index: 'src/index.ts', ky: 'src/ky.ts', worker: 'src/worker.ts', react: 'src/react.ts', vue: 'src/vue.ts', otel: 'src/otel.ts' }

/** The browser build's file for each entry. */
export const minNames = { index: 'latchkey.min.js', ky: 'ky.min.js', worker: 'worker.min.js', react: 'react.min.js', vue: 'vue.min.js', otel: 'otel.min.js' }

/** Peers (and their subpaths) stay imports; dependencies are bundled. */
export const peers = ['ky', 'react', 'vue', '@opentelemetry/api']
const external = (id) => peers.some((peer) => id == peer || id.startsWith(peer + '/'))

const ts = () =>
  typescript({
    tsconfig: here('tsconfig.json'),
    // rollup-plugin-dts writes the declarations; this pass only compiles.
    compilerOptions: { declaration: false, declarationMap: false, outDir: here('dist'), rootDir: here('src') },
    noEmitOnError: true,
  })

const onwarn = (warning, warn) => {
  // A circular import or an unresolved module is a packaging bug: fail the build.
  if (warning.code == 'UNRESOLVED_IMPORT' || warning.code == 'CIRCULAR_DEPENDENCY') throw new Error(warning.message)
  warn(warning)
}

const input = Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, here(file)]))

/** ESM for bundlers and Node: readable, with source maps; shared code (if any) in a common chunk. */
export const esm = {
  input,
  external,
  onwarn,
  plugins: [nodeResolve({ browser: true }), ts()],
  output: {
    dir: here('dist'),
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: 'shared-[hash].js',
    sourcemap: true,
  },
}

/** Minifier settings of the browser build. */
export const terserOptions = { module: true, ecma: 2020, compress: { passes: 2 }, format: { comments: false } }

/** One self-contained minified module per entry: what a page loads, and what the budgets measure. */
export const min = Object.keys(entries).map((name) => ({
  input: input[name],
  external,
  onwarn,
  plugins: [
    nodeResolve({ browser: true }),
    ts(),
    terser(terserOptions),
    sizeReport(),
  ],
  output: { file: here('dist/' + minNames[name]), format: 'es', sourcemap: true },
}))

/**
 * Declarations, one file per entry. `latchkey/ky` refers to the core's types through `./index.js`
 * (type-only: its code imports nothing from the core), so the types exist once.
 */
export const types = Object.keys(entries).map((name) => ({
  input: input[name],
  // src/index.ts is the only module that src/*.ts reach as './index.js'.
  external: (id) => external(id) || (name != 'index' && id == './index.js'),
  onwarn,
  plugins: [dts({ tsconfig: here('tsconfig.json') })],
  output: { file: here(`dist/${name}.d.ts`), format: 'es', paths: (id) => (id.endsWith('/src/index.js') ? './index.js' : id) },
}))

export default [esm, ...min, ...types]
