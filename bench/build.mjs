// What both benches share: rebuilding the package output they measure when src/ is newer, the
// report's machine line and table, and where a report is written.
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
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

/**
 * The machine a run measured, for the report: CPU, cores, memory, OS, the runtimes, and the load
 * average taken when the run started.
 * @param {number[]} load `os.loadavg()` at the start
 * @param {string} runtimes e.g. `Node v20.20.2`
 */
export function describeMachine(load, runtimes) {
  const cpus = os.cpus()
  return (
    `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
    `${os.type()} ${os.release()}, ${runtimes}; load average ${load.map((l) => l.toFixed(1)).join(' / ')} (1/5/15 min) at the start`
  )
}

/**
 * The markdown table of a run's figures, each with its goal and whether it was met.
 * @param {{ id: string, what: string, ratio: number, goal: number | null }[]} results
 */
export function resultTable(results) {
  return [
    '| figure | measured | goal |',
    '| --- | ---: | ---: |',
    ...results.map((r) => `| (${r.id}) ${r.what} | **${r.ratio.toFixed(2)}×** | ${r.goal == null ? '—' : '≤ ' + r.goal + '×' + (r.ratio <= r.goal ? '' : ' (missed)')} |`),
  ].join('\n')
}

/**
 * Writes a full run's report to bench/results/ (ignored by git), and also to the tracked
 * bench/<name> that the README quotes only when asked: `--update` or `LATCHKEY_BENCH_UPDATE=1`.
 * A bench run never leaves the checkout dirty by itself.
 * @param {string} name e.g. 'last-run.md'
 * @param {string} text the report
 * @param {string[]} args the command-line arguments
 */
export function saveReport(name, text, args) {
  mkdirSync(here('results'), { recursive: true })
  writeFileSync(here('results/' + name), text)
  const update = args.includes('--update') || process.env.LATCHKEY_BENCH_UPDATE === '1'
  if (update) writeFileSync(here(name), text)
  console.log(`report: bench/results/${name}${update ? ` and bench/${name}` : ' (bench/' + name + ' unchanged; --update writes it)'}`)
}
