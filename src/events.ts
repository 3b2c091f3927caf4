import type { LatchkeyError } from './errors.js'
import type { Measurement, TokenManager, TokenManagerEvents } from './types.js'
import { now } from './util.js'

/** Tells every listener of `type`; a throwing listener neither stops the others nor the SDK. */
export type Emit = <E extends keyof TokenManagerEvents>(type: E, state: TokenManagerEvents[E]) => void

/** The listeners of one token manager. Event states never hold a token (invariant 6). */
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

/**
 * Runs one token request measured as `m`, emitted as it starts (before any await, so that a
 * listener reads the caller's context) and as it ends (`token_request`: when it went out, how
 * long it took, and of a failure only the fields that never hold a token).
 */
export async function measured<T>(emit: Emit, m: Measurement, request: () => Promise<T>): Promise<T> {
  emit('measure', m)
  const time = (m.time = now())
  try {
    return await request()
  } catch (e) {
    const error = e as LatchkeyError | undefined
    // Something not latchkey's (a key store that failed while signing the proof) is `error`.
    m.outcome = error?.error ?? error?.code ?? 'error'
    m.retryAfter = error?.retryAfter
    throw e
  } finally {
    m.name = 'token_request'
    m.duration = now() - time
    emit('measure', m)
  }
}
