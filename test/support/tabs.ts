// An in-process stand-in for the tabs of one origin: a FIFO lock per name, a channel that delivers
// each message to every other tab after a delay (so a lock can be granted before the last holder's
// message arrives, as happens in browsers), shared counters, and session holders for peers().
import type { CrossTab, SharedCounters, TabMessage } from '../../src/index.js'

export function createTabsHub({ delayMs = 0 }: { delayMs?: number | (() => number) } = {}) {
  const chains = new Map<string, Promise<unknown>>()
  const tabs = new Set<{ listeners: Set<(m: TabMessage) => void> }>()
  const holders = new Set<object>()
  let counters: SharedCounters = { gen: 0, epoch: 0 }
  const messages: TabMessage[] = []
  const delay = () => (typeof delayMs === 'function' ? delayMs() : delayMs)
  return {
    messages,
    counters: () => counters,
    tab(): CrossTab & { close(): void } {
      const me = { listeners: new Set<(m: TabMessage) => void>() }
      tabs.add(me)
      return {
        lock(name, fn) {
          const run = (chains.get(name) ?? Promise.resolve()).then(fn, fn)
          chains.set(name, run.catch(() => {}))
          return run
        },
        post(message) {
          messages.push(message)
          const copy = structuredClone(message)
          for (const other of tabs)
            if (other !== me) setTimeout(() => other.listeners.forEach((fn) => fn(structuredClone(copy))), delay())
        },
        listen(fn) {
          me.listeners.add(fn)
          return () => me.listeners.delete(fn)
        },
        read: async () => ({ ...counters }),
        write: async (value) => void (counters = { ...value }),
        peers: async () => [...holders].some((h) => h !== me),
        hold: (holding) => void (holding ? holders.add(me) : holders.delete(me)),
        close() {
          tabs.delete(me)
          holders.delete(me)
        },
      }
    },
  }
}
