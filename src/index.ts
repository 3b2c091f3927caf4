export { createTokenManager } from './manager.js'
export { memoryKeyStore, indexedDBKeyStore, type KeyStore } from './keystore.js'
export type { CrossTab, TabMessage, SharedCounters, SharedSession } from './crosstab.js'
export type { DPoPSigner } from './dpop.js'
export type { LoginStore } from './types.js'
export type { WebCrypto } from './util.js'
export {
  LatchkeyError,
  ResponseError,
  OAuthError,
  SessionExpiredError,
  DPoPProofError,
  NetworkError,
  TimeoutError,
  NoSessionError,
  LoginError,
  RetryLaterError,
  isLatchkeyError,
  type LatchkeyErrorCode,
  type LatchkeyErrorOptions,
  type LatchkeyErrorClass,
} from './errors.js'
export type {
  TokenManager,
  TokenManagerOptions,
  TokenManagerCommonOptions,
  WithTokenEndpoint,
  WithRefresh,
  WithAllowedOrigins,
  WithResources,
  TokenManagerEvents,
  TokenResponse,
  RefreshContext,
  RefreshEndpoint,
  RefreshReason,
  SessionInfo,
  Measurement,
  MeasurementName,
  AuthorizationParameters,
  ResourceOptions,
} from './types.js'
export { discover, type AuthorizationServer, type DiscoveryOptions } from './discovery.js'
