/**
 * Worker mode: the session (access tokens, refresh token, DPoP key) lives in a worker; the page
 * holds a handle that asks the worker for everything and never receives a token.
 *
 * @module
 */
export { serveTokenManager } from './worker/serve.js'
export { connectTokenManager } from './worker/connect.js'
export type { ConnectOptions } from './worker/connect.js'
export type { MessageEndpoint } from './worker/protocol.js'
