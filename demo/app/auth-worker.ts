// Worker mode's worker: the demo's token manager runs here, and only here are the tokens, the
// refresh token and the DPoP key. The page passes the options (no secret: what it would give
// createTokenManager) in the worker's URL, so that the manager listens before any message can
// arrive (no await before serveTokenManager).

import type { TokenManagerOptions } from '../../src/index.js'
import { serveTokenManager } from '../../src/worker.js'

const options = JSON.parse(new URLSearchParams(location.search).get('options') ?? '{}') as TokenManagerOptions
serveTokenManager(options)
