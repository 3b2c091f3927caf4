// Where the bytes of the browser build go: `node scripts/analyze.mjs [index|ky]`.
//
// For each source module: its rendered (tree-shaken, unminified) size, its size minified on its own,
// and that minified code gzipped on its own. Then the weight of the string literals (error messages,
// wire names) in the real minified bundle: the bundle gzipped as is, and with every string literal
// of 10+ characters emptied. Stand-alone figures do not add up to the bundle's (gzip shares a
// dictionary across modules), but they rank the modules correctly.

import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'acorn'
import { rollup } from 'rollup'
import { minify } from 'terser'
import { min, minNames, entries, terserOptions } from '../rollup.config.mjs'
import { gzipSize } from './size.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const name = process.argv[2] ?? 'index'
const index = Object.keys(entries).indexOf(name)
if (index < 0) throw new Error(`unknown entry ${name}; one of ${Object.keys(entries).join(', ')}`)
const config = min[index]
const plain = { ...config, plugins: config.plugins.filter((p) => !['terser', 'latchkey-size-report'].includes(p.name)) }

const bundle = await rollup(plain)
const { output } = await bundle.generate({ format: 'es' })
await bundle.close()
const chunk = output[0]

const rows = []
for (const [id, m] of Object.entries(chunk.modules)) {
  if (!m.code) continue
  // Keep every top-level declaration: the module is minified out of its bundle's context.
  const { code } = await minify(m.code, { module: false, compress: { toplevel: false, unused: false }, mangle: { toplevel: false } })
  rows.push({ module: relative(root, id).replace(/^node_modules\//, ''), rendered: m.renderedLength, min: code.length, gzip: gzipSize(code) })
}
rows.sort((a, b) => b.gzip - a.gzip)

const whole = await minify(chunk.code, terserOptions)
const code = whole.code
const literals = []
const walk = (node) => {
  if (!node || typeof node.type != 'string') return
  if (node.type == 'Literal' && typeof node.value == 'string') literals.push([node.start, node.end])
  if (node.type == 'TemplateElement') literals.push([node.start, node.end])
  for (const v of Object.values(node)) {
    if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v == 'object') walk(v)
  }
}
walk(parse(code, { ecmaVersion: 'latest', sourceType: 'module' }))
let stripped = ''
let at = 0
let stringBytes = 0
for (const [s, e] of literals.sort((a, b) => a[0] - b[0])) {
  if (e - s < 10) continue
  stringBytes += e - s
  const quote = code[s]
  stripped += code.slice(at, s) + (quote == '"' || quote == "'" ? quote + quote : '')
  at = e
}
stripped += code.slice(at)

console.log(`${minNames[name]}: ${code.length} B minified, ${gzipSize(code)} B min+gzip\n`)
console.log('| module | rendered | minified alone | min+gzip alone |')
console.log('| --- | ---: | ---: | ---: |')
for (const r of rows) console.log(`| ${r.module} | ${r.rendered} | ${r.min} | ${r.gzip} |`)
console.log(
  `\nstring literals of 10+ characters: ${stringBytes} B of the minified code; emptying them all would save ` +
    `${gzipSize(code) - gzipSize(stripped)} B of min+gzip`,
)
