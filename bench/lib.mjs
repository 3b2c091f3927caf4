// Side-by-side measurement: two variants run in the same process, in alternating order round after
// round (A B, B A, A B, …), each round giving one ratio A/B; the figure is the median of those
// ratios. Slow phases of the machine (other processes, GC, CPU frequency) hit both variants of a
// round alike and drop out of the ratio; the median drops the rounds where they did not.

import { performance } from 'node:perf_hooks'

export const median = (values) => {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Runs `fn` `n` times one after the other; resolves with the elapsed milliseconds. */
export async function timeSequential(fn, n) {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await fn(i)
  return performance.now() - t0
}

/**
 * Runs `batches` batches of `width` calls of `fn` at once (`Promise.all`), one batch after the
 * other; resolves with the elapsed milliseconds. Both variants of a figure build their batches the
 * same way, so the array and the `Promise.all` cost the same on both sides.
 */
export async function timeConcurrent(fn, width, batches) {
  const t0 = performance.now()
  for (let i = 0; i < batches; i++) await Promise.all(Array.from({ length: width }, (_, j) => fn(i * width + j)))
  return performance.now() - t0
}

/** The interquartile range of per-round ratios, for a report's details: `0.97–1.04`. */
export const quartiles = (xs) => {
  const s = [...xs].sort((x, y) => x - y)
  return s[Math.floor((s.length - 1) / 4)].toFixed(2) + '–' + s[Math.ceil(((s.length - 1) * 3) / 4)].toFixed(2)
}

/**
 * Interleaved rounds of two variants.
 * @param {{ rounds: number, warmup?: number, a: () => Promise<number>, b: () => Promise<number> }} spec
 *   `a` and `b` each run one batch and resolve with its elapsed milliseconds.
 * @returns {Promise<{ ratio: number, a: number, b: number, ratios: number[] }>} median ratio a/b,
 *   and the median batch times of a and b.
 */
export async function sideBySide({ rounds, warmup = 2, a, b }) {
  for (let i = 0; i < warmup; i++) await a(), await b()
  const ta = []
  const tb = []
  const ratios = []
  for (let i = 0; i < rounds; i++) {
    let x, y
    if (i % 2 == 0) (x = await a()), (y = await b())
    else (y = await b()), (x = await a())
    ta.push(x)
    tb.push(y)
    ratios.push(x / y)
  }
  return { ratio: median(ratios), a: median(ta), b: median(tb), ratios }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

export const b64u = (bytes) => Buffer.from(bytes).toString('base64url')
