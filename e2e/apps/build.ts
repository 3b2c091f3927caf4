// Builds the React and Vue apps in e2e/apps with Vite, as their users build them, into a temporary
// directory; the demo's static server then serves that directory (with the demo's /config.json).
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { build } from 'vite'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/** `latchkey` and its subpaths as an installed package would give them, from this repository's sources. */
const latchkey = [
  { find: /^latchkey$/, replacement: here('../../src/index.ts') },
  { find: /^latchkey\/react$/, replacement: here('../../src/react.ts') },
  { find: /^latchkey\/vue$/, replacement: here('../../src/vue.ts') },
  { find: /^latchkey\/worker$/, replacement: here('../../src/worker.ts') },
]

/**
 * Builds one app; resolves with the directory holding its index.html and assets. The React app is
 * built in development mode, where StrictMode runs every effect twice (as in `vite dev`).
 */
export async function buildApp(name: 'react' | 'vue'): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), `latchkey-${name}-app-`))
  const mode = name == 'react' ? 'development' : 'production'
  await build({
    root: here(name),
    mode,
    logLevel: 'warn',
    configFile: false,
    plugins: name == 'vue' ? [vue()] : [],
    resolve: { alias: latchkey },
    define: { 'process.env.NODE_ENV': JSON.stringify(mode) },
    oxc: { jsx: { runtime: 'automatic', development: mode == 'development' } },
    // The worker is a module worker, as the apps create it.
    worker: { format: 'es' },
    build: { outDir, emptyOutDir: true, minify: mode == 'production', target: 'es2022' },
  })
  return outDir
}
