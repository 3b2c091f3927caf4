// Builds the demo SPA into demo/dist: the app and the SDK compiled from source in one bundle, worker
// mode's worker in another, plus the static files. `npm start` runs this through the rollup JS API (demo/build.mjs).

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

const bundle = (name, plugins = []) => ({
  input: here(`./app/${name == 'app' ? 'main' : name}.ts`),
  output: { dir: here('./dist'), format: 'es', entryFileNames: `${name}.js`, sourcemap: true },
  plugins: [
    nodeResolve({ browser: true }),
    typescript({ tsconfig: here('./tsconfig.json'), outDir: here('./dist'), noEmitOnError: true }),
    ...plugins,
  ],
})

// Two self-contained files: the page (app.js), and worker mode's module worker (auth-worker.js,
// started with new Worker(url, { type: 'module' })), so that the page loads one script as before.
export default [bundle('app', [staticFiles()]), bundle('auth-worker')]
