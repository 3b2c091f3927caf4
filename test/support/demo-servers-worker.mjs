// The demo's authorization server (oidc-provider) and DPoP-checking API in a worker thread: a realm
// of their own, so that a test may take the browser globals (crypto among them, which jose inside
// both servers needs) out of its own realm, or move its own clock, while the servers keep theirs.
//
// workerData: { redirectUri, requireNonce = true, accessTokenTTL = 60 }.
// Posts the endpoints once listening; answers 'counts' with both servers' counters. Ended by terminate().
import { parentPort, workerData } from 'node:worker_threads'
import { startApiServer } from '../../demo/server/api.mjs'
import { startAuthServer } from '../../demo/server/as.mjs'

const { redirectUri, requireNonce = true, accessTokenTTL = 60 } = workerData
const api = await startApiServer({ requireNonce })
const as = await startAuthServer({ resource: api.origin, redirectUris: [redirectUri], requireNonce, accessTokenTTL })
api.setIssuer(as.issuer)

parentPort.on('message', (message) => {
  if (message == 'counts') parentPort.postMessage({ as: as.counts, api: api.counts })
})
parentPort.postMessage({
  issuer: as.issuer,
  authorizationEndpoint: as.provider.urlFor('authorization'),
  tokenEndpoint: as.provider.urlFor('token'),
  revocationEndpoint: as.provider.urlFor('revocation'),
  apiOrigin: api.origin,
})
