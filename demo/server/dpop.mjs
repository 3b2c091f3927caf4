// RFC 9449 DPoP proof verification for the demo API and the unit tests.
// Every check of RFC 9449 §4.3 is here; a proof that passes proves possession of the key whose
// RFC 7638 thumbprint is returned, for this method and URL, within the time window, exactly once.

import { createHash, randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK } from 'jose'

/** Asymmetric JWS algorithms accepted for proofs; 'none' and every HS* are refused by omission. */
export const DPOP_ALGORITHMS = Object.freeze([
  'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519',
])

// JWK members that only a private (or symmetric) key has: a proof header must never carry them.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
// A proof is a few hundred bytes; the cap keeps a hostile header from costing real work.
const MAX_PROOF_LENGTH = 8192
const MAX_JTI_LENGTH = 512

/**
 * A DPoP verification failure, carrying the RFC 9449 error code for the `WWW-Authenticate`
 * (resource server) or JSON error body (authorization server).
 */
export class DPoPError extends Error {
  /**
   * @param {'invalid_dpop_proof' | 'use_dpop_nonce'} error RFC 9449 error code
   * @param {string} description human-readable reason; never contains a token or proof
   */
  constructor(error, description) {
    super(`${error}: ${description}`)
    this.name = 'DPoPError'
    /** @type {'invalid_dpop_proof' | 'use_dpop_nonce'} */
    this.error = error
    this.description = description
  }
}

/**
 * Server-chosen DPoP nonces (RFC 9449 §8). The current and the previous nonce are valid, so a
 * client holding a nonce from just before a rotation is not bounced.
 *
 * Rotation is lazy (checked on each call) rather than timer-driven, so an idle source keeps no
 * process alive and needs no cleanup.
 *
 * @param {{ rotateEveryMs?: number, now?: () => number }} [options]
 *   `rotateEveryMs`: rotate automatically after this long; omit to rotate only on `rotate()`.
 * @returns {{ current(): string, isValid(nonce: unknown): boolean, rotate(): string }}
 * @example
 * const nonces = createNonceSource({ rotateEveryMs: 60_000 })
 * res.setHeader('DPoP-Nonce', nonces.current())
 */
export function createNonceSource({ rotateEveryMs, now = Date.now } = {}) {
  if (rotateEveryMs !== undefined && !(Number.isFinite(rotateEveryMs) && rotateEveryMs > 0)) {
    throw new TypeError('rotateEveryMs must be a positive number of milliseconds')
  }
  const fresh = () => randomBytes(24).toString('base64url')
  let current = fresh()
  let previous = null
  let rotatedAt = now()

  function rotate() {
    previous = current
    current = fresh()
    rotatedAt = now()
    return current
  }

  function catchUp() {
    if (rotateEveryMs === undefined) return
    const elapsed = now() - rotatedAt
    if (elapsed < rotateEveryMs) return
    rotate()
    // Two periods idle: the nonce before the last rotation is stale too.
    if (elapsed >= 2 * rotateEveryMs) previous = null
  }

  return {
    current() {
      catchUp()
      return current
    },
    isValid(nonce) {
      catchUp()
      return typeof nonce === 'string' && nonce.length > 0 && (nonce === current || nonce === previous)
    },
    rotate,
  }
}

/**
 * Compares `htu` to the request URL as RFC 9449 §4.3 asks: without query and fragment, with the
 * scheme and host normalised by the WHATWG URL parser (case, default port).
 * @param {string} url
 */
function htuKey(url) {
  const u = new URL(url)
  return `${u.protocol}//${u.host}${u.pathname}`
}

/** @param {string} accessToken */
function accessTokenHash(accessToken) {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url')
}

function invalid(description) {
  return new DPoPError('invalid_dpop_proof', description)
}

/**
 * Creates a DPoP proof verifier with its own replay cache.
 *
 * @param {object} [options]
 * @param {number} [options.maxAgeSeconds=60] how old a proof's `iat` may be
 * @param {number} [options.clockSkewSeconds=5] tolerance for client clocks, both directions
 * @param {ReturnType<typeof createNonceSource>} [options.nonces] when given, every proof must carry
 *   a nonce that this source accepts; otherwise `DPoPError('use_dpop_nonce')` is thrown
 * @param {number} [options.replayCacheSize=10000] maximum remembered `jti`s; the oldest are dropped
 *   first when full (after expired entries)
 * @param {readonly string[]} [options.algorithms] accepted JWS algorithms, default `DPOP_ALGORITHMS`
 * @param {() => number} [options.now] clock in milliseconds, for tests
 * @returns {{ verify(request: {
 *   proof: string | string[] | null | undefined,
 *   method: string,
 *   url: string,
 *   accessToken?: string,
 *   jkt?: string,
 * }): Promise<{ jkt: string, header: Record<string, unknown>, payload: Record<string, unknown> }> }}
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 * @example
 * const verifier = createDPoPVerifier({ nonces })
 * const { jkt } = await verifier.verify({ proof: req.headers.dpop, method: req.method, url, accessToken, jkt: claims.cnf.jkt })
 */
