// Worker mode's README example, compiled as a consumer's module.
// the page
import { connectTokenManager } from 'latchkey/worker'

const script = new URL('./auth-worker.ts', import.meta.url)
const tm =
  typeof SharedWorker == 'function'
    ? connectTokenManager(new SharedWorker(script, { type: 'module', name: 'latchkey' }))
    : connectTokenManager(new Worker(script, { type: 'module' }))

// Back from the authorization server: the worker checks the response and exchanges the code.
const here = new URL(location.href)
if (here.searchParams.has('code') || here.searchParams.has('error')) {
  await tm.handleRedirect(here)
  history.replaceState(null, '', here.pathname)
}
// authorizationEndpoint came with discovery, in the worker.
if (!(await tm.restore())) location.assign(await tm.authorizationUrl({ redirectUri: here.origin + here.pathname, scope: 'openid api' }))
const res = await tm.fetch('https://api.example/me') // a real Response; the token was added in the worker
export { res }
