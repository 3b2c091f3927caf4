import type { TokenManager, TokenManagerEvents } from './types.js'

/** Tells every listener of `type`; a throwing listener neither stops the others nor the SDK. */
export type Emit = <E extends keyof TokenManagerEvents>(type: E, state: TokenManagerEvents[E]) => void

/** The listeners of one token manager. Event states never hold a token (DESIGN invariant 6). */
export function createEvents() {
  const listeners = new Map<string, Set<(state: never) => void>>()
  const emit: Emit = (type, state) =>
    listeners.get(type)?.forEach((fn) => {
      try {
        ;(fn as (s: typeof state) => void)(state)
      } catch (e) {
        setTimeout(() => {
          throw e
        })
      }
    })
  const on: TokenManager['on'] = (type, listener) => {
    let set = listeners.get(type)
    if (!set) listeners.set(type, (set = new Set()))
    set.add(listener)
    return () => void set.delete(listener)
  }
  return { emit, on }
}

/** Emits a `warning` (something degraded without failing); the message is the code in words. */
export const warner =
  (emit: Emit) =>
  (code: string, message = code.replace(/_/g, ' ')) =>
    emit('warning', { code, message })
