// The package as users get it: `npm pack` (which builds through `prepack`), lint the tarball with
// publint and arethetypeswrong, unpack it into a scratch project without any network, then import
// both entry points in Node, type-check a consumer against the published declarations, and send a
// real request through each entry to a loopback server.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string) => join(root, 'node_modules', '.bin', name)

let scratch: string
let tarball: string
let packed: { path: string }[]

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'latchkey-pack-'))
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: root, maxBuffer: 1 << 24 })
  // prepack's build output comes before the JSON.
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as { filename: string; files: { path: string }[] }[]
  tarball = join(scratch, info!.filename)
  packed = info!.files
}, 180_000)

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true })
})

describe('the packed tarball', () => {
  it('holds the builds, their declarations and nothing of the sources or tests', () => {
    const files = packed.map((f) => f.path).sort()
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/ky.js', 'dist/ky.d.ts', 'dist/worker.js', 'dist/worker.d.ts', 'dist/latchkey.min.js', 'dist/ky.min.js', 'dist/worker.min.js', 'dist/react.js', 'dist/react.d.ts', 'dist/vue.js', 'dist/vue.d.ts', 'dist/otel.js', 'dist/otel.d.ts', 'dist/otel.min.js', 'package.json'])
      expect(files).toContain(f)
    expect(files.filter((f) => !/^(dist\/|package\.json$|README\.md$|LICENSE)/.test(f))).toEqual([])
  })

  it('passes publint in strict mode', async () => {
    const bytes = await readFile(tarball)
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    // The tarball's files sit under package/.
    const { messages, pkg } = await publint({ pkgDir: 'package', strict: true, pack: { tarball: buffer } })
    expect(messages.map((m) => `${m.type}: ${formatMessage(m, pkg)}`)).toEqual([])
  })

  it('passes arethetypeswrong for ESM consumers (node16 and bundler resolution)', async () => {
    const result = await run(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'table-flipped'], { cwd: root }).then(
      () => 'ok',
      (e: { stdout: string; stderr: string }) => e.stdout + e.stderr,
    )
    expect(result).toBe('ok')
  }, 60_000)
})

describe('installed offline in a scratch project', () => {
  let app: string
  beforeAll(async () => {
    app = join(scratch, 'app')
    const pkg = join(app, 'node_modules', 'latchkey')
    await mkdir(pkg, { recursive: true })
    await run('tar', ['-xzf', tarball, '-C', pkg, '--strip-components=1'])
    // The peer comes from this repository's install; idb-keyval is deliberately absent: it is bundled.
    await symlink(join(root, 'node_modules', 'ky'), join(app, 'node_modules', 'ky'), 'dir')
    await mkdir(join(app, 'node_modules', '@opentelemetry'))
    await symlink(join(root, 'node_modules', '@opentelemetry', 'api'), join(app, 'node_modules', '@opentelemetry', 'api'), 'dir')
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  })

  it('imports every entry and the browser builds; a request through each carries the token, worker mode included', async () => {
    await writeFile(join(app, 'main.js'), CONSUMER)
    const { stdout } = await run(process.execPath, ['main.js'], { cwd: app, timeout: 30_000 })
    const out = JSON.parse(stdout) as Record<string, unknown>
    expect(out.exports).toEqual([
      'DPoPProofError', 'LatchkeyError', 'LoginError', 'NetworkError', 'NoSessionError', 'OAuthError', 'ResponseError', 'RetryLaterError',
      'SessionExpiredError', 'TimeoutError', 'createTokenManager', 'discover', 'indexedDBKeyStore', 'isLatchkeyError', 'memoryKeyStore',
    ])
    expect(out.kyExports).toEqual(['kyHooks'])
    expect(out.minExports).toEqual(out.exports)
    expect(out.kyMinExports).toEqual(['kyHooks'])
    expect(out.workerExports).toEqual(['connectTokenManager', 'serveTokenManager'])
    expect(out.workerMinExports).toEqual(out.workerExports)
    expect(out.otelExports).toEqual(['instrument'])
    expect(out.otelMinExports).toEqual(['instrument'])
    expect(out.measured).toEqual(['start', 'token_request'])
    expect(out.seen).toEqual([
      { via: 'tm.fetch', authorization: 'Bearer at-1', dpop: false },
      { via: 'ky', authorization: 'Bearer at-1', dpop: false },
      { via: 'min tm.fetch', authorization: 'DPoP at-2', dpop: true },
      { via: 'min ky', authorization: 'DPoP at-2', dpop: true },
      { via: 'worker', authorization: 'DPoP at-3', dpop: true },
      { via: 'worker.min.js', authorization: 'DPoP at-4', dpop: true },
    ])
    // An error from the worker is an instance of the core's class: one copy of the errors in the package.
    expect(out.sameErrorClass).toBe(true)
   }, 60_000)

  it('type-checks a strict consumer against the published declarations (node16 resolution, no skipLibCheck)', async () => {
    await writeFile(join(app, 'check.ts'), TYPED_CONSUMER)
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16', moduleResolution: 'node16', target: 'ES2022', lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: [],
          strict: true, exactOptionalPropertyTypes: true, verbatimModuleSyntax: true, noEmit: true, skipLibCheck: false,
        },
        files: ['check.ts'],
      }),
    )
    const result = await run(bin('tsc'), ['-p', join(app, 'tsconfig.json')], { cwd: app }).then(
      () => 'ok',
      (e: { stdout: string }) => e.stdout,
    )
    expect(result).toBe('ok')
  }, 60_000)
})

