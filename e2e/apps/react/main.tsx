import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { createTokenManager } from 'latchkey'
import { LatchkeyProvider } from 'latchkey/react'
import { options } from '../config.js'
import { App } from './App.js'

// In-page mode. Worker mode is this one line: connectTokenManager(new SharedWorker(…)).
const tm = createTokenManager(options)

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <LatchkeyProvider tm={tm}>
      <App />
    </LatchkeyProvider>
  </StrictMode>,
)