export function createDPoPVerifier({
  maxAgeSeconds = 60,
  clockSkewSeconds = 5,
  nonces,
  replayCacheSize = 10_000,
  algorithms = DPOP_ALGORITHMS,
  now = Date.now,
} = {}) {
  /** jti → epoch ms after which the proof is too old to be accepted anyway. */
  const seen = new Map()

  function pruneReplayCache(nowMs) {
    // Map iteration is insertion order and expiries follow iat, so expired entries sit at the
    // front: stop at the first live one to keep each insertion cheap.
    for (const [jti, expiresAt] of seen) {
      if (expiresAt > nowMs) break
      seen.delete(jti)
    }
    for (const jti of seen.keys()) {
      if (seen.size < replayCacheSize) break
      seen.delete(jti)
    }
  }

  async function verify({ proof, method, url, accessToken, jkt } = {}) {
    if (Array.isArray(proof)) {
      if (proof.length !== 1) throw invalid('exactly one DPoP header is required')
      proof = proof[0]
    }
    if (typeof proof !== 'string' || proof.length === 0) throw invalid('missing DPoP proof')
    // Node joins repeated unknown headers with ", "; a compact JWS never contains a comma.
    if (proof.includes(',')) throw invalid('exactly one DPoP header is required')
    if (proof.length > MAX_PROOF_LENGTH || !COMPACT_JWS.test(proof)) {
      throw invalid('DPoP proof is not a compact JWS')
    }

    let header
    try {
      header = decodeProtectedHeader(proof)
    } catch {
      throw invalid('DPoP proof header is not valid JSON')
    }
    if (header.typ !== 'dpop+jwt') throw invalid('typ must be dpop+jwt')
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
      throw invalid('alg is not an accepted asymmetric algorithm')
    }
    const jwk = header.jwk
    if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw invalid('jwk header is required')
    if (!['EC', 'RSA', 'OKP'].includes(jwk.kty)) throw invalid('jwk must be an asymmetric public key')
    if (PRIVATE_JWK_MEMBERS.some((member) => member in jwk)) throw invalid('jwk must not contain private key material')

    let payload
    try {
      const key = await importJWK(jwk, header.alg)
      const verified = await compactVerify(proof, key, { algorithms: [header.alg] })
      payload = JSON.parse(new TextDecoder().decode(verified.payload))
    } catch {
      throw invalid('DPoP proof signature or key is invalid')
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw invalid('payload must be a JSON object')

    const { jti, htm, htu, iat } = payload
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw invalid('jti is required')
    if (typeof htm !== 'string' || htm !== method) throw invalid('htm does not match the request method')
    let htuMatches = false
    try {
      htuMatches = typeof htu === 'string' && htuKey(htu) === htuKey(url)
    } catch {
      // An unparsable htu is simply not a match.
    }
    if (!htuMatches) throw invalid('htu does not match the request URL')

    const nowMs = now()
    const nowSeconds = Math.floor(nowMs / 1000)
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('iat is required')
    if (iat > nowSeconds + clockSkewSeconds) throw invalid('iat is in the future')
    if (iat < nowSeconds - maxAgeSeconds - clockSkewSeconds) throw invalid('DPoP proof is too old')

    if (accessToken !== undefined) {
      if (typeof payload.ath !== 'string' || payload.ath !== accessTokenHash(accessToken)) {
        throw invalid('ath does not match the access token')
      }
    }

    const thumbprint = await calculateJwkThumbprint(jwk, 'sha256')
    if (jkt !== undefined && thumbprint !== jkt) throw invalid('DPoP key does not match the token binding')

    // Checked last so that use_dpop_nonce means "everything else was fine, retry with this nonce".
    if (nonces && !nonces.isValid(payload.nonce)) {
      throw new DPoPError('use_dpop_nonce', payload.nonce === undefined ? 'nonce is required' : 'nonce is stale')
    }

    // Check-and-record with no await in between, so two concurrent uses of one proof cannot both pass.
    if (seen.has(jti) && seen.get(jti) > nowMs) throw invalid('jti has been used before')
    pruneReplayCache(nowMs)
    seen.set(jti, (iat + maxAgeSeconds + clockSkewSeconds) * 1000 + 1000)

    return { jkt: thumbprint, header, payload }
  }

  return { verify }
}
