// Glewlwyd 2.7.5 (Debian's `glewlwyd` package), a second, independent authorization server, set up
// from nothing on loopback: a sqlite database built from the shipped init script, then the OpenID
// Connect plugin, scopes, a user and a public client through its admin REST API. Stopped by its PID.
//
//   node scripts/glewlwyd.mjs      starts one, prints its endpoints as JSON, stops on Ctrl-C
//
// Install: `echo "glewlwyd glewlwyd/config_type select No configuration" | debconf-set-selections`,
// then `apt-get install -y glewlwyd sqlite3` (without the preseed its postinst looks for PostgreSQL).

import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'

export const GLEWLWYD = '/usr/bin/glewlwyd'
const INIT_SQL = '/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz'
const CONFIG = '/etc/glewlwyd/glewlwyd.conf'
const ADMIN = { username: 'admin', password: 'password' } // the init script's administrator
export const USER = { username: 'user1', password: 'user1-password' }
const PLUGIN = 'oidc'

/** Why Glewlwyd cannot run here, or undefined when it can. */
export function missing() {
  for (const file of [GLEWLWYD, INIT_SQL, CONFIG, '/usr/bin/sqlite3']) if (!existsSync(file)) return `${file} is missing`
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

/** A cookie jar for one user of the admin and auth APIs (Glewlwyd's session is a cookie). */
function session(base) {
  const jar = new Map()
  const request = async (method, path, body, { redirect = 'manual' } = {}) => {
    const res = await fetch(new URL(path, base), {
      method,
      redirect,
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(body && { 'content-type': 'application/json' }) },
      body: body && JSON.stringify(body),
    })
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';')
      jar.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1))
    }
    return res
  }
  const ok = async (method, path, body) => {
    const res = await request(method, path, body)
    if (!res.ok) throw new Error(`glewlwyd: ${method} ${path}: HTTP ${res.status} ${await res.text()}`)
    return res
  }
  return { request, ok }
}

/**
 * Starts Glewlwyd on a free loopback port, set up with a public client `spa` (PKCE S256 required,
 * DPoP with mandatory nonces that change every `nonceCounter` uses, refresh tokens rotated on every
 * use, RFC 8707 resource indicators, RFC 9207 `iss`), a user, and one scope per resource.
 *
 * @param {object} options
 * @param {string} options.redirectUri the client's redirect URI
 * @param {Record<string, string>} options.resources scope → resource indicator (the tokens' `aud`)
 * @param {number} [options.accessTokenTTL=60] seconds
 * @param {number} [options.nonceCounter=5]
 */
export async function startGlewlwyd({ redirectUri, resources, accessTokenTTL = 60, nonceCounter = 5 }) {
  const why = missing()
  if (why) throw new Error(`glewlwyd cannot start: ${why}. Install it: echo "glewlwyd glewlwyd/config_type select No configuration" | debconf-set-selections && apt-get install -y glewlwyd sqlite3`)
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-glewlwyd-'))
  const db = join(dir, 'glewlwyd.db')
  execFileSync('/usr/bin/sqlite3', [db], { input: gunzipSync(readFileSync(INIT_SQL)) })
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const config = readFileSync(CONFIG, 'utf8')
    .replace(/^port=.*$/m, `port=${port}`)
    .replace(/^external_url=.*$/m, `external_url="${origin}"`)
    .replace(/^(\s*)path = ".*glewlwyd\.db"/m, `$1path = "${db}"`)
    .replace(/^log_level=.*$/m, 'log_level="ERROR"')
    // Debian ships no user middleware modules: an empty folder instead of a missing one.
    .replace(/^user_middleware_module_path=.*$/m, `user_middleware_module_path="${dir}"`)
    .replace(/^cookie_secure=.*$/m, 'cookie_secure=0')
    .replace(/^cookie_domain=.*$/m, 'cookie_domain="127.0.0.1"')
    // What a browser client needs to read (latchkey's nonce retry, the server's time).
    .replace(/^expose_headers=.*$/m, 'expose_headers="Content-Encoding, Authorization, DPoP-Nonce, WWW-Authenticate, Date"')
  writeFileSync(join(dir, 'glewlwyd.conf'), config)
  const child = spawn(GLEWLWYD, ['-c', join(dir, 'glewlwyd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      process.kill(child.pid, 'SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const api = `${origin}/api/`
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`glewlwyd exited (${child.exitCode}): ${stderr}`)
      const up = await fetch(origin + '/config').then((r) => r.ok, () => false)
      if (up) break
      if (i > 100) throw new Error('glewlwyd did not start within 10 s: ' + stderr)
      await new Promise((r) => setTimeout(r, 100))
    }
    await configure({ api, origin, redirectUri, resources, accessTokenTTL, nonceCounter })
  } catch (e) {
    await stop()
    throw e
  }
  const issuer = `${api}${PLUGIN}`
  return {
    origin,
    issuer,
    pid: child.pid,
    tokenEndpoint: `${issuer}/token`,
    revocationEndpoint: `${issuer}/revoke`,
    authorizationEndpoint: `${issuer}/auth`,
    /** The HS256 key of the access tokens (`jwt-type: sha`): the resource servers verify them with it. */
    accessTokenKey: `latchkey-glewlwyd-${port}`,
    /** Signs `USER` in at Glewlwyd and follows `url` (an authorization request) to the redirect back. */
    async authorize(url) {
      const user = session(api)
      await user.ok('POST', 'auth/', USER)
      const res = await user.request('GET', url + '&g_continue')
      const location = res.headers.get('location')
      if (res.status != 302 || !location) throw new Error(`glewlwyd: authorization: HTTP ${res.status}`)
      return new URL(location, url).href
    },
    stop,
  }
}

