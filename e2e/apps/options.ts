// The options both apps give latchkey, from the demo's /config.json: its authorization server, its
// API and its billing API. Free of top-level await, so that the worker can import it.
import type { TokenManagerOptions } from 'latchkey'

export interface AppConfig {
  clientId: string
  authorizationEndpoint: string
  tokenEndpoint: string
  revocationEndpoint: string
  redirectUri: string
  scope: string
  apiOrigin: string
  billingOrigin: string
}

export const optionsFor = (config: AppConfig): TokenManagerOptions => ({
  clientId: config.clientId,
  tokenEndpoint: config.tokenEndpoint,
  revocationEndpoint: config.revocationEndpoint,
  resources: {
    [config.apiOrigin]: config.apiOrigin,
    [config.billingOrigin]: { resource: config.billingOrigin, scope: 'billing:read' },
  },
})
