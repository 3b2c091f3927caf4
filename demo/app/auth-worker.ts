// Worker mode's worker: the demo's token manager runs here, and only here are the tokens, the
// refresh token and the DPoP key. The page passes the settings in the worker's URL, so that the
// manager listens before any message can arrive (no await before serveTokenManager).

import { serveTokenManager } from '../../src/worker.js'

const settings = new URLSearchParams(location.search)
const setting = (name: string) => settings.get(name) ?? ''

serveTokenManager({
  clientId: setting('clientId'),
  tokenEndpoint: setting('tokenEndpoint'),
  revocationEndpoint: setting('revocationEndpoint'),
  allowedOrigins: [setting('apiOrigin')],
  dpop: true,
  persist: setting('persist') === 'on',
})
