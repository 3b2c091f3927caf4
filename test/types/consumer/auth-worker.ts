// Worker mode's README example (the worker), compiled as a consumer's module.
// auth-worker.ts: a module worker; the options are those of createTokenManager, or a promise of them
import { discover } from 'latchkey'
import { serveTokenManager } from 'latchkey/worker'

serveTokenManager(
  discover('https://as.example').then((as) => ({
    ...as, // tokenEndpoint, authorizationEndpoint, revocationEndpoint, issuer
    clientId: 'spa',
    allowedOrigins: ['https://api.example'],
  })),
)
export {}
