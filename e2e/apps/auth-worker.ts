// Worker mode's worker for both apps: the session, its tokens and its DPoP key live here. Its options
// come from the demo's /config.json: serveTokenManager takes the promise at once, before any await.
import { serveTokenManager } from 'latchkey/worker'
import { optionsFor, type AppConfig } from './options.js'

serveTokenManager(fetch('/config.json').then(async (res) => optionsFor((await res.json()) as AppConfig)))
