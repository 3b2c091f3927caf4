// `npm start`: builds the demo SPA and starts the authorization server, the API, the third-party
// server and the app on 127.0.0.1.
//
// Environment (all optional):
//   PORT, AS_PORT, API_PORT, BILLING_PORT, THIRD_PARTY_PORT  fixed ports (default: free ports)
//   ACCESS_TOKEN_TTL                           access token lifetime in seconds (default 60)
//   DPOP_NONCE=0                               switch DPoP nonces off at the AS and the API

import { buildDemo } from './build.mjs'
import { startDemo } from './server/demo.mjs'

function port(name) {
  const value = process.env[name]
  if (value === undefined || value === '') return 0
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new TypeError(`${name} must be a port number, got ${value}`)
  return n
}

const accessTokenTTL = Number(process.env.ACCESS_TOKEN_TTL ?? 60)
if (!Number.isInteger(accessTokenTTL) || accessTokenTTL < 1) throw new TypeError('ACCESS_TOKEN_TTL must be a positive whole number of seconds')
const requireNonce = process.env.DPOP_NONCE !== '0'

process.stdout.write('Building the demo app… ')
await buildDemo()
console.log('done.')

const demo = await startDemo({
  accessTokenTTL,
  requireNonce,
  ports: { app: port('PORT'), as: port('AS_PORT'), api: port('API_PORT'), billing: port('BILLING_PORT'), thirdParty: port('THIRD_PARTY_PORT') },
})

console.log(`
  latchkey demo

  Open  ${demo.appUrl}

  authorization server  ${demo.as.issuer}  (oidc-provider)
  API                   ${demo.api.origin}
  billing API           ${demo.billing.origin}  (its own token: aud and scope billing:read)
  third-party origin    ${demo.thirdParty.origin}
  access tokens last ${accessTokenTTL} s · DPoP nonces ${requireNonce ? 'on' : 'off'}

  Ctrl+C stops everything.
`)

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: stopping…`)
  await demo.stop()
  process.exit(0)
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
