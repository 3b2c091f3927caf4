// The messages between a page and the worker that holds its session. Never a token: requests and
// responses travel without the Authorization and DPoP headers (the worker adds them to its own copy
// and the response never had them), events and errors are token-free by the core's invariant 6.
import { LatchkeyError, errorKinds, isLatchkeyError, type LatchkeyErrorCode } from '../errors.js'
import type { AuthorizationParameters, SessionInfo, TokenManager, TokenManagerEvents, TokenResponse } from '../types.js'

/**
 * Anything that speaks `postMessage` with a `message` event: a `Worker` on the page, the worker's
 * global scope inside it, or either end of a `MessageChannel`.
 */
export interface MessageEndpoint {
  postMessage(message: unknown, transfer: Transferable[]): void
  /** `error` (a `Worker`'s): the worker's script failed to load or threw. */
  addEventListener(type: 'message' | 'error', listener: (event: MessageEvent) => void): void
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void
  /** A `MessagePort` delivers nothing before `start()`; a worker has no such method. */
  start?(): void
}

/** An error as it crosses: its class by `code` (latchkey errors) or by `name` (TypeError, AbortError, …). */
export interface WireError {
  name: string
  message: string
  code?: LatchkeyErrorCode
  error?: string
  description?: string
  status?: number
  retryAfter?: number
}

/**
 * A request the page sends: what `fetch` needs, the body read into bytes (replayable) or a
 * `ReadableStream` (sent once, never replayed, as in the core).
 */
export interface WireRequest {
  url: string
  init: RequestInit & { duplex?: 'half' }
  /** The page's request has a signal: the worker keeps a way to abort it. */
  abortable?: 1
}

/** A response as it crosses: `b` is the body (bytes, a transferred stream, or null). */
export interface WireResponse {
  status: number
  statusText: string
  headers: [string, string][]
  url: string
  b: ArrayBuffer | ReadableStream<Uint8Array> | null
}

/** An authorization request URL, and what waits in the page's sessionStorage until its redirect. */
export interface PendingLogin {
  url: string
  record: [key: string, value: string]
}

/** The session of each origin ('' = the default one), as `status()` reports it. */
export type Snapshot = Record<string, SessionInfo | undefined>

/**
 * What the page may ask of the worker: the one protocol both realms implement (serve.ts answers
 * it, connect.ts calls it). No method returns a token: `getAccessToken` is not one of them.
 */
export interface WorkerMethods {
  restore: TokenManager['restore']
  setTokens(response: TokenResponse): Promise<void>
  exchangeCode: TokenManager['exchangeCode']
  dpopThumbprint: TokenManager['dpopThumbprint']
  refresh: TokenManager['refresh']
  logout: TokenManager['logout']
  fetch(request: WireRequest): Promise<WireResponse>
  /**
   * Builds the login request where the key is; what waits for the redirect goes to the page.
   * `bind`: the worker outlives the login, so the code may be bound to its key (`dpop_jkt`).
   */
  authorize(parameters: AuthorizationParameters, bind: boolean): Promise<PendingLogin>
  /**
   * SharedWorker: the page holds the Web Lock `lock` for as long as it lives; once the worker is
   * granted it, the page is gone and its connection is released.
   */
  hold(lock: string): void
  /**
   * Completes a login: the redirect URL, and what waited for it in the page's sessionStorage under
   * its `state` (`null` when nothing did); the worker checks both (state, `iss`, `error`, `code`).
   */
  redirect(url: string, saved: string | null): Promise<void>
  dispose(): void
}

export type Method = keyof WorkerMethods

/** The arguments of method `M` as they cross. */
export type Arguments<M extends Method> = Parameters<WorkerMethods[M]>

/** What method `M` resolves with. */
export type Result<M extends Method> = Awaited<ReturnType<WorkerMethods[M]>>

/** A call of method `M` (legend: `i` call id, `m` method, `a` arguments). */
export type Call<M extends Method = Method> = { [K in M]: { i: number; m: K; a: Arguments<K> } }[M]

/**
 * Page → worker: a call, or `x`: abort call `i`.
 * Worker → page: a reply `{ i, r }` or `{ i, e }`, or an event `{ v, d }`; `s`, the session
 * snapshot after it, when it differs from the last one sent.
 */
export type ToWorker = Call | { i: number; x: 1 }
export type ToPage = (Reply | EventMessage | Hello) & { s?: Snapshot }

/** The worker listens on this connection; `h`, how many connections it serves (diagnostics, tests). */
export type Hello = { h: number }

/** The answer to call `i`: its result `r`, or its error `e`. */
export type Reply = { i: number; r?: unknown; e?: WireError | undefined }

/** An event as it crosses: its error, if any, as a {@link WireError}. */
export type WireEvent<E extends keyof TokenManagerEvents> = TokenManagerEvents[E] extends { error: unknown }
  ? Omit<TokenManagerEvents[E], 'error'> & { error: LatchkeyWireError }
  : TokenManagerEvents[E]

/** Event `v` of the worker's token manager, with its state `d`. */
export type EventMessage<E extends keyof TokenManagerEvents = keyof TokenManagerEvents> = { [K in E]: { v: K; d: WireEvent<K> } }[E]

/** An error as it crosses (no `cause`, no `response`: the message and the OAuth fields are all). */
export function wireError(e: LatchkeyError): LatchkeyWireError
export function wireError(e: unknown): WireError
export function wireError(e: unknown): WireError {
  const { name = 'Error', message = String(e), code, error, description, status, retryAfter } = (e ?? {}) as Partial<LatchkeyError>
  const wire: WireError = { name, message }
  if (isLatchkeyError(e))
    for (const [key, value] of Object.entries({ code, error, description, status, retryAfter })) if (value !== undefined) Object.assign(wire, { [key]: value })
  return wire
}


/** A {@link LatchkeyError} as it crosses. */
export type LatchkeyWireError = WireError & { code: LatchkeyErrorCode }

/** Rebuilds a crossed error with the class it had, so `isLatchkeyError` and `instanceof` work. */
export function fromWire(e: LatchkeyWireError): LatchkeyError
export function fromWire(e: WireError): Error
export function fromWire({ name, message, code, status, ...fields }: WireError): Error {
  if (!code) return name == 'TypeError' ? new TypeError(message) : new DOMException(message, name)
  const Kind = errorKinds.find((K) => new K('').code == code)
  return Object.assign(Kind ? new Kind(message, fields) : new LatchkeyError(code, message, fields), { name }, status && { status })
}
