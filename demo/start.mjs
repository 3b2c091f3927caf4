// `npm start`: builds the demo SPA and starts the authorization server, the API, the third-party
// server and the app on 127.0.0.1.
//
// Environment (all optional):
//   PORT, AS_PORT, API_PORT, BILLING_PORT, THIRD_PARTY_PORT  fixed ports (default: free ports)
//   ACCESS_TOKEN_TTL                           access token lifetime in seconds (default 60)
//   DPOP_NONCE=0                               switch DPoP nonces off at the AS and the API
//   DEMO_EXTRA_ORIGINS                         more apps that may use the AS and the API (your own dev
//                                              server): origins or redirect URIs, comma- or space-separated

import { buildDemo } from './build.mjs'
import { parseExtraOrigin, startDemo } from './server/demo.mjs'

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
const extraOrigins = (process.env.DEMO_EXTRA_ORIGINS ?? '').split(/[\s,]+/).filter(Boolean)

process.stdout.write('Building the demo app… ')
await buildDemo()
console.log('done.')

const demo = await startDemo({
  accessTokenTTL,
  requireNonce,
  extraOrigins,
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
${extraApps(demo)}
  oidc-provider's two warnings above (Node.js v22, in-memory adapter) are expected here:
  README.md, "The demo", says why they are harmless.

  Ctrl+C stops everything.
`)

/** What another app needs to use the demo's AS and API, when DEMO_EXTRA_ORIGINS names one. */
function extraApps({ as, config }) {
  if (extraOrigins.length === 0) return ''
  const uris = extraOrigins.map((entry) => parseExtraOrigin(entry).redirectUri)
  return `
  also allowed (DEMO_EXTRA_ORIGINS): ${uris.join(', ')}
    discover('${as.issuer}') · clientId '${config.clientId}' · scope '${config.scope}'
    resource and allowedOrigins '${config.apiOrigin}'
`
}

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
