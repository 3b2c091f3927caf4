import { useEffect, useState } from 'react'
import { RequireSession, useSession, useTokenManager } from 'latchkey/react'
import { config, counters, signInUrl, start } from '../config.js'

function Session() {
  const session = useSession()
  counters.renders++
  if (!session) return <p id="status">Signed out</p>
  return (
    <p id="status" data-generation={session.generation} data-expires-at={session.expiresAt}>
      Signed in
    </p>
  )
}

export function App() {
  const tm = useTokenManager()!
  const [error, setError] = useState('')
  const [ready, setReady] = useState(false)
  const [result, setResult] = useState('')
  // Under StrictMode this effect runs twice: handleRedirect() with the same URL is one exchange.
  useEffect(() => {
    counters.starts++
    start(tm)
      .catch((e: { code?: string }) => setError(e.code ?? String(e)))
      .finally(() => setReady(true))
  }, [tm])
  const call = async () => {
    const res = await tm.fetch(config.apiOrigin + '/api/me')
    setResult(String(res.status))
  }
  const signIn = async () => location.replace(await signInUrl(tm))
  // A page that needs a session: once start-up is done, it signs in when there is none.
  if (new URLSearchParams(location.search).get('page') == 'billing')
    return ready ? (
      <RequireSession signIn={signIn} fallback={<p id="guard">Signing in…</p>}>
        <p id="billing">Billing</p>
      </RequireSession>
    ) : null
  return (
    <main>
      <Session />
      {error && <p id="error">{error}</p>}
      <button id="sign-in" onClick={() => void signIn()}>
        Sign in
      </button>
      <button id="call-api" onClick={() => void call()}>
        Call the API
      </button>
      <button id="sign-out" onClick={() => void tm.logout()}>
        Sign out
      </button>
      <output id="result">{result}</output>
    </main>
  )
}
