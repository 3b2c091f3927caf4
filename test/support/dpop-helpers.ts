// Helpers for the DPoP tests: decode and verify real proofs, a key store that records what it is
// given, and a recording forwarder for checking what reaches a server that does not check DPoP.
import type { IncomingHttpHeaders } from 'node:http'
import { createHash } from 'node:crypto'
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose'
import { expect } from 'vitest'
import type { KeyStore, TokenManager } from '../../src/index.js'
import { serve, type TokenServer } from './servers.js'

export interface DecodedProof {
  header: Record<string, unknown> & { jwk: JWK }
  payload: Record<string, unknown>
}

/** Decodes a proof and verifies its ES256 signature with the JWK in its own header; throws if it does not verify. */
export async function decodeProof(proof: string): Promise<DecodedProof> {
  const header = decodeProtectedHeader(proof) as DecodedProof['header']
  const key = await importJWK(header.jwk, 'ES256')
  const { payload } = await compactVerify(proof, key, { algorithms: ['ES256'] })
  return { header, payload: JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown> }
}

/** base64url(SHA-256(value)): the `ath` of an access token. */
export const ath = (value: string) => createHash('sha256').update(value, 'ascii').digest('base64url')

export interface ExpectedProof {
  method: string
  /** The exact expected `htu`. */
  htu: string
  /** The access token the request carried: `ath` must be its hash; absent → no `ath` claim at all. */
  accessToken?: string | undefined
  /** The nonce the proof must carry; `null` → no `nonce` claim at all; `undefined` → not checked. */
  nonce?: string | null
}

/** Decodes, verifies and checks every header parameter and claim of one proof (RFC 9449 §4.2). */
export async function checkProof(proof: string | undefined, expected: ExpectedProof): Promise<DecodedProof> {
  expect(typeof proof).toBe('string')
  const decoded = await decodeProof(proof!)
  const { header, payload } = decoded
  expect(Object.keys(header).sort()).toEqual(['alg', 'jwk', 'typ'])
  expect(header.typ).toBe('dpop+jwt')
  expect(header.alg).toBe('ES256')
  // Public only: exactly the four public members of a P-256 key, and no `d`.
  expect(Object.keys(header.jwk).sort()).toEqual(['crv', 'kty', 'x', 'y'])
  expect(header.jwk).toMatchObject({ kty: 'EC', crv: 'P-256' })
  expect(header.jwk.x).toMatch(/^[A-Za-z0-9_-]{43}$/)
  expect(header.jwk.y).toMatch(/^[A-Za-z0-9_-]{43}$/)
  expect(header.jwk).not.toHaveProperty('d')
  // A raw (r || s) ES256 signature is 64 bytes.
  expect(Buffer.from(proof!.split('.')[2]!, 'base64url')).toHaveLength(64)

  expect(typeof payload.jti).toBe('string')
  expect((payload.jti as string).length).toBeGreaterThanOrEqual(16)
  expect(payload.htm).toBe(expected.method)
  expect(payload.htu).toBe(expected.htu)
  expect(payload.htu).not.toMatch(/[?#]/)
  expect(Number.isInteger(payload.iat)).toBe(true)
  expect(Math.abs((payload.iat as number) - Date.now() / 1000)).toBeLessThan(10)
  if (expected.accessToken) expect(payload.ath).toBe(ath(expected.accessToken))
  else expect(payload).not.toHaveProperty('ath')
  if (expected.nonce === null) expect(payload).not.toHaveProperty('nonce')
  else if (expected.nonce !== undefined) expect(payload.nonce).toBe(expected.nonce)
  return decoded
}

export interface RecordingKeyStore extends KeyStore {
  map: Map<string, unknown>
  gets: string[]
  sets: { key: string; value: unknown }[]
  deletes: string[]
  /** The ECDSA key pairs the SDK stored (its DPoP keys), in order. */
  dpopSets(): { key: string; value: CryptoKeyPair }[]
}

const isEcdsaPair = (v: unknown): v is CryptoKeyPair =>
  !!v && typeof v == 'object' && (v as CryptoKeyPair).privateKey?.algorithm?.name === 'ECDSA'

/**
 * An in-memory key store that records every call. `failGet`/`failSet` make those calls reject with
 * the given error (as a private-mode IndexedDB that cannot clone a CryptoKey does).
 */
export function recordingKeyStore(failures: { failGet?: () => Error; failSet?: () => Error } = {}): RecordingKeyStore {
  const map = new Map<string, unknown>()
  const gets: string[] = []
  const sets: { key: string; value: unknown }[] = []
  const deletes: string[] = []
  return {
    map,
    gets,
    sets,
    deletes,
    dpopSets: () => sets.filter((s): s is { key: string; value: CryptoKeyPair } => isEcdsaPair(s.value)),
    async get(key) {
      gets.push(key)
      if (failures.failGet) throw failures.failGet()
      return map.get(key)
    },
    async set(key, value) {
      sets.push({ key, value })
      if (failures.failSet) throw failures.failSet()
      map.set(key, value)
    },
    async delete(key) {
      deletes.push(key)
      map.delete(key)
    },
  }
}

export interface ForwardedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
}

/**
 * A loopback server that records each request's headers and forwards it to `target` (an origin).
 * Only for servers that do not check DPoP: their `htu` check would see the forwarder's origin.
 */
export async function startRecorder(target: string) {
  const requests: ForwardedRequest[] = []
  const served = await serve(async (req, res) => {
    requests.push({ method: req.method!, path: req.url!, headers: { ...req.headers } })
    const headers = new Headers()
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v == 'string' && !['host', 'connection', 'content-length', 'keep-alive'].includes(k)) headers.set(k, v)
    const upstream = await fetch(target + req.url, {
      method: req.method!,
      headers,
      ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body: req.body }),
    })
    const out: Record<string, string> = {}
    for (const k of ['content-type', 'cache-control', 'dpop-nonce', 'www-authenticate']) {
      const v = upstream.headers.get(k)
      if (v !== null) out[k] = v
    }
    res.writeHead(upstream.status, out)
    res.end(Buffer.from(await upstream.arrayBuffer()))
  })
  return { ...served, requests }
}

