// The README's React example as an app would write it (README.md holds the same lines; test/readme.test.ts
// checks that they match). Compiled by `npm run typecheck` in test/types/consumer/tsconfig.frameworks.json.
declare function Billing(): React.ReactNode

import { StrictMode, useEffect, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { createTokenManager } from 'latchkey'
import { LatchkeyProvider, RequireSession, useSession, useTokenManager } from 'latchkey/react'

// In the browser only: the session lives in this page's memory. Worker mode: connectTokenManager(…).
const tm = createTokenManager({
  clientId: 'spa',
  tokenEndpoint: 'https://as.example/token',
  allowedOrigins: ['https://api.example'],
})

async function signIn() {
  location.assign(await tm.authorizationUrl({
    authorizationEndpoint: 'https://as.example/authorize',
    redirectUri: location.origin + '/',
    scope: 'openid offline_access api:read',
  }))
}

function useStartUp() {
  const tm = useTokenManager()
  const [ready, setReady] = useState(false)
  useEffect(() => {
    if (!tm) return
    // StrictMode runs this effect twice: the second handleRedirect() gets the first one's promise.
    const back = new URLSearchParams(location.search).has('state')
    const start = back ? tm.handleRedirect(location.href).finally(() => history.replaceState(null, '', '/')) : tm.restore()
    start.catch(() => {}).finally(() => setReady(true))
  }, [tm])
  return ready
}

function Account() {
  const session = useSession()     // SessionInfo | undefined; undefined on a server
  const tm = useTokenManager()
  if (!session) return <button onClick={signIn}>Sign in</button>
  return <button onClick={() => tm?.logout()}>Sign out ({session.scope})</button>
}

function App() {
  const ready = useStartUp()
  if (!ready) return <p>Loading…</p>
  return <Account />
}

// A page that needs a session: signs in when there is none (render it once start-up is done).
export function BillingPage() {
  return (
    <RequireSession signIn={signIn} fallback={<p>Signing in…</p>}>
      <Billing />
    </RequireSession>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <LatchkeyProvider tm={tm}>
      <App />
    </LatchkeyProvider>
  </StrictMode>,
)
