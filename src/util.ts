export const encoder = /* @__PURE__ */ new TextEncoder()

export const b64u = (bytes: ArrayBuffer | Uint8Array): string =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')

export const b64uJSON = (value: unknown): string => b64u(encoder.encode(JSON.stringify(value)))

/** The WebCrypto every cryptographic operation goes through (the `crypto` option); `randomUUID` is optional. */
export type WebCrypto = Pick<Crypto, 'subtle' | 'getRandomValues'> & { randomUUID?(): string }

export const random = (crypto: WebCrypto, bytes = 32): string => b64u(crypto.getRandomValues(new Uint8Array(bytes)))

export const sha256 = async (crypto: WebCrypto, text: string): Promise<string> =>
  b64u(await crypto.subtle.digest('SHA-256', encoder.encode(text)))

export const now = (): number => Date.now()

export const isObject = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && !Array.isArray(v)

const LOOPBACK = /^(localhost|127\.[\d.]+|\[::1\])$/

/** Throws the TypeError of a bad argument, naming it; `why` empty: "`name` is required". */
export const invalid = (name: string, why = 'invalid'): never => {
  throw new TypeError(name + (why ? ': ' + why : ' is required'))
}

/** A timeout in seconds as ms, or the TypeError naming it: a positive number that `setTimeout` holds (it fires at once past 2³¹ − 1 ms). */
export const timeoutOf = (seconds: unknown, name: string): number =>
  typeof seconds == 'number' && seconds > 0 && seconds * 1000 <= 2 ** 31 - 1 ? seconds * 1000 : invalid(name)

/** An absolute https URL, or http on a loopback host (invariant 2: plain http only on loopback). */
export const secureURL = (value: unknown): URL | undefined => {
  let url: URL | undefined
  try {
    url = new URL(value as string)
  } catch {}
  return url && (url.protocol == 'https:' || (url.protocol == 'http:' && LOOPBACK.test(url.hostname))) ? url : undefined
}

/** {@link secureURL}, or the TypeError that names the argument. */
export const checkURL = (value: unknown, name: string): URL => secureURL(value) ?? invalid(name, value ? 'not https or loopback' : '')

/** The most bytes of a server's body latchkey reads: token responses and metadata are a few kB. */
const MAX_BODY = 1_048_576 // 2²⁰, as a literal: bundlers drop an unused literal, not an unused 2 ** 20

/**
 * Invariant 13: a response body as JSON, or `undefined` (which every caller refuses as
 * `invalid_response`); read as a stream, and past {@link MAX_BODY} not read any further (the rest
 * is cancelled) nor parsed. Every body latchkey reads comes here. The parser's message quotes the
 * body: it is never kept.
 */
export const readJSON = async (res: Response): Promise<unknown> => {
  let size = 0
  const { body } = res
  // Where a response has no stream (React Native's fetch, without TransformStream too), its text
  // is read whole, then measured.
  const text = await (
    body ? new Response(body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ transform: (chunk, out) => ((size += chunk.length) > MAX_BODY ? out.terminate() : out.enqueue(chunk)) }))) : res
  ).text()
  if ((size || text.length) <= MAX_BODY)
    try {
      return JSON.parse(text)
    } catch {}
}

/** The page's URL, to resolve relative URLs against (none in workers without a location, or in Node). */
export const here = () => globalThis.location?.href

export const offline = () => (globalThis.navigator as Navigator | undefined)?.onLine === false

/** Lets go of a response body that will not be read. */
export const discard = (res: Response) => void res.body?.cancel().catch(() => {})
