import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { createTokenManager } from 'latchkey'
import { LatchkeyProvider } from 'latchkey/react'
import { connectTokenManager } from 'latchkey/worker'
import { options, workerMode } from '../config.js'
import { App } from './App.js'

// In-page mode, or worker mode: one line apart.
const tm = workerMode
  ? connectTokenManager(new SharedWorker(new URL('../auth-worker.ts', import.meta.url), { type: 'module', name: 'latchkey' }))
  : createTokenManager(options)

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <LatchkeyProvider tm={tm}>
      <App />
    </LatchkeyProvider>
  </StrictMode>,
)