/** Asserts that no string of `secrets` appears in an error (message, stack, cause, JSON) or any value. */
export function expectNoSecret(value: unknown, secrets: string[]) {
  const parts: string[] = []
  const visit = (v: unknown, depth: number) => {
    if (depth > 3 || v == null) return
    if (v instanceof Error) {
      parts.push(v.message, String(v.stack), String(v))
      for (const k of Object.keys(v)) visit((v as unknown as Record<string, unknown>)[k], depth + 1)
      visit((v as { cause?: unknown }).cause, depth + 1)
    } else if (typeof v == 'object') {
      try {
        parts.push(JSON.stringify(v))
      } catch {
        parts.push(String(v))
      }
      if (Array.isArray(v)) v.forEach((x) => visit(x, depth + 1))
      else for (const x of Object.values(v)) visit(x, depth + 1)
    } else parts.push(String(v))
  }
  visit(value, 0)
  const text = parts.join('\n')
  for (const s of secrets) if (s) expect(text).not.toContain(s)
}

/** Signs in through the authorization_code grant, which is what binds the tokens to the key. */
export const login = (tm: TokenManager, as: TokenServer) =>
  tm.exchangeCode({ code: as.code(), codeVerifier: 'x', redirectUri: 'http://127.0.0.1/cb' })

export const payloadOf = (proof: string) => JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>

/** The statuses each path was answered with, in order. */
export function attemptsByPath(requests: { path: string; status: number }[]) {
  const map = new Map<string, number[]>()
  for (const r of requests) map.set(r.path, [...(map.get(r.path) ?? []), r.status])
  return map
}