async function configure({ api, redirectUri, resources, accessTokenTTL, nonceCounter, origin }) {
  const admin = session(api)
  await admin.ok('POST', 'auth/', ADMIN)
  const scopes = Object.keys(resources)
  for (const name of scopes) await admin.ok('POST', 'scope/', { name, display_name: name, description: name, password_required: false })
  await admin.ok('POST', `mod/plugin/`, {
    module: 'oidc',
    name: PLUGIN,
    display_name: 'OpenID Connect',
    parameters: {
      iss: `${api}${PLUGIN}`,
      'jwt-type': 'sha',
      'jwt-key-size': '256',
      key: `latchkey-glewlwyd-${new URL(origin).port}`,
      'access-token-duration': accessTokenTTL,
      'refresh-token-duration': 86_400,
      'code-duration': 600,
      'refresh-token-rolling': true,
      // Rotation: every refresh token is good for one use.
      'refresh-token-one-use': 'always',
      'allow-non-oidc': true,
      'auth-type-code-enabled': true,
      'auth-type-refresh-enabled': true,
      'pkce-allowed': true,
      'pkce-required': true,
      'pkce-method-plain-allowed': false,
      'oauth-dpop-allowed': true,
      'oauth-dpop-iat-duration': 60,
      'oauth-dpop-nonce-mandatory': true,
      'oauth-dpop-nonce-counter': nonceCounter,
      'resource-allowed': true,
      'resource-scope': Object.fromEntries(scopes.map((s) => [s, [resources[s]]])),
      'resource-scope-and-client-property': false,
      'introspection-revocation-allowed': true,
      // RFC 9207: `iss` in every authorization response.
      'oauth-as-iss-id': true,
    },
  })
  await admin.ok('POST', 'user/', { ...USER, name: 'User One', email: '', enabled: true, scope: ['openid', ...scopes] })
  await admin.ok('POST', 'client/', {
    client_id: 'spa',
    client_name: 'latchkey tests',
    confidential: false,
    enabled: true,
    authorization_type: ['code', 'refresh_token'],
    redirect_uri: [redirectUri],
    token_endpoint_auth_method: ['none'],
  })
  const user = session(api)
  await user.ok('POST', 'auth/', USER)
  await user.ok('PUT', 'auth/grant/spa', { scope: ['openid', ...scopes].join(' ') })
}

if (import.meta.url == `file://${process.argv[1]}`) {
  const glewlwyd = await startGlewlwyd({ redirectUri: 'http://127.0.0.1/callback', resources: { api: 'http://127.0.0.1/api' } })
  const { authorize, stop, ...endpoints } = glewlwyd
  console.log(JSON.stringify(endpoints, null, 2))
  process.once('SIGINT', () => stop().then(() => process.exit(0)))
}
