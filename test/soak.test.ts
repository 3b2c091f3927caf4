// Long storms that prove their point by volume: run by `npm test`, left out of `npm run test:quick`.
import { describe, expect, it } from 'vitest'
import { serve, startTokenServer } from './support/servers.js'
import { cleanups, manager, setup } from './support/harness.js'
import { attemptsByPath, decodeProof, login, payloadOf } from './support/dpop-helpers.js'

describe('DPoP under volume', () => {
  it('500 concurrent requests meeting a nonce challenge: each retried at most once, all succeed', async () => {
    const { as, api } = await setup({ dpop: true }, { requireNonce: true })
    const tm = manager(as, [api.origin])
    await login(tm, as)
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => tm.fetch(api.url('/c/' + i))))
    const attempts = attemptsByPath(api.requests)
    for (let i = 0; i < 500; i++) expect(attempts.get('/c/' + i)!.length).toBeLessThanOrEqual(2)
    const failed = results.filter((r) => r.status !== 200).length
    expect(failed, `${failed} of 500 requests were answered 401 use_dpop_nonce without a retry`).toBe(0)
    expect(as.counts.refresh).toBe(0)
  })

  it('10 000 proofs through tm.fetch and refreshes: no jti repeats', async () => {
    // Bound tokens from the real token server; the bulk of the proofs go to a plain loopback server
    // that only records them, so the test measures the client, not the verifier.
    const as = await startTokenServer({ dpop: true })
    cleanups.push(as.close)
    const received: string[] = []
    const sink = await serve((req, res) => {
      received.push(String(req.headers.dpop))
      res.writeHead(204).end()
    })
    cleanups.push(sink.close)
    const tm = manager(as, [sink.origin])
    await login(tm, as)
    for (let batch = 0; batch < 40; batch++) {
      const results = await Promise.all(Array.from({ length: 250 }, (_, i) => tm.fetch(sink.url(`/j/${batch}/${i}`), { method: i % 2 ? 'POST' : 'GET' })))
      expect(results.every((r) => r.status === 204)).toBe(true)
      if (batch % 8 === 7) await tm.refresh()
    }
    expect(as.counts.refresh).toBe(5)
    const proofs = [...received, ...as.counts.proofs]
    expect(proofs).toHaveLength(10_006)
    const jtis = new Set(proofs.map((p) => payloadOf(p).jti))
    expect(jtis.size).toBe(proofs.length)
    // Spot-check that these are complete, valid proofs.
    for (const p of [received[0]!, received.at(-1)!, as.counts.proofs.at(-1)!]) await decodeProof(p)
  }, 60_000) // about 14 s on a busy 2-core machine; the headroom is for parallel test files
})
