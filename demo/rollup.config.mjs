// Builds the demo SPA into demo/dist: the app and the SDK compiled from source in one bundle,
// plus the static files. `npm start` runs this through the rollup JS API (demo/build.mjs).

import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import nodeResolve from '@rollup/plugin-node-resolve'
import typescript from '@rollup/plugin-typescript'

const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const STATIC_FILES = ['index.html', 'styles.css', 'favicon.svg']

/** Copies the app's static files next to the bundle. */
function staticFiles() {
  return {
    name: 'demo-static-files',
    async buildStart() {
      for (const file of STATIC_FILES) this.addWatchFile(here(`./app/${file}`))
    },
    async generateBundle() {
      for (const file of STATIC_FILES) {
        this.emitFile({ type: 'asset', fileName: file, source: await readFile(here(`./app/${file}`)) })
      }
    },
  }
}

export default {
  // The page, and worker mode's module worker (the page starts it with new Worker(url, { type: 'module' })).
  input: { app: here('./app/main.ts'), 'auth-worker': here('./app/auth-worker.ts') },
  output: {
    dir: here('./dist'),
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: 'chunk-[hash].js',
    sourcemap: true,
  },
  plugins: [
    nodeResolve({ browser: true }),
    typescript({ tsconfig: here('./tsconfig.json'), outDir: here('./dist'), noEmitOnError: true }),
    staticFiles(),
  ],
}
