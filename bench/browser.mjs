// `npm run bench:browser`: figures (b), (b16), (c) and (c′) of bench/run.mjs again, measured inside real
// Chromium (Debian's /usr/bin/chromium; driven by Playwright, then with nothing attached) against a cross-origin loopback API,
// and (w), worker mode's tm.fetch against the in-page one. See bench/README.md, "In Chromium".
//
//   node bench/browser.mjs [--quick] [--only b,b16,c,w] [--update]
//
// Runs the built browser packages (dist/latchkey.min.js, dist/worker.min.js; rebuilt first when
// older than src/). Prints a Markdown table and, after a full run, writes it with the machine and
// browser to bench/results/last-run-browser.md ((b), (b16), (c)) and bench/results/last-run-worker.md
// ((w)); with --update also to the tracked bench/last-run-browser.md and bench/last-run-worker.md.
// Stops itself: bounded loops, and a watchdog that ends the run.

import { fork, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { describeMachine, ensureBuilt, resultTable, saveReport } from './build.mjs'
import { quartiles } from './lib.mjs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const figures = ['b', 'b16', 'c', 'w', 'wd', 'ws']
// (w′) runs only when asked for (`--only w,w'`): a reference for (w), not a figure with a goal.
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : figures
const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const started = performance.now()
const load = os.loadavg()

if (![...figures, "w'"].some((id) => only.includes(id))) {
  console.log("bench:browser: nothing to run (it measures b, b16, c, w, w', wd and ws)")
  process.exit(0)
}

// --- the built package -------------------------------------------------------------------------
// The core's browser build, and worker mode's; ky.min.js is not needed here.
await ensureBuilt('dist/latchkey.min.js', ({ min, entries }) => min[Object.keys(entries).indexOf('index')])
await ensureBuilt('dist/worker.min.js', ({ min, entries }) => min[Object.keys(entries).indexOf('worker')])

// --- everything that must stop: servers, browsers, profile dirs --------------------------------
let child
const live = new Set() // async functions that close a browser and remove its profile
const stop = async () => {
  for (const close of live) await close()
  if (child?.connected) child.disconnect()
  child?.kill()
}
const watchdog = setTimeout(async () => {
  console.error('bench:browser: still running after 5 minutes, stopping')
  await stop()
  process.exit(1)
}, 300_000)
watchdog.unref()

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
const profileDir = () => mkdtemp(join(os.tmpdir(), 'latchkey-bench-'))

/**
 * Driven by Playwright: one page, each step a `page.evaluate`. Playwright's connection to the
 * browser reports every request (the DevTools network domain), work that runs on the page's
 * thread on both sides of every ratio.
 */
async function* withPlaywright(url, steps, spec) {
  const profile = await profileDir()
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', args: ARGS })
  const close = async () => (await context.close().catch(() => {}), await rm(profile, { recursive: true, force: true }))
  live.add(close)
  try {
    const page = context.pages()[0] ?? (await context.newPage())
    page.on('pageerror', (e) => console.error('page error:', e.message))
    await page.goto(url)
    await page.waitForFunction(() => 'latchkeyBench' in window, null, { timeout: 10_000 })
    browserVersion ??= await page.evaluate(async () => {
      const { fullVersionList = [] } = (await navigator.userAgentData?.getHighEntropyValues(['fullVersionList'])) ?? {}
      const v = fullVersionList.find((b) => /^Chrom/.test(b.brand))
      return v ? 'Chromium ' + v.version : navigator.userAgent
    })
    for (const id of steps) yield { id, result: await page.evaluate(([id, spec]) => window.latchkeyBench.run(id, spec), [id, spec]) }
  } finally {
    live.delete(close)
    await close()
  }
}

/**
 * The same page in the same Chromium with the same flags, started as a plain process with nothing
 * attached to it: the page runs every step by itself and posts each result to the page server.
 */
async function* direct(url, steps, spec) {
  const profile = await profileDir()
  const results = []
  let wake = () => {}
  const onMessage = (m) => m.result && (results.push(m.result), wake())
  child.on('message', onMessage)
  const target = url + '?run=' + encodeURIComponent(JSON.stringify({ steps, ...spec }))
  const browser = spawn('/usr/bin/chromium', [...ARGS, '--user-data-dir=' + profile, target], { stdio: 'ignore' })
  const exited = new Promise((resolve) => browser.once('exit', resolve))
  const close = async () => {
    child.off('message', onMessage)
    if (browser.exitCode == null) browser.kill()
    await exited
    await rm(profile, { recursive: true, force: true })
  }
  live.add(close)
  try {
    for (const id of steps) {
      while (!results.length) {
        const gone = await Promise.race([new Promise((resolve) => (wake = resolve)), exited.then(() => true)])
        if (gone === true && !results.length) throw new Error('Chromium exited before the run finished')
      }
      const r = results.shift()
      if (r.id != id || r.error) throw new Error(`step ${id}: ${r.error ?? 'got ' + r.id}`)
      yield r
    }
  } finally {
    live.delete(close)
    await close()
  }
}

let browserVersion
const results = []
try {
  // --- the loopback servers, in a child process ------------------------------------------------
  // Not in this process: Playwright reports every request of the page to this process, and a
  // server here would wait behind that work (and it behind the server), adding the same delay to
  // both sides of every ratio and so flattening it.
  child = fork(here('browser-server.mjs'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const { pagePort, apiPort } = await new Promise((resolve, reject) => (child.once('message', resolve), child.once('error', reject)))
  const pageURL = `http://127.0.0.1:${pagePort}/`
  const api = `http://127.0.0.1:${apiPort}`

  const at = 'at-' + Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString('base64url')
  const n = 50
  const rounds = quick ? 11 : 41
  // (b16): short rounds, many of them, as in Node: two batches of 16 concurrent requests a side.
  const width = 16
  const batches = 2
  const concurrentRounds = quick ? 31 : 101
  const spec = { api, at, n, rounds, width, batches, concurrentRounds }
  const steps = [...(only.includes('b') ? ['b'] : []), ...(only.includes('b16') ? ['b16'] : []), ...(only.includes('c') ? ['setup', 'c', "c'"] : []), ...(only.includes('w') ? ['w'] : []), ...(only.includes("w'") ? ["w'"] : []), ...['wd', 'ws'].filter((id) => only.includes(id))]
  const us = (ms, count = n) => ((ms / count) * 1000).toFixed(0) + ' µs'
  const what = {
    b: ['tm.fetch with a Bearer token vs raw fetch, cross-origin loopback HTTP', 1.05, 'raw fetch'],
    b16: ['tm.fetch with a Bearer token vs raw fetch, 16 concurrent requests, cross-origin loopback HTTP', 1.05, 'raw fetch'],
    c: ['tm.fetch with DPoP vs raw fetch with the same headers, cross-origin loopback HTTP', 1.45, 'raw fetch'],
    "c'": ['tm.fetch with DPoP vs the floor of a DPoP request (1 sign + 1 digest + raw fetch with the same headers)', null, 'floor'],
    w: ['worker mode: tm.fetch through connectTokenManager vs in-page tm.fetch, both DPoP, cross-origin loopback HTTP', 1.1, 'in-page tm.fetch', 'worker-mode tm.fetch'],
    "w'": ['the floor under (w): the same core in a worker behind one bare message each way vs in-page tm.fetch', null, 'in-page tm.fetch', 'floor worker'],
    wd: ["worker mode, dedicated Worker: tm.fetch through connectTokenManager vs the floor (w′) in the same rounds, DPoP, cross-origin loopback HTTP", 1.03, 'floor worker', 'worker-mode tm.fetch'],
    ws: ["worker mode, SharedWorker: tm.fetch through connectTokenManager vs the floor (w′) in the same rounds, DPoP, cross-origin loopback HTTP", 1.03, 'floor worker', 'worker-mode tm.fetch'],
  }
  const modes = [
    ['Chromium, driven by Playwright', withPlaywright],
    ['Chromium, nothing attached', direct],
  ]
  for (const [where, drive] of modes) {
    console.log(`${where}…`)
    for await (const { id, result: r } of drive(pageURL, steps, spec)) {
      if (id == 'setup') {
        // The proofs being timed are real ones: check one with the demo API's RFC 9449 verifier.
        const { createDPoPVerifier } = await import('../demo/server/dpop.mjs')
        await createDPoPVerifier().verify({ proof: r.proof, method: 'GET', url: r.url, accessToken: at })
        if (r.authorization != 'DPoP ' + at) throw new Error('the DPoP session sent no DPoP authorization header')
        continue
      }
      const [text, goal, other, measured = 'tm.fetch'] = what[id]
      const count = id == 'b16' ? width * batches : n
      const shape = id == 'b16' ? `${batches} batches of ${width} concurrent requests` : `${n} sequential requests`
      const refreshed = id != 'b16' ? '' : `, ${r.refreshes} refreshes while timing${r.refreshes ? ' (should be 0: FAILED)' : ''}`
      if (r.refreshes) process.exitCode = 1
      const detail =
        `${measured} ${us(r.a, count)} per request, ${other} ${us(r.b, count)}; per-round ratios ${quartiles(r.ratios)} (interquartile); ` +
        `${id == 'b16' ? concurrentRounds : rounds} rounds × ${shape}; ${r.requests} API requests, ${r.preflight} preflight${r.preflight == 1 ? '' : 's'}${refreshed}`
      results.push({ id, what: `${text}, ${where}`, ratio: r.ratio, goal, detail })
      const mark = goal == null ? '' : r.ratio <= goal ? '  (goal ≤ ' + goal + '×: met)' : '  (goal ≤ ' + goal + '×: MISSED)'
      console.log(`(${id}) ${text}: ${r.ratio.toFixed(3)}×${mark}\n     ${detail}`)
    }
  }

  // --- report ------------------------------------------------------------------------------------
  const machine = describeMachine(load, `${browserVersion ?? 'Chromium'} (headless), Node ${process.version}`)
  const when = new Date().toISOString().slice(0, 10)
  const report = (title, rows) =>
    `## ${title}\n\nMeasured ${when} with \`npm run bench:browser\`${quick ? ' --quick' : ''} on: ${machine}.\n\n${resultTable(rows)}\n\n` +
    `Details:\n\n${rows.map((r) => `- (${r.id}) ${r.what.split(', ').at(-1)}: ${r.detail}`).join('\n')}\n`
  const core = results.filter((r) => !r.id.startsWith('w'))
  const worker = results.filter((r) => r.id.startsWith('w'))
  const text = report('Chromium', core)
  const workerText = report('Chromium: worker mode', worker)
  if (core.length) console.log('\n' + text)
  if (worker.length) console.log('\n' + workerText)
  console.log(`bench:browser took ${((performance.now() - started) / 1000).toFixed(0)} s`)
  if (!quick && only.includes('b') && only.includes('c')) saveReport('last-run-browser.md', text, args)
  if (!quick && only.includes('w')) saveReport('last-run-worker.md', workerText, args)
} catch (e) {
  console.error(e)
  process.exitCode = 1
} finally {
  clearTimeout(watchdog)
  await stop()
}
