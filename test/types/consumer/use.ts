// The README's "Use" example as an app would write it (README.md holds the same lines; test/readme.test.ts
// checks that they match). Compiled by `npm run typecheck` in test/types/consumer/tsconfig.ky1.json
// and tsconfig.ky2.json, strict, against the package's entry points.
declare function showSignIn(): void
declare function showSignInError(error: unknown): void

import { createTokenManager, discover, isLatchkeyError } from 'latchkey'

// RFC 8414 / OpenID discovery: the issuer and its token, authorization and revocation endpoints.
const as = await discover('https://as.example')
const tm = createTokenManager({ ...as, clientId: 'spa', allowedOrigins: ['https://api.example'] })

async function signIn() {
  // The authorization endpoint came with discover(): the options carry it.
  location.assign(await tm.authorizationUrl({
    redirectUri: location.origin + '/',
    scope: 'openid offline_access api:read',
    resource: 'https://api.example',
  }))
}

// At startup: adopt the session of another open tab (or a persisted one, see `persist`).
if (!(await tm.restore())) {
  if (new URLSearchParams(location.search).has('state')) {
    try {
      await tm.handleRedirect(location.href)   // back from the authorization server
    } catch (e) {
      // Nothing was signed in. login_error without `error`: an unknown or reused state (a reload,
      // the Back button): start over. Otherwise the server refused (`e.error`, e.g. access_denied)
      // or the code exchange failed: say so.
      if (isLatchkeyError(e, 'login_error') && !e.error) await signIn()
      else showSignInError(e)
    } finally {
      history.replaceState(null, '', location.pathname)   // the code and state leave the address bar
    }
  } else {
    await signIn()
  }
}

const res = await tm.fetch('https://api.example/me')       // DPoP token + proof attached
await fetch('https://cdn.example/app.css')                  // nothing attached, ever

tm.on('session-expired', () => showSignIn())
try {
  await tm.fetch('https://api.example/items')
} catch (e) {
  if (isLatchkeyError(e, 'session_expired')) showSignIn()
}

await tm.logout()   // revokes, clears memory, deletes the DPoP key, signs out every tab
tm.dispose()        // a manager dropped without logout: removes its listeners, leaves the tab channel
export { tm, res }