const CONSUMER = `
import { createServer } from 'node:http'
import ky from 'ky'
import * as core from 'latchkey'
import * as kyEntry from 'latchkey/ky'
import * as min from 'latchkey/latchkey.min.js'
import * as kyMin from 'latchkey/ky.min.js'
import * as workerEntry from 'latchkey/worker'
import * as workerMin from 'latchkey/worker.min.js'
import * as otelEntry from 'latchkey/otel'
import * as otelMin from 'latchkey/otel.min.js'

const seen = []
let via = ''
const server = createServer((req, res) => {
  seen.push({ via, authorization: req.headers.authorization, dpop: typeof req.headers.dpop == 'string' })
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
})
await new Promise((r) => server.listen(0, '127.0.0.1', r))
const origin = 'http://127.0.0.1:' + server.address().port

async function exercise(lib, hooks, type, token, label) {
  const tm = lib.createTokenManager({
    clientId: 'app', tokenEndpoint: origin + '/token', allowedOrigins: [origin],
    dpop: type == 'DPoP' ? { keyStore: lib.memoryKeyStore() } : false, crossTab: false,
  })
  await tm.setTokens({ access_token: token, token_type: type, expires_in: 300 })
  via = label + 'tm.fetch'
  await (await tm.fetch(origin + '/a')).json()
  via = label + 'ky'
  await ky.create({ hooks: hooks.kyHooks(tm) }).get(origin + '/b').json()
}
await exercise(core, kyEntry, 'Bearer', 'at-1', '')
await exercise(min, kyMin, 'DPoP', 'at-2', 'min ')

// Worker mode over a MessageChannel: the worker's side on one port, the page's on the other.
async function overChannel(entry, token, label) {
  const { port1, port2 } = new MessageChannel()
  entry.serveTokenManager({ clientId: 'app', tokenEndpoint: origin + '/token', allowedOrigins: [origin], dpop: { keyStore: core.memoryKeyStore() }, crossTab: false }, port1)
  const tm = entry.connectTokenManager(port2)
  await tm.setTokens({ access_token: token, token_type: 'DPoP', expires_in: 300 })
  via = label
  await (await tm.fetch(origin + '/w')).json()
  const error = await tm.getAccessToken().catch((e) => e)
  port1.close()
  port2.close()
  return error
}
const unsupported = await overChannel(workerEntry, 'at-3', 'worker')
await overChannel(workerMin, 'at-4', 'worker.min.js')
const noSession = await (async () => {
  const { port1, port2 } = new MessageChannel()
  workerEntry.serveTokenManager({ clientId: 'app', tokenEndpoint: origin + '/token', allowedOrigins: [origin], dpop: false, crossTab: false }, port1)
  const e = await workerEntry.connectTokenManager(port2).fetch(origin + '/x').catch((e) => e)
  port1.close()
  port2.close()
  return e
})()
// latchkey/otel with no SDK registered: the API's no-op providers, and the measurements still flow.
const measured = []
{
  const tm = core.createTokenManager({ clientId: 'app', tokenEndpoint: origin + '/token', allowedOrigins: [origin], dpop: false, crossTab: false, refresh: async () => ({ access_token: 'at-5', token_type: 'Bearer' }) })
  tm.on('measure', (m) => measured.push(m.name))
  const stop = otelEntry.instrument(tm)
  await tm.refresh()
  stop()
}
server.close()
console.log(JSON.stringify({
  otelExports: Object.keys(otelEntry).sort(),
  otelMinExports: Object.keys(otelMin).sort(),
  measured: [...new Set(measured)],
  exports: Object.keys(core).sort(),
  kyExports: Object.keys(kyEntry).sort(),
  minExports: Object.keys(min).sort(),
  kyMinExports: Object.keys(kyMin).sort(),
  workerExports: Object.keys(workerEntry).sort(),
  workerMinExports: Object.keys(workerMin).sort(),
  sameErrorClass: noSession instanceof core.NoSessionError && unsupported instanceof core.LatchkeyError && core.isLatchkeyError(unsupported, 'unsupported'),
  seen,
}))
`

const TYPED_CONSUMER = `
import ky from 'ky'
import { createTokenManager, discover, isLatchkeyError, type AuthorizationServer, type TokenManager, type TokenManagerOptions } from 'latchkey'
import { kyHooks } from 'latchkey/ky'
import { connectTokenManager } from 'latchkey/worker'
import { instrument, type InstrumentOptions } from 'latchkey/otel'
import type { Measurement } from 'latchkey'

export const fromMetadata = async (): Promise<TokenManager> => {
  const as: AuthorizationServer = await discover('https://as.example', { timeoutSeconds: 5 })
  return createTokenManager({ ...as, clientId: 'app', allowedOrigins: ['https://api.example'] })
}

const options: TokenManagerOptions = { clientId: 'app', tokenEndpoint: 'https://as.example/token', allowedOrigins: ['https://api.example'] }
const tm: TokenManager = createTokenManager(options)
const api = ky.create({ hooks: kyHooks(tm) })
export const probe = async (): Promise<string> => {
  try {
    return (await api.get('https://api.example/me').json<{ name: string }>()).name
  } catch (e) {
    if (isLatchkeyError(e, 'session_expired')) return e.code
    throw e
  }
}
export const inPage: TokenManager = connectTokenManager(new MessageChannel().port2)
export const stop: () => void = instrument(tm, {} satisfies InstrumentOptions)
export const names = (m: Measurement): string => m.name
// @ts-expect-error: clientId is required
createTokenManager({ allowedOrigins: [] })
// @ts-expect-error: kyHooks needs a token manager
kyHooks({})
`
